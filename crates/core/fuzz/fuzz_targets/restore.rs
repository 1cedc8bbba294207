//! A persisted client session read back from whatever storage held (`Client::restore`): a stored
//! position that is well-formed, foreign, damaged or made of any numbers (also at the end of
//! `u64`), and stored messages numbered in any way (after the position, overlapping it, with gaps,
//! duplicates, out of order). The restored client then meets a server `Endpoint` that may hold its
//! session (with numbers that agree with the client's or not), over a link the input opens, cuts
//! and delivers frame by frame, with sends both ways, time, and storage commits (`Client::stored`)
//! whenever the input says; at the end the faults stop and everything settles.
//!
//! Checked: no panic (overflow checks are on); `restore` fails exactly when the position cannot be
//! read (the error `Position::decode` gives) or the messages after it do not follow it, and then
//! reports exactly the readable ones (`SessionLost`, `LostReason::Storage`); a restored session holds
//! exactly the messages after the position and its first batch writes that position back; a
//! ledger: every restored or sent message is confirmed (`Acked`, in order) or reported lost
//! (`SessionLost`: exactly the unconfirmed), and once all settles, the client is open with nothing
//! left unaccounted for; each application gets the other's messages once and in order; no protocol
//! error between the two; bounded buffers (beyond what was restored).
#![no_main]

use std::collections::VecDeque;

use durable_ws_core::frame::Frame;
use durable_ws_core::persist::Position;
use durable_ws_core::server::{ConnId, Endpoint, EndpointConfig, Restored, ServerEvent, SessionId};
use durable_ws_core::{
    Action, BackoffConfig, BufferLimits, Client, ClientConfig, ClientState, ConnectionError, Event, HeartbeatConfig,
    LostReason, Millis, Payload, PayloadRef, ProtocolError, SendError, SessionConfig, Token,
};
use durable_ws_core_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;

const LIMITS: BufferLimits = BufferLimits { max_messages: 8, max_bytes: 256 };
const MAX_MESSAGE: usize = 64;
const TOKENS: [Token; 2] = [Token([1; 16]), Token([2; 16])];
/// How long the faults-free end may take to settle.
const SETTLE_MS: Millis = 30_000;

fn session_config() -> SessionConfig {
    SessionConfig {
        limits: LIMITS,
        max_message_bytes: MAX_MESSAGE,
        ack_delay_ms: 5,
        ack_every: 3,
        heartbeat: Some(HeartbeatConfig { interval_ms: 100, timeout_ms: 60 }),
    }
}

fn client_config() -> ClientConfig {
    ClientConfig {
        session: session_config(),
        backoff: BackoffConfig { min_delay_ms: 5, max_delay_ms: 100, ..Default::default() },
        connect_timeout_ms: 200,
        // `restore` makes it persisted whatever the config says.
        persist: false,
        ..Default::default()
    }
}

/// Payloads name their sender and order: `r<i>` restored, `c<n>` sent by the client application,
/// `u<i>` restored on the server, `s<n>` sent by the server application (padded to `len`).
fn payload(kind: char, n: u64, len: u8, binary: bool) -> Payload {
    let mut text = format!("{kind}{n}:");
    while text.len() < usize::from(len) % MAX_MESSAGE {
        text.push('.');
    }
    if binary {
        Payload::Binary(text.into_bytes())
    } else {
        Payload::Text(text)
    }
}

/// The order a payload was made in: restored ones before the applications' own.
fn order(p: &Payload) -> u64 {
    let bytes = p.as_bytes();
    let end = bytes.iter().position(|&b| b == b':').expect("a harness payload");
    let n: u64 = std::str::from_utf8(&bytes[1..end]).unwrap().parse().unwrap();
    match bytes[0] {
        b'r' | b'u' => n,
        _ => 1 << 32 | n,
    }
}

/// A number near an interesting one: 0, small, around `near`, at the end of `u64`, or any.
fn number(input: &mut Bytes, near: u64) -> Option<u64> {
    let pick = input.byte()?;
    let small = u64::from(pick >> 3);
    Some(match pick % 8 {
        0 => 0,
        1 => small,
        2 | 3 => near.saturating_add(small),
        4 => near.saturating_sub(small),
        5 => u64::MAX - small,
        6 => (u64::MAX - 1) - small,
        _ => input.u64()?,
    })
}

