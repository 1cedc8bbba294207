//! A persisted client session (`ClientConfig::persist`) through the public API: what the client hands
//! its driver to store, what it holds back until the driver reports it stored, and how a stored
//! session comes back (`Client::restore`), readable or not.

use durable_ws_core::frame::Frame;
use durable_ws_core::persist::{Position, StorageError, StoreBatch};
use durable_ws_core::{
    Action, BackoffConfig, Client, ClientConfig, ClientState, Event, LostReason, MessageKind, Millis, Payload,
    PayloadRef, Token, WelcomeStatus,
};

const TOKEN: Token = Token([7; 16]);

fn config() -> ClientConfig {
    ClientConfig {
        backoff: BackoffConfig { jitter: false, min_delay_ms: 100, max_delay_ms: 1_000, ..Default::default() },
        persist: true,
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

fn transmitted(client: &mut Client, now: Millis) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    std::iter::from_fn(|| {
        client.poll_transmit(now, &mut buf).map(|kind| {
            assert_eq!(kind, MessageKind::Binary);
            buf.clone()
        })
    })
    .collect()
}

fn data(seq: u64, text: &str) -> Vec<u8> {
    encode(Frame::Data { seq, payload: PayloadRef::Text(text) })
}

fn receive(client: &mut Client, now: Millis, frame: Frame<'_>) {
    client.on_message(now, PayloadRef::Binary(&encode(frame)));
}

fn welcome(status: WelcomeStatus, last_received: u64) -> Frame<'static> {
    Frame::Welcome { status, token: TOKEN, last_received }
}

/// Hands out the next batch and reports it stored at once.
fn store(client: &mut Client, now: Millis) -> StoreBatch {
    let batch = client.poll_store().expect("something to store");
    client.stored(now, batch.id);
    batch
}

/// A persisted client in a new durable session whose position (with its token) is stored.
fn open_client() -> Client {
    let mut client = Client::new(config(), 1, 0, true);
    assert_eq!(client.poll_action(), Some(Action::Connect));
    store(&mut client, 0);
    client.on_open(10, true);
    assert_eq!(transmitted(&mut client, 10), [encode(Frame::Hello { resume: None })]);
    receive(&mut client, 20, welcome(WelcomeStatus::New, 0));
    assert_eq!(events(&mut client), [Event::Open { durable: true }]);
    let batch = store(&mut client, 20);
    assert_eq!(batch.position.and_then(|p| p.token), Some(TOKEN));
    client
}

fn text(s: &str) -> Payload {
    Payload::from(s)
}

#[test]
fn an_unreadable_store_reports_what_it_could_read_and_starts_afresh() {
    let gapped = Position { token: Some(TOKEN), wire_base: 0, acked: 1, delivered: 4, unsent_after: None }.encode();
    let cases = [
        ("dws0::0:0:0", vec![(1, text("a"))], StorageError::Format, vec![(1, text("a"))]),
        ("", vec![], StorageError::Format, vec![]),
        (
            "dws1:zz:0:0:0",
            vec![(1, text("a")), (2, text("b"))],
            StorageError::Corrupt("token"),
            vec![(1, text("a")), (2, text("b"))],
        ),
        ("dws1::0:0", vec![(1, text("a"))], StorageError::Corrupt("delivered"), vec![(1, text("a"))]),
        // A wire base beyond the confirmed messages: they would have had numbers below 1.
        (
            "dws1:07070707070707070707070707070707:5:3:0",
            vec![(4, text("d"))],
            StorageError::Corrupt("wire base"),
            vec![(4, text("d"))],
        ),
        // Message 3 is missing: 2 and 4 are reported (1 was confirmed).
        (
            gapped.as_str(),
            vec![(1, text("a")), (2, text("b")), (4, text("d"))],
            StorageError::Gap(3),
            vec![(2, text("b")), (4, text("d"))],
        ),
        // Numbers that could not go on.
        (
            "dws1::0:18446744073709551614:0",
            vec![(u64::MAX, text("z"))],
            StorageError::Corrupt("sequence numbers"),
            vec![(u64::MAX, text("z"))],
        ),
    ];
    for (position, messages, error, readable) in cases {
        let (mut client, got) = Client::restore(config(), 1, 0, true, position, messages);
        assert_eq!(got, Some(error), "{position}");
        let evs = events(&mut client);
        if readable.is_empty() {
            assert_eq!(evs, [], "nothing readable, nothing to report");
        } else {
            assert_eq!(evs, [Event::SessionLost { reason: LostReason::Storage, unconfirmed: readable }], "{position}");
        }
        assert_eq!(client.stats().sessions_lost, u64::from(!evs.is_empty()));
        // A new session: its first batch voids what storage held, and the HELLO asks for a new one.
        let batch = client.poll_store().expect("a batch");
        assert!(batch.clear && batch.messages.is_empty());
        assert_eq!(batch.position, Some(Position::default()));
        assert_eq!(client.poll_action(), Some(Action::Connect));
        client.on_open(10, true);
        assert_eq!(transmitted(&mut client, 10), [encode(Frame::Hello { resume: None })]);
        // Its messages are numbered from 1 and wait for storage like any.
        assert_eq!(client.send(11, text("new")), Ok(1));
    }
}

