//! What coverage-guided fuzzing (and reading around it) found at the core's edges, one scenario a
//! test, through the public API: the client machine, the server `Endpoint`, or both wired together.

use durable_ws_core::frame::Frame;
use durable_ws_core::server::{EndReason, Endpoint, EndpointConfig, Restored, SessionId};
use durable_ws_core::{
    Action, BackoffConfig, Client, ClientConfig, ClientState, Event, HeartbeatConfig, LostReason, MessageKind, Millis,
    Payload, PayloadRef, SessionConfig, Token, WelcomeStatus,
};

const TOKEN: Token = Token([7; 16]);

fn config() -> ClientConfig {
    ClientConfig {
        backoff: BackoffConfig { jitter: false, min_delay_ms: 100, max_delay_ms: 1_000, ..Default::default() },
        ..Default::default()
    }
}

fn encode(frame: Frame<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    frame.encode(&mut out);
    out
}

fn events(client: &mut Client) -> Vec<Event> {
    std::iter::from_fn(|| client.poll_event()).collect()
}

fn transmitted(client: &mut Client, now: Millis) -> Vec<(MessageKind, Vec<u8>)> {
    let mut buf = Vec::new();
    std::iter::from_fn(|| client.poll_transmit(now, &mut buf).map(|kind| (kind, buf.clone()))).collect()
}

fn server_frames(endpoint: &mut Endpoint<()>, now: Millis, id: SessionId, conn: u64) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    std::iter::from_fn(|| endpoint.poll_transmit(now, id, conn, &mut buf).map(|_| buf.clone())).collect()
}

/// Delivers the client's frames to the endpoint.
fn to_server(endpoint: &mut Endpoint<()>, now: Millis, id: SessionId, conn: u64, frames: &[(MessageKind, Vec<u8>)]) {
    for (_, bytes) in frames {
        endpoint.handle_message(now, id, conn, PayloadRef::Binary(bytes)).expect("a valid frame");
    }
}

/// A client in a new durable session (token `TOKEN`) that sent message 1, "a", at 30.
fn durable_client_with_one_sent() -> Client {
    let mut client = Client::new(config(), 1, 0, true);
    client.poll_action();
    client.on_open(10, true);
    transmitted(&mut client, 10);
    let welcome = encode(Frame::Welcome { status: WelcomeStatus::New, token: TOKEN, last_received: 0 });
    client.on_message(20, PayloadRef::Binary(&welcome));
    client.send(30, Payload::from("a")).unwrap();
    transmitted(&mut client, 30);
    client
}

fn reconnect(client: &mut Client, now: Millis) {
    let ClientState::Reconnecting { at } = client.state() else { panic!("not reconnecting: {:?}", client.state()) };
    client.handle_timeout(at.max(now));
    assert_eq!(client.poll_action(), Some(Action::Connect));
}

