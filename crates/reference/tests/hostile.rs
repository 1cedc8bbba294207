//! The server stays up and bounded under hostile clients (issue 10). Each test starts the real
//! binary with small limits, opens a well-behaved bystander session, runs one attack over
//! loopback and checks that
//! - the server is alive: the bystander still echoes during and after the attack, each round
//!   trip within a (generous) bound, and the process has not exited;
//! - its peak resident memory (`VmHWM` in `/proc/PID/status`) stays under a multiple of the
//!   budget the attack can legitimately fill, plus the memory it had before the attack.
//!
//! The attackers speak WebSocket byte by byte (`support/hostile.rs`), most with a tiny TCP
//! receive window so that not reading pushes back on the server at once.

mod support;
// Not a module of `support` (whose mod.rs other tests share): included here by path.
#[path = "support/hostile.rs"]
mod raw;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use durable_ws_core::frame::Frame;
use durable_ws_core::{PayloadRef, WelcomeStatus};
use raw::{
    client_frame, data_frame, durable_frame, fd_count, raw_frame, stat, status_kib, Bystander, Ended, RawWs, Read,
    BINARY, MIB, PING, TEXT, TINY_WINDOW,
};
use tokio::process::Child;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Limits every test starts the server with (small, so the bounds mean something).
const MAX_MESSAGE: u64 = MIB;
const MAX_BUFFER: u64 = MIB;
const MAX_OUTGOING: u64 = 256 << 10;
const SEND_TIMEOUT_MS: u64 = 2_000;
const GLOBAL_BUDGET: u64 = 32 * MIB;

/// Memory the server may take beyond `4 × budget` and what it had before the attack (allocator
/// slack, tungstenite's read and write buffers, task stacks).
const SLACK: u64 = 16 * MIB;

/// The longest bystander round trip tolerated during an attack (debug build, 2 shared cores).
const ROUND_TRIP_BOUND: Duration = Duration::from_secs(3);

