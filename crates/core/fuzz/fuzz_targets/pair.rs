//! The client and the server `Endpoint` together over a link that cuts, cuts where one side does
//! not notice, stalls, turns plain (a server or proxy that does not select `durable.v1`) and expires
//! sessions, with the user's close: the schedules of `crates/core/tests/simulation.rs`, found by
//! coverage instead of at random. The simulation (`tests/sim/mod.rs`, shared) checks exactly-once
//! in-order delivery, explicit reports of everything unconfirmed, bounded buffers and that all
//! settles; here, also that a session is lost only for an expiry (or a TTL), a plain server or a close.
#![no_main]

#[allow(dead_code)]
#[path = "../../tests/sim/mod.rs"]
mod sim;

use durable_ws_core::{LostReason, Millis};
use libfuzzer_sys::fuzz_target;
use sim::{run, Op};

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.iter().copied();
    let (Some(seed), Some(latency), Some(ttl)) = (bytes.next(), bytes.next(), bytes.next()) else { return };
    let mut ops = Vec::new();
    while let (Some(gap), Some(kind), Some(arg)) = (bytes.next(), bytes.next(), bytes.next()) {
        let op = match kind % 16 {
            0..=3 => Op::ClientSend(arg % 11 + 1),
            4..=7 => Op::ServerSend(arg % 11 + 1),
            8 | 9 => Op::Cut,
            10 => Op::HalfCut { client_notices: arg & 1 == 0 },
            11 => Op::Stall(50 + u64::from(arg) * 4),
            12 => Op::Expire,
            13 => Op::Plain,
            14 => Op::Close,
            _ => Op::ClientSend(1),
        };
        ops.push((u64::from(gap % 120), op));
        if ops.len() == 80 {
            break;
        }
    }
    let has = |wanted: fn(&Op) -> bool| ops.iter().any(|(_, op)| wanted(op));
    let (expire, plain, close) =
        (has(|op| matches!(op, Op::Expire)), has(|op| matches!(op, Op::Plain)), has(|op| matches!(op, Op::Close)));
    // A closed client may leave its session on the server, which then only a TTL ends.
    let ttl = if ttl < 128 && !close { Millis::MAX } else { 50 + u64::from(ttl) * 8 };
    let sim = run(u64::from(seed), u64::from(latency % 30), ttl, &ops);
    // A session is lost only for a fault that ends it: never for a cut, a half cut or a stall.
    for (reason, _) in &sim.sessions_lost {
        let cause = match reason {
            LostReason::Expired => expire || ttl != Millis::MAX,
            LostReason::NotDurable => plain,
            LostReason::Closed => close,
            _ => false,
        };
        assert!(cause, "session lost ({reason:?}) without its cause: {ops:?}");
    }
});
