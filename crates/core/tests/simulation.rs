//! A client core and the server role's [`Endpoint`] (the real session decisions: new, resumed,
//! lost, TTL, supersede) over a simulated link that cuts at random points (losing
//! everything in flight), stalls (half-open), delays, and expires sessions, with random traffic
//! both ways. Checks exactly-once in-order delivery while a session lives, explicit reporting of
//! everything unconfirmed when it does not, and bounded buffers throughout.

use std::collections::{BTreeSet, VecDeque};

use durable_ws_core::frame::Frame;
use durable_ws_core::server::{ConnId, EndReason, Ended, Endpoint, EndpointConfig, ServerEvent, SessionId};
use durable_ws_core::{
    Action, BackoffConfig, BufferLimits, Client, ClientConfig, ClientState, ConnectionError, Event, HeartbeatConfig,
    LostReason, MessageKind, Millis, Payload, PayloadRef, SessionConfig, SplitMix64, Token, WelcomeStatus,
};
use proptest::prelude::*;

const LIMITS: BufferLimits = BufferLimits { max_messages: 64, max_bytes: 4096 };

fn session_config() -> SessionConfig {
    SessionConfig {
        limits: LIMITS,
        max_message_bytes: 1024,
        ack_delay_ms: 5,
        ack_every: 8,
        heartbeat: Some(HeartbeatConfig { interval_ms: 300, timeout_ms: 200 }),
    }
}

