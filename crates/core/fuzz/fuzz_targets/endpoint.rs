//! The server role (`Endpoint`) under arbitrary drivers and clients, against a model the harness
//! keeps. The input is a sequence of operations: hellos (new, resumes of live, ended or unknown
//! tokens from arbitrary points, by the owner or another one), client frames (data in order,
//! duplicate, gap, oversized; acks; pings; goodbyes; garbage), partial and full polling, sends and
//! broadcasts, event polling and unpolling, detaches, goodbyes, ends, time, restores.
//!
//! Checked: every answer of the endpoint is the one the model predicts (hello's `Accepted` or
//! `Refused`, each `handle_message` and `send` result, `restore`'s `None` for impossible numbers);
//! client messages reach the application exactly once and in order (through `poll_event`, or
//! `Ended::delivered`); `Acked` only grows and never passes what was transmitted; sends number
//! 1, 2, 3…; each connection starts with one WELCOME, then carries consecutive DATA (skipping only
//! what the client acknowledged) with the payloads queued under those numbers; GOODBYE comes after
//! all data; every `Ended` carries exactly the unconfirmed messages; a connection polled until
//! `None` has transmitted everything queued; no deadline is left due after the timeouts ran; the
//! byte budget, session count and sequence numbers agree with the model after every operation.
#![no_main]

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use durable_ws_core::frame::Frame;
use durable_ws_core::server::{
    Accepted, EndReason, Endpoint, EndpointConfig, InputError, Refused, Restored, Sequence, ServerEvent, SessionId,
};
use durable_ws_core::{
    BufferLimits, HeartbeatConfig, MessageKind, Payload, PayloadRef, ProtocolError, SendError, SessionConfig, Token,
    WelcomeStatus,
};
use durable_ws_core_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;

const MAX_MESSAGES: usize = 8;
const MAX_BYTES: usize = 256;
const MAX_MESSAGE_BYTES: usize = 64;
/// Longest DATA header: a frame longer than the payload limit plus this is refused before decoding.
const MAX_DATA_HEADER: usize = 11;
const TTL_MS: u64 = 200;
const MAX_SESSIONS: usize = 4;
const MAX_PER_OWNER: usize = 3;
const MAX_PROTOCOL_ERRORS: u32 = 3;
const MAX_BUFFERED: usize = 1000;

fn config() -> EndpointConfig {
    EndpointConfig {
        session: SessionConfig {
            limits: BufferLimits { max_messages: MAX_MESSAGES, max_bytes: MAX_BYTES },
            max_message_bytes: MAX_MESSAGE_BYTES,
            ack_delay_ms: 5,
            ack_every: 3,
            heartbeat: Some(HeartbeatConfig { interval_ms: 50, timeout_ms: 30 }),
        },
        ttl_ms: TTL_MS,
        max_sessions: MAX_SESSIONS,
        max_sessions_per_owner: MAX_PER_OWNER,
        max_protocol_errors: MAX_PROTOCOL_ERRORS,
        max_buffered_bytes: MAX_BUFFERED,
    }
}

/// A session as the model sees it.
struct Sess {
    id: SessionId,
    token: Token,
    owner: u64,
    attached: Option<u64>,
    detached_at: Option<u64>,
    /// The application's messages after `acked`, in order.
    unconfirmed: VecDeque<Payload>,
    acked: u64,
    /// Highest DATA seq transmitted on any connection (for a restored session: its last message).
    highest_sent: u64,
    /// Highest client seq the session delivered.
    delivered: u64,
    /// Highest client seq handed to the application (through `poll_event`).
    app_seen: u64,
    /// Messages the application took, newest last, that it may give back with `unpoll_messages`.
    polled: Vec<Payload>,
    last_acked_event: u64,
    /// What the last `Acked` event must say once every event was polled.
    acked_reported: u64,
    goodbye_queued: bool,
    goodbye_sent: bool,
    protocol_errors: u32,
    /// Highest DATA seq the harness's client received.
    client_delivered: u64,
}

impl Sess {
    fn new(id: SessionId, token: Token, owner: u64) -> Self {
        Sess {
            id,
            token,
            owner,
            attached: None,
            detached_at: None,
            unconfirmed: VecDeque::new(),
            acked: 0,
            highest_sent: 0,
            delivered: 0,
            app_seen: 0,
            polled: Vec::new(),
            last_acked_event: 0,
            acked_reported: 0,
            goodbye_queued: false,
            goodbye_sent: false,
            protocol_errors: 0,
            client_delivered: 0,
        }
    }

    fn last_queued(&self) -> u64 {
        self.acked + self.unconfirmed.len() as u64
    }

    fn bytes(&self) -> usize {
        self.unconfirmed.iter().map(Payload::len).sum()
    }

    fn expiry(&self) -> Option<u64> {
        match self.attached {
            Some(_) => None,
            None => self.detached_at.map(|at| at.saturating_add(TTL_MS)),
        }
    }