#[test]
fn a_restored_session_resumes_and_replays_the_stored_messages() {
    let position = Position { token: Some(TOKEN), wire_base: 0, acked: 1, delivered: 5, unsent_after: None };
    // Message 1 is confirmed (its deletion was not stored yet).
    let stored = vec![(1, text("a")), (2, text("b")), (3, text("c"))];
    let (mut client, error) = Client::restore(config(), 1, 0, true, &position.encode(), stored);
    assert_eq!(error, None);
    assert_eq!(client.stats().session.pending, 2);
    assert_eq!(client.unstored(), 0, "what was read back is stored");
    // Its driver read it back from storage: nothing needs storing before it goes out.
    // Until it resumes, it says that nothing after message 3 went out (a page that dies before then
    // leaves that for the next one).
    let batch = client.poll_store().expect("the position, once");
    let awaiting = Position { unsent_after: Some(3), ..position };
    assert_eq!(batch, StoreBatch { id: batch.id, clear: false, messages: vec![], position: Some(awaiting) });
    assert_eq!(client.poll_store(), None);
    assert_eq!(client.poll_action(), Some(Action::Connect));
    client.on_open(10, true);
    assert_eq!(transmitted(&mut client, 10), [encode(Frame::Hello { resume: Some((TOKEN, 5)) })]);
    receive(&mut client, 20, welcome(WelcomeStatus::Resumed, 1));
    assert_eq!(events(&mut client), [Event::Resumed { replayed: 2 }]);
    // The resume decided the numbering: it is stored before anything goes out.
    assert_eq!(transmitted(&mut client, 20), Vec::<Vec<u8>>::new());
    assert_eq!(store(&mut client, 20).position, Some(position));
    assert_eq!(transmitted(&mut client, 21), [data(2, "b"), data(3, "c")], "replayed");
    // The server's next message follows the stored delivery position.
    receive(&mut client, 30, Frame::Data { seq: 6, payload: PayloadRef::Text("six") });
    receive(&mut client, 31, Frame::Ack { seq: 3 });
    assert_eq!(events(&mut client), [Event::Message(text("six")), Event::Acked { seq: 3 }]);
    let batch = client.poll_store().expect("a batch");
    assert_eq!(batch.position, Some(Position { acked: 3, delivered: 6, ..position }));
    assert!(!batch.clear && batch.messages.is_empty());
    // New messages continue the numbering, and wait for storage.
    assert_eq!(client.send(40, text("d")), Ok(4));
    assert_eq!(transmitted(&mut client, 40), Vec::<Vec<u8>>::new());
    store(&mut client, 41);
    assert_eq!(transmitted(&mut client, 41), [encode(Frame::Ack { seq: 6 }), data(4, "d")]);
}

