//! The cases. Each opens its own sessions (the bystander excepted), so they are independent
//! of each other and of their order; names are `group/what`, sections refer to
//! docs/PROTOCOL.md.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use durable_ws_core::frame::Frame;
use durable_ws_core::{close_code, PayloadRef, Token, WelcomeStatus};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::conn::{Conn, Got, OpenError};
use super::{http_post, Case, CaseResultOf, Config, Ctx, Verdict, SUBPROTOCOL};

macro_rules! fail {
    ($($arg:tt)*) => { return Err(Verdict::Fail(format!($($arg)*))) };
}

macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => { if !$cond { fail!($($arg)*) } };
}

/// Adds context to a failure.
fn context<T>(result: Result<T, Verdict>, what: &str) -> Result<T, Verdict> {
    result.map_err(|verdict| match verdict {
        Verdict::Fail(why) => Verdict::Fail(format!("{what}: {why}")),
        skip => skip,
    })
}

fn quick(config: &Config) -> Duration {
    config.step * 3
}

fn longer(config: &Config) -> Duration {
    config.step * 6
}

fn case<F, Fut>(name: &'static str, section: &'static str, bound: fn(&Config) -> Duration, body: F) -> Case
where
    F: Fn(Arc<Ctx>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CaseResultOf> + Send + 'static,
{
    Case { name, section, slow: false, bound, body: Box::new(move |ctx| Box::pin(body(ctx))) }
}

fn slow<F, Fut>(name: &'static str, section: &'static str, bound: fn(&Config) -> Duration, body: F) -> Case
where
    F: Fn(Arc<Ctx>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CaseResultOf> + Send + 'static,
{
    Case { slow: true, ..case(name, section, bound, body) }
}

const PASS: CaseResultOf = Ok(None);

fn note(text: impl Into<String>) -> CaseResultOf {
    Ok(Some(text.into()))
}

pub(super) fn all() -> Vec<Case> {
    let mut cases = vec![
        case("negotiation/selects-durable.v1", "§2", quick, selects_durable),
        case("negotiation/selects-durable.v1-among-others", "§2", quick, selects_among_others),
        case("negotiation/nothing-selected-unless-offered", "§2", quick, nothing_unless_offered),
        case("handshake/server-waits-for-hello", "§5.1", quick, server_waits_for_hello),
        case("handshake/welcome-new", "§4.2 §5.1", quick, welcome_new),
        case("handshake/fresh-tokens", "§9", quick, fresh_tokens),
    ];
    for &(name, bytes) in FIRST_FRAMES {
        cases.push(case(name, "§5.1", quick, move |ctx| {
            first_frame(ctx, FirstFrame::Binary(bytes), close_code::PROTOCOL_ERROR)
        }));
    }
    cases.push(case("handshake/first-frame/text-message", "§3 §5.1", quick, |ctx| {
        first_frame(ctx, FirstFrame::Text(b"hello"), close_code::PROTOCOL_ERROR)
    }));
    cases.push(case("handshake/first-frame/text-message-bad-utf8", "§3 §7", quick, |ctx| {
        first_frame(ctx, FirstFrame::Text(&[0x68, 0xff, 0xfe]), close_code::INVALID_PAYLOAD)
    }));
    cases.extend([
        case("data/echo-text", "§4.3", quick, |ctx| echo_kinds(ctx, &[PayloadRef::Text("hi")])),
        case("data/echo-binary", "§4.3", quick, |ctx| {
            echo_kinds(ctx, &[PayloadRef::Binary(&[0xde, 0xad, 0xbe, 0xef, 0x00])])
        }),
        case("data/echo-empty", "§4.3", quick, |ctx| {
            echo_kinds(ctx, &[PayloadRef::Text(""), PayloadRef::Binary(&[])])
        }),
        case("data/echo-utf8", "§4.3", quick, |ctx| echo_kinds(ctx, &[PayloadRef::Text("héllo, ünïcödé ✓ 🦀")])),
        case("data/echo-at-size-limit", "§6.2", longer, echo_at_limit),
        case("data/numbering-order-and-acks", "§5.2 §5.3 §5.4", longer, numbering_order_and_acks),
        case("data/duplicate-dropped-and-reacked", "§5.3", quick, duplicate_dropped),
        case("ack/zero-and-stale-ignored", "§5.4", quick, ack_zero_and_stale),
        case("ack/from-the-future-1002", "§5.4", quick, ack_from_future_boundary),
        case("resume/replays-exactly-what-the-client-lacks", "§5.5", longer, resume_replays),
        case("resume/client-resend-deduplicated", "§5.3 §5.5", longer, resume_client_resend),
        case("resume/hello-acknowledges", "§5.4 §5.5", longer, hello_acknowledges),
        case("resume/unknown-token-lost-unknown", "§5.6", quick, unknown_token),
        case("resume/from-the-future-lost-refused", "§5.5 §5.6", longer, resume_from_future),
        case("resume/behind-the-ack-lost-refused", "§5.5 §5.6", longer, resume_behind_ack),
        case("resume/supersedes-the-old-connection-4409", "§5.1 §7", longer, supersede),
        case("ping/pong-same-value", "§4.5 §5.8", quick, pong_same_value),
        case("ping/latest-answered", "§5.8 §9", quick, latest_ping_answered),
        case("goodbye/ends-the-session", "§5.7", quick, goodbye_ends_session),
        case("goodbye/server-does-not-close-first", "§5.7", longer, goodbye_server_waits),
    ]);
    for garbage in GARBAGE {
        cases.push(case(garbage.name, garbage.section, longer, move |ctx| malformed(ctx, garbage)));
    }
    cases.extend([
        case("errors/three-in-a-row-drop-the-session", "§5.9", longer, three_errors),
        case("errors/delivered-data-resets-the-count", "§5.9", longer, errors_with_data_between),
        case("limits/replay-buffer-overflow-1013", "§6.1", longer, overflow),
        case("auth/missing-credentials-4401", "§7 §9", quick, |ctx| auth_close(ctx, AuthCase::Missing)),
        case("auth/invalid-credentials-4403", "§7 §9", quick, |ctx| auth_close(ctx, AuthCase::Invalid)),
        case("auth/other-identity-lost-refused", "§5.6 §9", longer, other_identity),
        case("session/expired-while-attached-4004", "§7", longer, expired_while_attached),
        slow("handshake/hello-timeout-1002", "§5.1", |c| c.handshake_timeout + c.step * 2, hello_timeout),
        slow("heartbeat/server-pings", "§5.8", |c| c.heartbeat_interval.unwrap_or_default() + c.step * 2, server_pings),
        slow(
            "heartbeat/silent-client-closed-4000",
            "§5.8 §7",
            |c| c.heartbeat_interval.unwrap_or_default() + c.heartbeat_timeout + c.step * 3,
            silent_client,
        ),
        slow(
            "goodbye/server-closes-1000-after-waiting",
            "§5.7",
            |c| c.goodbye_wait + c.step * 2,
            goodbye_server_closes,
        ),
        case("session/bystander-unaffected", "§5.9", quick, bystander),
    ]);
    cases
}

// ---------------------------------------------------------------------------------------------
// Negotiation and handshake

async fn selects_durable(ctx: Arc<Ctx>) -> CaseResultOf {
    let conn = ctx.durable().await?;
    conn.close(1000).await;
    PASS
}

async fn selects_among_others(ctx: Arc<Ctx>) -> CaseResultOf {
    let conn = Conn::open(&ctx.config.url, &["x-conformance.v0", SUBPROTOCOL], ctx.config.step)
        .await
        .map_err(|error| Verdict::Fail(error.to_string()))?;
    let selected = conn.selected.clone();
    conn.close(1000).await;
    ensure!(
        selected.as_deref() == Some(SUBPROTOCOL),
        "offered \"x-conformance.v0, durable.v1\": the server selected {selected:?}"
    );
    PASS
}

async fn nothing_unless_offered(ctx: Arc<Ctx>) -> CaseResultOf {
    match Conn::open(&ctx.config.url, &[], ctx.config.step).await {
        Ok(conn) => {
            let selected = conn.selected.clone();
            conn.close(1000).await;
            ensure!(selected.is_none(), "no subprotocol offered, but the server selected {selected:?}");
            note("upgraded without a subprotocol (plain mode)")
        }
        Err(OpenError::Http(status)) => note(format!("refused with HTTP {status}")),
        Err(OpenError::Other(why)) => fail!("{why}"),
    }
}

async fn server_waits_for_hello(ctx: Arc<Ctx>) -> CaseResultOf {
    let mut conn = ctx.durable().await?;
    if let Some(got) = conn.next_within(Duration::from_millis(500)).await {
        fail!("the server sent {} before HELLO", got.describe());
    }
    conn.hello_new().await?;
    conn.close(1000).await;
    PASS
}

async fn welcome_new(ctx: Arc<Ctx>) -> CaseResultOf {
    let mut conn = ctx.durable().await?;
    let (status, token, last) = conn.hello(None).await?;
    ensure!(status == WelcomeStatus::New, "HELLO without a token: expected WELCOME New, got {status:?}");
    ensure!(last == 0, "WELCOME New must carry last_received 0, got {last}");
    ensure!(token.0 != [0; 16], "the token is all zeros");
    conn.echo_text(1, "first").await?;
    conn.close(1000).await;
    PASS
}

async fn fresh_tokens(ctx: Arc<Ctx>) -> CaseResultOf {
    let mut tokens = Vec::new();
    for _ in 0..8 {
        let (conn, token) = ctx.session().await?;
        ensure!(!tokens.contains(&token), "two new sessions got the same token");
        tokens.push(token);
        conn.close(1000).await;
    }
    PASS
}

/// First frames that are not a valid `Hello` (§5.1: close 1002).
const FIRST_FRAMES: &[(&str, &[u8])] = &[
    ("handshake/first-frame/data", &[0x03, 0x01, 0x68, 0x69]),
    ("handshake/first-frame/ack", &[0x05, 0x00]),
    ("handshake/first-frame/ping", &[0x06, 0x01]),
    ("handshake/first-frame/pong", &[0x07, 0x01]),
    ("handshake/first-frame/goodbye", &[0x08]),
    (
        "handshake/first-frame/welcome",
        &[
            0x02, 0x00, 0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
            0x00,
        ],
    ),
    ("handshake/first-frame/unknown-type-ff", &[0xff, 0x00]),
    ("handshake/first-frame/type-00", &[0x00]),
    ("handshake/first-frame/empty-message", &[]),
    ("handshake/first-frame/hello-truncated", &[0x01]),
    ("handshake/first-frame/hello-bad-flags", &[0x01, 0x02]),
    ("handshake/first-frame/hello-short-token", &[0x01, 0x01, 0x00]),
    ("handshake/first-frame/hello-trailing-bytes", &[0x01, 0x00, 0x00]),
];

enum FirstFrame {
    Binary(&'static [u8]),
    Text(&'static [u8]),
}

async fn first_frame(ctx: Arc<Ctx>, first: FirstFrame, expected: u16) -> CaseResultOf {
    let mut conn = ctx.durable().await?;
    match first {
        FirstFrame::Binary(bytes) => conn.send_bytes(bytes).await?,
        FirstFrame::Text(bytes) => conn.send_raw_text(bytes).await?,
    }
    match conn.next("a close frame").await? {
        Got::Close(Some(code), reason) => {
            ensure!(code == expected, "expected close {expected}, got close {code} {reason:?}");
            PASS
        }
        Got::Welcome { .. } => fail!("the server answered WELCOME to a first frame that is not a valid HELLO"),
        other => fail!("expected close {expected}, got {}", other.describe()),
    }
}

async fn hello_timeout(ctx: Arc<Ctx>) -> CaseResultOf {
    let mut conn = ctx.durable().await?;
    let started = Instant::now();
    let within = ctx.config.handshake_timeout + ctx.config.step;
    let reason = context(conn.expect_close_within(within).await, "no HELLO sent").and_then(|(code, reason)| {
        if code == close_code::PROTOCOL_ERROR {
            Ok(reason)
        } else {
            Err(Verdict::Fail(format!("no HELLO sent: expected close 1002, got close {code} {reason:?}")))
        }
    })?;
    note(format!("closed after {} ms ({reason:?})", started.elapsed().as_millis()))
}

// ---------------------------------------------------------------------------------------------
// Data, sequence numbers, acknowledgements

async fn echo_kinds(ctx: Arc<Ctx>, payloads: &'static [PayloadRef<'static>]) -> CaseResultOf {
    let (mut conn, _) = ctx.session().await?;
    for (index, payload) in payloads.iter().enumerate() {
        let seq = index as u64 + 1;
        conn.echo(seq, seq, *payload).await?;
    }
    conn.close(1000).await;
    PASS
}

async fn echo_at_limit(ctx: Arc<Ctx>) -> CaseResultOf {
    let (mut conn, _) = ctx.session().await?;
    let max = ctx.config.max_message_bytes;
    let binary = vec![0xa5u8; max];
    context(conn.echo(1, 1, PayloadRef::Binary(&binary)).await, &format!("binary DATA of exactly {max} bytes"))?;
    let text = "t".repeat(max);
    context(conn.echo(2, 2, PayloadRef::Text(&text)).await, &format!("text DATA of exactly {max} bytes"))?;
    conn.close(1000).await;
    PASS
}

async fn numbering_order_and_acks(ctx: Arc<Ctx>) -> CaseResultOf {
    const COUNT: u64 = 100;
    let (mut conn, _) = ctx.session().await?;
    let payload = |i: u64| -> Vec<u8> { format!("message {i}").into_bytes() };
    for seq in 1..=COUNT {
        let bytes = payload(seq);
        let frame = if seq % 2 == 0 {
            PayloadRef::Text(std::str::from_utf8(&bytes).expect("ascii"))
        } else {
            PayloadRef::Binary(&bytes)
        };
        conn.send_data(seq, frame).await?;
    }
    let (mut next, mut acked) = (1, 0);
    let deadline = Instant::now() + ctx.config.step * 2;
    while next <= COUNT || acked < COUNT {
        let Some(got) = conn.next_within(deadline.saturating_duration_since(Instant::now())).await else {
            fail!("after {COUNT} DATA frames: {} echoes arrived and the highest ACK was {acked}", next - 1);
        };
        match got {
            Got::Data { seq, text, payload: bytes } => {
                ensure!(
                    seq == next,
                    "echo numbering: expected server seq {next}, got {seq} (each side numbers from 1, +1 per message)"
                );
                ensure!(text == (seq % 2 == 0), "echo of seq {seq} changed its kind (text {text})");
                ensure!(bytes == payload(seq), "echo of seq {seq} changed its payload");
                next += 1;
            }
            Got::Ack(seq) => {
                ensure!(seq <= COUNT, "ACK {seq} beyond the {COUNT} messages sent");
                ensure!(seq >= acked, "ACKs went backwards: {acked} then {seq} (acknowledgements are cumulative)");
                acked = seq;
            }
            Got::Ping(value) => conn.send(Frame::Pong { value }).await?,
            Got::Pong(_) => {}
            other => fail!("during the echo of {COUNT} messages: {}", other.describe()),
        }
    }
    conn.close(1000).await;
    PASS
}

/// Reads until an ACK of at least `at_least`, failing on data (`what` names the wait).
async fn expect_ack(conn: &mut Conn, at_least: u64, what: &str) -> Result<u64, Verdict> {
    loop {
        match conn.next(&format!("ACK {at_least} ({what})")).await? {
            Got::Ack(seq) if seq >= at_least => return Ok(seq),
            Got::Ack(_) | Got::Pong(_) => {}
            Got::Ping(value) => conn.send(Frame::Pong { value }).await?,
            other => fail!("{what}: expected ACK {at_least}, got {}", other.describe()),
        }
    }
}

async fn duplicate_dropped(ctx: Arc<Ctx>) -> CaseResultOf {
    let (mut conn, _) = ctx.session().await?;
    conn.echo_text(1, "one").await?;
    expect_ack(&mut conn, 1, "DATA 1 was delivered").await?;
    conn.send_data(1, PayloadRef::Text("one again (a duplicate)")).await?;
    expect_ack(&mut conn, 1, "a duplicate is dropped and acknowledged again").await?;
    context(conn.echo_text(2, "two").await, "after the duplicate (it must not have been delivered)")?;
    conn.close(1000).await;
    PASS
}

async fn ack_zero_and_stale(ctx: Arc<Ctx>) -> CaseResultOf {
    let (mut conn, _) = ctx.session().await?;
    conn.send(Frame::Ack { seq: 0 }).await?;
    context(conn.echo_text(1, "after ACK 0").await, "ACK 0 is valid")?;
    for seq in [1, 1, 0] {
        conn.send(Frame::Ack { seq }).await?;
    }
    context(conn.echo_text(2, "after stale ACKs").await, "ACKs of numbers already acknowledged are ignored")?;
    conn.close(1000).await;
    PASS
}

async fn ack_from_future_boundary(ctx: Arc<Ctx>) -> CaseResultOf {
    let (mut conn, _) = ctx.session().await?;
    conn.echo_text(1, "one").await?;
    conn.send(Frame::Ack { seq: 2 }).await?;
    conn.expect_close_code(close_code::PROTOCOL_ERROR, "ACK 2 when the server sent only 1").await?;
    PASS
}

// ---------------------------------------------------------------------------------------------
// Resume

/// Sends `1..=count` and reads their echoes without acknowledging any.
async fn echoed_unacked(conn: &mut Conn, count: u64) -> Result<(), Verdict> {
    for seq in 1..=count {
        conn.echo_text(seq, &format!("m{seq}")).await?;
    }
    Ok(())
}

/// Expects exactly the replay of server data `from..=to` (texts `m{seq}`), then nothing more
/// for a moment.
async fn expect_replay(conn: &mut Conn, from: u64, to: u64) -> Result<(), Verdict> {
    for expected in from..=to {
        let (seq, text, payload) = context(conn.next_data().await, &format!("replay of {expected}"))?;
        let want = format!("m{expected}");
        ensure!(
            (seq, text, payload.as_slice()) == (expected, true, want.as_bytes()),
            "replay: expected DATA text seq {expected} {want:?}, got {}",
            Got::Data { seq, text, payload }.describe()
        );
    }
    for got in conn.collect(Duration::from_millis(300)).await? {
        if let Got::Data { .. } | Got::Close(..) | Got::Ended(_) = got {
            fail!("after replaying {from}..={to}: unexpected {}", got.describe());
        }
    }
    Ok(())
}

async fn resume_replays(ctx: Arc<Ctx>) -> CaseResultOf {
    let (mut first, token) = ctx.session().await?;
    echoed_unacked(&mut first, 3).await?;
    drop(first); // abruptly, without a close frame
    let mut second = ctx.durable().await?;
    second.resume(token, 1, 3).await?;
    expect_replay(&mut second, 2, 3).await?;
    context(second.echo_text(4, "m4").await, "after the resume, numbering goes on")?;
    second.close(1000).await;
    PASS
}

async fn resume_client_resend(ctx: Arc<Ctx>) -> CaseResultOf {
    let (mut first, token) = ctx.session().await?;
    echoed_unacked(&mut first, 2).await?;
    first.close(4000).await; // a close without GOODBYE only ends the connection
    let mut second = ctx.durable().await?;
    second.resume(token, 2, 2).await?;
    second.send_data(1, PayloadRef::Text("m1 again")).await?;
    second.send_data(2, PayloadRef::Text("m2 again")).await?;
    expect_ack(&mut second, 2, "re-sent messages the server had delivered are dropped and acknowledged again").await?;
    context(second.echo_text(3, "m3").await, "after the re-sent duplicates")?;
    second.close(1000).await;
    PASS
}

async fn hello_acknowledges(ctx: Arc<Ctx>) -> CaseResultOf {
    let (mut first, token) = ctx.session().await?;
    echoed_unacked(&mut first, 3).await?;
    drop(first);
    let mut second = ctx.durable().await?;
    second.resume(token, 2, 3).await?;
    expect_replay(&mut second, 3, 3).await?;
    drop(second);
    let mut third = ctx.durable().await?;
    let (status, _, _) = third.hello(Some((token, 1))).await?;
    ensure!(
        status == WelcomeStatus::LostRefused,
        "a resume from 1 after a resume from 2 (HELLO's last_received acknowledges): expected LostRefused, got {status:?}"
    );
    third.close(1000).await;
    PASS
}

async fn unknown_token(ctx: Arc<Ctx>) -> CaseResultOf {
    let mut conn = ctx.durable().await?;
    let unknown = Token([0x5a; 16]);
    let (status, token, last) = conn.hello(Some((unknown, 5))).await?;
    ensure!(
        status == WelcomeStatus::LostUnknown,
        "resume of a token the server never issued: expected LostUnknown, got {status:?}"
    );
    ensure!(token != unknown, "LostUnknown must come with a fresh token");
    ensure!(last == 0, "a new session's last_received is 0, got {last}");
    context(conn.echo_text(1, "new session").await, "the new session numbers from 1")?;
    conn.close(1000).await;
    PASS
}

async fn resume_from_future(ctx: Arc<Ctx>) -> CaseResultOf {
    let (mut first, token) = ctx.session().await?;
    echoed_unacked(&mut first, 2).await?;
    drop(first);
    let mut second = ctx.durable().await?;
    let (status, fresh, last) = second.hello(Some((token, 3))).await?;
    ensure!(
        status == WelcomeStatus::LostRefused,
        "resume from 3 when the server sent 2: expected LostRefused, got {status:?}"
    );
    ensure!(fresh != token && last == 0, "LostRefused must come with a new session (fresh token, last_received 0)");
    context(second.echo_text(1, "new session").await, "the new session numbers from 1")?;
    second.close(1000).await;
    let mut third = ctx.durable().await?;
    context(third.resume(token, 2, 2).await, "the refused resume must leave the session intact")?;
    expect_replay(&mut third, 3, 2).await?;
    third.close(1000).await;
    PASS
}

async fn resume_behind_ack(ctx: Arc<Ctx>) -> CaseResultOf {
    let (mut first, token) = ctx.session().await?;
    echoed_unacked(&mut first, 2).await?;
    first.send(Frame::Ack { seq: 1 }).await?;
    first.echo_text(3, "m3").await?; // the ACK was processed before this echo
    drop(first);
    let mut second = ctx.durable().await?;
    let (status, fresh, _) = second.hello(Some((token, 0))).await?;
    ensure!(status == WelcomeStatus::LostRefused, "resume from 0 after ACK 1: expected LostRefused, got {status:?}");
    ensure!(fresh != token, "LostRefused must come with a fresh token");
    second.close(1000).await;
    let mut third = ctx.durable().await?;
    context(third.resume(token, 1, 3).await, "a resume from exactly the acknowledged point, after the refusal")?;
    expect_replay(&mut third, 2, 3).await?;
    third.close(1000).await;
    PASS
}

async fn supersede(ctx: Arc<Ctx>) -> CaseResultOf {
    let (mut old, token) = ctx.session().await?;
    old.echo_text(1, "m1").await?;
    let mut new = ctx.durable().await?;
    new.resume(token, 1, 1).await?;
    let reason = context(
        old.expect_close_code(4409, "the connection whose session was resumed elsewhere").await,
        "old connection",
    )?;
    context(new.echo_text(2, "m2").await, "the new connection")?;
    new.close(1000).await;
    note(format!("reason {reason:?}"))
}

// ---------------------------------------------------------------------------------------------
// Ping, goodbye

async fn pong_same_value(ctx: Arc<Ctx>) -> CaseResultOf {
    let (mut conn, _) = ctx.session().await?;
    for value in [0, 1_234_567, u64::MAX] {
        conn.send(Frame::Ping { value }).await?;
        loop {
            match conn.next(&format!("PONG {value}")).await? {
                Got::Pong(got) => {
                    ensure!(got == value, "PING {value} answered with PONG {got}");
                    break;
                }
                Got::Ack(_) => {}
                Got::Ping(server) => conn.send(Frame::Pong { value: server }).await?,
                other => fail!("expected PONG {value}, got {}", other.describe()),
            }
        }
    }
    conn.close(1000).await;
    PASS
}

async fn latest_ping_answered(ctx: Arc<Ctx>) -> CaseResultOf {
    let (mut conn, _) = ctx.session().await?;
    for value in [11, 12, 13] {
        conn.send(Frame::Ping { value }).await?;
    }
    let mut pongs = Vec::new();
    while pongs.last() != Some(&13) {
        match conn.next("PONG 13").await? {
            Got::Pong(value) => {
                ensure!([11, 12, 13].contains(&value), "PONG {value} answers no ping sent");
                ensure!(pongs.last().is_none_or(|&last| value > last), "PONGs out of order: {pongs:?} then {value}");
                pongs.push(value);
            }
            Got::Ack(_) => {}
            Got::Ping(server) => conn.send(Frame::Pong { value: server }).await?,
            other => fail!("expected PONGs, got {}", other.describe()),
        }
    }
    for got in conn.collect(Duration::from_millis(200)).await? {
        ensure!(!matches!(got, Got::Pong(_)), "a PONG after the latest ping's: {}", got.describe());
    }
    conn.close(1000).await;
    note(format!("3 pings, PONGs {pongs:?}"))
}

async fn goodbye_ends_session(ctx: Arc<Ctx>) -> CaseResultOf {
    let (mut conn, token) = ctx.session().await?;
    conn.echo_text(1, "m1").await?;
    conn.send(Frame::Goodbye).await?;
    conn.close(1000).await;
    let mut again = ctx.durable().await?;
    let (status, fresh, _) = again.hello(Some((token, 1))).await?;
    ensure!(status == WelcomeStatus::LostUnknown, "resume after GOODBYE: expected LostUnknown, got {status:?}");
    ensure!(fresh != token, "a fresh token after GOODBYE");
    again.close(1000).await;
    PASS
}

async fn goodbye_server_waits(ctx: Arc<Ctx>) -> CaseResultOf {
    let (mut conn, _) = ctx.session().await?;
    conn.echo_text(1, "m1").await?;
    conn.send(Frame::Goodbye).await?;
    let started = Instant::now();
    let window = (ctx.config.goodbye_wait / 2).min(Duration::from_millis(1500));
    for got in conn.collect(window).await? {
        if let Got::Close(..) | Got::Ended(_) = got {
            fail!(
                "after the client's GOODBYE the server closed first ({}, after {} ms); it must wait for the client's close",
                got.describe(),
                started.elapsed().as_millis()
            );
        }
    }
    conn.close(1000).await;
    PASS
}

async fn goodbye_server_closes(ctx: Arc<Ctx>) -> CaseResultOf {
    let (mut conn, _) = ctx.session().await?;
    conn.echo_text(1, "m1").await?;
    conn.send(Frame::Goodbye).await?;
    let started = Instant::now();
    let (code, reason) = conn.expect_close_within(ctx.config.goodbye_wait + ctx.config.step).await?;
    ensure!(
        code == close_code::NORMAL,
        "after GOODBYE and no client close: expected close 1000, got {code} {reason:?}"
    );
    note(format!("closed after {} ms ({reason:?})", started.elapsed().as_millis()))
}

// ---------------------------------------------------------------------------------------------
// Malformed frames mid-session

/// One kind of bad input in the middle of a session.
struct Garbage {
    name: &'static str,
    section: &'static str,
    code: u16,
    input: Input,
}

enum Input {
    Bytes(&'static [u8]),
    /// DATA `next + 5` (a gap).
    Gap,
    /// ACK 1000 (far beyond the one message sent).
    AckFromFuture,
    /// A well-formed `Hello` after the handshake.
    SecondHello,
    /// A `Welcome` from the client.
    Welcome,
    /// DATA `03` with `ff fe` as payload.
    BadUtf8Data,
    /// A WebSocket text message.
    Text(&'static [u8]),
    /// DATA with a payload one byte over the limit (`true`: type `03`).
    OneOver(bool),
    /// A binary message of limit + 1024 bytes.
    Huge,
}

const GARBAGE: &[Garbage] = &[
    Garbage { name: "malformed/unknown-type-42", section: "§4 §4.7", code: 1002, input: Input::Bytes(&[0x42, 0x01]) },
    Garbage { name: "malformed/type-00", section: "§4 §4.7", code: 1002, input: Input::Bytes(&[0x00]) },
    Garbage { name: "malformed/type-09", section: "§4 §4.7", code: 1002, input: Input::Bytes(&[0x09]) },
    Garbage { name: "malformed/empty-message", section: "§4.7", code: 1002, input: Input::Bytes(&[]) },
    Garbage { name: "malformed/ack-truncated", section: "§4.7", code: 1002, input: Input::Bytes(&[0x05]) },
    Garbage {
        name: "malformed/varint-truncated", section: "§3 §4.7", code: 1002, input: Input::Bytes(&[0x03, 0x80])
    },
    Garbage {
        name: "malformed/varint-not-shortest-80-00",
        section: "§3 §4.7",
        code: 1002,
        input: Input::Bytes(&[0x05, 0x80, 0x00]),
    },
    Garbage {
        name: "malformed/varint-not-shortest-81-00",
        section: "§3 §4.7",
        code: 1002,
        input: Input::Bytes(&[0x05, 0x81, 0x00]),
    },
    Garbage {
        name: "malformed/varint-tenth-byte-02",
        section: "§3 §4.7",
        code: 1002,
        input: Input::Bytes(&[0x05, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
    },
    Garbage {
        name: "malformed/varint-eleven-bytes",
        section: "§3 §4.7",
        code: 1002,
        input: Input::Bytes(&[0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
    },
    Garbage {
        name: "malformed/ack-trailing-bytes",
        section: "§3 §4.7",
        code: 1002,
        input: Input::Bytes(&[0x05, 0x01, 0x00]),
    },
    Garbage {
        name: "malformed/ping-trailing-bytes",
        section: "§3 §4.7",
        code: 1002,
        input: Input::Bytes(&[0x06, 0x01, 0x00]),
    },
    Garbage {
        name: "malformed/goodbye-trailing-bytes",
        section: "§3 §4.7",
        code: 1002,
        input: Input::Bytes(&[0x08, 0x00]),
    },
    Garbage {
        name: "malformed/data-seq-0",
        section: "§4.3 §4.7",
        code: 1002,
        input: Input::Bytes(&[0x03, 0x00, b'x']),
    },
    Garbage { name: "malformed/data-gap", section: "§5.3", code: 1002, input: Input::Gap },
    Garbage { name: "malformed/ack-from-the-future", section: "§5.4", code: 1002, input: Input::AckFromFuture },
    Garbage { name: "malformed/hello-after-handshake", section: "§5.1", code: 1002, input: Input::SecondHello },
    Garbage {
        name: "malformed/hello-bad-flags-after-handshake",
        section: "§4.1 §5.1",
        code: 1002,
        input: Input::Bytes(&[0x01, 0x02]),
    },
    Garbage { name: "malformed/welcome-from-the-client", section: "§5.1", code: 1002, input: Input::Welcome },
    Garbage {
        name: "malformed/welcome-bad-status",
        section: "§4.2 §4.7",
        code: 1002,
        input: Input::Bytes(&[0x02, 0x05]),
    },
    Garbage { name: "malformed/text-message", section: "§3", code: 1002, input: Input::Text(b"hello") },
    Garbage {
        name: "malformed/text-message-bad-utf8",
        section: "§3 §7",
        code: 1007,
        input: Input::Text(&[0x68, 0xc3, 0x28]),
    },
    Garbage { name: "malformed/data-text-bad-utf8-1007", section: "§4.3 §7", code: 1007, input: Input::BadUtf8Data },
    Garbage {
        name: "malformed/data-binary-one-byte-over-limit-1009",
        section: "§6.2",
        code: 1009,
        input: Input::OneOver(false),
    },
    Garbage {
        name: "malformed/data-text-one-byte-over-limit-1009",
        section: "§6.2",
        code: 1009,
        input: Input::OneOver(true),
    },
    Garbage { name: "malformed/message-far-over-limit-1009", section: "§6.2", code: 1009, input: Input::Huge },
];

async fn send_garbage(conn: &mut Conn, input: &Input, next: u64, max: usize) -> Result<(), Verdict> {
    match input {
        Input::Bytes(bytes) => conn.send_bytes(bytes).await,
        Input::Gap => conn.send_data(next + 5, PayloadRef::Text("skipped ahead")).await,
        Input::AckFromFuture => conn.send(Frame::Ack { seq: 1_000 }).await,
        Input::SecondHello => conn.send(Frame::Hello { resume: None }).await,
        Input::Welcome => {
            conn.send(Frame::Welcome { status: WelcomeStatus::New, token: Token([1; 16]), last_received: 0 }).await
        }
        Input::BadUtf8Data => {
            let mut bytes = vec![0x03];
            durable_ws_core::frame::put_varint(&mut bytes, next);
            bytes.extend_from_slice(&[0xff, 0xfe]);
            conn.send_bytes(&bytes).await
        }
        Input::Text(bytes) => conn.send_raw_text(bytes).await,
        Input::OneOver(text) => {
            let mut bytes = vec![if *text { 0x03 } else { 0x04 }];
            durable_ws_core::frame::put_varint(&mut bytes, next);
            bytes.resize(bytes.len() + max + 1, b'o');
            conn.send_bytes(&bytes).await
        }
        Input::Huge => {
            let mut bytes = vec![0x04];
            durable_ws_core::frame::put_varint(&mut bytes, next);
            bytes.resize(bytes.len() + max + 1024, 0x55);
            conn.send_bytes(&bytes).await
        }
    }
}

/// One delivered message, then the garbage: the connection closes with the expected code; the
/// session resumes where it was (§5.9) and works.
async fn malformed(ctx: Arc<Ctx>, garbage: &'static Garbage) -> CaseResultOf {
    let (mut conn, token) = ctx.session().await?;
    conn.echo_text(1, "before the garbage").await?;
    send_garbage(&mut conn, &garbage.input, 2, ctx.config.max_message_bytes).await?;
    let (code, reason) = conn.expect_close().await?;
    ensure!(code == garbage.code, "expected close {}, got close {code} {reason:?}", garbage.code);
    let mut again = ctx.durable().await?;
    context(again.resume(token, 1, 1).await, "the session must stay resumable after a protocol error")?;
    context(again.echo_text(2, "after the garbage").await, "the resumed session")?;
    again.close(1000).await;
    PASS
}

/// Garbage that every server closes with 1002.
async fn break_with_ack(conn: &mut Conn, round: u32) -> Result<String, Verdict> {
    conn.send(Frame::Ack { seq: 1_000 }).await?;
    let (code, reason) = conn.expect_close().await?;
    ensure!(code == close_code::PROTOCOL_ERROR, "protocol error {round}: expected close 1002, got {code} {reason:?}");
    Ok(reason)
}

async fn three_errors(ctx: Arc<Ctx>) -> CaseResultOf {
    let (mut conn, token) = ctx.session().await?;
    conn.echo_text(1, "the only delivered message").await?;
    break_with_ack(&mut conn, 1).await?;
    let mut reason = String::new();
    for round in 2..=3 {
        let mut conn = ctx.durable().await?;
        context(conn.resume(token, 1, 1).await, &format!("resume after protocol error {}", round - 1))?;
        reason = break_with_ack(&mut conn, round).await?;
    }
    let mut conn = ctx.durable().await?;
    let (status, fresh, _) = conn.hello(Some((token, 1))).await?;
    ensure!(
        status == WelcomeStatus::LostRefused,
        "after 3 connections in a row ended with a protocol error and no DATA delivered: expected LostRefused, got {status:?}"
    );
    ensure!(fresh != token, "LostRefused comes with a fresh token");
    conn.close(1000).await;
    note(format!("third close reason {reason:?}"))
}

async fn errors_with_data_between(ctx: Arc<Ctx>) -> CaseResultOf {
    let (mut conn, token) = ctx.session().await?;
    conn.echo_text(1, "m1").await?;
    break_with_ack(&mut conn, 1).await?;
    for round in 2..=4u64 {
        let mut conn = ctx.durable().await?;
        context(conn.resume(token, round - 1, round - 1).await, &format!("resume after protocol error {}", round - 1))?;
        conn.echo_text(round, &format!("m{round}")).await?;
        break_with_ack(&mut conn, round as u32).await?;
    }
    let mut conn = ctx.durable().await?;
    context(
        conn.resume(token, 4, 4).await,
        "4 protocol errors, each after a delivered DATA: the session stays resumable",
    )?;
    conn.close(1000).await;
    PASS
}

// ---------------------------------------------------------------------------------------------
// Limits, auth, expiry

async fn overflow(ctx: Arc<Ctx>) -> CaseResultOf {
    let Some(max) = ctx.config.max_buffer_messages else {
        return Err(Verdict::Skip("no --max-buffer-messages".into()));
    };
    let (mut conn, token) = ctx.session().await?;
    let mut closed = None;
    for seq in 1..=max as u64 + 1 {
        if conn.send_data(seq, PayloadRef::Text("x")).await.is_err() {
            break; // the server may close before the last ones are written
        }
    }
    let deadline = Instant::now() + ctx.config.step * 3;
    while closed.is_none() {
        match conn.next_within(deadline.saturating_duration_since(Instant::now())).await {
            None => fail!(
                "{} unacknowledged echoes (buffer {max}): the server did not close within {} ms",
                max + 1,
                (ctx.config.step * 3).as_millis()
            ),
            Some(Got::Close(Some(code), reason)) => closed = Some((code, reason)),
            Some(end @ (Got::Close(None, _) | Got::Ended(_))) => fail!("expected close 1013, got {}", end.describe()),
            Some(_) => {}
        }
    }
    let (code, reason) = closed.expect("loop ends on a close");
    ensure!(code == close_code::TRY_AGAIN_LATER, "replay buffer overflow: expected close 1013, got {code} {reason:?}");
    let mut again = ctx.durable().await?;
    let (status, _, _) = again.hello(Some((token, 0))).await?;
    ensure!(
        status == WelcomeStatus::LostOverflow,
        "resume of an overflowed session: expected LostOverflow, got {status:?}"
    );
    again.close(1000).await;
    note(format!("reason {reason:?}"))
}

enum AuthCase {
    Missing,
    Invalid,
}

async fn auth_close(ctx: Arc<Ctx>, which: AuthCase) -> CaseResultOf {
    let (url, code, flag) = match which {
        AuthCase::Missing => (&ctx.config.no_credentials_url, close_code::UNAUTHORIZED, "--no-credentials-url"),
        AuthCase::Invalid => (&ctx.config.bad_credentials_url, close_code::FORBIDDEN, "--bad-credentials-url"),
    };
    let Some(url) = url else {
        return Err(Verdict::Skip(format!("no {flag}")));
    };
    let mut conn = match Conn::open(url, &[SUBPROTOCOL], ctx.config.step).await {
        Ok(conn) => conn,
        Err(OpenError::Http(status)) => {
            fail!("refused with HTTP {status} before the upgrade; the upgrade must be accepted and closed with {code} (a browser cannot read an HTTP status)")
        }
        Err(OpenError::Other(why)) => fail!("{why}"),
    };
    ensure!(
        conn.selected.as_deref() == Some(SUBPROTOCOL),
        "the refused upgrade must still select durable.v1 (got {:?})",
        conn.selected
    );
    match conn.next("the close").await? {
        Got::Close(Some(got), reason) => {
            ensure!(got == code, "expected close {code}, got close {got} {reason:?}");
            note(format!("reason {reason:?}"))
        }
        other => fail!("expected close {code} at once, got {}", other.describe()),
    }
}

async fn other_identity(ctx: Arc<Ctx>) -> CaseResultOf {
    let Some(url) = &ctx.config.other_identity_url else {
        return Err(Verdict::Skip("no --other-identity-url".into()));
    };
    let (mut owner, token) = ctx.session().await?;
    owner.echo_text(1, "private").await?;
    let mut other = Conn::durable(url, ctx.config.step).await?;
    let (status, fresh, last) = other.hello(Some((token, 0))).await?;
    ensure!(
        status == WelcomeStatus::LostRefused,
        "another identity resuming the session: expected LostRefused, got {status:?}"
    );
    ensure!(fresh != token && last == 0, "LostRefused comes with a new session");
    for got in other.collect(Duration::from_millis(200)).await? {
        ensure!(!matches!(got, Got::Data { .. }), "another identity received the owner's data: {}", got.describe());
    }
    other.close(1000).await;
    context(owner.echo_text(2, "still mine").await, "the owner's connection must be untouched")?;
    owner.close(1000).await;
    PASS
}

async fn expired_while_attached(ctx: Arc<Ctx>) -> CaseResultOf {
    let Some(admin) = &ctx.config.admin_url else {
        return Err(Verdict::Skip("no --admin-url".into()));
    };
    let (mut conn, token) = ctx.session().await?;
    conn.echo_text(1, "m1").await?;
    let (status, body) =
        http_post(admin, &format!("/admin/expire?session={}", token.to_hex())).await.map_err(Verdict::Fail)?;
    ensure!(status == 200, "POST /admin/expire: HTTP {status} {body}");
    let (code, reason) = conn.expect_close().await?;
    ensure!(code == 4004, "the session was expired while attached: expected close 4004, got {code} {reason:?}");
    let mut again = ctx.durable().await?;
    let (status, _, _) = again.hello(Some((token, 1))).await?;
    ensure!(
        status == WelcomeStatus::LostUnknown,
        "resume of the expired session: expected LostUnknown, got {status:?}"
    );
    again.close(1000).await;
    PASS
}

// ---------------------------------------------------------------------------------------------
// Heartbeat

async fn server_pings(ctx: Arc<Ctx>) -> CaseResultOf {
    let Some(interval) = ctx.config.heartbeat_interval else {
        return Err(Verdict::Skip("the server does not ping (--heartbeat-interval-ms 0)".into()));
    };
    let (mut conn, _) = ctx.session().await?;
    let started = Instant::now();
    let within = interval + ctx.config.step;
    match conn.next_within(within).await {
        None => {
            fail!("no PING within {} ms of the handshake (interval {} ms)", within.as_millis(), interval.as_millis())
        }
        Some(Got::Ping(value)) => {
            conn.send(Frame::Pong { value }).await?;
            let elapsed = started.elapsed();
            conn.close(1000).await;
            note(format!("first PING after {} ms", elapsed.as_millis()))
        }
        Some(got) => fail!("waiting for a PING: {}", got.describe()),
    }
}

async fn silent_client(ctx: Arc<Ctx>) -> CaseResultOf {
    let Some(interval) = ctx.config.heartbeat_interval else {
        return Err(Verdict::Skip("the server does not ping (--heartbeat-interval-ms 0)".into()));
    };
    let (mut conn, token) = ctx.session().await?;
    let started = Instant::now();
    let within = interval + ctx.config.heartbeat_timeout + ctx.config.step;
    let (code, reason) = context(conn.expect_close_within(within).await, "a client that answers nothing")?;
    let elapsed = started.elapsed();
    ensure!(
        code == close_code::HEARTBEAT_TIMEOUT,
        "a client that answers nothing: expected close 4000, got {code} {reason:?}"
    );
    let mut again = ctx.durable().await?;
    context(again.resume(token, 0, 0).await, "after the heartbeat timeout the session stays resumable")?;
    again.close(1000).await;
    note(format!("closed after {} ms ({reason:?})", elapsed.as_millis()))
}

// ---------------------------------------------------------------------------------------------
// The bystander

type Probe = oneshot::Sender<Result<u64, String>>;

/// A session opened before every other case and kept alive (answering pings) all along; at the
/// end it must still echo.
pub(super) struct Bystander {
    probes: Result<mpsc::UnboundedSender<Probe>, String>,
}

impl Bystander {
    pub(super) async fn start(config: &Config) -> Bystander {
        let opened = async {
            let mut conn = Conn::durable(&config.url, config.step).await?;
            conn.hello_new().await?;
            Ok::<_, Verdict>(conn)
        };
        let conn = match opened.await {
            Ok(conn) => conn,
            Err(Verdict::Fail(why) | Verdict::Skip(why)) => return Bystander { probes: Err(why) },
        };
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(bystander_loop(conn, rx));
        Bystander { probes: Ok(tx) }
    }

    async fn probe(&self) -> Result<u64, String> {
        let probes = self.probes.as_ref().map_err(|why| format!("the bystander session could not be opened: {why}"))?;
        let (tx, rx) = oneshot::channel();
        probes.send(tx).map_err(|_| "the bystander task ended".to_owned())?;
        rx.await.map_err(|_| "the bystander task ended".to_owned())?
    }
}

async fn bystander_loop(mut conn: Conn, mut probes: mpsc::UnboundedReceiver<Probe>) {
    let started = Instant::now();
    let mut broken: Option<String> = None;
    let mut seq = 0;
    loop {
        tokio::select! {
            probe = probes.recv() => {
                let Some(reply) = probe else { break };
                if let Some(why) = &broken {
                    let _ = reply.send(Err(why.clone()));
                    continue;
                }
                seq += 1;
                let result = conn.echo_text(seq, &format!("bystander {seq}")).await;
                let _ = reply.send(match result {
                    Ok(()) => Ok(seq),
                    Err(Verdict::Fail(why) | Verdict::Skip(why)) => {
                        broken = Some(why.clone());
                        Err(why)
                    }
                });
            }
            got = conn.next_within(Duration::from_secs(3600)), if broken.is_none() => match got {
                Some(Got::Ping(value)) => {
                    if let Err(Verdict::Fail(why) | Verdict::Skip(why)) = conn.send(Frame::Pong { value }).await {
                        broken = Some(why);
                    }
                }
                Some(Got::Ack(_) | Got::Pong(_)) | None => {}
                Some(other) => {
                    broken = Some(format!("after {} ms the bystander session got {}", started.elapsed().as_millis(), other.describe()));
                }
            },
        }
    }
    conn.close(1000).await;
}

async fn bystander(ctx: Arc<Ctx>) -> CaseResultOf {
    let seq = ctx.bystander.probe().await.map_err(Verdict::Fail)?;
    note(format!("a session open since the start still echoes (round trip {seq})"))
}