    fn confirm(&mut self, seq: u64) {
        let mut freed = false;
        while self.acked < seq && self.unconfirmed.pop_front().is_some() {
            self.acked += 1;
            freed = true;
        }
        if freed {
            self.acked_reported = self.acked;
        }
    }
}

/// A connection the driver accepted (kept after it closed, to check it drives nothing).
struct Conn {
    id: u64,
    sid: SessionId,
    /// The WELCOME this connection must transmit first, until it did.
    welcome: Option<Frame<'static>>,
    /// The highest DATA seq this connection transmitted, or where it started (the client has the rest).
    sent_to: u64,
    last_ping: Option<u64>,
    pong_due: Option<u64>,
    goodbye_seen: bool,
}

impl Conn {
    fn new(id: u64, sid: SessionId, welcome: Frame<'static>, sent_to: u64) -> Self {
        Conn { id, sid, welcome: Some(welcome), sent_to, last_ping: None, pong_due: None, goodbye_seen: false }
    }
}

struct ExpectedEnd {
    id: SessionId,
    owner: u64,
    reason: EndReason,
    attached: Option<u64>,
    /// Client seqs of the messages delivered and not yet taken by the application.
    delivered: Vec<u64>,
    unconfirmed: Vec<(u64, Payload)>,
}

struct Harness {
    ep: Endpoint<u64>,
    now: u64,
    next_conn: u64,
    next_token: u64,
    next_id: u64,
    next_broadcast: u64,
    sessions: Vec<Sess>,
    gone: Vec<(SessionId, Token)>,
    conns: Vec<Conn>,
    ended: VecDeque<ExpectedEnd>,
    tombstones: HashMap<Token, (WelcomeStatus, u64)>,
    tombstone_order: VecDeque<(u64, Token)>,
}

fn counter_token(n: u64) -> Token {
    let mut t = [0xa5; 16];
    t[..8].copy_from_slice(&n.to_le_bytes());
    Token(t)
}

fn client_payload(seq: u64, pad: usize, text: bool) -> Payload {
    let s = format!("c{seq};{}", "x".repeat(pad));
    if text {
        Payload::Text(s)
    } else {
        Payload::Binary(s.into_bytes())
    }
}

/// The client seq a message's payload carries (`c{seq};…`).
fn client_seq(payload: &Payload) -> u64 {
    let bytes = payload.as_bytes();
    assert_eq!(bytes.first(), Some(&b'c'), "not a client message: {payload:?}");
    let end = bytes.iter().position(|&b| b == b';').expect("client message without ';'");
    std::str::from_utf8(&bytes[1..end]).unwrap().parse().unwrap()
}

fn encode(frame: Frame<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    frame.encode(&mut out);
    out
}

impl Harness {
    fn new() -> Self {
        Harness {
            ep: Endpoint::new(config()),
            now: 0,
            next_conn: 1,
            next_token: 1,
            next_id: 1,
            next_broadcast: 1,
            sessions: Vec::new(),
            gone: Vec::new(),
            conns: Vec::new(),
            ended: VecDeque::new(),
            tombstones: HashMap::new(),
            tombstone_order: VecDeque::new(),
        }
    }

    fn index(&self, id: SessionId) -> Option<usize> {
        self.sessions.iter().position(|s| s.id == id)
    }

    fn find_token(&self, token: Token) -> Option<usize> {
        self.sessions.iter().position(|s| s.token == token)
    }

    /// The session `conn` drives, if it does.
    fn driven(&self, ci: usize) -> Option<usize> {
        let conn = &self.conns[ci];
        self.index(conn.sid).filter(|&i| self.sessions[i].attached == Some(conn.id))
    }

    fn fresh_token(&mut self) -> Token {
        self.next_token += 1;
        counter_token(self.next_token)
    }

    /// A live session, or a recently ended one, or one that never existed.
    fn pick_session(&self, b: u8) -> SessionId {
        let mut ids: Vec<SessionId> = self.sessions.iter().map(|s| s.id).collect();
        ids.extend(self.gone.iter().rev().take(3).map(|&(id, _)| id));
        ids.push(SessionId(u64::MAX));
        ids[usize::from(b) % ids.len()]
    }

    /// A connection: with the high bit set one that drives a session, if any.
    fn pick_conn(&self, b: u8) -> Option<usize> {
        if b & 0x80 != 0 {
            let driving: Vec<usize> = (0..self.conns.len()).filter(|&ci| self.driven(ci).is_some()).collect();
            if !driving.is_empty() {
                return Some(driving[usize::from(b) % driving.len()]);
            }
        }
        let n = self.conns.len().min(8);
        (n > 0).then(|| self.conns.len() - 1 - usize::from(b) % n)
    }

    // --- The model of the endpoint's decisions ---