/// Whether the binary has `flag` (some limits gained their flags after this suite was written;
/// without one the library default applies, and the test says what it could not check).
fn has_flag(flag: &str) -> bool {
    static HELP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let help = HELP.get_or_init(|| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_durable-ws-server")).arg("--help").output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    help.contains(&format!("{flag} "))
}

/// `flag value` if the binary has the flag.
fn optional(args: &mut Vec<String>, flag: &str, value: impl ToString) {
    if has_flag(flag) {
        args.extend([flag.to_string(), value.to_string()]);
    } else {
        eprintln!("(the binary has no {flag}: its default applies)");
    }
}

/// The outgoing queue's bound in force.
fn max_outgoing() -> u64 {
    if has_flag("--max-outgoing-bytes") {
        MAX_OUTGOING
    } else {
        MIB
    }
}

fn small_limits() -> Vec<String> {
    let mut args: Vec<String> = [
        "--max-message-bytes",
        &MAX_MESSAGE.to_string(),
        "--max-buffer-bytes",
        &MAX_BUFFER.to_string(),
        // A client that does not read does not answer pings either: 4 s and it is closed (4000)
        // if the send timeout (1013) has not closed it first.
        "--heartbeat-interval-ms",
        "1000",
        "--heartbeat-timeout-ms",
        "3000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    optional(&mut args, "--max-outgoing-bytes", MAX_OUTGOING);
    optional(&mut args, "--send-timeout-ms", SEND_TIMEOUT_MS);
    optional(&mut args, "--max-buffered-bytes", GLOBAL_BUDGET);
    args
}

/// The server under attack, and the bystander watching it.
struct Target {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    /// `VmRSS` once the bystander was open, in bytes.
    before: u64,
    bystander: Option<Bystander>,
}

impl Target {
    /// Starts the binary with [`small_limits`] and `extra` arguments, and a durable bystander.
    async fn start(extra: &[&str]) -> Target {
        Target::start_with(extra, &[], false).await
    }

    async fn start_with(extra: &[&str], bystander_headers: &[(&str, &str)], plain_bystander: bool) -> Target {
        let mut args = small_limits();
        let defaults = args.len();
        for pair in extra.chunks(2) {
            // A test's own value replaces the small default of the same flag (repeatable flags
            // such as --auth-token are only added).
            match args[..defaults].iter().position(|arg| arg == pair[0]) {
                Some(at) => args[at + 1] = pair[1].to_string(),
                None => optional(&mut args, pair[0], pair[1]),
            }
        }
        let (child, addr) = support::spawn_binary(|command| {
            command.args(&args).env("RUST_LOG", "error");
        })
        .await;
        let pid = child.id().expect("running");
        let mut bystander = if plain_bystander {
            Bystander::open_plain(addr, bystander_headers).await
        } else {
            Bystander::open(addr, bystander_headers).await
        };
        bystander.round_trip(ROUND_TRIP_BOUND).await.expect("the bystander echoes before the attack");
        let before = status_kib(pid, "VmRSS").unwrap() * 1024;
        Target { child, pid, addr, before, bystander: Some(bystander) }
    }

    /// Starts the bystander echoing every 20 ms in the background.
    fn watch(&mut self) -> Watch {
        let (stop, stopped) = oneshot::channel();
        let bystander = self.bystander.take().expect("not watching yet");
        let task = tokio::spawn(bystander.keep_echoing(Duration::from_millis(20), ROUND_TRIP_BOUND, stopped));
        Watch { stop, task }
    }

    /// The bystander's round trips while watched: every one came back within the bound.
    async fn unwatch(&mut self, watch: Watch, attack: &str) {
        let _ = watch.stop.send(());
        let (bystander, failures) = watch.task.await.unwrap();
        let (p50, p99, max) = bystander.percentiles();
        eprintln!(
            "{attack}: bystander round trips p50 {p50:?} p99 {p99:?} max {max:?} ({} echoes, {failures} late)",
            bystander.round_trips.len()
        );
        assert_eq!(failures, 0, "{attack}: the bystander's echo did not come back within {ROUND_TRIP_BOUND:?}");
        self.bystander = Some(bystander);
    }

    /// The server is alive (the process runs, the bystander echoes) and its peak memory stayed
    /// under `4 × budget` above what it had before the attack (plus [`SLACK`]).
    async fn check(&mut self, attack: &str, budget: u64) {
        assert!(self.child.try_wait().unwrap().is_none(), "{attack}: the server exited");
        if let Some(bystander) = self.bystander.as_mut() {
            bystander
                .round_trip(ROUND_TRIP_BOUND)
                .await
                .unwrap_or_else(|| panic!("{attack}: the bystander no longer echoes"));
        }
        let peak = status_kib(self.pid, "VmHWM").unwrap() * 1024;
        let bound = self.before + 4 * budget + SLACK;
        eprintln!(
            "{attack}: peak RSS {} MiB (before the attack {} MiB, bound {} MiB)",
            peak / MIB,
            self.before / MIB,
            bound / MIB
        );
        assert!(peak <= bound, "{attack}: peak RSS {} MiB over the bound {} MiB", peak / MIB, bound / MIB);
    }

    async fn connections(&self) -> u64 {
        stat(self.addr, "connections").await
    }

    /// Waits (at most `within`) for `/stats` connections to fall to `n`.
    async fn connections_fall_to(&self, n: u64, within: Duration, attack: &str) {
        let start = Instant::now();
        loop {
            let now = self.connections().await;
            if now <= n {
                return;
            }
            assert!(start.elapsed() < within, "{attack}: still {now} connections after {within:?} (expected {n})");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

struct Watch {
    stop: oneshot::Sender<()>,
    task: JoinHandle<(Bystander, usize)>,
}

/// Writes `frame` over and over (`make(i)` for the i-th) until a write blocks for `stall` (the
/// server stopped reading) or fails, or `max` were written; returns how many were written.
async fn flood(ws: &mut RawWs, max: u64, stall: Duration, mut make: impl FnMut(u64) -> Vec<u8>) -> u64 {
    for i in 1..=max {
        if !ws.write(&make(i), stall).await {
            return i - 1;
        }
    }
    max
}

/// A client on plain `/echo` sends 1 MiB messages and never reads: the server stops reading it
/// once its outgoing queue is full, and closes it after the send timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_client_that_never_reads_is_closed() {
    let mut target = Target::start(&[]).await;
    let watch = target.watch();
    let mut attacker = RawWs::connect(target.addr, "/echo", false, &[], Some(TINY_WINDOW)).await;
    let big = vec![7u8; MAX_MESSAGE as usize];
    let frame = client_frame(BINARY, &big);
    let written = flood(&mut attacker, 200, Duration::from_millis(SEND_TIMEOUT_MS + 3_000), |_| frame.clone()).await;
    eprintln!("plain non-reader: wrote {written} MiB before the server stopped reading");
    assert!(written < 50, "the server kept reading a client that does not read ({written} MiB)");
    target.connections_fall_to(1, Duration::from_millis(SEND_TIMEOUT_MS + 5_000), "plain non-reader").await;
    target.unwatch(watch, "plain non-reader").await;
    let ended = attacker.until_closed(Duration::from_secs(5)).await;
    eprintln!("plain non-reader: its connection ended with {ended:?}");
    assert_ne!(ended, Ended::Open);
    // One message being read, one being echoed, the outgoing queue.
    target.check("plain non-reader", 2 * MAX_MESSAGE + max_outgoing()).await;
}

/// A durable client sends data and acknowledges echoes it never read: acks run ahead of what
/// the server sent (its outgoing queue is full) and are acks from the future: 1002.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blind_acks_are_from_the_future() {
    let mut target = Target::start(&[]).await;
    let watch = target.watch();
    let mut attacker = RawWs::connect(target.addr, "/echo", true, &[], Some(TINY_WINDOW)).await;
    attacker.hello().await.unwrap();
    let chunk = vec![1u8; 64 << 10];
    let written = flood(&mut attacker, 2_000, Duration::from_millis(SEND_TIMEOUT_MS + 3_000), |i| {
        let mut frames = data_frame(i, &chunk);
        // It acknowledges the echo of what it sent 8 messages earlier, without reading it: as
        // long as the server could write, that echo was sent (and the replay buffer, 16 such
        // messages, does not overflow).
        if i > 8 {
            frames.extend(durable_frame(Frame::Ack { seq: i - 8 }));
        }
        frames
    })
    .await;
    let ended = attacker.until_closed(Duration::from_millis(SEND_TIMEOUT_MS + 5_000)).await;
    eprintln!("blind acks: {written} messages of 64 KiB written; the connection ended with {ended:?}");
    match &ended {
        Ended::Close(1002, reason) => assert!(reason.contains("future"), "{reason}"),
        Ended::Close(1013, _) | Ended::Dropped => {}
        other => panic!("blind acks: the connection {other:?}"),
    }
    target.connections_fall_to(1, Duration::from_secs(5), "blind acks").await;
    target.unwatch(watch, "blind acks").await;
    target.check("blind acks", MAX_BUFFER + max_outgoing() + 64 * (64 << 10)).await;
}

/// One client sends `ping` (a batch of 100 ping frames) for 3 s as fast as the server reads,
/// never reading the answers; returns how many pings it wrote.
async fn ping_flood(attack: &str, durable: bool, ping: Vec<u8>) {
    let mut target = Target::start(&[]).await;
    let watch = target.watch();
    let batch: Vec<u8> = std::iter::repeat_n(ping, 100).flatten().collect();
    let mut ws = RawWs::connect(target.addr, "/echo", durable, &[], Some(TINY_WINDOW)).await;
    if durable {
        ws.hello().await.unwrap();
    }
    let start = Instant::now();
    let mut batches = 0u64;
    while start.elapsed() < Duration::from_secs(3) && ws.write(&batch, Duration::from_secs(1)).await {
        batches += 1;
    }
    eprintln!("{attack}: {} pings written in {:?}", batches * 100, start.elapsed());
    target.unwatch(watch, attack).await;
    // The answers wait in the outgoing queue, which is bounded.
    target.check(attack, max_outgoing()).await;
    drop(ws);
}

/// WebSocket pings on a plain connection, never reading the pongs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_ping_flood_on_a_plain_connection() {
    ping_flood("ws ping flood (plain)", false, client_frame(PING, &[b'p'; 125])).await;
}

/// WebSocket pings on a durable connection, never reading the pongs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_ping_flood_on_a_durable_connection() {
    ping_flood("ws ping flood (durable)", true, client_frame(PING, &[b'p'; 125])).await;
}

/// durable.v1 PINGs, never reading the PONGs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_ping_flood() {
    ping_flood("durable PING flood", true, durable_frame(Frame::Ping { value: u64::MAX })).await;
}

