//! Measures a `durable-ws-server` binary under hostile clients (issue 10): for each attack it
//! starts a fresh server (so its peak memory is the attack's), opens a well-behaved durable
//! bystander on `/echo` that echoes every 20 ms, runs the attack for at most `--secs` seconds
//! (or until the server's memory passes `--cap-mib`: it is then killed and the row says
//! "aborted") and prints one Markdown table row: peak RSS (`VmHWM`), the bystander's round trip
//! p50/p99, its echoes that did not come back within 2 s, and what happened to the attacker.
//!
//! ```text
//! hostile --server target/release/durable-ws-server --label after
//! hostile --server /work/wt-old/target/release/durable-ws-server --label before --prlimit-as 3000000000
//! ```
//!
//! The attackers are the ones of `crates/reference/tests/hostile.rs` (byte-level WebSockets of
//! `crates/reference/tests/support/hostile.rs`, included here by path), with the server's
//! default flags.

#[path = "../../../reference/tests/support/hostile.rs"]
mod raw;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use durable_ws_core::frame::Frame;
use durable_ws_core::PayloadRef;
use raw::{
    client_frame, data_frame, durable_frame, fd_count, raw_frame, stat, status_kib, Bystander, Ended, RawWs, Read,
    BINARY, MIB, PING, TEXT, TINY_WINDOW,
};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command};
use tokio::sync::oneshot;

const ATTACKS: &[&str] = &[
    "plain-nonreader",
    "blind-acks",
    "ws-ping-flood",
    "durable-ping-flood",
    "budget",
    "chat-upload",
    "chat-flood",
    "quota",
    "close-leak",
    "ws-garbage",
];

/// Measures a server binary under hostile clients; prints Markdown table rows.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The server binary.
    #[arg(long)]
    server: String,
    /// Column label (e.g. before, after).
    #[arg(long, default_value = "")]
    label: String,
    /// Attacks to run (default: all): plain-nonreader, blind-acks, ws-ping-flood,
    /// durable-ping-flood, budget, chat-upload, chat-flood, quota, close-leak, ws-garbage.
    #[arg(long = "attack")]
    attacks: Vec<String>,
    /// Longest run of one attack, in seconds.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Kill the server when its resident memory passes this, in MiB.
    #[arg(long, default_value_t = 2048)]
    cap_mib: u64,
    /// Run the server under `prlimit --as=BYTES`.
    #[arg(long)]
    prlimit_as: Option<u64>,
    /// Extra server argument (repeatable, e.g. --arg=--max-buffered-bytes --arg=268435456).
    #[arg(long = "arg", allow_hyphen_values = true)]
    extra: Vec<String>,
}

struct Server {
    child: Child,
    /// Kept open: the server may print more.
    _stdout: BufReader<std::process::ChildStdout>,
    pid: u32,
    addr: SocketAddr,
}

fn start(args: &Args, more: &[&str]) -> Server {
    let mut command = match args.prlimit_as {
        Some(bytes) => {
            let mut c = Command::new("prlimit");
            c.arg(format!("--as={bytes}")).arg("--").arg(&args.server);
            c
        }
        None => Command::new(&args.server),
    };
    command
        .args(["--listen", "127.0.0.1:0", "--www"])
        .arg(std::env::temp_dir())
        .args(&args.extra)
        .args(more)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command.spawn().expect("server starts");
    let pid = child.id();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).expect("a listening line");
    let addr = line.trim().rsplit(' ').next().unwrap().parse().unwrap();
    Server { child, _stdout: stdout, pid, addr }
}

/// One attack's figures.
struct Row {
    peak_kib: u64,
    aborted: bool,
    p50: Duration,
    p99: Duration,
    late: usize,
    echoes: usize,
    outcome: String,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let attacks: Vec<String> =
        if args.attacks.is_empty() { ATTACKS.iter().map(|s| s.to_string()).collect() } else { args.attacks.clone() };
    println!("| attack | {} peak RSS | bystander echo p50 / p99 | late echoes | what happened |", args.label);
    println!("|---|---|---|---|---|");
    for attack in &attacks {
        let row = run(&args, attack).await;
        let peak = if row.aborted {
            format!("> {} MiB, aborted", args.cap_mib)
        } else {
            format!("{:.0} MiB", row.peak_kib as f64 / 1024.0)
        };
        println!(
            "| {attack} | {peak} | {:.1} ms / {:.1} ms | {} of {} | {} |",
            row.p50.as_secs_f64() * 1e3,
            row.p99.as_secs_f64() * 1e3,
            row.late,
            row.echoes,
            row.outcome
        );
    }
}