#[test]
fn a_restored_session_the_server_lost_reports_its_messages() {
    let position = Position { token: Some(TOKEN), wire_base: 0, acked: 0, delivered: 0, unsent_after: None };
    let (mut client, _) = Client::restore(config(), 1, 0, true, &position.encode(), vec![(1, text("a"))]);
    store(&mut client, 0);
    client.poll_action();
    client.on_open(10, true);
    transmitted(&mut client, 10);
    receive(
        &mut client,
        20,
        Frame::Welcome { status: WelcomeStatus::LostUnknown, token: Token([8; 16]), last_received: 0 },
    );
    assert_eq!(
        events(&mut client),
        [
            Event::SessionLost { reason: LostReason::Expired, unconfirmed: vec![(1, text("a"))] },
            Event::Open { durable: true }
        ]
    );
    let batch = client.poll_store().expect("the new session");
    assert!(batch.clear && batch.messages.is_empty());
    assert_eq!(batch.position.and_then(|p| p.token), Some(Token([8; 16])));
}

#[test]
fn a_restored_session_without_a_token_sends_its_messages_in_a_new_session() {
    let position = Position { token: None, wire_base: 0, acked: 0, delivered: 0, unsent_after: None };
    let (mut client, error) = Client::restore(config(), 1, 0, true, &position.encode(), vec![(1, text("a"))]);
    assert_eq!(error, None);
    store(&mut client, 0);
    client.poll_action();
    client.on_open(10, true);
    assert_eq!(transmitted(&mut client, 10), [encode(Frame::Hello { resume: None })]);
    receive(&mut client, 20, welcome(WelcomeStatus::New, 0));
    assert_eq!(transmitted(&mut client, 20), Vec::<Vec<u8>>::new(), "not before the token is stored");
    store(&mut client, 20);
    assert_eq!(transmitted(&mut client, 20), [data(1, "a")]);
}

/// Once the session's token is durably stored, a message goes on the wire as soon as its batch is
/// handed to the driver (whose fast store has it at the end of the task): no wait for the durable
/// commit, which only counts it as stored (`unstored`).
#[test]
fn a_message_goes_out_once_handed_to_storage() {
    let mut client = open_client();
    assert_eq!(client.send(30, text("a")), Ok(1));
    assert_eq!(client.unstored(), 1);
    assert_eq!(transmitted(&mut client, 30), Vec::<Vec<u8>>::new(), "not handed to storage yet");
    let batch = client.poll_store().expect("a batch");
    let messages: Vec<(u64, Payload)> = batch.messages.iter().map(|(seq, p)| (*seq, Payload::clone(p))).collect();
    assert_eq!(messages, [(1, text("a"))]);
    assert_eq!(transmitted(&mut client, 31), [data(1, "a")], "handed out: on the wire");
    assert_eq!(client.unstored(), 1, "not durable yet");
    client.stored(40, batch.id);
    assert_eq!(client.unstored(), 0);
}

/// Before the fix, a new session's messages went out as soon as the WELCOME named it, while the
/// stored position still had no token: a browser killed then restored the messages without it,
/// started another session and delivered them a second time (found by the simulation's
/// `persisted_sessions_survive_reloads_and_kills`).
#[test]
fn a_new_sessions_messages_wait_until_its_token_is_stored() {
    let mut client = Client::new(config(), 1, 0, true);
    client.poll_action();
    client.send(0, text("a")).unwrap();
    let stored = store(&mut client, 0);
    assert_eq!(stored.position.map(|p| p.token), Some(None));
    client.send(1, text("b")).unwrap();
    let early = client.poll_store().expect("b, stored only after the WELCOME");
    client.on_open(10, true);
    assert_eq!(transmitted(&mut client, 10), [encode(Frame::Hello { resume: None })]);
    receive(&mut client, 20, welcome(WelcomeStatus::New, 0));
    assert_eq!(transmitted(&mut client, 20), Vec::<Vec<u8>>::new(), "the token is not stored yet");
    client.stored(21, early.id);
    assert_eq!(transmitted(&mut client, 21), Vec::<Vec<u8>>::new(), "a batch without the token lets nothing through");
    receive(&mut client, 22, Frame::Data { seq: 1, payload: PayloadRef::Text("x") });
    let pending = client.poll_store().expect("the position with the token");
    assert_eq!(pending.position.and_then(|p| p.token), Some(TOKEN));
    client.handle_timeout(100);
    assert_eq!(transmitted(&mut client, 100), Vec::<Vec<u8>>::new(), "no ACK either");
    client.stored(110, pending.id);
    assert_eq!(transmitted(&mut client, 110), [encode(Frame::Ack { seq: 1 }), data(1, "a"), data(2, "b")]);
}