/// Sessions that neither read nor acknowledge fill their replay buffers up to the server's
/// budget: sends fail (the echo evicts such a session) and new sessions are refused with 1013;
/// once they expire the server takes new sessions again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_filling_the_global_budget_are_refused_not_fatal() {
    // The bystander is plain: a durable one's echo would compete for the same budget.
    if has_flag("--max-buffered-bytes") {
        let mut target = Target::start_with(&["--session-ttl-secs", "1"], &[], true).await;
        let watch = target.watch();
        let hoarders = fill_the_budget(target.addr).await;
        target.check("global budget", GLOBAL_BUDGET).await;
        drop(hoarders);
        target.unwatch(watch, "global budget").await;
        budget_is_free_again(target.addr).await;
        target.check("global budget", GLOBAL_BUDGET).await;
    } else {
        // No flag for the budget yet: the library in this process (its memory is shared with the
        // other tests, so only the refusals and the recovery are checked).
        eprintln!("global budget: in-process server (the binary has no --max-buffered-bytes); RSS not checked");
        let mut session = durable_ws_core::SessionConfig::default();
        session.limits.max_bytes = MAX_BUFFER as usize;
        let config = durable_ws_reference::ServerConfig {
            max_message_bytes: MAX_MESSAGE as usize,
            max_buffered_bytes: GLOBAL_BUDGET as usize,
            session_ttl: Duration::from_secs(1),
            session,
            ..durable_ws_reference::ServerConfig::default()
        };
        let server = support::server(config).await;
        let addr = server.local_addr();
        let bystander = Bystander::open_plain(addr, &[]).await;
        let (stop, stopped) = oneshot::channel();
        let watching = tokio::spawn(bystander.keep_echoing(Duration::from_millis(20), ROUND_TRIP_BOUND, stopped));
        let hoarders = fill_the_budget(addr).await;
        drop(hoarders);
        let _ = stop.send(());
        let (bystander, late) = watching.await.unwrap();
        eprintln!("global budget: bystander round trips {:?}", bystander.percentiles());
        assert_eq!(late, 0, "the plain bystander echoed throughout");
        budget_is_free_again(addr).await;
        server.shutdown().await.unwrap();
    }
}

