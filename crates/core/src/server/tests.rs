use super::*;
use crate::frame::Frame;

fn frame(f: Frame<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    f.encode(&mut out);
    out
}

fn token(n: u8) -> Token {
    Token([n; 16])
}

fn config() -> EndpointConfig {
    EndpointConfig { ttl_ms: 1_000, max_sessions: 3, ..Default::default() }
}

fn drain(endpoint: &mut Endpoint<&'static str>, id: SessionId, conn: ConnId, now: Millis) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    std::iter::from_fn(|| endpoint.poll_transmit(now, id, conn, &mut buf).map(|_| buf.clone())).collect()
}

/// A session of "ann" on connection 1 that sent `n` messages, all transmitted.
fn with_sent(n: u64) -> (Endpoint<&'static str>, SessionId) {
    let mut endpoint = Endpoint::new(config());
    let accepted = endpoint.hello(0, 1, "ann", None, token(1)).unwrap();
    assert_eq!(
        accepted,
        Accepted { id: accepted.id, status: WelcomeStatus::New, created: true, superseded: None, foreign: false }
    );
    for i in 0..n {
        endpoint.send(0, accepted.id, Payload::from(i.to_string())).unwrap();
    }
    drain(&mut endpoint, accepted.id, 1, 0);
    (endpoint, accepted.id)
}

#[test]
fn a_resume_takes_over_the_session_and_replays_what_the_client_lacks() {
    let (mut endpoint, id) = with_sent(5);
    let accepted = endpoint.hello(10, 2, "ann", Some((token(1), 3)), token(9)).unwrap();
    assert_eq!(
        accepted,
        Accepted { id, status: WelcomeStatus::Resumed, created: false, superseded: Some(1), foreign: false }
    );
    assert_eq!(drain(&mut endpoint, id, 1, 10), Vec::<Vec<u8>>::new(), "the superseded connection drives nothing");
    let sent = drain(&mut endpoint, id, 2, 10);
    assert_eq!(sent[0], frame(Frame::Welcome { status: WelcomeStatus::Resumed, token: token(1), last_received: 0 }));
    assert_eq!(
        sent[1..],
        [
            frame(Frame::Data { seq: 4, payload: PayloadRef::Text("3") }),
            frame(Frame::Data { seq: 5, payload: PayloadRef::Text("4") })
        ]
    );
    assert_eq!(
        endpoint.handle_message(10, id, 1, PayloadRef::Binary(&frame(Frame::Ack { seq: 5 }))),
        Err(InputError::NotAttached)
    );
}

#[test]
fn another_owner_or_an_impossible_resume_point_gets_a_new_session_and_leaves_the_old_one() {
    let (mut endpoint, id) = with_sent(2);
    endpoint.detach(5, id, 1);
    let theft = endpoint.hello(6, 2, "bob", Some((token(1), 0)), token(2)).unwrap();
    assert_eq!((theft.status, theft.created, theft.foreign), (WelcomeStatus::LostRefused, true, true));
    assert_ne!(theft.id, id);
    let future = endpoint.hello(7, 3, "ann", Some((token(1), 9)), token(3)).unwrap();
    assert_eq!((future.status, future.foreign), (WelcomeStatus::LostRefused, false));
    let owner = endpoint.hello(8, 4, "ann", Some((token(1), 2)), token(4)).unwrap();
    assert_eq!((owner.id, owner.status), (id, WelcomeStatus::Resumed));
}

#[test]
fn detached_sessions_expire_after_the_ttl_with_their_unconfirmed_messages() {
    let (mut endpoint, id) = with_sent(2);
    endpoint.detach(100, id, 1);
    assert_eq!(endpoint.poll_timeout(), Some(1_100));
    endpoint.handle_timeout(1_099);
    assert_eq!(endpoint.len(), 1);
    endpoint.handle_timeout(1_100);
    let ended = endpoint.poll_ended().unwrap();
    assert_eq!((ended.id, ended.reason, ended.attached), (id, EndReason::Expired, None));
    assert_eq!(ended.unconfirmed, vec![(1, Payload::from("0")), (2, Payload::from("1"))]);
    let late = endpoint.hello(1_200, 2, "ann", Some((token(1), 0)), token(2)).unwrap();
    assert_eq!(late.status, WelcomeStatus::LostUnknown);
}