    fn model_end(&mut self, i: usize, reason: EndReason) {
        let s = self.sessions.remove(i);
        if matches!(reason, EndReason::Overflow | EndReason::ProtocolErrors) {
            let status =
                if reason == EndReason::Overflow { WelcomeStatus::LostOverflow } else { WelcomeStatus::LostRefused };
            // The store keeps at most max_sessions tombstones, the oldest go first.
            while self.tombstone_order.len() >= MAX_SESSIONS {
                if let Some((_, oldest)) = self.tombstone_order.pop_front() {
                    self.tombstones.remove(&oldest);
                }
            }
            let until = self.now.saturating_add(TTL_MS);
            self.tombstones.insert(s.token, (status, until));
            self.tombstone_order.push_back((until, s.token));
        }
        let unconfirmed = s.unconfirmed.iter().enumerate().map(|(k, p)| (s.acked + 1 + k as u64, p.clone())).collect();
        self.ended.push_back(ExpectedEnd {
            id: s.id,
            owner: s.owner,
            reason,
            attached: s.attached,
            delivered: (s.app_seen..s.delivered).map(|seq| seq + 1).collect(),
            unconfirmed,
        });
        self.gone.push((s.id, s.token));
    }

    fn model_handle_timeout(&mut self) {
        let now = self.now;
        let mut due: Vec<(u64, SessionId)> =
            self.sessions.iter().filter_map(|s| s.expiry().filter(|&at| at <= now).map(|at| (at, s.id))).collect();
        due.sort();
        for (_, id) in due {
            let i = self.index(id).unwrap();
            self.model_end(i, EndReason::Expired);
        }
        while self.tombstone_order.front().is_some_and(|&(until, _)| until <= now) {
            let (_, token) = self.tombstone_order.pop_front().unwrap();
            self.tombstones.remove(&token);
        }
    }

    fn model_detach(&mut self, sid: SessionId, conn: u64) {
        let Some(i) = self.index(sid).filter(|&i| self.sessions[i].attached == Some(conn)) else { return };
        let s = &mut self.sessions[i];
        s.attached = None;
        s.detached_at = Some(self.now);
        if s.goodbye_sent {
            self.model_end(i, EndReason::Closed);
        }
    }

    fn buffered(&self) -> usize {
        self.sessions.iter().map(Sess::bytes).sum()
    }

    /// Whether a new session may be created (the endpoint's checks, in its order).
    fn admit(&mut self, owner: u64, fresh: Token) -> Result<(), Refused> {
        if self.sessions.len() >= MAX_SESSIONS {
            self.model_handle_timeout();
            if self.sessions.len() >= MAX_SESSIONS {
                return Err(Refused::Full);
            }
        }
        if self.sessions.iter().filter(|s| s.owner == owner).count() >= MAX_PER_OWNER {
            return Err(Refused::OwnerQuota);
        }
        if self.buffered() >= MAX_BUFFERED {
            return Err(Refused::Budget);
        }
        if self.find_token(fresh).is_some() {
            return Err(Refused::TokenInUse);
        }
        Ok(())
    }

    // --- Operations ---

    fn hello(&mut self, owner: u64, resume: Option<(Token, u64)>, fresh: Token) {
        let now = self.now;
        let conn = self.next_conn;
        self.next_conn += 1;
        let actual = self.ep.hello(now, conn, owner, resume, fresh);
        let mut foreign = false;
        let status = match resume {
            None => WelcomeStatus::New,
            Some((token, last_received)) => match self.find_token(token) {
                Some(i) if self.sessions[i].expiry().is_some_and(|at| at <= now) => {
                    self.model_end(i, EndReason::Expired);
                    WelcomeStatus::LostUnknown
                }
                Some(i) if self.sessions[i].owner == owner && self.sessions[i].goodbye_sent => {
                    self.model_end(i, EndReason::Closed);
                    WelcomeStatus::LostUnknown
                }
                Some(i) if self.sessions[i].owner != owner => {
                    foreign = true;
                    WelcomeStatus::LostRefused
                }
                Some(i) => {
                    let s = &mut self.sessions[i];
                    if s.acked <= last_received && last_received <= s.highest_sent {
                        let superseded = s.attached.replace(conn);
                        s.detached_at = None;
                        s.confirm(last_received);
                        let expected =
                            Accepted { id: s.id, status: WelcomeStatus::Resumed, created: false, superseded, foreign };
                        assert_eq!(actual, Ok(expected), "resume of {:?} from {last_received}", s.id);
                        let welcome =
                            Frame::Welcome { status: WelcomeStatus::Resumed, token, last_received: s.delivered };
                        let conn = Conn::new(conn, s.id, welcome, s.acked);
                        self.conns.push(conn);
                        return;
                    }
                    WelcomeStatus::LostRefused
                }
                None => match self.tombstones.get(&token) {
                    Some(&(status, until)) if until > now => status,
                    _ => WelcomeStatus::LostUnknown,
                },
            },
        };
        match self.admit(owner, fresh) {
            Err(refused) => assert_eq!(actual, Err(refused), "hello of {owner} resuming {resume:?}"),
            Ok(()) => {
                let id = SessionId(self.next_id);
                self.next_id += 1;
                let expected = Accepted { id, status, created: true, superseded: None, foreign };
                assert_eq!(actual, Ok(expected), "hello of {owner} resuming {resume:?}");
                let mut s = Sess::new(id, fresh, owner);
                s.attached = Some(conn);
                self.sessions.push(s);
                self.conns.push(Conn::new(conn, id, Frame::Welcome { status, token: fresh, last_received: 0 }, 0));
            }
        }
    }