/// What storage held: a position string and messages.
fn stored(input: &mut Bytes) -> Option<(String, Vec<(u64, Payload)>)> {
    let flags = input.byte()?;
    let position = match flags % 4 {
        0 => {
            let len = usize::from(input.byte()? % 64);
            String::from_utf8_lossy(input.slice(len)?).into_owned()
        }
        mode => {
            let token = match input.byte()? % 4 {
                0 => None,
                1 | 2 => Some(TOKENS[usize::from(flags >> 7)]),
                _ => Some(Token(input.slice(16)?.try_into().unwrap())),
            };
            let wire_base = number(input, 0)?;
            let acked = number(input, wire_base)?;
            let delivered = number(input, 0)?;
            let unsent_after = (flags & 0x40 != 0).then(|| number(input, acked)).flatten();
            let mut text = Position { token, wire_base, acked, delivered, unsent_after }.encode();
            if mode == 3 {
                // Damaged: a character replaced, or the end cut off.
                let at = usize::from(input.byte()?) % text.len();
                let with = input.byte()?;
                if with < 32 {
                    text.truncate(at);
                } else {
                    let with = b":09fz-+ "[usize::from(with % 8)] as char;
                    text.replace_range(at..at + 1, with.encode_utf8(&mut [0; 4]));
                }
            }
            text
        }
    };
    let acked = Position::decode(&position).map_or(0, |p| p.acked);
    let count = input.byte()? % 20;
    let mut seq = match input.byte()? % 4 {
        0 | 1 => acked.saturating_add(1),
        2 => acked.saturating_sub(u64::from(count / 2)),
        _ => number(input, acked)?,
    };
    let mut messages = Vec::new();
    for i in 0..u64::from(count) {
        let shape = input.byte()?;
        messages.push((seq, payload('r', i, shape >> 2, shape & 2 == 0)));
        seq = match shape % 16 {
            0 => seq.saturating_add(2),
            1 => seq,
            2 => number(input, seq)?,
            _ => seq.saturating_add(1),
        };
    }
    if flags & 4 != 0 && messages.len() > 1 {
        // Not in the ascending order a driver must hand them over in: refused or reported, never a panic.
        let at = usize::from(input.byte()?) % (messages.len() - 1);
        messages.swap(at, at + 1);
    }
    Some((position, messages))
}

struct Link {
    conn: ConnId,
    opened: bool,
    attached: Option<SessionId>,
    to_server: VecDeque<Vec<u8>>,
    to_client: VecDeque<Vec<u8>>,
}

struct Harness {
    now: Millis,
    client: Client,
    endpoint: Endpoint<()>,
    link: Option<Link>,
    next_conn: ConnId,
    fresh: u8,
    /// Batches handed out and not yet reported stored, oldest first.
    unstored: VecDeque<u64>,
    /// The client's messages neither confirmed nor reported lost: (seq, payload).
    unconfirmed: VecDeque<(u64, Payload)>,
    /// How many messages were restored (the buffers may hold them beyond their bounds), and on the
    /// server (if it restored the session).
    restored: usize,
    server_restored: Option<usize>,
    /// The client refused a resume the restored server session offered.
    refusals: u32,
    sent: u64,
    server_sent: u64,
    /// What each application got last (`order`).
    server_got: Option<u64>,
    client_got: Option<u64>,
    buf: Vec<u8>,
}

impl Harness {
    fn send(&mut self, shape: u8) {
        let p = payload('c', self.sent, shape, shape & 1 == 0);
        let room = self.client.has_room(p.len());
        match self.client.send(self.now, p.clone()) {
            Ok(seq) => {
                assert!(room, "send took what has_room refused");
                if let Some(&(last, _)) = self.unconfirmed.back() {
                    assert_eq!(seq, last + 1, "consecutive numbers");
                }
                self.unconfirmed.push_back((seq, p));
                self.sent += 1;
            }
            Err(SendError::BufferFull { .. }) => assert!(!room),
            Err(e) => panic!("unexpected send error {e}"),
        }
    }

    fn server_send(&mut self, shape: u8) {
        let Some(id) = self.link.as_ref().and_then(|l| l.attached) else { return };
        let p = payload('s', self.server_sent, shape, shape & 1 == 0);
        match self.endpoint.send(self.now, id, p) {
            Ok(_) => self.server_sent += 1,
            Err(SendError::BufferFull { .. } | SendError::Closed) => {}
            Err(e) => panic!("unexpected server send error {e}"),
        }
    }