#[test]
fn a_resume_after_the_ttl_is_lost_even_before_the_sweep() {
    let (mut endpoint, id) = with_sent(0);
    endpoint.detach(0, id, 1);
    let late = endpoint.hello(1_000, 2, "ann", Some((token(1), 0)), token(2)).unwrap();
    assert_eq!(late.status, WelcomeStatus::LostUnknown);
    assert_eq!(endpoint.poll_ended().map(|e| e.reason), Some(EndReason::Expired));
}

#[test]
fn overflow_and_protocol_errors_leave_tombstones_for_the_ttl() {
    let (mut endpoint, id) = with_sent(0);
    endpoint.end(0, id, EndReason::Overflow);
    let again = endpoint.hello(10, 2, "ann", Some((token(1), 0)), token(2)).unwrap();
    assert_eq!(again.status, WelcomeStatus::LostOverflow);
    endpoint.handle_timeout(2_000);
    let later = endpoint.hello(2_000, 3, "ann", Some((token(1), 0)), token(3)).unwrap();
    assert_eq!(later.status, WelcomeStatus::LostUnknown, "tombstones last one TTL");
}

#[test]
fn repeated_protocol_errors_drop_the_session_but_a_delivery_resets_the_count() {
    let (mut endpoint, id) = with_sent(0);
    let garbage = [0x42];
    let mut conn = 1;
    for round in 0..2 {
        let error = endpoint.handle_message(0, id, conn, PayloadRef::Binary(&garbage)).unwrap_err();
        assert!(matches!(error, InputError::Protocol { session_dropped: false, .. }), "round {round}: {error:?}");
        endpoint.detach(0, id, conn);
        conn += 1;
        assert_eq!(
            endpoint.hello(0, conn, "ann", Some((token(1), 0)), token(9)).unwrap().status,
            WelcomeStatus::Resumed
        );
    }
    let data = frame(Frame::Data { seq: 1, payload: PayloadRef::Text("ok") });
    endpoint.handle_message(0, id, conn, PayloadRef::Binary(&data)).unwrap();
    assert_eq!(endpoint.poll_event(id), Some(ServerEvent::Message(Payload::from("ok"))));
    for round in 0..3 {
        let error = endpoint.handle_message(0, id, conn, PayloadRef::Binary(&garbage)).unwrap_err();
        let InputError::Protocol { session_dropped, .. } = error else { panic!("{error:?}") };
        assert_eq!(session_dropped, round == 2);
        if !session_dropped {
            endpoint.detach(0, id, conn);
            conn += 1;
            assert_eq!(
                endpoint.hello(0, conn, "ann", Some((token(1), 0)), token(9)).unwrap().status,
                WelcomeStatus::Resumed
            );
        }
    }
    let ended = endpoint.poll_ended().unwrap();
    assert_eq!((ended.reason, ended.attached), (EndReason::ProtocolErrors, Some(conn)));
    assert_eq!(endpoint.hello(0, 99, "ann", Some((token(1), 0)), token(8)).unwrap().status, WelcomeStatus::LostRefused);
}

#[test]
fn a_full_endpoint_refuses_without_deciding_anything_and_owner_quotas_hold() {
    let mut endpoint = Endpoint::new(EndpointConfig { max_sessions: 2, max_sessions_per_owner: 1, ..config() });
    let ann = endpoint.hello(0, 1, "ann", None, token(1)).unwrap();
    assert_eq!(endpoint.hello(0, 2, "ann", None, token(2)), Err(Refused::OwnerQuota));
    endpoint.hello(0, 3, "bob", None, token(3)).unwrap();
    assert_eq!(endpoint.hello(0, 4, "cid", Some((token(7), 0)), token(4)), Err(Refused::Full));
    assert_eq!(endpoint.hello(0, 5, "cid", None, token(1)), Err(Refused::Full));
    endpoint.detach(0, ann.id, 1);
    assert_eq!(endpoint.hello(0, 6, "cid", None, token(3)), Err(Refused::Full), "ann's session is kept for its TTL");
    assert_eq!(endpoint.hello(1_000, 6, "cid", None, token(3)), Err(Refused::TokenInUse));
    assert_eq!(
        endpoint.hello(1_000, 6, "cid", None, token(5)).unwrap().status,
        WelcomeStatus::New,
        "the expired one made room"
    );
}