/// Finding 1: a plain connection numbered (and confirmed) two messages; the next, durable
/// connection's new session must number from 1, or the server sees a gap and the pair loops.
#[test]
fn plain_then_durable_numbers_the_new_session_from_one() {
    let mut client = Client::new(config(), 1, 0, true);
    assert_eq!(client.poll_action(), Some(Action::Connect));
    client.on_open(10, false);
    client.send(10, Payload::from("a")).unwrap();
    client.send(10, Payload::from("b")).unwrap();
    let plain = transmitted(&mut client, 10);
    assert_eq!(plain, [(MessageKind::Text, b"a".to_vec()), (MessageKind::Text, b"b".to_vec())]);
    client.on_close(20, 1006, "", false);
    let queued = client.send(20, Payload::from("c")).unwrap();
    assert_eq!(queued, 3, "send keeps numbering on the client's side");
    reconnect(&mut client, 20);
    client.on_open(200, true);

    let mut endpoint = Endpoint::<()>::new(EndpointConfig::default());
    let hello = transmitted(&mut client, 200);
    assert_eq!(hello, [(MessageKind::Binary, encode(Frame::Hello { resume: None }))]);
    let accepted = endpoint.hello(200, 1, (), None, TOKEN).unwrap();
    for welcome in server_frames(&mut endpoint, 200, accepted.id, 1) {
        client.on_message(210, PayloadRef::Binary(&welcome));
    }
    let data = transmitted(&mut client, 210);
    assert_eq!(data, [(MessageKind::Binary, encode(Frame::Data { seq: 1, payload: PayloadRef::Text("c") }))]);
    to_server(&mut endpoint, 220, accepted.id, 1, &data);
    assert_eq!(endpoint.poll_event(accepted.id), Some(durable_ws_core::server::ServerEvent::Message("c".into())));
    for ack in server_frames(&mut endpoint, 1_000, accepted.id, 1) {
        client.on_message(1_010, PayloadRef::Binary(&ack));
    }
    let evs = events(&mut client);
    assert!(evs.contains(&Event::Acked { seq: 3 }), "the acknowledgement of wire number 1 confirms send's 3: {evs:?}");
    assert_eq!(client.stats().session.pending, 0);

    // A resume after a cut counts in the session's own numbers too.
    client.send(1_020, Payload::from("d")).unwrap();
    to_server(&mut endpoint, 1_020, accepted.id, 1, &transmitted(&mut client, 1_020));
    client.on_close(1_030, 1006, "", false);
    endpoint.detach(1_030, accepted.id, 1);
    reconnect(&mut client, 1_030);
    client.on_open(1_200, true);
    let hello = transmitted(&mut client, 1_200);
    let Ok(Frame::Hello { resume }) = Frame::decode(&hello[0].1) else { panic!("{hello:?}") };
    let resumed = endpoint.hello(1_200, 2, (), resume, Token([8; 16])).unwrap();
    assert_eq!(resumed.status, WelcomeStatus::Resumed);
    for frame in server_frames(&mut endpoint, 1_200, resumed.id, 2) {
        client.on_message(1_210, PayloadRef::Binary(&frame));
    }
    let evs = events(&mut client);
    assert!(evs.contains(&Event::Acked { seq: 4 }) && evs.contains(&Event::Resumed { replayed: 0 }), "{evs:?}");
}

/// Finding 2: `close()` waits for acknowledgements, the link drops, and the reconnect that is to
/// collect them lands on a plain server: the close must finish instead of waiting forever.
#[test]
fn close_then_reconnect_to_a_plain_server_finishes_the_close() {
    let mut client = durable_client_with_one_sent();
    events(&mut client);
    client.close(40, 1000, "bye");
    client.on_close(50, 1006, "", false);
    assert_eq!(client.poll_action(), Some(Action::Connect));
    client.on_open(60, false);
    assert!(transmitted(&mut client, 60).is_empty());
    assert_eq!(client.poll_action(), Some(Action::Close { code: 1000, reason: "bye".into() }));
    let evs = events(&mut client);
    assert_eq!(
        evs[0],
        Event::SessionLost { reason: LostReason::NotDurable, unconfirmed: vec![(1, Payload::from("a"))] }
    );
    assert!(matches!(evs.last(), Some(Event::Closed { code: 1000, will_reconnect: false, .. })), "{evs:?}");
    assert_eq!(client.state(), ClientState::Closed);
    assert_eq!(client.poll_timeout(), None, "no deadline left");
}

/// Finding 3: right after a resume, before the replay, a (faulty) client acknowledges everything
/// ever sent; what the server queues afterwards must still go out on that connection.
#[test]
fn an_ack_beyond_the_resume_point_does_not_stall_the_server() {
    let mut endpoint = Endpoint::<()>::new(EndpointConfig::default());
    let id = endpoint.hello(0, 1, (), None, TOKEN).unwrap().id;
    for text in ["1", "2", "3"] {
        endpoint.send(0, id, Payload::from(text)).unwrap();
    }
    assert_eq!(server_frames(&mut endpoint, 0, id, 1).len(), 4, "the welcome and three messages");
    endpoint.detach(10, id, 1);
    let resumed = endpoint.hello(20, 2, (), Some((TOKEN, 1)), Token([8; 16])).unwrap();
    assert_eq!(resumed.status, WelcomeStatus::Resumed);
    endpoint.handle_message(20, id, 2, PayloadRef::Binary(&encode(Frame::Ack { seq: 3 }))).unwrap();
    endpoint.send(20, id, Payload::from("4")).unwrap();
    let frames = server_frames(&mut endpoint, 20, id, 2);
    assert_eq!(frames.len(), 2, "the welcome, then message 4: {frames:?}");
    assert_eq!(frames[1], encode(Frame::Data { seq: 4, payload: PayloadRef::Text("4") }));
}