async fn run(args: &Args, attack: &str) -> Row {
    let auth = ["--auth-token", "alice=a-secret", "--auth-token", "carol=c-secret"];
    let fast_heartbeat = ["--heartbeat-interval-ms", "1000", "--heartbeat-timeout-ms", "2000"];
    let more: &[&str] = match attack {
        "quota" => &auth,
        "close-leak" => &fast_heartbeat,
        _ => &[],
    };
    let carol = [("Authorization", "Bearer c-secret")];
    let bystander_headers: &[(&str, &str)] = if attack == "quota" { &carol } else { &[] };
    let mut server = start(args, more);
    let (pid, addr) = (server.pid, server.addr);
    let bystander = Bystander::open(addr, bystander_headers).await;
    let (stop, stopped) = oneshot::channel();
    let watching = tokio::spawn(bystander.keep_echoing(Duration::from_millis(20), Duration::from_secs(2), stopped));

    // The memory watch: kills the server past the cap.
    let over = Arc::new(AtomicBool::new(false));
    let max_rss = Arc::new(AtomicU64::new(0));
    let cap_kib = args.cap_mib * 1024;
    let monitor = {
        let (over, max_rss) = (over.clone(), max_rss.clone());
        tokio::spawn(async move {
            loop {
                let Some(rss) = status_kib(pid, "VmRSS") else { return };
                max_rss.fetch_max(rss, Ordering::Relaxed);
                if rss > cap_kib {
                    over.store(true, Ordering::Relaxed);
                    let _ = std::process::Command::new("kill").arg("-9").arg(pid.to_string()).status();
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    let deadline = Instant::now() + Duration::from_secs(args.secs);
    let outcome = tokio::select! {
        outcome = attack_on(attack, addr, pid, deadline) => outcome,
        _ = async { while !over.load(Ordering::Relaxed) { tokio::time::sleep(Duration::from_millis(20)).await } } => "killed at the memory cap".to_string(),
    };
    let peak_kib = status_kib(pid, "VmHWM").unwrap_or(0).max(max_rss.load(Ordering::Relaxed));
    let _ = stop.send(());
    let (bystander, late) = match tokio::time::timeout(Duration::from_secs(5), watching).await {
        Ok(Ok(done)) => done,
        _ => {
            let _ = server.child.kill();
            let _ = server.child.wait();
            return Row {
                peak_kib,
                aborted: over.load(Ordering::Relaxed),
                p50: Duration::ZERO,
                p99: Duration::ZERO,
                late: 0,
                echoes: 0,
                outcome: format!("{outcome}; bystander stuck"),
            };
        }
    };
    monitor.abort();
    let alive = server.child.try_wait().ok().flatten().is_none();
    let (p50, p99, _) = bystander.percentiles();
    let _ = server.child.kill();
    let _ = server.child.wait();
    let outcome = if alive || over.load(Ordering::Relaxed) { outcome } else { format!("{outcome}; server exited") };
    Row {
        peak_kib,
        aborted: over.load(Ordering::Relaxed),
        p50,
        p99,
        late,
        echoes: bystander.round_trips.len() + late,
        outcome,
    }
}

fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Writes frames from `make` until the deadline, the connection fails, or `max` were written.
async fn flood(ws: &mut RawWs, deadline: Instant, max: u64, mut make: impl FnMut(u64) -> Vec<u8>) -> (u64, bool) {
    for i in 1..=max {
        if Instant::now() >= deadline {
            return (i - 1, true);
        }
        match tokio::time::timeout(left(deadline), tokio::io::AsyncWriteExt::write_all(&mut ws.tcp, &make(i))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return (i - 1, false),
            Err(_) => return (i - 1, true),
        }
    }
    (max, true)
}

fn describe(ended: &Ended) -> String {
    match ended {
        Ended::Close(code, reason) => format!("closed {code} \"{reason}\""),
        Ended::Dropped => "dropped".into(),
        Ended::Open => "still open".into(),
    }
}

async fn attack_on(attack: &str, addr: SocketAddr, pid: u32, deadline: Instant) -> String {
    match attack {
        "plain-nonreader" => {
            let mut ws = RawWs::connect(addr, "/echo", false, &[], Some(TINY_WINDOW)).await;
            let frame = client_frame(BINARY, &vec![7u8; MIB as usize]);
            let (n, open) = flood(&mut ws, deadline, u64::MAX, |_| frame.clone()).await;
            format!(
                "{n} × 1 MiB written; {}",
                if open { "connection open at the end" } else { "connection closed by the server" }
            )
        }
        "blind-acks" => {
            let mut ws = RawWs::connect(addr, "/echo", true, &[], Some(TINY_WINDOW)).await;
            ws.hello().await.unwrap();
            let chunk = vec![1u8; 64 << 10];
            let (n, _) = flood(&mut ws, deadline, u64::MAX, |i| {
                let mut frames = data_frame(i, &chunk);
                if i > 8 {
                    frames.extend(durable_frame(Frame::Ack { seq: i - 8 }));
                }
                frames
            })
            .await;
            let ended = ws.until_closed(Duration::from_secs(2)).await;
            format!("{n} × 64 KiB written; {}", describe(&ended))
        }
        "ws-ping-flood" | "durable-ping-flood" => {
            let durable = attack == "durable-ping-flood";
            let mut ws = RawWs::connect(addr, "/echo", durable, &[], Some(TINY_WINDOW)).await;
            let ping = if durable {
                ws.hello().await.unwrap();
                durable_frame(Frame::Ping { value: u64::MAX })
            } else {
                client_frame(PING, &[b'p'; 125])
            };
            let batch: Vec<u8> = std::iter::repeat_n(ping, 100).flatten().collect();
            let (n, open) = flood(&mut ws, deadline, u64::MAX, |_| batch.clone()).await;
            format!("{} pings written; {}", n * 100, if open { "connection open" } else { "connection closed" })
        }
        "budget" => {
            // Sessions that never read nor acknowledge, each holding ~7 MiB (under the default
            // 8 MiB per session), until the deadline or a refusal.
            let chunk = vec![2u8; 896 << 10];
            let mut hoarders = Vec::new();
            let mut refused = None;
            while Instant::now() < deadline && hoarders.len() < 400 {
                let mut ws = RawWs::connect(addr, "/echo", true, &[], Some(TINY_WINDOW)).await;
                if let Err(ended) = ws.hello().await {
                    refused = Some(ended);
                    break;
                }
                for seq in 1..=8 {
                    if !ws.write(&data_frame(seq, &chunk), Duration::from_millis(500)).await {
                        break;
                    }
                }
                hoarders.push(ws);
            }
            let held = hoarders.len();
            tokio::time::sleep(left(deadline).min(Duration::from_secs(1))).await;
            match refused {
                Some(ended) => format!("{held} sessions × 7 MiB, then a new session {}", describe(&ended)),
                None => format!("{held} sessions × 7 MiB, none refused"),
            }
        }
        "chat-upload" => {
            let mut members = Vec::new();
            for _ in 0..200 {
                let mut ws = RawWs::connect(addr, "/chat", true, &[], Some(TINY_WINDOW)).await;
                ws.hello().await.unwrap();
                members.push(ws);
            }
            let upload = vec![3u8; MIB as usize - 16];
            members[0].write(&data_frame(1, &upload), Duration::from_secs(5)).await;
            tokio::time::sleep(left(deadline)).await;
            let sessions = stat(addr, "sessions").await;
            format!("200 idle members, one 1 MiB upload; {sessions} sessions at the end")
        }
        "chat-flood" => {
            const FLOOD: u64 = 30_000;
            let mut readers = Vec::new();
            for _ in 0..3 {
                let mut ws = RawWs::connect(addr, "/chat", true, &[], None).await;
                ws.hello().await.unwrap();
                readers.push(tokio::spawn(async move {
                    let (mut got, mut acked) = (0u64, 0u64);
                    loop {
                        match ws.read_frame(Duration::from_secs(3)).await {
                            Read::Frame { opcode: BINARY, payload } => match Frame::decode(&payload) {
                                Ok(Frame::Data { seq, .. }) => got = seq,
                                Ok(Frame::Ping { value }) => {
                                    ws.write(&durable_frame(Frame::Pong { value }), Duration::from_secs(2)).await;
                                }
                                _ => {}
                            },
                            Read::Frame { .. } => {}
                            Read::Timeout => return format!("{got}"),
                            other => return format!("{got} then {other:?}"),
                        }
                        if got - acked >= 32 || got >= FLOOD {
                            acked = got;
                            ws.write(&durable_frame(Frame::Ack { seq: acked }), Duration::from_secs(2)).await;
                        }
                    }
                }));
            }
            let mut flooder = RawWs::connect(addr, "/chat", true, &[], Some(TINY_WINDOW)).await;
            flooder.hello().await.unwrap();
            let mut batch = Vec::new();
            let mut sent = 0;
            for seq in 1..=FLOOD {
                batch.extend(durable_frame(Frame::Data { seq, payload: PayloadRef::Text(&format!("f{seq}")) }));
                if seq % 1_000 == 0 {
                    if !flooder.write(&batch, left(deadline)).await {
                        break;
                    }
                    sent = seq;
                    batch.clear();
                }
            }
            let mut got = Vec::new();
            for reader in readers {
                got.push(
                    tokio::time::timeout(left(deadline) + Duration::from_secs(4), reader)
                        .await
                        .map(|r| r.unwrap())
                        .unwrap_or_else(|_| "timeout".into()),
                );
            }
            let flooder_end = flooder.until_closed(Duration::from_secs(2)).await;
            format!(
                "{sent} sent; the 3 reading members got {} (then silence); the flooder: {}",
                got.join(", "),
                describe(&flooder_end)
            )
        }
        "quota" => {
            let mut sessions = Vec::new();
            let mut refused = None;
            while Instant::now() < deadline && sessions.len() < 1_000 {
                let mut ws = RawWs::connect(addr, "/echo", true, &[("Authorization", "Bearer a-secret")], None).await;
                match ws.hello().await {
                    Ok(_) => sessions.push(ws),
                    Err(ended) => {
                        refused = Some(ended);
                        break;
                    }
                }
            }
            match refused {
                Some(ended) => format!("one identity: {} sessions, the next {}", sessions.len(), describe(&ended)),
                None => format!("one identity: {} sessions, none refused", sessions.len()),
            }
        }
        "close-leak" => {
            // 100 clients fill their outgoing queues and stop reading; the heartbeat (1 s + 2 s
            // for this attack, both servers) closes them. What is left once they are closed?
            let fds_before = fd_count(pid);
            let chunk = vec![4u8; 256 << 10];
            let mut clients = Vec::new();
            for n in 0..100 {
                let durable = n % 2 == 0;
                let mut ws = RawWs::connect(addr, "/echo", durable, &[], Some(TINY_WINDOW)).await;
                if durable {
                    ws.hello().await.unwrap();
                }
                for seq in 1..=6 {
                    let frame = if durable { data_frame(seq, &chunk) } else { client_frame(BINARY, &chunk) };
                    if !ws.write(&frame, Duration::from_millis(100)).await {
                        break;
                    }
                }
                clients.push(ws);
            }
            let fds_during = fd_count(pid);
            tokio::time::sleep(left(deadline)).await;
            let connections = stat(addr, "connections").await;
            let fds_after = fd_count(pid);
            drop(clients);
            format!("fds {fds_before} before, {fds_during} during, {fds_after} at the end (clients still open); /stats connections {connections} (1 is the bystander)")
        }
        "ws-garbage" => {
            let cases: [(&str, Vec<u8>); 4] = [
                ("unmasked", raw_frame(0x80 | BINARY, b"unmasked", false)),
                ("rsv", raw_frame(0xf0 | BINARY, b"rsv", true)),
                ("opcode 3", raw_frame(0x83, b"op3", true)),
                ("bad utf-8", client_frame(TEXT, &[b'o', b'k', 0xff, 0xfe])),
            ];
            let mut seen = Vec::new();
            for durable in [false, true] {
                for (what, bytes) in &cases {
                    let mut ws = RawWs::connect(addr, "/echo", durable, &[], None).await;
                    if durable {
                        ws.hello().await.unwrap();
                    }
                    ws.write(bytes, Duration::from_secs(1)).await;
                    let code = match ws.until_closed(Duration::from_secs(3)).await {
                        Ended::Close(code, _) => code.to_string(),
                        Ended::Dropped => "dropped".into(),
                        Ended::Open => "open".into(),
                    };
                    seen.push(format!("{}{what}: {code}", if durable { "durable " } else { "plain " }));
                }
            }
            seen.join(", ")
        }
        other => panic!("unknown attack {other}; known: {ATTACKS:?}"),
    }
}
