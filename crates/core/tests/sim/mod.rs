//! A client core and the server role's [`Endpoint`] (the real session decisions: new, resumed,
//! lost, TTL, supersede) over a simulated link that cuts at random points (losing everything in
//! flight), cuts where only one side notices, stalls (half-open), delays, goes through a plain
//! server (one that does not select `durable.v1`), and expires sessions, with random traffic both
//! ways and the user closing the client. [`run`] checks exactly-once in-order delivery while a
//! session lives, explicit reporting of everything unconfirmed when it does not, bounded buffers,
//! and that everything settles once the faults stop.
//!
//! [`run_persisted`] runs the same with a persisted client session (`ClientConfig::persist`) kept in
//! a model of a page's storage with two layers: a volatile one that gets every batch as it is handed
//! out (localStorage: it survives a page reload, not a browser kill) and a durable one that commits
//! them in order after a random delay, when the client is told (`Client::stored`; IndexedDB). Two
//! more faults: the page dies (`Op::Reload`: the next page restores the session from the volatile
//! layer) and the browser dies (`Op::Kill`: from the durable layer only).
//!
//! Shared by the property tests (`tests/simulation.rs`) and the coverage-guided fuzz target
//! `pair` (`crates/core/fuzz`), which include this file.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use durable_ws_core::frame::Frame;
use durable_ws_core::persist::{Position, StoreBatch};
use durable_ws_core::server::{ConnId, EndReason, Ended, Endpoint, EndpointConfig, ServerEvent, SessionId};
use durable_ws_core::{
    Action, BackoffConfig, BufferLimits, Client, ClientConfig, ClientState, ConnectionError, Event, HeartbeatConfig,
    LostReason, MessageKind, Millis, Payload, PayloadRef, SendError, SessionConfig, SplitMix64, Token, WelcomeStatus,
};

pub const LIMITS: BufferLimits = BufferLimits { max_messages: 64, max_bytes: 4096 };

fn session_config() -> SessionConfig {
    SessionConfig {
        limits: LIMITS,
        max_message_bytes: 1024,
        ack_delay_ms: 5,
        ack_every: 8,
        heartbeat: Some(HeartbeatConfig { interval_ms: 300, timeout_ms: 200 }),
    }
}

fn client_config(persist: bool) -> ClientConfig {
    ClientConfig {
        session: session_config(),
        backoff: BackoffConfig { min_delay_ms: 5, max_delay_ms: 200, ..Default::default() },
        connect_timeout_ms: 400,
        close_timeout_ms: 500,
        persist,
        ..Default::default()
    }
}

/// One step of a schedule.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    /// The client's application sends this many messages.
    ClientSend(u8),
    /// The server's application sends this many messages.
    ServerSend(u8),
    /// The connection breaks; both sides notice.
    Cut,
    /// The connection breaks and only one side notices (the other learns from its heartbeat, or
    /// from a resume that supersedes its connection).
    HalfCut {
        /// The client notices (else the server does).
        client_notices: bool,
    },
    /// Nothing gets through for this long.
    Stall(Millis),
    /// The server forgets the session (an operator's expire).
    Expire,
    /// The next connection goes through a server (or proxy) that does not select `durable.v1`.
    Plain,
    /// The user closes the client for good (waiting for acknowledgements first).
    Close,
    /// Persisted mode: the page dies (a reload, a renderer crash). Its socket closes (what it wrote
    /// may or may not arrive first) and the server notices. The next page restores the session from
    /// what the volatile layer holds, which its driver makes durable first (as `src/store.js` does).
    Reload,
    /// Persisted mode: the browser dies. Batches not yet durable are lost with the volatile layer;
    /// the next page restores the session from the durable layer.
    Kill,
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
    /// A plain server is at the other end: it takes messages as they are and sends nothing.
    plain: bool,
    /// The connection's id at the endpoint.
    conn: ConnId,
    /// The session the endpoint attached the connection to (after its `Hello`).
    attached: Option<SessionId>,
    stalled_until: Millis,
}

/// What one side's application sent, and what it knows became of it.
#[derive(Default)]
pub struct Ledger {
    pub next: u64,
    /// Sent and not yet confirmed, in order.
    unconfirmed: VecDeque<u64>,
    /// Reported lost by a `SessionLost`.
    pub reported_lost: BTreeSet<u64>,
    sent: BTreeSet<u64>,
    /// Sent by a page that a browser kill took before the batch holding them was durable, and not
    /// delivered by then: never promised, and no longer expected anywhere.
    pub withdrawn: BTreeSet<u64>,
}