/// Finding 4: the GOODBYE went out, and the driver stopped polling (its queue was full) before the
/// poll that ends the session: a resume must not bring the session back (§5.7).
#[test]
fn a_session_whose_goodbye_went_out_cannot_be_resumed() {
    let mut endpoint = Endpoint::<()>::new(EndpointConfig::default());
    let id = endpoint.hello(0, 1, (), None, TOKEN).unwrap().id;
    let mut buf = Vec::new();
    assert!(endpoint.poll_transmit(0, id, 1, &mut buf).is_some(), "the welcome");
    endpoint.goodbye(0, id);
    assert!(endpoint.poll_transmit(0, id, 1, &mut buf).is_some());
    assert_eq!(buf, encode(Frame::Goodbye));
    // No further poll: the driver's queue is full.
    let accepted = endpoint.hello(10, 2, (), Some((TOKEN, 0)), Token([8; 16])).unwrap();
    assert_eq!(accepted.status, WelcomeStatus::LostUnknown);
    assert!(accepted.created);
    let ended = endpoint.poll_ended().expect("the old session ended");
    assert_eq!((ended.id, ended.reason, ended.attached), (id, EndReason::Closed, Some(1)));
}

/// Read, not fuzzed: a heartbeat interval of 0 must not leave a deadline due after each timeout
/// (a driver waiting on it would spin, pinging on every turn).
#[test]
fn a_zero_heartbeat_interval_leaves_no_deadline_due() {
    let session =
        SessionConfig { heartbeat: Some(HeartbeatConfig { interval_ms: 0, timeout_ms: 50 }), ..Default::default() };
    let mut client = Client::new(ClientConfig { session, ..config() }, 1, 0, true);
    client.poll_action();
    client.on_open(10, true);
    transmitted(&mut client, 10);
    let welcome = encode(Frame::Welcome { status: WelcomeStatus::New, token: TOKEN, last_received: 0 });
    client.on_message(10, PayloadRef::Binary(&welcome));
    for now in 10..20 {
        client.handle_timeout(now);
        let pings = transmitted(&mut client, now);
        assert!(pings.len() <= 1, "{pings:?}");
        assert!(client.poll_timeout().is_some_and(|at| at > now), "due again at {now}: {:?}", client.poll_timeout());
    }
}

/// Read, then fuzzed (`endpoint`, restores with any numbers): a stored session whose numbers leave
/// no room (corrupt storage) is refused rather than overflowing; one at the last numbers there are
/// takes no more messages (`BufferFull`), and takes DATA at the last delivery position as duplicates.
#[test]
fn a_restored_session_at_the_end_of_the_numbers_is_refused_or_bounded() {
    let mut endpoint = Endpoint::<()>::new(EndpointConfig::default());
    let beyond = Restored { acked: u64::MAX, unconfirmed: vec![Payload::from("x").into()], delivered: 0 };
    assert_eq!(endpoint.restore(0, TOKEN, (), beyond), None);
    let full = Restored { acked: u64::MAX - 1, unconfirmed: vec![Payload::from("x").into()], delivered: 0 };
    assert_eq!(endpoint.restore(0, TOKEN, (), full), None);

    let last =
        Restored { acked: u64::MAX - 4, unconfirmed: vec![Payload::from("x").into(); 2], delivered: u64::MAX - 2 };
    let id = endpoint.restore(0, TOKEN, (), last).expect("room for one more message");
    assert!(endpoint.has_room(id, 1));
    assert_eq!(endpoint.send(0, id, Payload::from("y")), Ok(u64::MAX - 1));
    assert!(!endpoint.has_room(id, 1));
    assert!(matches!(endpoint.send(0, id, Payload::from("z")), Err(durable_ws_core::SendError::BufferFull { .. })));

    let accepted = endpoint.hello(0, 1, (), Some((TOKEN, u64::MAX - 4)), Token([8; 16])).unwrap();
    assert_eq!((accepted.id, accepted.status), (id, WelcomeStatus::Resumed));
    for seq in [u64::MAX - 1, u64::MAX, u64::MAX, 5] {
        let data = encode(Frame::Data { seq, payload: PayloadRef::Text("c") });
        endpoint.handle_message(0, id, 1, PayloadRef::Binary(&data)).expect("delivered, or a duplicate");
    }
    assert_eq!(endpoint.stats(id).unwrap().received, 2);
    assert_eq!(endpoint.stats(id).unwrap().duplicates_dropped, 2);
}