    /// What the session makes of `message` from its connection (changing the model if it is taken).
    fn predict(&mut self, i: usize, ci: usize, message: PayloadRef<'_>) -> Result<(), ProtocolError> {
        let PayloadRef::Binary(bytes) = message else { return Err(ProtocolError::TextInDurableMode) };
        let max = MAX_MESSAGE_BYTES + MAX_DATA_HEADER;
        if bytes.len() > max {
            return Err(ProtocolError::TooLarge { len: bytes.len(), max });
        }
        let s = &mut self.sessions[i];
        match Frame::decode(bytes)? {
            Frame::Data { seq, payload } => {
                let len = payload.as_bytes().len();
                if len > MAX_MESSAGE_BYTES {
                    return Err(ProtocolError::TooLarge { len, max: MAX_MESSAGE_BYTES });
                }
                // At u64::MAX every seq is a duplicate.
                match s.delivered.checked_add(1) {
                    Some(expected) if seq == expected => {
                        s.delivered = seq;
                        s.protocol_errors = 0;
                    }
                    Some(expected) if seq > expected => return Err(ProtocolError::SequenceGap { expected, got: seq }),
                    _ => {}
                }
                Ok(())
            }
            Frame::Ack { seq } if seq <= s.highest_sent => {
                s.confirm(seq);
                Ok(())
            }
            Frame::Ack { seq } => Err(ProtocolError::AckFromFuture { acked: seq, last_sent: s.highest_sent }),
            Frame::Ping { value } => {
                self.conns[ci].pong_due = Some(value);
                Ok(())
            }
            Frame::Pong { .. } | Frame::Goodbye => Ok(()),
            frame @ (Frame::Hello { .. } | Frame::Welcome { .. }) => Err(ProtocolError::Unexpected(frame.frame_type())),
        }
    }

    fn client_message(&mut self, ci: usize, message: PayloadRef<'_>) {
        let (sid, cid) = (self.conns[ci].sid, self.conns[ci].id);
        let actual = self.ep.handle_message(self.now, sid, cid, message);
        let Some(i) = self.driven(ci) else {
            assert_eq!(actual, Err(InputError::NotAttached), "a message on connection {cid}, which drives nothing");
            return;
        };
        match self.predict(i, ci, message) {
            Ok(()) => {
                assert_eq!(actual, Ok(()), "{message:?} on {cid}");
                if matches!(message, PayloadRef::Binary(b) if b == [0x08]) {
                    self.model_end(i, EndReason::Goodbye);
                } else if self.sessions[i].goodbye_sent {
                    // Its GOODBYE went out: over, and ended by the server (the client said no goodbye).
                    self.model_end(i, EndReason::Closed);
                }
            }
            Err(error) => {
                let s = &mut self.sessions[i];
                s.protocol_errors += 1;
                let session_dropped = s.protocol_errors >= MAX_PROTOCOL_ERRORS;
                if session_dropped {
                    self.model_end(i, EndReason::ProtocolErrors);
                }
                assert_eq!(actual, Err(InputError::Protocol { error, session_dropped }), "{message:?} on {cid}");
                // The driver closes the connection.
                self.ep.detach(self.now, sid, cid);
                self.model_detach(sid, cid);
            }
        }
    }

    /// Polls up to `n` frames on connection `ci`; whether it reached `None`.
    fn poll(&mut self, ci: usize, n: usize) -> bool {
        let (sid, cid) = (self.conns[ci].sid, self.conns[ci].id);
        let mut buf = Vec::new();
        for _ in 0..n {
            let kind = self.ep.poll_transmit(self.now, sid, cid, &mut buf);
            let Some(i) = self.driven(ci) else {
                assert_eq!(kind, None, "connection {cid} drives nothing but transmits");
                return true;
            };
            let Some(kind) = kind else {
                self.transmitted_all(i, ci);
                return true;
            };
            assert_eq!(kind, MessageKind::Binary);
            let frame = Frame::decode(&buf).unwrap_or_else(|e| panic!("undecodable frame {buf:?}: {e}"));
            self.check_frame(i, ci, frame);
        }
        false
    }

    /// Connection `ci` of session `i` has nothing more to transmit: it transmitted everything.
    fn transmitted_all(&mut self, i: usize, ci: usize) {
        let conn = &self.conns[ci];
        let s = &self.sessions[i];
        assert!(conn.welcome.is_none(), "{:?}: connection {} never sent its WELCOME", s.id, conn.id);
        assert!(conn.pong_due.is_none(), "{:?}: connection {} never answered a ping", s.id, conn.id);
        let sent = conn.sent_to.max(s.acked);
        assert!(
            sent >= s.last_queued(),
            "{:?}: connection {} stalled at {sent}, queued up to {} (acked {})",
            s.id,
            conn.id,
            s.last_queued(),
            s.acked
        );
        assert!(!s.goodbye_queued || s.goodbye_sent, "{:?}: the goodbye never went out", s.id);
        if s.goodbye_sent {
            self.model_end(i, EndReason::Closed);
        }
    }