/// Sessions of 1 MiB each (their own bound, 4 echoes of 256 KiB) until one is refused: 1013,
/// the budget is spent. (New sessions are refused only once the budget is spent to the byte;
/// an echo that would not fit fails and the echo handler evicts its session, freeing what it
/// held, so the sessions here tile the budget exactly.)
async fn fill_the_budget(addr: SocketAddr) -> Vec<RawWs> {
    let per_session = 4;
    let chunk = vec![2u8; 256 << 10];
    let mut hoarders = Vec::new();
    let mut refused = None;
    for n in 0..64 {
        let mut ws = RawWs::connect(addr, "/echo", true, &[], Some(TINY_WINDOW)).await;
        if let Err(ended) = ws.hello().await {
            refused = Some((n, ended));
            break;
        }
        for seq in 1..=per_session {
            ws.write(&data_frame(seq, &chunk), Duration::from_secs(5)).await;
        }
        hoarders.push(ws);
        // Let the echoes reach the replay buffer before the next session asks.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if refused.is_none() {
        for field in ["sessions", "messages_in", "messages_out", "sessions_overflowed"] {
            eprintln!("global budget: {field} {}", stat(addr, field).await);
        }
    }
    let (n, ended) = refused.expect("a new session is refused once the budget is spent");
    eprintln!("global budget: session {n} refused with {ended:?} (each session holds {} KiB)", per_session * 256);
    assert!(matches!(&ended, Ended::Close(1013, reason) if reason.contains("budget")), "{ended:?}");
    hoarders
}

/// Once the hoarders' sessions expired (TTL 1 s), a new durable session echoes.
async fn budget_is_free_again(addr: SocketAddr) {
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let mut fresh = Bystander::open(addr, &[]).await;
    fresh.round_trip(ROUND_TRIP_BOUND).await.expect("a new session echoes once the budget is free");
}