/// Found by the `endpoint` target: a client message arriving after the server's own GOODBYE went
/// out ended the session as if the client had said goodbye.
#[test]
fn a_client_message_after_the_servers_goodbye_ends_the_session_as_closed() {
    let mut endpoint = Endpoint::<()>::new(EndpointConfig::default());
    let id = endpoint.hello(0, 1, (), None, TOKEN).unwrap().id;
    endpoint.goodbye(0, id);
    let mut buf = Vec::new();
    while endpoint.poll_transmit(0, id, 1, &mut buf).is_some() && buf != encode(Frame::Goodbye) {}
    assert_eq!(buf, encode(Frame::Goodbye));
    let data = encode(Frame::Data { seq: 1, payload: PayloadRef::Text("late") });
    endpoint.handle_message(1, id, 1, PayloadRef::Binary(&data)).unwrap();
    let ended = endpoint.poll_ended().expect("ended");
    assert_eq!(ended.reason, EndReason::Closed, "the server said goodbye, not the client");
    assert_eq!(ended.delivered, [Payload::from("late")]);
}

/// Read, not fuzzed: times near the end of the clock saturate instead of overflowing.
#[test]
fn deadlines_near_the_end_of_time_saturate() {
    let start = Millis::MAX - 5;
    let mut client = Client::new(config(), 1, start, true);
    assert_eq!(client.poll_timeout(), Some(Millis::MAX), "the connect timeout");
    client.poll_action();
    client.on_open(start, true);
    transmitted(&mut client, start);
    let welcome = encode(Frame::Welcome { status: WelcomeStatus::New, token: TOKEN, last_received: 0 });
    client.on_message(start, PayloadRef::Binary(&welcome));
    client.send(start, Payload::from("a")).unwrap();
    transmitted(&mut client, start);
    client.close(start, 1000, "");
    client.on_close(start + 1, 1006, "", false);
    assert_eq!(client.poll_action(), Some(Action::Connect));
    let mut endpoint = Endpoint::<()>::new(EndpointConfig { ttl_ms: Millis::MAX, ..Default::default() });
    let id = endpoint.hello(start, 1, (), None, TOKEN).unwrap().id;
    endpoint.detach(start, id, 1);
    assert_eq!(endpoint.poll_timeout(), Some(Millis::MAX));
    endpoint.handle_timeout(Millis::MAX - 1);
    assert_eq!(endpoint.len(), 1, "a TTL that reaches past the end of time expires at its end");
}

/// Beyond the findings: a `Welcome(Resumed)` the client cannot accept would come again on every
/// reconnect, so the session ends there, reported, and the next `Hello` asks for a new one.
#[test]
fn a_resume_the_client_cannot_accept_ends_the_session_explicitly() {
    let mut client = durable_client_with_one_sent();
    client.on_close(40, 1006, "", false);
    events(&mut client);
    reconnect(&mut client, 40);
    client.on_open(200, true);
    transmitted(&mut client, 200);
    let future = encode(Frame::Welcome { status: WelcomeStatus::Resumed, token: TOKEN, last_received: 5 });
    client.on_message(210, PayloadRef::Binary(&future));
    assert_eq!(client.poll_action(), Some(Action::Close { code: 4002, reason: "protocol error".into() }));
    let evs = events(&mut client);
    assert!(
        evs.contains(&Event::SessionLost { reason: LostReason::Refused, unconfirmed: vec![(1, Payload::from("a"))] }),
        "{evs:?}"
    );
    reconnect(&mut client, 210);
    client.on_open(400, true);
    assert_eq!(transmitted(&mut client, 400), [(MessageKind::Binary, encode(Frame::Hello { resume: None }))]);
}

