//! The client machine under an adversarial server: any frame (well-formed or not, in any state),
//! any close code, a server that does or does not select `durable.v1`, the network going away and
//! coming back, the user's sends and close, and time. Checked against a ledger of what the
//! application sent:
//! - every message is confirmed (`Acked`, in order) or reported lost (`SessionLost`: exactly the
//!   unconfirmed ones, with their numbers and payloads), once;
//! - a durable session numbers its DATA from 1 on the wire, consecutively on each connection, and
//!   each DATA carries the payload sent under that number;
//! - messages from the server are delivered in order, each once;
//! - one socket at a time; no deadline left due after a timeout;
//! - after the user's close and time passing with no server, the client ends closed with nothing
//!   left unaccounted for and no deadline.
#![no_main]

use std::collections::VecDeque;

use durable_ws_core::frame::Frame;
use durable_ws_core::{
    Action, BackoffConfig, BufferLimits, Client, ClientConfig, ClientState, Event, HeartbeatConfig, MessageKind,
    Millis, Payload, PayloadRef, SendError, SessionConfig, Token, WelcomeStatus,
};
use durable_ws_core_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;

const LIMITS: BufferLimits = BufferLimits { max_messages: 8, max_bytes: 256 };
const MAX_MESSAGE: usize = 64;
const TOKENS: [Token; 2] = [Token([1; 16]), Token([2; 16])];

fn app_payload(n: u64) -> Payload {
    if n % 2 == 0 {
        Payload::Text(format!("a{n}"))
    } else {
        Payload::Binary(n.to_le_bytes().to_vec())
    }
}

fn server_payload(seq: u64) -> String {
    format!("s{seq}")
}

#[derive(Default)]
struct Socket {
    opened: bool,
    durable: bool,
    /// Highest DATA seq sent on this connection.
    last_data: Option<u64>,
}

struct Harness {
    client: Client,
    now: Millis,
    next_number: u64,
    /// Sent and neither confirmed nor reported lost: (seq `send` returned, payload).
    unconfirmed: VecDeque<(u64, Payload)>,
    /// The seq the next `send` must return.
    next_local: u64,
    /// Own messages go on the wire as local seq − base (known once a durable session opens).
    base: Option<u64>,
    /// Highest DATA seq sent in the current durable session.
    wire_high: u64,
    /// Highest seq the fake server sent in this session, and what the client delivered.
    server_sent: u64,
    delivered: u64,
    socket: Option<Socket>,
    user_closed: bool,
    ended: bool,
    buf: Vec<u8>,
}

impl Harness {
    fn new(now: Millis, online: bool, retry_unauthorized: bool, seed: u64) -> Self {
        let config = ClientConfig {
            session: SessionConfig {
                limits: LIMITS,
                max_message_bytes: MAX_MESSAGE,
                ack_delay_ms: 5,
                ack_every: 3,
                heartbeat: Some(HeartbeatConfig { interval_ms: 50, timeout_ms: 30 }),
            },
            backoff: BackoffConfig { min_delay_ms: 5, max_delay_ms: 100, ..Default::default() },
            connect_timeout_ms: 100,
            close_timeout_ms: 60,
            retry_unauthorized,
            ..Default::default()
        };
        let mut harness = Harness {
            client: Client::new(config, seed, now, online),
            now,
            next_number: 0,
            unconfirmed: VecDeque::new(),
            next_local: 1,
            base: None,
            wire_high: 0,
            server_sent: 0,
            delivered: 0,
            socket: None,
            user_closed: false,
            ended: false,
            buf: Vec::new(),
        };
        harness.drain();
        harness
    }

    fn send(&mut self, len: u8) {
        let n = self.next_number;
        self.next_number += 1;
        let payload = match len % 4 {
            0 => Payload::Binary(vec![0xab; MAX_MESSAGE + 1]),
            _ => app_payload(n),
        };
        let room = self.client.has_room(payload.len());
        match self.client.send(self.now, payload.clone()) {
            Ok(seq) => {
                assert!(room, "send took what has_room refused");
                assert_eq!(seq, self.next_local, "send numbers consecutively");
                self.next_local += 1;
                self.unconfirmed.push_back((seq, payload));
            }
            Err(SendError::TooLarge { len, max }) => assert!(len > max && !room),
            Err(SendError::BufferFull { .. }) => assert!(!room),
            Err(SendError::Closed) => assert!(self.user_closed || self.ended, "refused while not closed"),
        }
        self.drain();
    }