    /// The link breaks; both sides notice.
    fn cut(&mut self) {
        let Some(link) = self.link.take() else { return };
        if let Some(id) = link.attached {
            self.endpoint.detach(self.now, id, link.conn);
        }
        self.client.on_close(self.now, 1006, "", false);
    }

    fn deliver_to_server(&mut self) -> bool {
        let now = self.now;
        let Some(link) = &mut self.link else { return false };
        let Some(bytes) = link.to_server.pop_front() else { return false };
        match link.attached {
            None => {
                let Ok(Frame::Hello { resume }) = Frame::decode(&bytes) else { panic!("first frame must be HELLO") };
                let accepted = loop {
                    self.fresh = self.fresh.wrapping_add(1);
                    let mut token = [0xee; 16];
                    token[0] = self.fresh;
                    match self.endpoint.hello(now, link.conn, (), resume, Token(token)) {
                        Ok(accepted) => break accepted,
                        Err(durable_ws_core::server::Refused::TokenInUse) => continue,
                        Err(refused) => panic!("refused: {refused}"),
                    }
                };
                link.attached = Some(accepted.id);
                if let Some(old) = accepted.superseded {
                    assert_ne!(old, link.conn);
                }
            }
            Some(id) => match self.endpoint.handle_message(now, id, link.conn, PayloadRef::Binary(&bytes)) {
                Ok(()) => {}
                Err(durable_ws_core::server::InputError::NotAttached) => {}
                Err(e) => panic!("a protocol error between a restored client and the server: {e}"),
            },
        }
        true
    }

    fn deliver_to_client(&mut self) -> bool {
        let Some(bytes) = self.link.as_mut().and_then(|l| l.to_client.pop_front()) else { return false };
        self.client.on_message(self.now, PayloadRef::Binary(&bytes));
        true
    }

    /// Reports the oldest batch stored, or every one.
    fn commit(&mut self, all: bool) {
        let last = if all { self.unstored.drain(..).next_back() } else { self.unstored.pop_front() };
        if let Some(id) = last {
            self.client.stored(self.now, id);
        }
    }

    fn open(&mut self) {
        if let Some(link) = self.link.as_mut().filter(|l| !l.opened) {
            link.opened = true;
            self.client.on_open(self.now, true);
        }
    }