    fn check_frame(&mut self, i: usize, ci: usize, frame: Frame<'_>) {
        let conn = &mut self.conns[ci];
        let s = &mut self.sessions[i];
        if let Some(welcome) = conn.welcome.take() {
            assert_eq!(frame, welcome, "{:?}: first frame of connection {}", s.id, conn.id);
            return;
        }
        match frame {
            Frame::Data { seq, payload } => {
                assert!(!conn.goodbye_seen, "{:?}: DATA {seq} after GOODBYE", s.id);
                // The client may acknowledge beyond what this connection re-sent: those are skipped.
                let expected = conn.sent_to.max(s.acked).checked_add(1);
                assert_eq!(Some(seq), expected, "{:?}: DATA out of order on connection {}", s.id, conn.id);
                assert!(seq <= s.last_queued(), "{:?}: DATA {seq} never queued", s.id);
                let queued = &s.unconfirmed[(seq - s.acked - 1) as usize];
                assert_eq!(payload.to_owned(), *queued, "{:?}: payload of DATA {seq}", s.id);
                conn.sent_to = seq;
                s.highest_sent = s.highest_sent.max(seq);
                s.client_delivered = s.client_delivered.max(seq);
            }
            Frame::Ack { seq } => assert_eq!(seq, s.delivered, "{:?}: ACK other than what was delivered", s.id),
            Frame::Ping { value } => {
                assert!(value <= self.now, "{:?}: PING from the future", s.id);
                conn.last_ping = Some(value);
            }
            Frame::Pong { value } => {
                assert_eq!(conn.pong_due.take(), Some(value), "{:?}: PONG answering no ping", s.id)
            }
            Frame::Goodbye => {
                assert!(s.goodbye_queued && !s.goodbye_sent, "{:?}: GOODBYE nobody asked for", s.id);
                let sent = conn.sent_to.max(s.acked);
                assert!(sent >= s.last_queued(), "{:?}: GOODBYE before DATA {}", s.id, s.last_queued());
                s.goodbye_sent = true;
                conn.goodbye_seen = true;
            }
            Frame::Hello { .. } | Frame::Welcome { .. } => panic!("{:?}: server sent {frame:?}", s.id),
        }
    }

    fn drain_all(&mut self) {
        for ci in 0..self.conns.len() {
            if self.driven(ci).is_some() {
                assert!(self.poll(ci, 200), "connection {} transmits without end", self.conns[ci].id);
            }
        }
    }

    fn expected_send(&self, id: SessionId, len: usize) -> Result<u64, SendError> {
        let Some(i) = self.index(id) else { return Err(SendError::Closed) };
        let s = &self.sessions[i];
        let (messages, bytes) = (s.unconfirmed.len(), s.bytes());
        if self.buffered() + len > MAX_BUFFERED && !s.goodbye_sent && len <= MAX_MESSAGE_BYTES {
            return Err(SendError::BufferFull { messages, bytes });
        }
        if s.goodbye_sent {
            return Err(SendError::Closed);
        }
        if len > MAX_MESSAGE_BYTES {
            return Err(SendError::TooLarge { len, max: MAX_MESSAGE_BYTES });
        }
        // The last number a message can get is u64::MAX - 1 (only a restore gets this far).
        if messages >= MAX_MESSAGES || bytes + len > MAX_BYTES || s.last_queued() >= u64::MAX - 1 {
            return Err(SendError::BufferFull { messages, bytes });
        }
        Ok(s.last_queued() + 1)
    }

    fn send(&mut self, id: SessionId, payload: Arc<Payload>, shared: bool) {
        let expected = self.expected_send(id, payload.len());
        let actual = if shared {
            self.ep.send_shared(self.now, id, payload.clone())
        } else {
            self.ep.send(self.now, id, (*payload).clone())
        };
        assert_eq!(actual, expected, "send of {} bytes to {id:?}", payload.len());
        if expected.is_ok() {
            let i = self.index(id).unwrap();
            self.sessions[i].unconfirmed.push_back((*payload).clone());
        }
    }