/// One layer of a persisted client's storage, as a correct driver keeps it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Storage {
    /// The last position written ([`Position::encode`]).
    pub position: Option<String>,
    /// Every message added and not deleted.
    pub messages: BTreeMap<u64, Payload>,
}

impl Storage {
    /// Writes a batch as one transaction: `clear` deletes everything first, then the messages are
    /// added, then the position is written and the messages it confirms deleted (no position:
    /// everything deleted).
    pub fn apply(&mut self, batch: &StoreBatch) {
        if batch.clear {
            *self = Storage::default();
        }
        for (seq, payload) in &batch.messages {
            self.messages.insert(*seq, Payload::clone(payload));
        }
        match &batch.position {
            Some(position) => {
                self.position = Some(position.encode());
                self.messages.retain(|&seq, _| seq > position.acked);
            }
            None => *self = Storage::default(),
        }
    }
}

/// The persisted mode's storage model.
struct Persisted {
    /// Every batch, applied as it is handed out (localStorage).
    volatile: Storage,
    /// The batches committed so far, in order (IndexedDB).
    durable: Storage,
    /// Batches handed out and not yet durable, with when each commits (in order).
    committing: VecDeque<(Millis, StoreBatch)>,
    /// Longest storage latency.
    max_latency: Millis,
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

pub struct Sim {
    now: Millis,
    rng: SplitMix64,
    latency: Millis,
    client: Client,
    endpoint: Endpoint<()>,
    /// The session the server application is talking to.
    server: Option<SessionId>,
    link: Option<Link>,
    /// The next connection goes through a plain server.
    plain_next: bool,
    /// The user closed the client.
    closed: bool,
    next_conn: ConnId,
    token_counter: u8,
    pub client_ledger: Ledger,
    client_seqs: VecDeque<(u64, u64)>,
    pub server_ledger: Ledger,
    server_seqs: VecDeque<(u64, u64)>,
    /// Numbers delivered to each application, in delivery order.
    pub delivered_to_server: Vec<u64>,
    pub delivered_to_client: Vec<u64>,
    /// Numbers a plain server received, in order.
    pub delivered_to_plain: Vec<u64>,
    pub sessions_lost: Vec<(LostReason, Vec<u64>)>,
    pub resumes: u32,
    /// Persisted mode: the storage model.
    persisted: Option<Persisted>,
    /// For each entry of `delivered_to_client`: the session (token) and its number in it.
    received_in: Vec<(Option<Token>, u64)>,
    /// The session the client last delivered a message of, and that message's number in it.
    receiving: (Option<Token>, u64),
    /// Pages that died (reloads) and browsers that died (kills).
    pub reloads: u32,
    pub kills: u32,
    /// Messages pages restored (sent before the page died, not yet confirmed).
    pub restored: usize,
    /// Deliveries to a client page that a kill undid (they came again, or the session ended).
    pub undelivered: usize,
    buf: Vec<u8>,
}

impl Sim {
    pub fn new(seed: u64, latency: Millis, ttl: Millis) -> Self {
        Sim {
            now: 0,
            rng: SplitMix64::new(seed),
            latency,
            client: Client::new(client_config(false), seed, 0, true),
            endpoint: Endpoint::new(EndpointConfig { session: session_config(), ttl_ms: ttl, ..Default::default() }),
            server: None,
            link: None,
            plain_next: false,
            closed: false,
            next_conn: 1,
            token_counter: 0,
            client_ledger: Ledger::default(),
            client_seqs: VecDeque::new(),
            server_ledger: Ledger::default(),
            server_seqs: VecDeque::new(),
            delivered_to_server: Vec::new(),
            delivered_to_client: Vec::new(),
            delivered_to_plain: Vec::new(),
            sessions_lost: Vec::new(),
            resumes: 0,
            persisted: None,
            received_in: Vec::new(),
            receiving: (None, 0),
            reloads: 0,
            kills: 0,
            restored: 0,
            undelivered: 0,
            buf: Vec::new(),
        }
    }

    /// A simulation whose client persists its session in a storage model whose durable layer
    /// commits each batch within `storage_latency` ms.
    pub fn persisted(seed: u64, latency: Millis, ttl: Millis, storage_latency: Millis) -> Self {
        let mut sim = Sim::new(seed, latency, ttl);
        sim.client = Client::new(client_config(true), seed, 0, true);
        sim.persisted = Some(Persisted {
            volatile: Storage::default(),
            durable: Storage::default(),
            committing: VecDeque::new(),
            max_latency: storage_latency,
        });
        sim
    }