    fn server_message(&mut self, input: &mut Bytes) -> Option<()> {
        let kind = input.byte()?;
        let pick = input.byte()?;
        let token = TOKENS[usize::from(pick & 1)];
        let status = [
            WelcomeStatus::New,
            WelcomeStatus::Resumed,
            WelcomeStatus::LostUnknown,
            WelcomeStatus::LostOverflow,
            WelcomeStatus::LostRefused,
        ][usize::from(pick >> 1) % 5];
        let number = match pick >> 4 {
            0 => 0,
            1 => self.wire_high,
            2 => self.wire_high.saturating_sub(1),
            3 => self.wire_high.saturating_add(1),
            4 => self.server_sent.saturating_add(1),
            5 => self.delivered,
            6 => u64::MAX,
            _ => input.u64()?,
        };
        let text;
        let frame = match kind % 10 {
            0 => Frame::Welcome { status, token, last_received: number },
            1 | 2 => {
                let seq = if kind % 10 == 1 { self.server_sent.saturating_add(1) } else { number.max(1) };
                self.server_sent = self.server_sent.max(seq);
                text = server_payload(seq);
                Frame::Data { seq, payload: PayloadRef::Text(&text) }
            }
            3 => Frame::Ack { seq: number },
            4 => Frame::Ping { value: number },
            5 => Frame::Pong { value: number },
            6 => Frame::Goodbye,
            7 => Frame::Hello { resume: Some((token, number)) },
            8 => {
                let bytes = [kind, pick, input.byte()?];
                self.client.on_message(self.now, PayloadRef::Binary(&bytes));
                return Some(());
            }
            _ => {
                self.client.on_message(self.now, PayloadRef::Text("plain text"));
                return Some(());
            }
        };
        let mut bytes = Vec::new();
        frame.encode(&mut bytes);
        self.client.on_message(self.now, PayloadRef::Binary(&bytes));
        Some(())
    }

    /// Advances to `until`, handling every deadline on the way; none may be left due.
    fn advance(&mut self, until: Millis) {
        for _ in 0..1_000 {
            match self.client.poll_timeout() {
                Some(at) if at <= until => {
                    self.now = self.now.max(at);
                    self.client.handle_timeout(self.now);
                    self.drain();
                    if let Some(next) = self.client.poll_timeout() {
                        assert!(next > self.now, "deadline {next} left due at {}: {:?}", self.now, self.client);
                    }
                }
                _ => {
                    self.now = self.now.max(until);
                    return;
                }
            }
        }
        panic!("more than 1000 deadlines in one step: {:?}", self.client);
    }

    fn drain(&mut self) {
        loop {
            let mut progress = false;
            // Events first: an `Open` tells how the session numbers what is transmitted next.
            while let Some(event) = self.client.poll_event() {
                progress = true;
                self.event(event);
            }
            while let Some(kind) = self.client.poll_transmit(self.now, &mut self.buf) {
                progress = true;
                let socket = self.socket.as_mut().expect("transmits only on a socket");
                assert!(socket.opened, "transmits only on an open socket");
                if !socket.durable {
                    continue;
                }
                assert_eq!(kind, MessageKind::Binary);
                let frame = Frame::decode(&self.buf).expect("the client encodes valid frames");
                if let Frame::Data { seq, payload } = frame {
                    let base = self.base.expect("DATA only in an open durable session");
                    match socket.last_data {
                        Some(last) => assert_eq!(Some(seq), last.checked_add(1), "DATA consecutive on a connection"),
                        None => assert!(
                            seq >= 1 && seq <= self.wire_high.saturating_add(1),
                            "first DATA {seq} after {}",
                            self.wire_high
                        ),
                    }
                    socket.last_data = Some(seq);
                    self.wire_high = self.wire_high.max(seq);
                    let local = seq + base;
                    let sent = self.unconfirmed.iter().find(|(s, _)| *s == local);
                    assert_eq!(sent.map(|(_, p)| p.as_ref()), Some(payload), "DATA {seq} is message {local}");
                }
            }
            while let Some(action) = self.client.poll_action() {
                progress = true;
                match action {
                    Action::Connect => {
                        assert!(self.socket.is_none(), "one socket at a time");
                        self.ended = false;
                        self.socket = Some(Socket::default());
                    }
                    Action::Close { code, reason } => {
                        assert!(code == 1000 || (3000..5000).contains(&code), "a browser refuses close code {code}");
                        assert!(reason.len() <= 123);
                        self.socket = None;
                    }
                }
            }
            if !progress {
                break;
            }
        }
        assert!(self.client.stats().session.pending as usize <= LIMITS.max_messages);
    }