/// ... but a client that asked for no session has none to lose: its queued messages wait for the
/// next connection.
#[test]
fn a_resumed_welcome_to_a_client_without_a_session_loses_nothing() {
    let mut client = Client::new(config(), 1, 0, true);
    client.poll_action();
    client.send(5, Payload::from("queued")).unwrap();
    client.on_open(10, true);
    transmitted(&mut client, 10);
    let resumed = encode(Frame::Welcome { status: WelcomeStatus::Resumed, token: TOKEN, last_received: 0 });
    client.on_message(20, PayloadRef::Binary(&resumed));
    assert_eq!(client.poll_action(), Some(Action::Close { code: 4002, reason: "protocol error".into() }));
    let evs = events(&mut client);
    assert!(!evs.iter().any(|e| matches!(e, Event::SessionLost { .. })), "{evs:?}");
    assert_eq!(client.stats().session.pending, 1);
}

/// (`restore`) A stored wire base beyond the confirmed messages overflowed the wire numbering
/// (`local − wire_base`) when the client checked the WELCOME(Resumed) answering its HELLO. Such a
/// base is legitimate now (a session rebased after the server got more than storage kept wraps it
/// below zero): the numbering wraps, and the session resumes with consistent numbers.
#[test]
fn a_stored_wire_base_beyond_the_confirmed_messages_resumes_with_wrapping_numbers() {
    use durable_ws_core::persist::Position;
    let position =
        Position { token: Some(TOKEN), wire_base: u64::MAX - 25, acked: 0, delivered: 0, unsent_after: None };
    let (mut client, error) =
        Client::restore(config(), 1, 0, true, &position.encode(), vec![(1, Payload::from("stored"))]);
    assert_eq!(error, None);
    client.poll_action();
    client.on_open(10, true);
    assert_eq!(
        transmitted(&mut client, 10),
        [(MessageKind::Binary, encode(Frame::Hello { resume: Some((TOKEN, 0)) }))]
    );
    // Message 1 is wire number 27; the server has 26.
    let welcome = encode(Frame::Welcome { status: WelcomeStatus::Resumed, token: TOKEN, last_received: 26 });
    client.on_message(20, PayloadRef::Binary(&welcome));
    assert_eq!(events(&mut client), [Event::Resumed { replayed: 1 }]);
    assert_eq!(transmitted(&mut client, 20), [], "not before the resumed position is stored");
    let batch = client.poll_store().expect("the resumed position");
    client.stored(20, batch.id);
    let data = transmitted(&mut client, 20);
    assert_eq!(data, [(MessageKind::Binary, encode(Frame::Data { seq: 27, payload: PayloadRef::Text("stored") }))]);
}

/// (`restore`) A stored position without a server session but with deliveries counted (corrupt:
/// they count within a session, and every way out of one resets them) was restored as it was. Its
/// HELLO asked for a new session, whose first messages the client then dropped as duplicates of
/// those deliveries (lost silently) while acknowledging a number the server never sent. Now
/// `Client::restore` refuses it.
#[test]
fn a_stored_position_with_deliveries_but_no_session_is_refused() {
    use durable_ws_core::persist::{Position, StorageError};
    let position = Position { token: None, wire_base: 0, acked: 0, delivered: 40, unsent_after: None };
    let (mut client, error) =
        Client::restore(config(), 1, 0, true, &position.encode(), vec![(1, Payload::from("stored"))]);
    assert_eq!(error, Some(StorageError::Corrupt("delivered")));
    assert_eq!(
        events(&mut client),
        [Event::SessionLost { reason: LostReason::Storage, unconfirmed: vec![(1, Payload::from("stored"))] }]
    );
    let batch = client.poll_store().expect("a batch");
    client.stored(0, batch.id);
    client.poll_action();
    client.on_open(10, true);
    transmitted(&mut client, 10);
    let welcome = encode(Frame::Welcome { status: WelcomeStatus::New, token: TOKEN, last_received: 0 });
    client.on_message(20, PayloadRef::Binary(&welcome));
    let batch = client.poll_store().expect("the new session");
    client.stored(20, batch.id);
    let first = encode(Frame::Data { seq: 1, payload: PayloadRef::Text("first") });
    client.on_message(30, PayloadRef::Binary(&first));
    assert_eq!(events(&mut client), [Event::Open { durable: true }, Event::Message(Payload::from("first"))]);
}