    fn poll_events(&mut self, id: SessionId, n: usize) {
        let Some(i) = self.index(id) else {
            assert_eq!(self.ep.poll_event(id), None, "{id:?} is gone but has events");
            return;
        };
        for _ in 0..n {
            let event = self.ep.poll_event(id);
            let s = &mut self.sessions[i];
            match event {
                Some(ServerEvent::Message(payload)) => {
                    let seq = client_seq(&payload);
                    assert_eq!(Some(seq), s.app_seen.checked_add(1), "{id:?}: message out of order");
                    assert!(seq <= s.delivered, "{id:?}: message {seq} never delivered");
                    s.app_seen = seq;
                    s.polled.push(payload);
                    if s.polled.len() > 8 {
                        s.polled.remove(0);
                    }
                }
                Some(ServerEvent::Acked { seq }) => {
                    assert!(seq > s.last_acked_event, "{id:?}: Acked {seq} after {}", s.last_acked_event);
                    assert!(seq <= s.acked, "{id:?}: Acked {seq} beyond what the client acknowledged");
                    assert!(seq <= s.highest_sent, "{id:?}: Acked {seq} of what was never transmitted");
                    s.last_acked_event = seq;
                }
                Some(ServerEvent::Dead) => {
                    // The driver closes the connection (4000); the session waits for a resume.
                    if let Some(conn) = s.attached {
                        self.ep.detach(self.now, id, conn);
                        self.model_detach(id, conn);
                    }
                    return;
                }
                None => {
                    assert_eq!(s.app_seen, s.delivered, "{id:?}: delivered messages missing from the events");
                    assert_eq!(s.last_acked_event, s.acked_reported, "{id:?}: an acknowledgement not reported");
                    return;
                }
            }
        }
    }

    fn unpoll(&mut self, id: SessionId, k: usize) {
        match self.index(id) {
            Some(i) => {
                let s = &mut self.sessions[i];
                let messages = s.polled.split_off(s.polled.len() - k.min(s.polled.len()));
                s.app_seen -= messages.len() as u64;
                assert_eq!(self.ep.unpoll_messages(id, messages), Ok(()));
            }
            None => {
                let messages = vec![client_payload(1, k, false)];
                assert_eq!(self.ep.unpoll_messages(id, messages.clone()), Err(messages));
            }
        }
    }

    fn goodbye(&mut self, id: SessionId) {
        self.ep.goodbye(self.now, id);
        let Some(i) = self.index(id) else { return };
        if self.sessions[i].attached.is_none() {
            self.model_end(i, EndReason::Closed);
        } else {
            self.sessions[i].goodbye_queued = true;
        }
    }

    fn end(&mut self, id: SessionId, reason: EndReason) {
        let held = self.ep.end(self.now, id, reason);
        let i = self.index(id);
        assert_eq!(held, i.is_some(), "end of {id:?}");
        if let Some(i) = i {
            self.model_end(i, reason);
        }
    }

    fn tick(&mut self, dt: u64, drain: bool) {
        self.now += dt;
        let now = self.now;
        self.ep.handle_timeout(now);
        self.model_handle_timeout();
        for s in &self.sessions {
            if let Some(conn) = s.attached {
                self.ep.handle_session_timeout(now, s.id, conn);
            }
        }
        if drain {
            self.drain_all();
            // Everything due ran: no deadline may be left in the past (a driver would spin).
            assert!(self.ep.poll_timeout().is_none_or(|at| at > now), "endpoint deadline left due");
            for s in &self.sessions {
                let at = self.ep.timeout(s.id);
                assert!(at.is_none_or(|at| at > now), "{:?}: deadline {at:?} left due at {now}", s.id);
            }
        }
    }

    fn restore(&mut self, token: Token, owner: u64, acked: u64, count: usize, delivered: u64, pad: usize) {
        let id = SessionId(self.next_id);
        let unconfirmed: Vec<Arc<Payload>> = (1..=count as u64)
            .map(|k| {
                Arc::new(Payload::from(format!("r{id}:{};{}", acked.wrapping_add(k), "z".repeat(pad * k as usize))))
            })
            .collect();
        let restored = Restored { acked, unconfirmed: unconfirmed.clone(), delivered };
        let actual = self.ep.restore(self.now, token, owner, restored);
        let last = acked.checked_add(count as u64);
        // Message numbers go up to u64::MAX - 1; any delivery position can go on (as duplicates at the end).
        let possible = last.is_some_and(|last| last < u64::MAX);
        if self.find_token(token).is_some() || !possible {
            assert_eq!(actual, None, "restore of acked {acked} + {count}, delivered {delivered}");
            return;
        }
        assert_eq!(actual, Some(id), "restore of acked {acked} + {count}, delivered {delivered}");
        self.next_id += 1;
        let mut s = Sess::new(id, token, owner);
        s.detached_at = Some(self.now);
        s.unconfirmed = unconfirmed.iter().map(|p| (**p).clone()).collect();
        s.acked = acked;
        s.highest_sent = acked + count as u64;
        s.delivered = delivered;
        s.app_seen = delivered;
        s.last_acked_event = acked;
        s.acked_reported = acked;
        s.client_delivered = acked;
        self.sessions.push(s);
    }

    // --- Checks after every operation ---

    fn check_ended(&mut self) {
        while let Some(ended) = self.ep.poll_ended() {
            let expected = self.ended.pop_front().unwrap_or_else(|| panic!("unexpected end of {:?}", ended.id));
            assert_eq!(
                (ended.id, ended.owner, ended.reason, ended.attached),
                (expected.id, expected.owner, expected.reason, expected.attached),
                "ended session"
            );
            let seqs: Vec<u64> = ended.delivered.iter().map(client_seq).collect();
            assert_eq!(seqs, expected.delivered, "{:?}: delivered on its end", ended.id);
            assert_eq!(ended.unconfirmed, expected.unconfirmed, "{:?}: unconfirmed on its end", ended.id);
        }
        assert!(self.ended.is_empty(), "{:?} ended without a trace", self.ended.front().map(|e| e.id));
    }