fn client_config() -> ClientConfig {
    ClientConfig {
        session: session_config(),
        backoff: BackoffConfig { min_delay_ms: 5, max_delay_ms: 200, ..Default::default() },
        connect_timeout_ms: 400,
        close_timeout_ms: 500,
        ..Default::default()
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    ClientSend(u8),
    ServerSend(u8),
    Cut,
    Stall(Millis),
    Expire,
}

fn op() -> impl Strategy<Value = (Millis, Op)> {
    let op = prop_oneof![
        6 => (1u8..12).prop_map(Op::ClientSend),
        6 => (1u8..12).prop_map(Op::ServerSend),
        3 => Just(Op::Cut),
        1 => (50u64..900).prop_map(Op::Stall),
    ];
    (0u64..120, op)
}

fn op_with_expiry() -> impl Strategy<Value = (Millis, Op)> {
    prop_oneof![10 => op(), 1 => (0u64..120, Just(Op::Expire))]
}

/// Application payloads carry a unique number: text `"<n>"` or `n` as 8 bytes plus padding.
fn payload(n: u64) -> Payload {
    if n % 3 == 0 {
        let mut bytes = n.to_le_bytes().to_vec();
        bytes.resize(8 + (n % 40) as usize, 0xee);
        Payload::Binary(bytes)
    } else {
        Payload::Text(n.to_string())
    }
}

fn number(p: &Payload) -> u64 {
    match p {
        Payload::Text(s) => s.parse().unwrap(),
        Payload::Binary(b) => u64::from_le_bytes(b[..8].try_into().unwrap()),
    }
}

struct Link {
    to_server: VecDeque<(Millis, Vec<u8>)>,
    to_client: VecDeque<(Millis, Vec<u8>)>,
    /// When the client's socket sees the connection open.
    opens_at: Millis,
    opened: bool,
    /// The connection's id at the endpoint.
    conn: ConnId,
    /// The session the endpoint attached the connection to (after its `Hello`).
    attached: Option<SessionId>,
    stalled_until: Millis,
}

/// What one side's application sent, and what it knows became of it.
#[derive(Default)]
struct Ledger {
    next: u64,
    /// Sent and not yet confirmed, in order.
    unconfirmed: VecDeque<u64>,
    /// Reported lost by a `SessionLost`.
    reported_lost: BTreeSet<u64>,
    sent: BTreeSet<u64>,
}

impl Ledger {
    fn confirm(&mut self, seq_to_number: &mut VecDeque<(u64, u64)>, seq: u64) {
        while let Some(&(s, n)) = seq_to_number.front() {
            if s > seq {
                break;
            }
            seq_to_number.pop_front();
            assert_eq!(self.unconfirmed.pop_front(), Some(n), "acks confirm messages in order");
        }
    }
}

struct Sim {
    now: Millis,
    rng: SplitMix64,
    latency: Millis,
    client: Client,
    endpoint: Endpoint<()>,
    /// The session the server application is talking to.
    server: Option<SessionId>,
    link: Option<Link>,
    next_conn: ConnId,
    token_counter: u8,
    client_ledger: Ledger,
    client_seqs: VecDeque<(u64, u64)>,
    server_ledger: Ledger,
    server_seqs: VecDeque<(u64, u64)>,
    /// Numbers delivered to each application, in delivery order.
    delivered_to_server: Vec<u64>,
    delivered_to_client: Vec<u64>,
    sessions_lost: Vec<(LostReason, Vec<u64>)>,
    resumes: u32,
    buf: Vec<u8>,
}

impl Sim {
    fn new(seed: u64, latency: Millis, ttl: Millis) -> Self {
        Sim {
            now: 0,
            rng: SplitMix64::new(seed),
            latency,
            client: Client::new(client_config(), seed, 0, true),
            endpoint: Endpoint::new(EndpointConfig { session: session_config(), ttl_ms: ttl, ..Default::default() }),
            server: None,
            link: None,
            next_conn: 1,
            token_counter: 0,
            client_ledger: Ledger::default(),
            client_seqs: VecDeque::new(),
            server_ledger: Ledger::default(),
            server_seqs: VecDeque::new(),
            delivered_to_server: Vec::new(),
            delivered_to_client: Vec::new(),
            sessions_lost: Vec::new(),
            resumes: 0,
            buf: Vec::new(),
        }
    }

    fn client_send(&mut self, count: u8) {
        for _ in 0..count {
            let n = self.client_ledger.next;
            let p = payload(n);
            let had_room = self.client.has_room(p.len());
            match self.client.send(self.now, p) {
                Ok(seq) => {
                    assert!(had_room);
                    self.client_ledger.next += 1;
                    self.client_ledger.unconfirmed.push_back(n);
                    self.client_ledger.sent.insert(n);
                    self.client_seqs.push_back((seq, n));
                }
                Err(durable_ws_core::SendError::BufferFull { messages, bytes }) => {
                    assert!(!had_room);
                    assert!(messages == LIMITS.max_messages || bytes + payload(n).len() > LIMITS.max_bytes);
                    return;
                }
                Err(e) => panic!("unexpected send error {e}"),
            }
        }
    }

    fn server_send(&mut self, count: u8) {
        let Some(id) = self.server else { return };
        for _ in 0..count {
            let n = self.server_ledger.next;
            match self.endpoint.send(self.now, id, payload(n)) {
                Ok(seq) => {
                    self.server_ledger.next += 1;
                    self.server_ledger.unconfirmed.push_back(n);
                    self.server_ledger.sent.insert(n);
                    self.server_seqs.push_back((seq, n));
                }
                Err(durable_ws_core::SendError::BufferFull { .. }) => return,
                Err(e) => panic!("unexpected send error {e}"),
            }
        }
    }

    /// Both ends lose the connection; everything in flight is gone.
    fn cut(&mut self, client_notices: bool) {
        let Some(link) = self.link.take() else { return };
        if let Some(id) = link.attached {
            self.endpoint.detach(self.now, id, link.conn);
            self.drain_server();
        }
        if client_notices {
            self.client.on_close(self.now, 1006, "", false);
        }
    }

    /// The server forgets the session at once (an operator's expire).
    fn expire(&mut self) {
        self.cut(true);
        if let Some(id) = self.server {
            assert!(self.endpoint.end(self.now, id, EndReason::Expired));
        }
        self.drain_server();
    }

    /// The server application learns that a session ended, with what it never got confirmed.
    fn ended(&mut self, ended: Ended<()>) {
        for p in &ended.delivered {
            self.delivered_to_server.push(number(p));
        }
        if self.server != Some(ended.id) {
            assert!(ended.unconfirmed.is_empty(), "a session the application never sent into");
            return;
        }
        self.server = None;
        let lost: Vec<u64> = ended.unconfirmed.iter().map(|(_, p)| number(p)).collect();
        assert_eq!(lost, Vec::from(self.server_ledger.unconfirmed.clone()), "server reports exactly the unconfirmed");
        self.server_ledger.reported_lost.extend(lost);
        self.server_ledger.unconfirmed.clear();
        self.server_seqs.clear();
    }

    fn server_receive(&mut self, bytes: &[u8]) {
        let now = self.now;
        let link = self.link.as_mut().unwrap();
        match link.attached {
            None => {
                let Ok(Frame::Hello { resume }) = Frame::decode(bytes) else { panic!("first frame must be Hello") };
                self.token_counter = self.token_counter.wrapping_add(1);
                let fresh = Token([self.token_counter; 16]);
                let accepted = self.endpoint.hello(now, link.conn, (), resume, fresh).expect("room for the session");
                link.attached = Some(accepted.id);
                assert!(!accepted.foreign);
                if accepted.created {
                    if resume.is_some() {
                        assert!(accepted.status.is_lost(), "{:?}", accepted.status);
                    }
                    // A client that starts afresh abandons the old session (e.g. cut before its Welcome).
                    if let Some(old) = self.server {
                        self.endpoint.end(now, old, EndReason::Expired);
                        while let Some(ended) = self.endpoint.poll_ended() {
                            self.ended(ended);
                        }
                    }
                    self.server = Some(accepted.id);
                } else {
                    assert_eq!(accepted.status, WelcomeStatus::Resumed);
                    assert_eq!(Some(accepted.id), self.server, "the resumed session is the application's");
                }
            }
            Some(id) => {
                let conn = link.conn;
                self.endpoint
                    .handle_message(now, id, conn, PayloadRef::Binary(bytes))
                    .expect("valid frames from a correct client");
            }
        }
        self.drain_server();
    }

    fn link_stub(&mut self) -> Link {
        self.next_conn += 1;
        Link {
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
            opens_at: self.now,
            opened: true,
            conn: self.next_conn,
            attached: None,
            stalled_until: 0,
        }
    }

    fn drain_server(&mut self) {
        let mut dead = false;
        if let Some(link) = &mut self.link {
            if let Some(id) = link.attached {
                while let Some(kind) = self.endpoint.poll_transmit(self.now, id, link.conn, &mut self.buf) {
                    assert_eq!(kind, MessageKind::Binary);
                    link.to_client.push_back((self.now + self.latency, self.buf.clone()));
                }
            }
        }
        if let Some(id) = self.server {
            while let Some(event) = self.endpoint.poll_event(id) {
                match event {
                    ServerEvent::Message(p) => self.delivered_to_server.push(number(&p)),
                    ServerEvent::Acked { seq } => self.server_ledger.confirm(&mut self.server_seqs, seq),
                    ServerEvent::Dead => dead = true,
                }
            }
            if let Some(stats) = self.endpoint.stats(id) {
                assert!(stats.pending as usize <= LIMITS.max_messages);
            }
        }
        while let Some(ended) = self.endpoint.poll_ended() {
            self.ended(ended);
        }
        if dead {
            self.cut(true);
        }
    }

    fn drain_client(&mut self) {
        loop {
            let mut progress = false;
            while let Some(kind) = self.client.poll_transmit(self.now, &mut self.buf) {
                assert_eq!(kind, MessageKind::Binary);
                progress = true;
                if let Some(link) = &mut self.link {
                    if link.opened {
                        link.to_server.push_back((self.now + self.latency, self.buf.clone()));
                    }
                }
            }
            while let Some(action) = self.client.poll_action() {
                progress = true;
                match action {
                    Action::Connect => {
                        assert!(self.link.is_none(), "one socket at a time");
                        let opens_at = self.now + 2 * self.latency;
                        self.link = Some(Link { opens_at, opened: false, ..self.link_stub() });
                    }
                    Action::Close { .. } => self.cut(false),
                }
            }
            while let Some(event) = self.client.poll_event() {
                progress = true;
                match event {
                    Event::Message(p) => self.delivered_to_client.push(number(&p)),
                    Event::Acked { seq } => self.client_ledger.confirm(&mut self.client_seqs, seq),
                    Event::SessionLost { reason, unconfirmed } => {
                        let lost: Vec<u64> = unconfirmed.iter().map(|(_, p)| number(p)).collect();
                        assert_eq!(lost, Vec::from(self.client_ledger.unconfirmed.clone()), "exactly the unconfirmed");
                        self.client_ledger.reported_lost.extend(&lost);
                        self.client_ledger.unconfirmed.clear();
                        self.client_seqs.clear();
                        self.sessions_lost.push((reason, lost));
                    }
                    Event::Resumed { .. } => self.resumes += 1,
                    Event::Open { durable } => assert!(durable),
                    Event::Closed { will_reconnect, .. } => {
                        assert!(will_reconnect, "the simulated client never gives up")
                    }
                    Event::Reconnecting { .. } => {}
                    Event::Error(e) => assert!(
                        matches!(e, ConnectionError::ConnectTimeout | ConnectionError::HeartbeatTimeout),
                        "no protocol error between correct peers: {e}"
                    ),
                    other => panic!("unexpected client event {other:?}"),
                }
            }
            if !progress {
                break;
            }
        }
        let stats = self.client.stats().session;
        assert!(stats.pending as usize <= LIMITS.max_messages);
    }

    /// Runs until `until`, delivering frames and firing timers in time order.
    fn run_until(&mut self, until: Millis) {
        for _ in 0..10_000_000 {
            self.drain_client();
            let mut next = until;
            if let Some(t) = self.client.poll_timeout() {
                next = next.min(t);
            }
            if let Some(t) = self.link.as_ref().and_then(|l| l.attached).and_then(|id| self.endpoint.timeout(id)) {
                next = next.min(t);
            }
            if let Some(t) = self.endpoint.poll_timeout() {
                next = next.min(t);
            }
            if let Some(link) = &self.link {
                if !link.opened {
                    next = next.min(link.opens_at);
                }
                let stall = link.stalled_until;
                for t in [link.to_server.front(), link.to_client.front()].into_iter().flatten().map(|(t, _)| *t) {
                    next = next.min(t.max(stall));
                }
            }
            if next > until {
                break;
            }
            self.now = self.now.max(next);
            self.step();
            if self.now >= until && !self.has_work_now() {
                self.now = self.now.max(until);
                return;
            }
        }
        panic!("the simulation does not progress at {}", self.now);
    }

    fn has_work_now(&self) -> bool {
        self.client.poll_timeout().is_some_and(|t| t <= self.now)
            || self.endpoint.poll_timeout().is_some_and(|t| t <= self.now)
            || self.link.as_ref().is_some_and(|l| {
                (!l.opened && l.opens_at <= self.now)
                    || l.stalled_until <= self.now
                        && [l.to_server.front(), l.to_client.front()].into_iter().flatten().any(|(t, _)| *t <= self.now)
            })
    }

    fn step(&mut self) {
        let now = self.now;
        if let Some(link) = &mut self.link {
            if !link.opened && link.opens_at <= now {
                link.opened = true;
                self.client.on_open(now, true);
                self.drain_client();
            }
        }
        while let Some(bytes) = self.pop_due(true) {
            self.server_receive(&bytes);
        }
        while let Some(bytes) = self.pop_due(false) {
            self.client.on_message(now, PayloadRef::Binary(&bytes));
            self.drain_client();
        }
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
            self.drain_client();
        }
        if let Some((id, conn)) = self.link.as_ref().and_then(|l| Some((l.attached?, l.conn))) {
            if self.endpoint.timeout(id).is_some_and(|t| t <= now) {
                self.endpoint.handle_session_timeout(now, id, conn);
                self.drain_server();
            }
        }
        if self.endpoint.poll_timeout().is_some_and(|t| t <= now) {
            self.endpoint.handle_timeout(now);
            self.drain_server();
        }
    }

    fn pop_due(&mut self, to_server: bool) -> Option<Vec<u8>> {
        let now = self.now;
        let link = self.link.as_mut()?;
        if link.stalled_until > now {
            return None;
        }
        let queue = if to_server { &mut link.to_server } else { &mut link.to_client };
        if queue.front().is_some_and(|(t, _)| *t <= now) {
            return queue.pop_front().map(|(_, b)| b);
        }
        None
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::ClientSend(n) => self.client_send(n),
            Op::ServerSend(n) => {
                self.server_send(n);
                self.drain_server();
            }
            Op::Cut => self.cut(true),
            Op::Stall(ms) => {
                let now = self.now;
                if let Some(link) = &mut self.link {
                    link.stalled_until = now + ms;
                }
            }
            Op::Expire => self.expire(),
        }
        self.drain_client();
    }

    fn random_jitter(&mut self) -> Millis {
        self.rng.next_u64() % 3
    }
}

