//! Load generator for the reference server: opens many durable sessions against `/echo` with
//! the native client (the core `Client` over tokio-tungstenite), measures the server's resident
//! memory per session (`/proc/PID/status`) and the echo round trip under load.
//!
//! ```text
//! loadgen --url ws://127.0.0.1:8080/echo --sessions 10000 --server-pid 1234
//! ```
//!
//! Prints one JSON object with the results on stdout; progress goes to stderr.

use std::fs;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use durable_ws_core::{ClientConfig, Event, Payload};
use durable_ws_testkit::native_client::NativeClient;
use serde::Serialize;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout};

/// Opens many durable echo sessions and measures the server under them.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// WebSocket URL of the durable echo endpoint; repeated, the sessions are spread over them in
    /// turn (several nodes without a balancer in between).
    #[arg(long, default_value = "ws://127.0.0.1:8080/echo")]
    url: Vec<String>,
    /// Sessions to open.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// Sessions opened at once (the next batch starts when this one is open).
    #[arg(long, default_value_t = 250)]
    batch: usize,
    /// PID of the server, whose resident memory is read from /proc (absent: not measured).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Messages per second each session sends during the load phase.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Length of the load phase, in seconds.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Bytes per message (at least 8: a send timestamp leads each one).
    #[arg(long, default_value_t = 100)]
    payload_bytes: usize,
    /// Longest wait for one batch to open, or for the last echoes, in seconds.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
}

/// What the run measured.
#[derive(Serialize, Debug, Default)]
struct Report {
    sessions_requested: usize,
    sessions_open: usize,
    open_seconds: f64,
    server_rss_before_kib: Option<u64>,
    server_rss_open_kib: Option<u64>,
    server_rss_after_load_kib: Option<u64>,
    server_rss_per_session_bytes: Option<f64>,
    messages_sent: u64,
    echoes_received: u64,
    /// CPU time (user + system) the server used during the load phase.
    server_cpu_seconds: Option<f64>,
    /// CPU time the load generator used during the load phase.
    loadgen_cpu_seconds: Option<f64>,
    echo_rate_per_second: f64,
    rtt_ms_p50: Option<f64>,
    rtt_ms_p99: Option<f64>,
    rtt_ms_max: Option<f64>,
    reconnects: u64,
    sessions_lost: u64,
}