    fn check_state(&self) {
        let ep = &self.ep;
        assert_eq!(ep.len(), self.sessions.len(), "sessions held");
        assert_eq!(ep.buffered_bytes(), self.buffered(), "buffered bytes");
        let next_expiry = self.sessions.iter().filter_map(|s| s.expiry().map(|at| (at, s.id))).min();
        assert_eq!(ep.poll_timeout(), next_expiry.map(|(at, _)| at), "next expiry");
        for s in &self.sessions {
            let sequence =
                Sequence { delivered: s.delivered, acked: s.acked, queued: s.last_queued(), sent: s.highest_sent };
            assert_eq!(ep.sequence(s.id), Some(sequence), "{:?}: sequence", s.id);
            assert!(s.acked <= s.highest_sent && s.highest_sent <= s.last_queued(), "{:?}: model numbers", s.id);
            let record = ep.record(s.id).unwrap();
            assert_eq!(
                (record.token, record.owner, record.attached, record.detached_at),
                (s.token, s.owner, s.attached, s.detached_at),
                "{:?}: record",
                s.id
            );
            assert_eq!(ep.find(&s.token), Some(s.id));
            assert_eq!(ep.stats(s.id).unwrap().pending, s.unconfirmed.len() as u64, "{:?}: pending", s.id);
        }
        for &(id, _) in self.gone.iter().rev().take(4) {
            assert_eq!(ep.sequence(id), None, "{id:?} ended but is held");
        }
    }
}

/// A u64 from a one-byte choice: small numbers and the edges of the range.
fn number(b: u8, random: u64) -> u64 {
    match b % 8 {
        0 => 0,
        1 => u64::MAX,
        2 => u64::MAX - 1,
        3 => u64::MAX - 2,
        4 => random,
        _ => u64::from(b >> 3),
    }
}