    /// Runs every deadline up to `until`.
    fn advance(&mut self, until: Millis) {
        for _ in 0..10_000 {
            let next = [self.client.poll_timeout(), self.endpoint.poll_timeout(), self.session_deadline()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) if at <= until => {
                    self.now = self.now.max(at);
                    self.client.handle_timeout(self.now);
                    self.endpoint.handle_timeout(self.now);
                    for id in self.endpoint.ids() {
                        if let Some(conn) = self.endpoint.record(id).and_then(|r| r.attached) {
                            if self.endpoint.timeout(id).is_some_and(|t| t <= self.now) {
                                self.endpoint.handle_session_timeout(self.now, id, conn);
                            }
                        }
                    }
                    self.drain();
                }
                _ => {
                    self.now = self.now.max(until);
                    return;
                }
            }
        }
        panic!("more than 10 000 deadlines in one step");
    }

    fn session_deadline(&self) -> Option<Millis> {
        self.endpoint.ids().into_iter().filter_map(|id| self.endpoint.timeout(id)).min()
    }

    fn drain(&mut self) {
        loop {
            let mut progress = false;
            while let Some(event) = self.client.poll_event() {
                progress = true;
                self.client_event(event);
            }
            while self.client.poll_transmit(self.now, &mut self.buf).is_some() {
                progress = true;
                let link = self.link.as_mut().expect("transmits only on a socket");
                assert!(link.opened, "transmits only on an open socket");
                link.to_server.push_back(self.buf.clone());
            }
            while let Some(action) = self.client.poll_action() {
                progress = true;
                match action {
                    Action::Connect => {
                        assert!(self.link.is_none(), "one socket at a time");
                        self.next_conn += 1;
                        self.link = Some(Link {
                            conn: self.next_conn,
                            opened: false,
                            attached: None,
                            to_server: VecDeque::new(),
                            to_client: VecDeque::new(),
                        });
                    }
                    Action::Close { .. } => {
                        if let Some(link) = self.link.take() {
                            if let Some(id) = link.attached {
                                self.endpoint.detach(self.now, id, link.conn);
                            }
                        }
                    }
                }
            }
            while let Some(batch) = self.client.poll_store() {
                progress = true;
                if let Some(&last) = self.unstored.back() {
                    assert!(batch.id > last, "batch ids grow");
                }
                self.unstored.push_back(batch.id);
            }
            progress |= self.drain_server();
            if !progress {
                break;
            }
        }
        let pending = self.client.stats().session.pending as usize;
        assert!(pending <= self.restored + LIMITS.max_messages, "client holds {pending}");
    }

    fn drain_server(&mut self) -> bool {
        let mut progress = false;
        let mut dead = false;
        for id in self.endpoint.ids() {
            let Some(conn) = self.endpoint.record(id).and_then(|r| r.attached) else { continue };
            while self.endpoint.poll_transmit(self.now, id, conn, &mut self.buf).is_some() {
                progress = true;
                if let Some(link) = self.link.as_mut().filter(|l| l.conn == conn) {
                    link.to_client.push_back(self.buf.clone());
                }
            }
            while let Some(event) = self.endpoint.poll_event(id) {
                progress = true;
                match event {
                    ServerEvent::Message(p) => {
                        let n = order(&p);
                        assert!(self.server_got.is_none_or(|last| n > last), "server got {p:?} again or late");
                        self.server_got = Some(n);
                    }
                    ServerEvent::Acked { .. } => {}
                    ServerEvent::Dead => dead |= self.link.as_ref().is_some_and(|l| l.conn == conn),
                }
            }
            if let Some(stats) = self.endpoint.stats(id) {
                assert!(stats.pending as usize <= self.server_restored.unwrap_or(0) + LIMITS.max_messages);
            }
        }
        while let Some(ended) = self.endpoint.poll_ended() {
            progress = true;
            for p in &ended.delivered {
                let n = order(p);
                assert!(self.server_got.is_none_or(|last| n > last), "server got {p:?} again or late");
                self.server_got = Some(n);
            }
            if ended.attached.is_some() && self.link.as_ref().is_some_and(|l| Some(l.conn) == ended.attached) {
                dead = true;
            }
        }
        if dead {
            self.cut();
        }
        progress
    }

    fn client_event(&mut self, event: Event) {
        match event {
            Event::Acked { seq } => {
                let mut freed = 0;
                while self.unconfirmed.front().is_some_and(|(s, _)| *s <= seq) {
                    self.unconfirmed.pop_front();
                    freed += 1;
                }
                assert!(freed > 0, "Acked {seq} confirms nothing new");
            }
            Event::SessionLost { unconfirmed, .. } => {
                assert_eq!(unconfirmed, Vec::from(std::mem::take(&mut self.unconfirmed)), "exactly the unconfirmed");
            }
            Event::Message(p) => {
                let n = order(&p);
                assert!(self.client_got.is_none_or(|last| n > last), "client got {p:?} again or late");
                self.client_got = Some(n);
            }
            Event::Error(ConnectionError::ConnectTimeout | ConnectionError::HeartbeatTimeout) => {}
            // A server that restored the session with numbers the client's do not support answers
            // its HELLO with a resume point the client refuses (§5.5): the session is reported.
            Event::Error(ConnectionError::Protocol(
                ProtocolError::ResumeFromFuture { .. } | ProtocolError::ResumeBehindAck { .. },
            )) if self.server_restored.is_some() => self.refusals += 1,
            Event::Error(e) => panic!("no other error between a restored client and the server: {e}"),
            Event::Closed { will_reconnect, .. } => assert!(will_reconnect, "the client never gives up here"),
            _ => {}
        }
    }

    fn step(&mut self, input: &mut Bytes) -> Option<()> {
        match input.byte()? % 12 {
            0 | 1 => self.send(input.byte()?),
            2 => self.server_send(input.byte()?),
            3 | 4 => {
                for _ in 0..=input.byte()? % 4 {
                    self.deliver_to_server();
                    self.drain();
                }
            }
            5 | 6 => {
                for _ in 0..=input.byte()? % 4 {
                    self.deliver_to_client();
                    self.drain();
                }
            }
            7 => self.open(),
            8 => self.cut(),
            9 => self.commit(input.byte()? & 1 == 0),
            10 => self.advance(self.now + u64::from(input.byte()?) * 2),
            _ => self.client.on_visible(self.now),
        }
        self.drain();
        Some(())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes(data);
    let Some((position, messages)) = stored(&mut input) else { return };
    let Some(server) = input.byte() else { return };
    let now = 1_000;
    let (mut client, error) =
        Client::restore(client_config(), u64::from(server), now, true, &position, messages.clone());
    let decoded = Position::decode(&position);
    let after: Vec<(u64, Payload)> = match decoded {
        Ok(p) => messages.iter().filter(|(seq, _)| *seq > p.acked).cloned().collect(),
        Err(_) => messages.clone(),
    };
    let mut unconfirmed = VecDeque::new();
    match (error, decoded) {
        (Some(error), decoded) => {
            if let Err(expected) = decoded {
                assert_eq!(error, expected, "the position's own error");
            }
            match client.poll_event() {
                Some(Event::SessionLost { reason: LostReason::Storage, unconfirmed }) => {
                    assert_eq!(unconfirmed, after, "exactly the readable messages")
                }
                other => assert!(after.is_empty() && other.is_none(), "{other:?} for {error}"),
            }
        }
        (None, Ok(p)) => {
            for (i, (seq, _)) in after.iter().enumerate() {
                assert_eq!(
                    *seq,
                    p.acked + 1 + i as u64,
                    "restored although message {} is missing",
                    p.acked + 1 + i as u64
                );
            }
            assert_eq!(client.stats().session.pending, after.len() as u64);
            let batch = client.poll_store().expect("a first batch");
            // Back as read, saying (until it resumes) which of its messages may have been transmitted.
            let last = p.acked + after.len() as u64;
            let unsent_after = p.token.map(|_| p.unsent_after.map_or(last, |unsent| unsent.clamp(p.acked, last)));
            let back = Position { unsent_after, ..p };
            assert_eq!(
                (batch.clear, batch.messages.len(), batch.position),
                (false, 0, Some(back)),
                "the position back"
            );
            client.stored(now, batch.id);
            unconfirmed = after.iter().cloned().collect();
        }
        (None, Err(e)) => panic!("restored an unreadable position: {e}"),
    }

    let mut endpoint =
        Endpoint::new(EndpointConfig { session: session_config(), ttl_ms: 60_000, ..Default::default() });
    let mut server_restored = None;
    if let (Ok(Position { token: Some(token), wire_base, acked, delivered, .. }), true) = (decoded, server & 1 == 1) {
        // The server holds the session, with numbers that agree with the client's, or not.
        let (Some(server_acked), Some(count), Some(server_delivered)) =
            (number(&mut input, delivered), input.byte(), number(&mut input, acked.saturating_sub(wire_base)))
        else {
            return;
        };
        let unconfirmed =
            (0..u64::from(count % 6)).map(|i| std::sync::Arc::new(payload('u', i, count, i % 2 == 0))).collect();
        let restored = Restored { acked: server_acked, unconfirmed, delivered: server_delivered };
        server_restored = Some(restored.unconfirmed.len());
        endpoint.restore(now, token, (), restored);
    }

    let restored = after.len();
    let mut harness = Harness {
        now,
        client,
        endpoint,
        link: None,
        next_conn: 0,
        fresh: 0,
        unstored: VecDeque::new(),
        unconfirmed,
        restored,
        server_restored,
        refusals: 0,
        sent: 0,
        server_sent: 0,
        server_got: None,
        client_got: None,
        buf: Vec::new(),
    };
    harness.drain();
    for _ in 0..200 {
        if harness.step(&mut input).is_none() {
            break;
        }
    }

    // The faults stop: the socket opens, storage commits at once, every frame arrives.
    let deadline = harness.now + SETTLE_MS;
    for _ in 0..100_000 {
        harness.open();
        harness.commit(true);
        harness.drain();
        let mut moved = false;
        while harness.deliver_to_server() || harness.deliver_to_client() {
            moved = true;
            harness.drain();
        }
        if moved || !harness.unstored.is_empty() {
            continue;
        }
        if harness.unconfirmed.is_empty() && harness.client.state() == ClientState::Open {
            break;
        }
        let next = [harness.client.poll_timeout(), harness.endpoint.poll_timeout(), harness.session_deadline()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(at) if at <= deadline => harness.advance(at),
            _ => break,
        }
    }
    assert_eq!(harness.client.state(), ClientState::Open, "settled open: {:?}", harness.client);
    assert!(harness.unconfirmed.is_empty(), "unaccounted for: {:?}", harness.unconfirmed);
    assert_eq!(harness.client.unstored(), 0);
});
