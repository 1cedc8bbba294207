//! Checks that a server speaks `durable.v1` as docs/PROTOCOL.md specifies, case by case, over
//! raw WebSockets to an endpoint that echoes every durable message back into the same session.
//! One line per case (PASS, FAIL or SKIP, with the reason); exit status 1 if any case failed.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use durable_ws_core::HeartbeatConfig;
use durable_ws_testkit::conformance::{cases, run, Config, Outcome};

/// The durable.v1 conformance suite: checks a server's wire behaviour case by case.
#[derive(Parser, Debug)]
#[command(version, about, after_help = AFTER_HELP)]
struct Args {
    /// The server's echo endpoint (ws://HOST:PORT/PATH; http:// is taken as ws://). It must
    /// echo every durable message back into the same session.
    #[arg(long, value_name = "URL", required_unless_present = "list")]
    url: Option<String>,
    /// The server's largest DATA payload, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    max_message_bytes: usize,
    /// The server's replay buffer bound, in messages (0 skips the overflow case).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    max_buffer_messages: usize,
    /// How long the server waits for HELLO, in ms.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    handshake_timeout_ms: u64,
    /// The server's heartbeat interval, in ms (0: the server does not ping; the heartbeat
    /// cases are skipped).
    #[arg(long, value_name = "MS", default_value_t = HeartbeatConfig::DEFAULT_INTERVAL_MS)]
    heartbeat_interval_ms: u64,
    /// The server's heartbeat timeout, in ms.
    #[arg(long, value_name = "MS", default_value_t = HeartbeatConfig::DEFAULT_TIMEOUT_MS)]
    heartbeat_timeout_ms: u64,
    /// How long any single expected frame may take, in ms.
    #[arg(long, value_name = "MS", default_value_t = 3_000)]
    step_ms: u64,
    /// The same endpoint without credentials: expects the upgrade accepted, then close 4401.
    /// [default: none: the case is skipped]
    #[arg(long, value_name = "URL")]
    no_credentials_url: Option<String>,
    /// The same endpoint with invalid credentials: expects close 4403. [default: none: skipped]
    #[arg(long, value_name = "URL")]
    bad_credentials_url: Option<String>,
    /// The same endpoint with another identity's credentials: resuming a session of --url
    /// from it must get LostRefused. [default: none: skipped]
    #[arg(long, value_name = "URL")]
    other_identity_url: Option<String>,
    /// Base URL (http://HOST:PORT) of the reference server's fault endpoints
    /// (--enable-faults), for the session-expiry case. [default: none: skipped]
    #[arg(long, value_name = "URL")]
    admin_url: Option<String>,
    /// Run only the cases whose name contains this; repeatable.
    #[arg(long, value_name = "TEXT")]
    only: Vec<String>,
    /// Skip the cases whose name contains this; repeatable.
    #[arg(long, value_name = "TEXT")]
    skip: Vec<String>,
    /// List the cases and exit.
    #[arg(long)]
    list: bool,
}

const AFTER_HELP: &str = "\
Limits default to the spec's defaults: pass the server's own settings when they differ.
Against the reference server: durable-ws-server --listen 127.0.0.1:8080 --enable-faults, then
  durable-ws-conformance --url ws://127.0.0.1:8080/echo --admin-url http://127.0.0.1:8080
Exit status: 0 when no case failed, 1 when one did, 2 for a bad command line.";

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        for case in cases() {
            println!("{} ({})", case.name, case.section);
        }
        return ExitCode::SUCCESS;
    }
    let mut config = Config::new(args.url.expect("clap requires --url"));
    config.max_message_bytes = args.max_message_bytes;
    config.max_buffer_messages = (args.max_buffer_messages > 0).then_some(args.max_buffer_messages);
    config.handshake_timeout = Duration::from_millis(args.handshake_timeout_ms);
    config.heartbeat_interval =
        (args.heartbeat_interval_ms > 0).then(|| Duration::from_millis(args.heartbeat_interval_ms));
    config.heartbeat_timeout = Duration::from_millis(args.heartbeat_timeout_ms);
    config.step = Duration::from_millis(args.step_ms.max(1));
    config.no_credentials_url = args.no_credentials_url;
    config.bad_credentials_url = args.bad_credentials_url;
    config.other_identity_url = args.other_identity_url;
    config.admin_url = args.admin_url;
    config.only = args.only;
    config.skip = args.skip;

    println!("durable.v1 conformance against {}", config.url);
    let started = Instant::now();
    let results = run(&config, |result| println!("{result}")).await;
    let count = |f: fn(&Outcome) -> bool| results.iter().filter(|r| f(&r.outcome)).count();
    let (passed, failed, skipped) =
        (count(|o| matches!(o, Outcome::Pass(_))), count(Outcome::is_fail), count(|o| matches!(o, Outcome::Skip(_))));
    println!("{passed} passed, {failed} failed, {skipped} skipped in {:.1} s", started.elapsed().as_secs_f64());
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