#[test]
fn acknowledges_only_up_to_the_stored_delivery_position() {
    let mut client = open_client();
    receive(&mut client, 30, Frame::Data { seq: 1, payload: PayloadRef::Text("x") });
    receive(&mut client, 31, Frame::Data { seq: 2, payload: PayloadRef::Text("y") });
    assert_eq!(events(&mut client), [Event::Message(text("x")), Event::Message(text("y"))]);
    client.handle_timeout(1_000);
    assert_eq!(transmitted(&mut client, 1_000), Vec::<Vec<u8>>::new(), "delivered, not stored");
    let batch = client.poll_store().expect("a batch");
    assert_eq!(batch.position.map(|p| p.delivered), Some(2));
    receive(&mut client, 1_010, Frame::Data { seq: 3, payload: PayloadRef::Text("z") });
    assert_eq!(events(&mut client), [Event::Message(text("z"))]);
    client.stored(1_020, batch.id);
    assert_eq!(transmitted(&mut client, 1_020), [encode(Frame::Ack { seq: 2 })], "not 3: not stored");
    // A new connection claims only what is stored, too.
    client.on_close(1_030, 1006, "", false);
    client.handle_timeout(1_130);
    assert_eq!(client.poll_action(), Some(Action::Connect));
    client.on_open(1_140, true);
    assert_eq!(transmitted(&mut client, 1_140), [encode(Frame::Hello { resume: Some((TOKEN, 2)) })]);
    store(&mut client, 1_150);
    receive(&mut client, 1_160, welcome(WelcomeStatus::Resumed, 0));
    receive(&mut client, 1_170, Frame::Data { seq: 3, payload: PayloadRef::Text("z") });
    assert_eq!(events(&mut client).iter().filter(|e| matches!(e, Event::Message(_))).count(), 0, "a duplicate");
    client.handle_timeout(1_200);
    assert_eq!(transmitted(&mut client, 1_200), [encode(Frame::Ack { seq: 3 })]);
}

#[test]
fn close_ends_with_a_batch_that_clears_everything() {
    let mut client = open_client();
    client.send(30, text("a")).unwrap();
    store(&mut client, 30);
    assert_eq!(transmitted(&mut client, 30), [data(1, "a")]);
    client.close(40, 1000, "bye");
    receive(&mut client, 50, Frame::Ack { seq: 1 });
    assert_eq!(transmitted(&mut client, 50), [encode(Frame::Goodbye)]);
    assert_eq!(client.poll_action(), Some(Action::Close { code: 1000, reason: "bye".into() }));
    assert_eq!(client.state(), ClientState::Closed);
    let last = client.poll_store().expect("a last batch");
    assert_eq!(last, StoreBatch { id: last.id, clear: true, messages: vec![], position: None });
    assert_eq!(client.poll_store(), None, "nothing after it");
    // Closed with a message unconfirmed: reported, and storage cleared all the same.
    let mut client = open_client();
    client.send(30, text("a")).unwrap();
    client.close(40, 1000, "bye");
    client.handle_timeout(40 + 2_000);
    assert_eq!(transmitted(&mut client, 2_040), [encode(Frame::Goodbye)], "never stored, never transmitted");
    let evs = events(&mut client);
    assert_eq!(evs[0], Event::SessionLost { reason: LostReason::Closed, unconfirmed: vec![(1, text("a"))] });
    let last = client.poll_store().expect("a last batch");
    assert_eq!(last, StoreBatch { id: last.id, clear: true, messages: vec![], position: None });
}