/// Runs a schedule, then lets the link settle, and checks every guarantee.
fn run(seed: u64, latency: Millis, ttl: Millis, ops: &[(Millis, Op)]) -> Sim {
    let mut sim = Sim::new(seed, latency, ttl);
    for &(gap, op) in ops {
        let until = sim.now + gap + sim.random_jitter();
        sim.run_until(until);
        sim.apply(op);
    }
    // Settle: no more faults; everything in flight is delivered and acknowledged.
    let settle = sim.now + 20_000;
    sim.run_until(settle);
    check(&sim);
    sim
}

fn check(sim: &Sim) {
    assert_eq!(sim.client.state(), ClientState::Open, "the client ends connected");
    for (side, ledger, delivered) in [
        ("client→server", &sim.client_ledger, &sim.delivered_to_server),
        ("server→client", &sim.server_ledger, &sim.delivered_to_client),
    ] {
        // Nothing delivered twice, nothing out of order.
        assert!(delivered.windows(2).all(|w| w[0] < w[1]), "{side}: duplicate or reordered: {delivered:?}");
        // Every message sent was delivered or reported lost: nothing is lost silently.
        let delivered: BTreeSet<u64> = delivered.iter().copied().collect();
        for n in &ledger.sent {
            assert!(delivered.contains(n) || ledger.reported_lost.contains(n), "{side}: message {n} lost silently");
        }
        assert!(ledger.unconfirmed.is_empty(), "{side}: still unconfirmed after settling: {:?}", ledger.unconfirmed);
    }
    // Where nothing was reported lost, the session lived throughout: everything, exactly once, in order.
    if sim.client_ledger.reported_lost.is_empty() {
        assert_eq!(sim.delivered_to_server, (0..sim.client_ledger.next).collect::<Vec<_>>());
    }
    if sim.server_ledger.reported_lost.is_empty() {
        assert_eq!(sim.delivered_to_client, (0..sim.server_ledger.next).collect::<Vec<_>>());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2000), ..ProptestConfig::default() })]

    #[test]
    fn exactly_once_in_order_across_random_cuts(
        seed: u64, latency in 0u64..30, ops in proptest::collection::vec(op(), 1..80),
    ) {
        let sim = run(seed, latency, Millis::MAX, &ops);
        prop_assert!(sim.sessions_lost.is_empty(), "no expiry: the session must survive every cut");
    }

    #[test]
    fn expired_sessions_report_exactly_the_unconfirmed(
        seed: u64, latency in 0u64..30, ttl in 50u64..2000, ops in proptest::collection::vec(op_with_expiry(), 1..80),
    ) {
        let sim = run(seed, latency, ttl, &ops);
        for (reason, _) in &sim.sessions_lost {
            prop_assert_eq!(*reason, LostReason::Expired);
        }
    }
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn a_long_cut_heavy_run_resumes_many_times_without_loss() {
    let mut ops = Vec::new();
    for i in 0..400u64 {
        ops.push((40 + i % 50, Op::ClientSend(10)));
        ops.push((10, Op::ServerSend(10)));
        if i % 4 == 0 {
            ops.push((i % 30, Op::Cut));
        }
    }
    let sim = run(7, 25, Millis::MAX, &ops);
    assert!(sim.resumes >= 50, "resumed {} times", sim.resumes);
    // Sends refused with BufferFull (backpressure) were never sent; everything else arrived.
    assert!(sim.client_ledger.next > 3000 && sim.server_ledger.next > 3000);
    assert_eq!(sim.delivered_to_server.len() as u64, sim.client_ledger.next);
    assert_eq!(sim.delivered_to_client.len() as u64, sim.server_ledger.next);
}

#[test]
fn a_half_open_link_is_detected_by_the_heartbeat() {
    let ops = [(50, Op::ClientSend(5)), (10, Op::Stall(5_000)), (0, Op::ClientSend(5))];
    let sim = run(3, 10, Millis::MAX, &ops);
    assert!(sim.resumes >= 1, "the stalled connection was replaced and the session resumed");
    assert_eq!(sim.delivered_to_server, (0..10).collect::<Vec<_>>());
}