fn step(h: &mut Harness, input: &mut Bytes<'_>) -> Option<()> {
    match input.byte()? % 13 {
        0 => {
            let (a, b) = (input.byte()?, input.byte()?);
            let random = input.u64()?;
            let owner = u64::from(a & 1);
            let live = h.sessions.get(usize::from(b & 15) % h.sessions.len().max(1)).map(|s| s.token);
            let gone = h.gone.iter().rev().nth(usize::from(b & 15) % 4).map(|&(_, t)| t);
            let resume_token = match (a >> 1) & 3 {
                0 => None,
                1 => Some(live.unwrap_or(counter_token(random))),
                2 => Some(gone.unwrap_or(counter_token(random))),
                _ => Some(counter_token(random)),
            };
            let resume = resume_token.map(|token| {
                let last_received = match h.find_token(token).map(|i| &h.sessions[i]) {
                    Some(s) => match a >> 5 {
                        0 => 0,
                        1 => s.client_delivered,
                        2 => s.acked,
                        3 => s.highest_sent,
                        4 => s.highest_sent.wrapping_add(1),
                        5 => random,
                        6 => u64::MAX,
                        _ => s.acked.wrapping_sub(1),
                    },
                    None => number(a >> 5, random),
                };
                (token, last_received)
            });
            let fresh = match (a >> 3) & 3 {
                2 => live.unwrap_or_else(|| h.fresh_token()),
                3 => gone.unwrap_or_else(|| h.fresh_token()),
                _ => h.fresh_token(),
            };
            h.hello(owner, resume, fresh);
        }
        1 => {
            let (c, kind, b) = (input.byte()?, input.byte()?, input.byte()?);
            let random = if kind % 14 == 4 { input.u64()? } else { 0 };
            let garbage = if kind % 14 == 12 { input.slice(usize::from(b % 16))? } else { &[] };
            let Some(ci) = h.pick_conn(c) else { return Some(()) };
            let s = h.index(h.conns[ci].sid).map(|i| &h.sessions[i]);
            let delivered = s.map_or(0, |s| s.delivered);
            let highest_sent = s.map_or(0, |s| s.highest_sent);
            let pad = usize::from(b >> 4) * 4;
            let text = b & 1 != 0;
            let data = |seq: u64, pad: usize| {
                let payload = client_payload(seq, pad, text);
                encode(Frame::Data { seq, payload: payload.as_ref() })
            };
            let bytes = match kind % 14 {
                0 => data(delivered.wrapping_add(1), pad),
                1 => data(delivered.saturating_sub(u64::from(b % 4)), pad),
                2 => data(delivered.wrapping_add(2 + u64::from(b % 4)), pad),
                3 => vec![0x04, 0x00, b'c'],
                4 => data(if b & 2 != 0 { u64::MAX } else { random }, 0),
                5 if b & 2 != 0 => data(delivered.wrapping_add(1), MAX_MESSAGE_BYTES),
                5 => data(delivered.wrapping_add(1), MAX_MESSAGE_BYTES + MAX_DATA_HEADER),
                6 => {
                    let seq = match b % 6 {
                        0 => highest_sent,
                        1 => highest_sent / 2,
                        2 => highest_sent.wrapping_add(1),
                        3 => u64::MAX,
                        4 => 0,
                        _ => s.map_or(0, |s| s.client_delivered),
                    };
                    encode(Frame::Ack { seq })
                }
                7 => encode(Frame::Ping { value: u64::from(b) }),
                8 => encode(Frame::Pong { value: h.conns[ci].last_ping.unwrap_or(u64::from(b)) }),
                9 => encode(Frame::Goodbye),
                10 => encode(Frame::Hello { resume: None }),
                11 => {
                    h.client_message(ci, PayloadRef::Text("hello"));
                    return Some(());
                }
                12 => {
                    // Garbage that happens to be DATA would carry a payload the model cannot number.
                    let mut bytes = garbage.to_vec();
                    if let Some(first @ (0x03 | 0x04)) = bytes.first_mut() {
                        *first |= 0x40;
                    }
                    bytes
                }
                _ => encode(Frame::Welcome { status: WelcomeStatus::New, token: counter_token(0), last_received: 0 }),
            };
            h.client_message(ci, PayloadRef::Binary(&bytes));
        }
        2 => {
            let (c, n) = (input.byte()?, input.byte()?);
            if let Some(ci) = h.pick_conn(c) {
                h.poll(ci, usize::from(n % 8));
            }
        }
        3 => {
            let (s, b) = (input.byte()?, input.byte()?);
            let id = h.pick_session(s);
            let seq = h.index(id).map_or(0, |i| h.sessions[i].last_queued().wrapping_add(1));
            let pad = if b & 0x80 != 0 { MAX_MESSAGE_BYTES } else { usize::from(b & 0x3f) };
            let text = format!("s{id}:{seq};{}", "y".repeat(pad));
            let payload = if b & 0x40 != 0 { Payload::Text(text) } else { Payload::Binary(text.into_bytes()) };
            h.send(id, Arc::new(payload), s & 0x80 != 0);
        }
        4 => {
            let b = input.byte()?;
            h.next_broadcast += 1;
            let payload = Arc::new(Payload::from(format!("b{};{}", h.next_broadcast, "w".repeat(usize::from(b % 48)))));
            let ids: Vec<SessionId> = h.sessions.iter().map(|s| s.id).collect();
            for id in ids {
                h.send(id, payload.clone(), true);
            }
        }
        5 => {
            let (s, n) = (input.byte()?, input.byte()?);
            h.poll_events(h.pick_session(s), usize::from(n % 8));
        }
        6 => {
            let (s, k) = (input.byte()?, input.byte()?);
            h.unpoll(h.pick_session(s), usize::from(k % 4));
        }
        7 => {
            let c = input.byte()?;
            if let Some(ci) = h.pick_conn(c) {
                let (sid, cid) = (h.conns[ci].sid, h.conns[ci].id);
                h.ep.detach(h.now, sid, cid);
                h.model_detach(sid, cid);
            }
        }
        8 => {
            let s = input.byte()?;
            h.goodbye(h.pick_session(s));
        }
        9 => {
            let (s, r) = (input.byte()?, input.byte()?);
            let reason = EndReason::ALL[usize::from(r) % EndReason::ALL.len()];
            h.end(h.pick_session(s), reason);
        }
        10 => {
            let b = input.byte()?;
            let dt = match b & 0x7f {
                d @ 0..=15 => [0, 1, 4, 5, 6, 29, 30, 31, 49, 50, 51, 100, 199, 200, 201, 300][usize::from(d)],
                d => u64::from(d) * 300 / 127,
            };
            h.tick(dt, b & 0x80 != 0);
        }
        11 => {
            let (a, b, c, d) = (input.byte()?, input.byte()?, input.byte()?, input.byte()?);
            let random = input.u64()?;
            let token = match a % 4 {
                2 => h.sessions.get(usize::from(b) % h.sessions.len().max(1)).map(|s| s.token),
                3 => h.gone.last().map(|&(_, t)| t),
                _ => None,
            };
            let token = token.unwrap_or_else(|| h.fresh_token());
            let count = usize::from(c % 11);
            let acked = match b % 6 {
                0 => u64::from(b >> 3),
                1 => u64::MAX,
                2 => u64::MAX - count as u64,
                3 => u64::MAX - count as u64 - 1,
                4 => u64::MAX - count as u64 - 2,
                _ => random,
            };
            h.restore(token, u64::from((a >> 2) & 1), acked, count, number(d, random), usize::from(c >> 5));
        }
        _ => h.drain_all(),
    }
    Some(())
}

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes(data);
    let mut h = Harness::new();
    while step(&mut h, &mut input).is_some() {
        h.check_ended();
        h.check_state();
    }
});