/// `/chat`: many members away (their sessions wait for a resume), one uploads 1 MiB: every
/// member's replay buffer holds the one shared payload, so memory stays far below members × size.
/// (A member that is connected but does not read holds at most its connection's outgoing queue,
/// `--max-outgoing-bytes`, plus one message: see `non_reading_connections_are_closed_without_leaks`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_upload_to_idle_members_shares_the_payload() {
    const MEMBERS: u64 = 200;
    let budget = (512 * MIB).to_string();
    let mut target = Target::start(&["--max-buffered-bytes", &budget, "--max-connections-per-ip", "1000"]).await;
    let mut members = Vec::new();
    for _ in 0..MEMBERS {
        let mut ws = RawWs::connect(target.addr, "/chat", true, &[], Some(TINY_WINDOW)).await;
        ws.hello().await.unwrap();
        members.push(ws);
    }
    let mut uploader = members.remove(0);
    drop(members);
    // The others are away: the uploader and the bystander stay connected.
    target.connections_fall_to(2, Duration::from_secs(5), "members away").await;
    let watch = target.watch();
    let upload = vec![3u8; MAX_MESSAGE as usize - 16];
    assert!(uploader.write(&data_frame(1, &upload), Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    target.unwatch(watch, "chat upload").await;
    assert_eq!(
        stat(target.addr, "sessions").await,
        MEMBERS + 1,
        "every member keeps its session (and the message), and the bystander its own"
    );
    // 200 members × 1 MiB would be 200 MiB; one shared payload is 1 MiB.
    target.check("chat upload", 8 * MIB).await;
    drop(uploader);
}

/// `/chat`: one member floods 30 000 tiny messages and never reads; the members that read and
/// acknowledge get every one, in order, and keep their sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_flood_does_not_cost_the_other_members_their_sessions() {
    const FLOOD: u64 = 30_000;
    let mut target = Target::start(&["--max-buffer-messages", "40000"]).await;
    let watch = target.watch();
    let addr = target.addr;
    let mut readers = Vec::new();
    for _ in 0..3 {
        let mut ws = RawWs::connect(addr, "/chat", true, &[], None).await;
        let (_, token) = ws.hello().await.unwrap();
        readers.push(tokio::spawn(async move {
            let mut next = 1;
            let mut acked = 0;
            while next <= FLOOD {
                match ws.read_frame(Duration::from_secs(10)).await {
                    Read::Frame { opcode: BINARY, payload } => match Frame::decode(&payload).unwrap() {
                        Frame::Data { seq, payload } => {
                            assert_eq!(seq, next, "a member's messages in order, none missing");
                            assert_eq!(payload.as_bytes(), format!("f{seq}").as_bytes());
                            next += 1;
                        }
                        Frame::Ping { value } => {
                            ws.write(&durable_frame(Frame::Pong { value }), Duration::from_secs(5)).await;
                        }
                        _ => {}
                    },
                    other => panic!("a member got {other:?} after {} messages", next - 1),
                }
                if next - 1 - acked >= 32 || next > FLOOD {
                    acked = next - 1;
                    ws.write(&durable_frame(Frame::Ack { seq: acked }), Duration::from_secs(5)).await;
                }
            }
            // The session is still there: a resume on a new connection is `Resumed`.
            drop(ws);
            let mut again = RawWs::connect(addr, "/chat", true, &[], None).await;
            again.hello_resume(Some((token, FLOOD))).await.unwrap().0
        }));
    }
    let mut flooder = RawWs::connect(addr, "/chat", true, &[], Some(TINY_WINDOW)).await;
    flooder.hello().await.unwrap();
    let start = Instant::now();
    let mut batch = Vec::new();
    for seq in 1..=FLOOD {
        batch.extend(durable_frame(Frame::Data { seq, payload: PayloadRef::Text(&format!("f{seq}")) }));
        if seq % 1_000 == 0 {
            assert!(flooder.write(&batch, Duration::from_secs(10)).await, "the server reads the flood");
            batch.clear();
        }
    }
    for reader in readers {
        assert_eq!(reader.await.unwrap(), WelcomeStatus::Resumed, "a member's session survived the flood");
    }
    eprintln!("chat flood: {FLOOD} messages reached 3 members in {:?}", start.elapsed());
    target.unwatch(watch, "chat flood").await;
    // The flooder's own buffer holds the flood (tiny messages) until it is closed for not reading.
    target.check("chat flood", max_outgoing() + 4 * MIB).await;
    drop(flooder);
}

/// One identity opens sessions beyond its quota: 1013 for it; another identity still gets
/// sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_over_its_session_quota_gets_1013() {
    // The library's default quota is 100 sessions per identity.
    let quota: usize = if has_flag("--max-sessions-per-identity") { 5 } else { 100 };
    let auth = |secret: &str| format!("Bearer {secret}");
    let alice = auth("a-secret");
    let bob = auth("b-secret");
    let carol = auth("c-secret");
    let mut target = Target::start_with(
        &[
            "--auth-token",
            "alice=a-secret",
            "--auth-token",
            "bob=b-secret",
            "--auth-token",
            "carol=c-secret",
            "--max-sessions-per-identity",
            &quota.to_string(),
        ],
        &[("Authorization", &carol)],
        false,
    )
    .await;
    let mut sessions = Vec::new();
    for _ in 0..quota {
        let mut ws = RawWs::connect(target.addr, "/echo", true, &[("Authorization", &alice)], None).await;
        ws.hello().await.expect("alice's sessions within her quota");
        sessions.push(ws);
    }
    for _ in 0..3 {
        let mut ws = RawWs::connect(target.addr, "/echo", true, &[("Authorization", &alice)], None).await;
        let ended = ws.hello().await.expect_err("alice over her quota");
        assert!(matches!(&ended, Ended::Close(1013, reason) if reason.contains("identity")), "{ended:?}");
    }
    let mut ws = RawWs::connect(target.addr, "/echo", true, &[("Authorization", &bob)], None).await;
    ws.hello().await.expect("bob still gets a session");
    target.check("identity quota", MIB).await;
}