    fn event(&mut self, event: Event) {
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
                self.next_local = 1;
                self.new_session(None);
            }
            Event::Open { durable } => {
                if durable {
                    let first = self.unconfirmed.front().map_or(self.next_local, |(s, _)| *s);
                    self.new_session(Some(first - 1));
                }
            }
            Event::Resumed { .. } => {}
            Event::Message(payload) => {
                if self.socket.as_ref().is_some_and(|s| s.durable) {
                    self.delivered += 1;
                    assert_eq!(payload, Payload::Text(server_payload(self.delivered)), "in order, once");
                }
            }
            Event::Closed { will_reconnect, .. } => {
                if !will_reconnect {
                    assert!(self.unconfirmed.is_empty(), "closed for good with unreported messages");
                    self.ended = true;
                    // Nothing is held: numbering starts again if `reconnect_now` revives the client.
                    self.next_local = 1;
                    self.new_session(None);
                }
            }
            _ => {}
        }
    }

    fn new_session(&mut self, base: Option<u64>) {
        self.base = base;
        self.wire_high = 0;
        self.server_sent = 0;
        self.delivered = 0;
        if let Some(socket) = &mut self.socket {
            socket.last_data = None;
        }
    }

    fn step(&mut self, input: &mut Bytes) -> Option<()> {
        match input.byte()? % 12 {
            0 | 1 => self.send(input.byte()?),
            2 => {
                let durable = input.byte()? & 1 == 0;
                if let Some(socket) = self.socket.as_mut().filter(|s| !s.opened) {
                    socket.opened = true;
                    socket.durable = durable;
                    self.client.on_open(self.now, durable);
                }
            }
            3 | 4 => {
                if self.socket.as_ref().is_some_and(|s| s.opened) {
                    self.server_message(input)?;
                }
            }
            5 => {
                let code = [1000, 1001, 1006, 1011, 1012, 4000, 4004, 4401, 4403, 4409, 1013, 1002]
                    [usize::from(input.byte()?) % 12];
                if self.socket.take().is_some() {
                    self.client.on_close(self.now, code, "server", code != 1006);
                }
            }
            6 => {
                self.user_closed = true;
                self.client.close(self.now, 1000, "bye");
            }
            7 => self.client.set_online(self.now, input.byte()? & 1 == 0),
            8 => self.client.on_visible(self.now),
            9 => self.client.reconnect_now(self.now),
            10 => self.advance(self.now.saturating_add(u64::from(input.byte()?) * 2)),
            _ => {
                if let Some(at) = self.client.poll_timeout() {
                    self.advance(at);
                }
            }
        }
        self.drain();
        Some(())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes(data);
    let (Some(flags), Some(start)) = (input.byte(), input.byte()) else { return };
    let start = if flags & 4 == 0 { u64::from(start) } else { Millis::MAX - 10_000_000 + u64::from(start) };
    let mut harness = Harness::new(start, flags & 1 == 0, flags & 2 == 0, u64::from(flags));
    for _ in 0..200 {
        if harness.step(&mut input).is_none() {
            break;
        }
    }
    // The user closes; the server is gone; time passes.
    harness.client.set_online(harness.now, true);
    harness.user_closed = true;
    harness.client.close(harness.now, 1000, "bye");
    harness.drain();
    for _ in 0..100 {
        if let Some(socket) = harness.socket.take() {
            if socket.opened {
                harness.client.on_close(harness.now, 1006, "", false);
                harness.drain();
            } else {
                harness.socket = Some(socket);
            }
        }
        match harness.client.poll_timeout() {
            Some(at) => harness.advance(at),
            None => break,
        }
    }
    assert_eq!(harness.client.state(), ClientState::Closed, "{:?}", harness.client);
    assert!(harness.unconfirmed.is_empty(), "unaccounted for: {:?}", harness.unconfirmed);
    assert_eq!(harness.client.poll_timeout(), None);
    assert!(harness.socket.is_none(), "a closed client holds no socket");
});