#[test]
fn leave_says_goodbye_at_once() {
    for persist in [false, true] {
        let mut client = if persist {
            open_client()
        } else {
            let mut client = Client::new(ClientConfig { persist: false, ..config() }, 1, 0, true);
            client.poll_action();
            client.on_open(10, true);
            transmitted(&mut client, 10);
            receive(&mut client, 20, welcome(WelcomeStatus::New, 0));
            events(&mut client);
            client
        };
        client.send(30, text("a")).unwrap();
        if persist {
            store(&mut client, 30);
        }
        assert_eq!(transmitted(&mut client, 30), [data(1, "a")]);
        client.leave(40);
        assert_eq!(transmitted(&mut client, 40), [encode(Frame::Goodbye)], "without waiting for the ACK");
        assert_eq!(client.poll_action(), Some(Action::Close { code: 1000, reason: String::new() }));
        assert_eq!(
            events(&mut client),
            [
                Event::SessionLost { reason: LostReason::Closed, unconfirmed: vec![(1, text("a"))] },
                Event::Closed { code: 1000, reason: String::new(), was_clean: true, will_reconnect: false },
            ]
        );
        assert_eq!(client.state(), ClientState::Closed);
    }
}

#[test]
fn a_persisted_client_that_gave_up_goes_on_after_reconnect_now() {
    let mut client = open_client();
    client.on_close(30, 4403, "forbidden", true);
    assert_eq!(client.state(), ClientState::Closed);
    events(&mut client);
    let batch = store(&mut client, 30);
    assert!(batch.clear);
    client.reconnect_now(40);
    assert_eq!(client.poll_action(), Some(Action::Connect));
    client.send(41, text("a")).unwrap();
    let batch = store(&mut client, 41);
    assert!(batch.position.is_some(), "a client going on stores its session again");
    client.on_open(50, true);
    assert_eq!(transmitted(&mut client, 50), [encode(Frame::Hello { resume: None })]);
    receive(&mut client, 60, welcome(WelcomeStatus::New, 0));
    store(&mut client, 60);
    assert_eq!(transmitted(&mut client, 60), [data(1, "a")]);
}

/// A browser killed after messages went on the wire but before their batch was durable: the restored
/// session holds fewer messages than the server got. The resume confirms all it holds, and the
/// next message is numbered after the server's, so it is neither dropped as a duplicate nor lost.
#[test]
fn a_restored_session_behind_the_server_goes_on_after_the_servers_numbers() {
    let position = Position { token: Some(TOKEN), wire_base: 0, acked: 2, delivered: 0, unsent_after: None };
    let stored = vec![(3, text("c")), (4, text("d"))];
    let (mut client, error) = Client::restore(config(), 1, 0, true, &position.encode(), stored);
    assert_eq!(error, None);
    client.send(5, text("new")).unwrap();
    client.poll_action();
    client.on_open(10, true);
    assert_eq!(transmitted(&mut client, 10), [encode(Frame::Hello { resume: Some((TOKEN, 0)) })]);
    // The server got 1–6: 5 and 6 were on the wire, never durably stored.
    receive(&mut client, 20, welcome(WelcomeStatus::Resumed, 6));
    assert_eq!(events(&mut client), [Event::Acked { seq: 4 }, Event::Resumed { replayed: 0 }]);
    store(&mut client, 20);
    assert_eq!(transmitted(&mut client, 21), [data(7, "new")], "numbered after the server's 6");
    receive(&mut client, 30, Frame::Ack { seq: 7 });
    assert_eq!(events(&mut client), [Event::Acked { seq: 5 }], "the application's number for it");
    assert_eq!(client.stats().session.pending, 0);
}