    /// Takes the client's next batches: the volatile layer gets them at once, the durable one
    /// when they commit. Whether anything was taken or committed.
    fn store(&mut self) -> bool {
        let Some(persisted) = &mut self.persisted else {
            assert!(self.client.poll_store().is_none(), "a client that does not persist stores nothing");
            return false;
        };
        let mut progress = false;
        while let Some(batch) = self.client.poll_store() {
            progress = true;
            persisted.volatile.apply(&batch);
            assert!(persisted.volatile.messages.len() <= LIMITS.max_messages, "storage holds a bounded outbox");
            let after = persisted.committing.back().map_or(0, |(at, _)| *at);
            let at = (self.now + self.rng.next_u64() % (persisted.max_latency + 1)).max(after);
            persisted.committing.push_back((at, batch));
        }
        progress | self.commit_due()
    }

    /// Commits the batches due by now and tells the client.
    fn commit_due(&mut self) -> bool {
        let Some(persisted) = &mut self.persisted else { return false };
        let mut progress = false;
        while persisted.committing.front().is_some_and(|(at, _)| *at <= self.now) {
            let (_, batch) = persisted.committing.pop_front().expect("checked above");
            persisted.durable.apply(&batch);
            self.client.stored(self.now, batch.id);
            progress = true;
        }
        progress
    }

    /// The page dies, or with `kill` the whole browser; the next page restores the session from what
    /// storage holds and goes on (its application has not closed anything).
    fn new_page(&mut self, kill: bool) {
        let Some(persisted) = &mut self.persisted else { return };
        persisted.committing.clear();
        if kill {
            persisted.volatile = persisted.durable.clone();
            self.kills += 1;
        } else {
            // The dying page's storage transactions may commit or not; either way the next page's
            // driver reads the volatile layer (newer) and makes it durable before it restores (as
            // src/store.js does): a restored session counts as stored.
            persisted.durable = persisted.volatile.clone();
            self.reloads += 1;
        }
        let storage = persisted.volatile.clone();
        // The socket closes with the page: what it wrote may arrive first, or be lost with the link.
        if self.rng.next_u64() % 2 == 0 {
            self.client_closes();
        } else {
            self.cut(false, true);
        }
        let seed = self.rng.next_u64();
        let (client, position) = match &storage.position {
            Some(stored) => {
                let messages = storage.messages.iter().map(|(seq, p)| (*seq, p.clone())).collect();
                let (client, error) = Client::restore(client_config(true), seed, self.now, true, stored, messages);
                assert_eq!(error, None, "a store kept correctly reads back: {stored} {:?}", storage.messages.keys());
                (client, Position::decode(stored).expect("restore read it"))
            }
            None => {
                assert!(storage.messages.is_empty(), "messages stored without a position");
                (Client::new(client_config(true), seed, self.now, true), Position::default())
            }
        };
        self.client = client;
        self.closed = false;
        let restored: Vec<(u64, u64)> = storage
            .messages
            .iter()
            .filter(|(seq, _)| **seq > position.acked)
            .map(|(seq, p)| (*seq, number(p)))
            .collect();
        let numbers: Vec<u64> = restored.iter().map(|&(_, n)| n).collect();
        let ledger = &mut self.client_ledger;
        if kill {
            // What the durable layer lacks was never promised. It may have gone on the wire (once the
            // session's token was durable, the fast store is enough for that) and arrived: then it
            // was delivered; else it is gone for good.
            for n in ledger.unconfirmed.iter().copied().filter(|n| !numbers.contains(n)).collect::<Vec<_>>() {
                if !self.delivered_to_server.contains(&n) && !self.delivered_to_plain.contains(&n) {
                    ledger.sent.remove(&n);
                    ledger.withdrawn.insert(n);
                }
            }
            // A plain server's receipt is the only confirmation plain mode has: one not durably
            // recorded yet is undone, and the message goes again.
            self.delivered_to_plain.retain(|n| !numbers.contains(n));
            // The next page's application has not seen what was delivered after the durable receive
            // position: the server sends it again (if the session lives on).
            if position.token.is_some() {
                let keep = |&(token, seq): &(Option<Token>, u64)| token != position.token || seq <= position.delivered;
                let before = self.received_in.len();
                let mut kept = self.received_in.iter().map(keep);
                self.delivered_to_client.retain(|_| kept.next().expect("one entry each"));
                self.received_in.retain(keep);
                self.undelivered += before - self.received_in.len();
            }
        } else {
            assert_eq!(
                numbers,
                Vec::from(ledger.unconfirmed.clone()),
                "the volatile layer holds exactly the unconfirmed"
            );
            assert!(
                self.received_in.iter().all(|&(token, seq)| token != position.token || seq <= position.delivered),
                "the volatile layer holds every delivery"
            );
        }
        self.restored += numbers.len();
        ledger.unconfirmed = numbers.into();
        self.client_seqs = restored.into();
        self.receiving = (position.token, position.delivered);
        self.drain_client();
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
                Err(SendError::BufferFull { messages, bytes }) => {
                    assert!(!had_room);
                    assert!(messages == LIMITS.max_messages || bytes + payload(n).len() > LIMITS.max_bytes);
                    return;
                }
                Err(SendError::Closed) => {
                    assert!(self.closed && !had_room, "only a closed client refuses with Closed");
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
                Err(SendError::BufferFull { .. } | SendError::Closed) => return,
                Err(e) => panic!("unexpected send error {e}"),
            }
        }
    }