#[test]
fn goodbye_ends_the_session_either_way() {
    let (mut endpoint, id) = with_sent(0);
    endpoint.handle_message(0, id, 1, PayloadRef::Binary(&frame(Frame::Goodbye))).unwrap();
    let ended = endpoint.poll_ended().unwrap();
    assert_eq!((ended.reason, ended.attached), (EndReason::Goodbye, Some(1)));
    let (mut endpoint, id) = with_sent(0);
    endpoint.send(0, id, Payload::from("last")).unwrap();
    endpoint.goodbye(0, id);
    let sent = drain(&mut endpoint, id, 1, 0);
    assert_eq!(sent.last(), Some(&frame(Frame::Goodbye)));
    assert_eq!(endpoint.poll_ended().map(|e| e.reason), Some(EndReason::Closed));
}

#[test]
fn messages_not_yet_polled_survive_the_end() {
    let (mut endpoint, id) = with_sent(0);
    let data = frame(Frame::Data { seq: 1, payload: PayloadRef::Text("last words") });
    endpoint.handle_message(0, id, 1, PayloadRef::Binary(&data)).unwrap();
    endpoint.end(0, id, EndReason::Expired);
    assert_eq!(endpoint.poll_ended().unwrap().delivered, vec![Payload::from("last words")]);
}

#[test]
fn the_buffer_budget_counts_every_session_and_refuses_beyond_it() {
    let mut endpoint = Endpoint::new(EndpointConfig { max_buffered_bytes: 10, ..config() });
    let a = endpoint.hello(0, 1, "ann", None, token(1)).unwrap().id;
    let b = endpoint.hello(0, 2, "bob", None, token(2)).unwrap().id;
    let shared = std::sync::Arc::new(Payload::from("12345"));
    endpoint.send_shared(0, a, shared.clone()).unwrap();
    endpoint.send_shared(0, b, shared).unwrap();
    assert_eq!(endpoint.buffered_bytes(), 10);
    assert!(matches!(endpoint.send(0, a, Payload::from("x")), Err(SendError::BufferFull { .. })));
    assert_eq!(endpoint.hello(0, 3, "cid", None, token(3)), Err(Refused::Budget));
    drain(&mut endpoint, a, 1, 0);
    endpoint.handle_message(0, a, 1, PayloadRef::Binary(&frame(Frame::Ack { seq: 1 }))).unwrap();
    assert_eq!(endpoint.buffered_bytes(), 5, "an ack frees its bytes");
    endpoint.end(0, b, EndReason::Expired);
    assert_eq!(endpoint.buffered_bytes(), 0, "an end frees the rest");
    endpoint.send(0, a, Payload::from("x")).unwrap();
    drain(&mut endpoint, a, 1, 0);
    endpoint.detach(0, a, 1);
    endpoint.hello(0, 4, "ann", Some((token(1), 2)), token(9)).unwrap();
    assert_eq!(endpoint.buffered_bytes(), 0, "a resume point acknowledges");
}

#[test]
fn messages_given_back_come_out_first_in_their_order() {
    let (mut endpoint, id) = with_sent(0);
    for (seq, text) in [(1, "a"), (2, "b"), (3, "c")] {
        let data = frame(Frame::Data { seq, payload: PayloadRef::Text(text) });
        endpoint.handle_message(0, id, 1, PayloadRef::Binary(&data)).unwrap();
    }
    let taken: Vec<Payload> = std::iter::from_fn(|| match endpoint.poll_event(id) {
        Some(ServerEvent::Message(payload)) => Some(payload),
        _ => None,
    })
    .take(2)
    .collect();
    endpoint.unpoll_messages(id, taken).unwrap();
    let order: Vec<ServerEvent> = std::iter::from_fn(|| endpoint.poll_event(id)).collect();
    assert_eq!(order, ["a", "b", "c"].map(|t| ServerEvent::Message(Payload::from(t))));
    endpoint.end(0, id, EndReason::Expired);
    assert_eq!(endpoint.unpoll_messages(id, vec![Payload::from("x")]), Err(vec![Payload::from("x")]));
}