/// 100 connections (half durable, half plain) whose clients do not read are closed by the
/// server (send timeout, or the heartbeat): `/stats` connections and the process's file
/// descriptors return to what they were, though the clients still hold their sockets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_connections_whose_clients_do_not_read_leaks_nothing() {
    const CLIENTS: usize = 100;
    // 50 durable sessions × 3 echoes of 256 KiB: more than the small global budget.
    let budget = (128 * MIB).to_string();
    let mut target = Target::start(&["--max-buffered-bytes", &budget]).await;
    let fds_before = fd_count(target.pid);
    let chunk = vec![4u8; 256 << 10];
    let mut clients = Vec::new();
    for n in 0..CLIENTS {
        let durable = n % 2 == 0;
        let mut ws = RawWs::connect(target.addr, "/echo", durable, &[], Some(TINY_WINDOW)).await;
        if durable {
            ws.hello().await.unwrap();
        }
        // Enough echoes to fill the outgoing queue, then silence.
        for seq in 1..=3 {
            let frame = if durable { data_frame(seq, &chunk) } else { client_frame(BINARY, &chunk) };
            ws.write(&frame, Duration::from_millis(200)).await;
        }
        clients.push(ws);
    }
    let during = target.connections().await;
    eprintln!("close leak: {during} connections, {} fds (before: {fds_before})", fd_count(target.pid));
    target.connections_fall_to(1, Duration::from_millis(SEND_TIMEOUT_MS + 8_000), "close leak").await;
    // The server's ends are closed (the writer tasks are gone) while the clients still hold theirs.
    let start = Instant::now();
    while fd_count(target.pid) > fds_before + 2 && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fds_after = fd_count(target.pid);
    eprintln!("close leak: fds before {fds_before}, after {fds_after}");
    assert!(fds_after <= fds_before + 2, "descriptors leaked: {fds_before} before, {fds_after} after");
    let mut codes = std::collections::BTreeMap::<String, usize>::new();
    for mut ws in clients {
        let ended = ws.until_closed(Duration::from_secs(2)).await;
        *codes
            .entry(match ended {
                Ended::Close(code, _) => code.to_string(),
                other => format!("{other:?}"),
            })
            .or_default() += 1;
    }
    eprintln!("close leak: the clients saw {codes:?}");
    assert!(!codes.contains_key("Open"), "{codes:?}");
    drop(target.bystander.take());
    target.connections_fall_to(0, Duration::from_secs(5), "close leak").await;
    target.check("close leak", CLIENTS as u64 * (max_outgoing() + (256 << 10))).await;
}

/// WebSocket-level garbage gets a close frame (1002, or 1007 for bad UTF-8), on plain and
/// durable connections, instead of a dropped TCP connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_garbage_gets_a_close_frame() {
    let mut target = Target::start(&[]).await;
    let cases: [(&str, Vec<u8>, u16); 4] = [
        ("unmasked client frame", raw_frame(0x80 | BINARY, b"unmasked", false), 1002),
        ("reserved bits set", raw_frame(0xf0 | BINARY, b"rsv", true), 1002),
        ("unknown opcode", raw_frame(0x80 | 0x3, b"op3", true), 1002),
        ("bad UTF-8 in a text frame", client_frame(TEXT, &[b'o', b'k', 0xff, 0xfe]), 1007),
    ];
    for durable in [false, true] {
        for (what, bytes, code) in &cases {
            let mut ws = RawWs::connect(target.addr, "/echo", durable, &[], None).await;
            if durable {
                ws.hello().await.unwrap();
            }
            ws.write(bytes, Duration::from_secs(1)).await;
            let ended = ws.until_closed(Duration::from_secs(5)).await;
            assert!(
                matches!(&ended, Ended::Close(got, _) if got == code),
                "{what} (durable: {durable}): {ended:?}, expected {code}"
            );
        }
    }
    target.check("websocket garbage", MIB).await;
}