    /// The connection is gone; everything in flight is lost. Each side notices or not.
    fn cut(&mut self, client_notices: bool, server_notices: bool) {
        let Some(link) = self.link.take() else { return };
        if let Some(id) = link.attached.filter(|_| server_notices) {
            self.endpoint.detach(self.now, id, link.conn);
            self.drain_server();
        }
        if client_notices {
            self.client.on_close(self.now, 1006, "", false);
        }
    }

    /// The client closes its socket: unless the link is stalled, what it wrote before arrives
    /// first (a close frame follows the data on the same connection).
    fn client_closes(&mut self) {
        let Some(link) = &mut self.link else { return };
        if link.stalled_until <= self.now {
            let pending: Vec<Vec<u8>> = link.to_server.drain(..).map(|(_, bytes)| bytes).collect();
            for bytes in pending {
                if self.link.is_none() {
                    break;
                }
                self.server_receive(&bytes);
            }
        }
        self.cut(false, true);
    }

    /// The server forgets the session at once (an operator's expire).
    fn expire(&mut self) {
        self.cut(true, true);
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
                    // A client that starts afresh abandons the old session (e.g. cut before its Welcome,
                    // or after a plain server in between).
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
                match self.endpoint.handle_message(now, id, conn, PayloadRef::Binary(bytes)) {
                    Ok(()) => {}
                    // The session ended on the server meanwhile (TTL, an operator's expire).
                    Err(durable_ws_core::server::InputError::NotAttached) => {}
                    Err(e) => panic!("valid frames from a correct client: {e}"),
                }
            }
        }
        self.drain_server();
    }

    fn drain_server(&mut self) {
        let mut dead = Vec::new();
        for id in self.endpoint.ids() {
            let Some(conn) = self.endpoint.record(id).and_then(|record| record.attached) else { continue };
            // Frames for a connection whose link broke unnoticed go nowhere.
            let mut link = self.link.as_mut().filter(|link| link.conn == conn);
            while let Some(kind) = self.endpoint.poll_transmit(self.now, id, conn, &mut self.buf) {
                assert_eq!(kind, MessageKind::Binary);
                if let Some(link) = &mut link {
                    link.to_client.push_back((self.now + self.latency, self.buf.clone()));
                }
            }
            while let Some(event) = self.endpoint.poll_event(id) {
                assert_eq!(Some(id), self.server, "only the application's session has events");
                match event {
                    ServerEvent::Message(p) => self.delivered_to_server.push(number(&p)),
                    ServerEvent::Acked { seq } => self.server_ledger.confirm(&mut self.server_seqs, seq),
                    ServerEvent::Dead => dead.push((id, conn)),
                }
            }
            if let Some(stats) = self.endpoint.stats(id) {
                assert!(stats.pending as usize <= LIMITS.max_messages);
            }
        }
        while let Some(ended) = self.endpoint.poll_ended() {
            self.ended(ended);
        }
        for (id, conn) in dead {
            // The server's heartbeat found the connection silent: it closes it.
            if self.link.as_ref().is_some_and(|link| link.conn == conn) {
                self.cut(true, true);
            } else {
                self.endpoint.detach(self.now, id, conn);
                self.drain_server();
            }
        }
    }

    fn drain_client(&mut self) {
        loop {
            let mut progress = false;
            while let Some(kind) = self.client.poll_transmit(self.now, &mut self.buf) {
                progress = true;
                if self.client.is_durable() == Some(false) {
                    // Handed to a plain socket, which is all plain mode can know (even if the link broke
                    // unnoticed: a plain connection has no heartbeat).
                    let p = match kind {
                        MessageKind::Text => Payload::Text(String::from_utf8(self.buf.clone()).unwrap()),
                        MessageKind::Binary => Payload::Binary(self.buf.clone()),
                    };
                    assert_eq!(p, payload(number(&p)), "a plain server gets the application's message as it is");
                    self.delivered_to_plain.push(number(&p));
                    continue;
                }
                assert_eq!(kind, MessageKind::Binary);
                if let Some(link) = self.link.as_mut().filter(|link| link.opened) {
                    link.to_server.push_back((self.now + self.latency, self.buf.clone()));
                }
            }
            while let Some(action) = self.client.poll_action() {
                progress = true;
                match action {
                    Action::Connect => {
                        assert!(self.link.is_none(), "one socket at a time");
                        let opens_at = self.now + 2 * self.latency;
                        self.next_conn += 1;
                        self.link = Some(Link {
                            to_server: VecDeque::new(),
                            to_client: VecDeque::new(),
                            opens_at,
                            opened: false,
                            plain: std::mem::take(&mut self.plain_next),
                            conn: self.next_conn,
                            attached: None,
                            stalled_until: 0,
                        });
                    }
                    Action::Close { .. } => self.client_closes(),
                }
            }
            while let Some(event) = self.client.poll_event() {
                progress = true;
                match event {
                    Event::Message(p) => {
                        let token = self.client.session_token();
                        if token != self.receiving.0 {
                            self.receiving = (token, 0);
                        }
                        self.receiving.1 += 1;
                        self.received_in.push(self.receiving);
                        self.delivered_to_client.push(number(&p));
                    }
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
                    Event::Open { durable } => assert_eq!(Some(durable), self.client.is_durable()),
                    Event::Closed { will_reconnect, .. } => {
                        assert!(will_reconnect || self.closed, "the simulated client gives up only when closed")
                    }
                    Event::Reconnecting { .. } => {}
                    Event::Error(e) => assert!(
                        matches!(e, ConnectionError::ConnectTimeout | ConnectionError::HeartbeatTimeout),
                        "no protocol error between correct peers: {e}"
                    ),
                    other => panic!("unexpected client event {other:?}"),
                }
            }
            // The driver stores after every input, before its task ends.
            progress |= self.store();
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
            if let Some(t) = self.endpoint.ids().into_iter().filter_map(|id| self.endpoint.timeout(id)).min() {
                next = next.min(t);
            }
            if let Some(t) = self.endpoint.poll_timeout() {
                next = next.min(t);
            }
            if let Some((t, _)) = self.persisted.as_ref().and_then(|p| p.committing.front()) {
                next = next.min(*t);
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
            || self.persisted.as_ref().and_then(|p| p.committing.front()).is_some_and(|(t, _)| *t <= self.now)
            || self.endpoint.ids().into_iter().any(|id| self.endpoint.timeout(id).is_some_and(|t| t <= self.now))
            || self.link.as_ref().is_some_and(|l| {
                (!l.opened && l.opens_at <= self.now)
                    || l.stalled_until <= self.now
                        && [l.to_server.front(), l.to_client.front()].into_iter().flatten().any(|(t, _)| *t <= self.now)
            })
    }

    fn step(&mut self) {
        let now = self.now;
        if self.commit_due() {
            self.drain_client();
        }
        if let Some(link) = &mut self.link {
            if !link.opened && link.opens_at <= now {
                link.opened = true;
                let durable = !link.plain;
                self.client.on_open(now, durable);
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
        for id in self.endpoint.ids() {
            let Some(conn) = self.endpoint.record(id).and_then(|record| record.attached) else { continue };
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
            Op::Cut => self.cut(true, true),
            Op::HalfCut { client_notices } => self.cut(client_notices, !client_notices),
            Op::Stall(ms) => {
                let now = self.now;
                if let Some(link) = &mut self.link {
                    link.stalled_until = now + ms;
                }
            }
            Op::Expire => self.expire(),
            Op::Plain => self.plain_next = true,
            Op::Close => {
                self.closed = true;
                self.client.close(self.now, 1000, "bye");
            }
            Op::Reload => self.new_page(false),
            Op::Kill => self.new_page(true),
        }
        self.drain_client();
    }

    fn random_jitter(&mut self) -> Millis {
        self.rng.next_u64() % 3
    }
}

/// Runs a schedule, then lets the link settle, and checks every guarantee.
pub fn run(seed: u64, latency: Millis, ttl: Millis, ops: &[(Millis, Op)]) -> Sim {
    run_sim(Sim::new(seed, latency, ttl), ops)
}

/// Runs a schedule with a persisted client session whose durable storage commits each batch within
/// `storage_latency` ms, then lets everything settle, and checks every guarantee.
pub fn run_persisted(seed: u64, latency: Millis, ttl: Millis, storage_latency: Millis, ops: &[(Millis, Op)]) -> Sim {
    let mut sim = Sim::persisted(seed, latency, ttl, storage_latency);
    sim.drain_client();
    run_sim(sim, ops)
}

fn run_sim(mut sim: Sim, ops: &[(Millis, Op)]) -> Sim {
    for &(gap, op) in ops {
        let until = sim.now + gap + sim.random_jitter();
        sim.run_until(until);
        sim.apply(op);
    }
    // Settle: no more faults (a plain server in the way is gone); everything in flight is delivered
    // and acknowledged.
    sim.plain_next = false;
    if sim.link.as_ref().is_some_and(|link| link.plain) {
        sim.cut(true, true);
    } else if sim.client.is_durable() == Some(false) && sim.client.state() == ClientState::Open {
        // Its plain link broke unnoticed.
        sim.client.on_close(sim.now, 1006, "", false);
    }
    let settle = sim.now + 20_000;
    sim.run_until(settle);
    check(&sim);
    sim
}

fn check(sim: &Sim) {
    let end = if sim.closed { ClientState::Closed } else { ClientState::Open };
    assert_eq!(sim.client.state(), end, "the client ends connected, or closed if the user closed it");
    assert!(sim.client.poll_timeout().is_none_or(|t| t > sim.now), "no deadline left due");
    if let Some(persisted) = &sim.persisted {
        assert!(persisted.committing.is_empty(), "every batch committed");
        assert_eq!(persisted.volatile, persisted.durable, "both layers hold the same once all committed");
        assert_eq!(sim.client.unstored(), 0, "everything stored");
        assert!(persisted.durable.messages.is_empty(), "nothing unconfirmed stored: {:?}", persisted.durable.messages);
        for n in &sim.client_ledger.withdrawn {
            assert!(
                !sim.delivered_to_server.contains(n) && !sim.delivered_to_plain.contains(n),
                "message {n}, neither durably stored nor delivered at a kill, was delivered later"
            );
        }
    }
    let to_plain: BTreeSet<u64> = sim.delivered_to_plain.iter().copied().collect();
    assert!(sim.delivered_to_plain.windows(2).all(|w| w[0] < w[1]), "plain: reordered: {:?}", sim.delivered_to_plain);
    for (side, ledger, delivered, elsewhere) in [
        ("client→server", &sim.client_ledger, &sim.delivered_to_server, to_plain),
        ("server→client", &sim.server_ledger, &sim.delivered_to_client, BTreeSet::new()),
    ] {
        // Nothing delivered twice, nothing out of order.
        assert!(delivered.windows(2).all(|w| w[0] < w[1]), "{side}: duplicate or reordered: {delivered:?}");
        let delivered: BTreeSet<u64> = delivered.iter().copied().collect();
        assert!(delivered.is_disjoint(&elsewhere), "{side}: delivered to both a durable and a plain server");
        // Every message sent was delivered or reported lost: nothing is lost silently.
        for n in &ledger.sent {
            assert!(
                delivered.contains(n) || elsewhere.contains(n) || ledger.reported_lost.contains(n),
                "{side}: message {n} lost silently"
            );
        }
        assert!(ledger.unconfirmed.is_empty(), "{side}: still unconfirmed after settling: {:?}", ledger.unconfirmed);
        // Where nothing was reported lost, the session lived throughout: everything, exactly once, in order.
        if ledger.reported_lost.is_empty() && elsewhere.is_empty() {
            let expected = (0..ledger.next).filter(|n| !ledger.withdrawn.contains(n)).collect::<BTreeSet<_>>();
            assert_eq!(delivered, expected, "{side}");
        }
    }
}