/// Round-trip samples and counters shared by every session's event task.
#[derive(Default)]
struct Tally {
    rtt_micros: Mutex<Vec<u32>>,
    echoes: AtomicU64,
    reconnects: AtomicU64,
    sessions_lost: AtomicU64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.payload_bytes < 8 || args.sessions == 0 || args.batch == 0 || !(args.rate > 0.0 && args.rate.is_finite()) {
        eprintln!("loadgen: --payload-bytes must be ≥ 8, --sessions and --batch ≥ 1, --rate a positive number");
        return std::process::ExitCode::from(2);
    }
    match run(args).await {
        Ok(report) => {
            println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            std::process::ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("loadgen: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<Report, String> {
    let epoch = Instant::now();
    let tally = Arc::new(Tally::default());
    let rss = |pid: Option<u32>| pid.and_then(resident_kib);
    let mut report =
        Report { sessions_requested: args.sessions, server_rss_before_kib: rss(args.server_pid), ..Report::default() };

    let opening = Instant::now();
    let clients = open_sessions(&args, epoch, &tally).await?;
    report.open_seconds = opening.elapsed().as_secs_f64();
    report.sessions_open = clients.len();
    eprintln!("loadgen: {} sessions open in {:.1} s", clients.len(), report.open_seconds);
    // Let connection set-up garbage (handshake buffers) settle before reading the memory.
    sleep(Duration::from_secs(2)).await;
    report.server_rss_open_kib = rss(args.server_pid);
    if let (Some(before), Some(open)) = (report.server_rss_before_kib, report.server_rss_open_kib) {
        report.server_rss_per_session_bytes = Some((open as f64 - before as f64) * 1024.0 / clients.len() as f64);
    }

    let cpu_before = (args.server_pid.and_then(cpu_seconds), cpu_seconds(std::process::id()));
    let started = Instant::now();
    let sent = load(&args, epoch, &clients).await;
    report.messages_sent = sent;
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    while tally.echoes.load(Ordering::Relaxed) < sent && Instant::now() < deadline {
        sleep(Duration::from_millis(5)).await;
    }
    let cpu_after = (args.server_pid.and_then(cpu_seconds), cpu_seconds(std::process::id()));
    report.server_cpu_seconds = cpu_before.0.zip(cpu_after.0).map(|(before, after)| after - before);
    report.loadgen_cpu_seconds = cpu_before.1.zip(cpu_after.1).map(|(before, after)| after - before);
    report.server_rss_after_load_kib = rss(args.server_pid);
    report.echoes_received = tally.echoes.load(Ordering::Relaxed);
    // Until the last echo arrived: a server that falls behind the offered rate shows its own.
    report.echo_rate_per_second = report.echoes_received as f64 / started.elapsed().as_secs_f64();
    let mut samples = std::mem::take(&mut *tally.rtt_micros.lock().unwrap_or_else(|p| p.into_inner()));
    samples.sort_unstable();
    let pick = |q: f64| {
        samples
            .get(((samples.len() as f64 * q) as usize).min(samples.len().saturating_sub(1)))
            .map(|&us| us as f64 / 1000.0)
    };
    report.rtt_ms_p50 = pick(0.50);
    report.rtt_ms_p99 = pick(0.99);
    report.rtt_ms_max = samples.last().map(|&us| us as f64 / 1000.0);
    report.reconnects = tally.reconnects.load(Ordering::Relaxed);
    report.sessions_lost = tally.sessions_lost.load(Ordering::Relaxed);
    for client in &clients {
        client.close(1000, "done");
    }
    sleep(Duration::from_millis(500)).await;
    Ok(report)
}

/// Opens the sessions `batch` at a time; each gets a task that records its echoes.
async fn open_sessions(args: &Args, epoch: Instant, tally: &Arc<Tally>) -> Result<Vec<NativeClient>, String> {
    let mut clients = Vec::with_capacity(args.sessions);
    while clients.len() < args.sessions {
        let count = args.batch.min(args.sessions - clients.len());
        let mut opening = JoinSet::new();
        for _ in 0..count {
            let url = &args.url[clients.len() % args.url.len()];
            let (client, mut events) =
                NativeClient::connect(url, ClientConfig::default()).map_err(|e| e.to_string())?;
            let tally = tally.clone();
            let wait = Duration::from_secs(args.timeout_secs);
            opening.spawn(async move {
                let opened = timeout(wait, wait_open(&mut events)).await.unwrap_or(false);
                tokio::spawn(record_echoes(events, epoch, tally));
                opened.then_some(client)
            });
        }
        while let Some(result) = opening.join_next().await {
            match result {
                Ok(Some(client)) => clients.push(client),
                Ok(None) => return Err(format!("a session did not open (after {} open)", clients.len())),
                Err(error) => return Err(format!("an opening task failed: {error}")),
            }
        }
        if clients.len() % 1000 < args.batch {
            eprintln!("loadgen: {} sessions open", clients.len());
        }
    }
    Ok(clients)
}

/// Waits for the session's `Open`; false if the client ended first.
async fn wait_open(events: &mut UnboundedReceiver<Event>) -> bool {
    while let Some(event) = events.recv().await {
        if let Event::Open { durable } = event {
            return durable;
        }
    }
    false
}

/// Records the round trip of every echo (its first 8 bytes: microseconds since `epoch` at sending).
async fn record_echoes(mut events: UnboundedReceiver<Event>, epoch: Instant, tally: Arc<Tally>) {
    while let Some(event) = events.recv().await {
        match event {
            Event::Message(Payload::Binary(bytes)) if bytes.len() >= 8 => {
                let sent = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default());
                let now = epoch.elapsed().as_micros() as u64;
                let rtt = now.saturating_sub(sent).min(u32::MAX as u64) as u32;
                tally.rtt_micros.lock().unwrap_or_else(|p| p.into_inner()).push(rtt);
                tally.echoes.fetch_add(1, Ordering::Relaxed);
            }
            Event::Reconnecting { .. } => {
                tally.reconnects.fetch_add(1, Ordering::Relaxed);
            }
            Event::SessionLost { .. } => {
                tally.sessions_lost.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

/// Every session sends `rate` messages per second for `duration_secs`, with start times spread
/// over the first interval; returns how many messages were sent.
async fn load(args: &Args, epoch: Instant, clients: &[NativeClient]) -> u64 {
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let per_session = (args.rate * args.duration_secs as f64).round() as u64;
    let sent = Arc::new(AtomicU64::new(0));
    let mut senders = JoinSet::new();
    for (i, client) in clients.iter().enumerate() {
        let client = client.clone();
        let sent = sent.clone();
        let offset = interval.mul_f64(i as f64 / clients.len() as f64);
        let payload_bytes = args.payload_bytes;
        senders.spawn(async move {
            sleep(offset).await;
            let mut ticks = tokio::time::interval(interval);
            for _ in 0..per_session {
                ticks.tick().await;
                let mut bytes = vec![b'x'; payload_bytes];
                bytes[..8].copy_from_slice(&(epoch.elapsed().as_micros() as u64).to_le_bytes());
                if client.send(Payload::Binary(bytes)).is_ok() {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while senders.join_next().await.is_some() {}
    sent.load(Ordering::Relaxed)
}

/// CPU time (user + system) a process used so far, in seconds (`/proc/PID/stat`, in USER_HZ =
/// 100 ticks per second on Linux).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start with the state, field 3.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// Resident memory of a process in KiB (`VmRSS` of /proc/PID/status).
fn resident_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
