//! The client core and the server role's `Endpoint` over a simulated faulty link (`sim/mod.rs`),
//! under random schedules: exactly-once in-order delivery across cuts, explicit reporting of
//! everything unconfirmed when a session ends, and the faults that fuzzing found bugs with (a plain
//! server in between, a cut only one side notices, a close during the acknowledgement wait); and
//! the same with a persisted client session, across page reloads and browser kills.

mod sim;

use durable_ws_core::{LostReason, Millis};
use proptest::prelude::*;
use sim::{run, run_persisted, Op};

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

/// Every fault, the user's close among them (rarely: it ends the run's traffic).
fn any_op() -> impl Strategy<Value = (Millis, Op)> {
    prop_oneof![
        40 => op(),
        4 => (0u64..120, any::<bool>().prop_map(|client_notices| Op::HalfCut { client_notices })),
        3 => (0u64..120, Just(Op::Plain)),
        2 => (0u64..120, Just(Op::Expire)),
        1 => (0u64..120, Just(Op::Close)),
    ]
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

    #[test]
    fn half_cuts_are_noticed_and_resumed_without_loss(
        seed: u64, latency in 0u64..30,
        ops in proptest::collection::vec(prop_oneof![
            4 => op(),
            1 => (0u64..120, any::<bool>().prop_map(|client_notices| Op::HalfCut { client_notices })),
        ], 1..80),
    ) {
        let sim = run(seed, latency, Millis::MAX, &ops);
        prop_assert!(sim.sessions_lost.is_empty(), "a cut one side missed still resumes: {:?}", sim.sessions_lost);
    }

    #[test]
    fn plain_servers_closes_and_half_cuts_lose_nothing_silently(
        seed: u64, latency in 0u64..30, ttl in 50u64..2000, ops in proptest::collection::vec(any_op(), 1..80),
    ) {
        let sim = run(seed, latency, ttl, &ops);
        for (reason, _) in &sim.sessions_lost {
            prop_assert!(
                matches!(reason, LostReason::Expired | LostReason::NotDurable | LostReason::Closed),
                "{:?}", reason
            );
        }
    }
}

/// The faults of a persisted session: cuts, stalls, the page dying, the browser dying.
fn persisted_op() -> impl Strategy<Value = (Millis, Op)> {
    prop_oneof![
        12 => op(),
        2 => (0u64..120, Just(Op::Reload)),
        1 => (0u64..120, Just(Op::Kill)),
    ]
}

proptest! {
    // Each case simulates a whole schedule with two storage layers: fewer cases keep the stage short.
    #![proptest_config(ProptestConfig { cases: cases(400), ..ProptestConfig::default() })]

    #[test]
    fn persisted_sessions_survive_reloads_and_kills(
        seed: u64, latency in 0u64..30, storage_latency in 0u64..60,
        ops in proptest::collection::vec(persisted_op(), 1..80),
    ) {
        let sim = run_persisted(seed, latency, Millis::MAX, storage_latency, &ops);
        prop_assert!(sim.sessions_lost.is_empty(), "no expiry: the session survives pages and browsers: {:?}", sim.sessions_lost);
    }

    /// Short schedules: the page or the browser dies while a session is being set up (before its
    /// token, its first messages or deliveries are durable), where the windows are narrow.
    #[test]
    fn persisted_sessions_survive_deaths_while_they_start(
        seed: u64, latency in 0u64..30, storage_latency in 0u64..60,
        ops in proptest::collection::vec((0u64..60, prop_oneof![
            3 => (1u8..4).prop_map(Op::ClientSend),
            2 => (1u8..4).prop_map(Op::ServerSend),
            1 => Just(Op::Cut),
            1 => Just(Op::Reload),
            2 => Just(Op::Kill),
        ]), 1..8),
    ) {
        let sim = run_persisted(seed, latency, Millis::MAX, storage_latency, &ops);
        prop_assert!(sim.sessions_lost.is_empty(), "{:?}", sim.sessions_lost);
    }

    #[test]
    fn persisted_sessions_with_expiry_plain_servers_and_closes_lose_nothing_silently(
        seed: u64, latency in 0u64..30, ttl in 50u64..2000, storage_latency in 0u64..60,
        ops in proptest::collection::vec(prop_oneof![6 => persisted_op(), 1 => any_op()], 1..80),
    ) {
        let sim = run_persisted(seed, latency, ttl, storage_latency, &ops);
        for (reason, _) in &sim.sessions_lost {
            prop_assert!(
                matches!(reason, LostReason::Expired | LostReason::NotDurable | LostReason::Closed),
                "{:?}", reason
            );
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

/// Findings 1 and 2 of the fuzzing campaign as schedules: messages through a plain server, then a
/// durable session (numbered from 1 again); and a close whose reconnect meets a plain server.
#[test]
fn a_plain_server_in_between_then_durable_again_loses_nothing_silently() {
    let ops = [
        (10, Op::ClientSend(3)),
        (50, Op::Plain),
        (0, Op::Cut),
        (50, Op::ClientSend(4)),
        (50, Op::Cut),
        (50, Op::ClientSend(4)),
    ];
    let sim = run(5, 10, Millis::MAX, &ops);
    assert_eq!(sim.delivered_to_plain.len(), 4, "{:?}", sim.delivered_to_plain);
    assert_eq!(sim.delivered_to_server.len(), 7);
    let closing = [(10, Op::ClientSend(3)), (0, Op::Close), (0, Op::Plain), (0, Op::Cut)];
    let sim = run(5, 10, 1_000, &closing);
    assert_eq!(sim.client_ledger.reported_lost.len() + sim.delivered_to_server.len(), 3);
}

#[test]
fn a_half_open_link_is_detected_by_the_heartbeat() {
    let ops = [(50, Op::ClientSend(5)), (10, Op::Stall(5_000)), (0, Op::ClientSend(5))];
    let sim = run(3, 10, Millis::MAX, &ops);
    assert!(sim.resumes >= 1, "the stalled connection was replaced and the session resumed");
    assert_eq!(sim.delivered_to_server, (0..10).collect::<Vec<_>>());
}

/// Found by `persisted_sessions_survive_reloads_and_kills`: a message went out as soon as the WELCOME
/// named a new session, before a position with its token was durable; the browser was killed, the
/// next page restored the message without the token and sent it again in another session.
#[test]
fn a_browser_killed_before_a_new_sessions_token_is_stored_sends_nothing_twice() {
    let sim = run_persisted(5060623456307938855, 28, Millis::MAX, 13, &[(97, Op::ClientSend(1)), (13, Op::Kill)]);
    assert_eq!(sim.kills, 1);
    assert_eq!(sim.delivered_to_server, [0]);
}