#[test]
fn a_session_restored_from_storage_resumes_where_storage_left_it() {
    let mut endpoint = Endpoint::<&'static str>::new(config());
    let unconfirmed = ["c", "d"].map(|text| std::sync::Arc::new(Payload::from(text))).to_vec();
    let id = endpoint.restore(0, token(4), "ann", Restored { acked: 2, unconfirmed, delivered: 7 }).unwrap();
    assert_eq!(endpoint.restore(0, token(4), "ann", Restored::default()), None, "held already");
    assert_eq!(endpoint.sequence(id), Some(Sequence { delivered: 7, acked: 2, queued: 4, sent: 4 }));
    let accepted = endpoint.hello(1, 1, "ann", Some((token(4), 3)), token(9)).unwrap();
    assert_eq!((accepted.id, accepted.status), (id, WelcomeStatus::Resumed));
    assert_eq!(
        drain(&mut endpoint, id, 1, 1),
        [
            frame(Frame::Welcome { status: WelcomeStatus::Resumed, token: token(4), last_received: 7 }),
            frame(Frame::Data { seq: 4, payload: PayloadRef::Text("d") })
        ]
    );
    let data = frame(Frame::Data { seq: 8, payload: PayloadRef::Text("next") });
    endpoint.handle_message(1, id, 1, PayloadRef::Binary(&data)).unwrap();
    assert_eq!(endpoint.poll_event(id), Some(ServerEvent::Acked { seq: 3 }), "the resume point confirms 3");
    assert_eq!(endpoint.poll_event(id), Some(ServerEvent::Message("next".into())));
}

#[test]
fn with_storage_limits_nothing_unstored_is_acknowledged_or_transmitted() {
    let (mut endpoint, id) = with_sent(0);
    endpoint.set_ack_limit(0, id, 0);
    endpoint.set_send_limit(id, 0);
    endpoint.send(0, id, Payload::from("out")).unwrap();
    let data = frame(Frame::Data { seq: 1, payload: PayloadRef::Text("in") });
    endpoint.handle_message(0, id, 1, PayloadRef::Binary(&data)).unwrap();
    assert_eq!(drain(&mut endpoint, id, 1, 1_000), Vec::<Vec<u8>>::new(), "neither stored yet");
    endpoint.set_send_limit(id, 1);
    endpoint.set_ack_limit(1_000, id, 1);
    assert_eq!(
        drain(&mut endpoint, id, 1, 1_000),
        [frame(Frame::Ack { seq: 1 }), frame(Frame::Data { seq: 1, payload: PayloadRef::Text("out") })]
    );
    // A message that could not be stored is forgotten, and the client's retransmission delivered.
    let data = frame(Frame::Data { seq: 2, payload: PayloadRef::Text("again") });
    endpoint.handle_message(1_000, id, 1, PayloadRef::Binary(&data)).unwrap();
    endpoint.rewind_inbound(id, 1);
    endpoint.handle_message(1_000, id, 1, PayloadRef::Binary(&data)).unwrap();
    assert_eq!(endpoint.sequence(id).unwrap().delivered, 2);
    let resumed = endpoint.hello(1_000, 2, "ann", Some((token(1), 1)), token(9)).unwrap();
    assert_eq!(resumed.status, WelcomeStatus::Resumed);
    assert_eq!(
        drain(&mut endpoint, id, 2, 1_000)[0],
        frame(Frame::Welcome { status: WelcomeStatus::Resumed, token: token(1), last_received: 1 }),
        "the welcome claims only what was stored"
    );
}

#[test]
fn a_moved_session_leaves_no_tombstone() {
    let (mut endpoint, id) = with_sent(1);
    assert!(endpoint.end(0, id, EndReason::Moved));
    let ended = endpoint.poll_ended().unwrap();
    assert_eq!((ended.reason, ended.attached), (EndReason::Moved, Some(1)));
    let accepted = endpoint.hello(1, 2, "ann", Some((token(1), 1)), token(9)).unwrap();
    assert_eq!(accepted.status, WelcomeStatus::LostUnknown);
}
