//! A conformance suite for any `durable.v1` server (docs/PROTOCOL.md, section "Conformance").
//!
//! It needs one endpoint that echoes every durable message back into the same session (the
//! reference server's `/echo`), opens raw WebSockets to it and checks the wire case by case:
//! every frame it sends is chosen by the case (encoded with [`durable_ws_core::frame`], or
//! hand-made bytes for the malformed ones), every frame the server sends is checked. Each case
//! has its own time bound; a case that needs something the run was not given (an auth URL, the
//! fault endpoints) is skipped, with the reason.
//!
//! ```no_run
//! # async fn demo() {
//! use durable_ws_testkit::conformance::{run, Config};
//! let config = Config::new("ws://127.0.0.1:8080/echo");
//! let results = run(&config, |result| println!("{result}")).await;
//! assert!(results.iter().all(|result| !result.outcome.is_fail()));
//! # }
//! ```
//!
//! The binary `durable-ws-conformance` is this module behind a command line.

mod cases;
mod conn;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

pub use conn::{Conn, Got, OpenError};

/// The subprotocol under test.
pub const SUBPROTOCOL: &str = durable_ws_core::SUBPROTOCOL;

/// What the suite knows about the server under test. Limits default to the spec's defaults
/// (docs/PROTOCOL.md §5.8, §6): pass the server's own settings when they differ.
#[derive(Clone, Debug)]
pub struct Config {
    /// The echo endpoint, `ws://HOST:PORT/PATH` (`http://` is taken as `ws://`).
    pub url: String,
    /// The server's largest DATA payload, in bytes (§6.2). Default 1 MiB.
    pub max_message_bytes: usize,
    /// The server's replay buffer bound, in messages (§6.1); `None` skips the overflow case.
    /// Default 10 000.
    pub max_buffer_messages: Option<usize>,
    /// How long the server waits for `Hello` (§5.1). Default 10 s.
    pub handshake_timeout: Duration,
    /// The server's heartbeat interval (§5.8); `None`: the server does not ping (the heartbeat
    /// cases are skipped). Default 15 s.
    pub heartbeat_interval: Option<Duration>,
    /// The server's heartbeat timeout (§5.8). Default 10 s.
    pub heartbeat_timeout: Duration,
    /// How long a server waits for the client's close after a client `Goodbye` (§5.7): 5 s.
    pub goodbye_wait: Duration,
    /// How long any single expected frame may take to arrive. Default 3 s.
    pub step: Duration,
    /// A URL of the same endpoint without credentials: the upgrade must be accepted and closed
    /// with 4401 (§7, §9). `None` skips the case.
    pub no_credentials_url: Option<String>,
    /// A URL of the same endpoint with invalid credentials: close 4403. `None` skips the case.
    pub bad_credentials_url: Option<String>,
    /// A URL of the same endpoint with another identity's credentials: resuming a session of
    /// [`url`](Self::url) from it gets `LostRefused` (§9). `None` skips the case.
    pub other_identity_url: Option<String>,
    /// Base URL of the reference server's fault endpoints (`http://HOST:PORT`, served with
    /// `--enable-faults`; docs/SERVER.md) for the session-expiry case. `None` skips it.
    pub admin_url: Option<String>,
    /// Run only the cases whose name contains one of these (empty: all).
    pub only: Vec<String>,
    /// Skip the cases whose name contains one of these.
    pub skip: Vec<String>,
}

impl Config {
    /// The spec's defaults for a server at `url`.
    pub fn new(url: impl Into<String>) -> Config {
        let mut url = url.into();
        if let Some(rest) = url.strip_prefix("http://") {
            url = format!("ws://{rest}");
        } else if let Some(rest) = url.strip_prefix("https://") {
            url = format!("wss://{rest}");
        }
        Config {
            url,
            max_message_bytes: 1 << 20,
            max_buffer_messages: Some(10_000),
            handshake_timeout: Duration::from_secs(10),
            heartbeat_interval: Some(Duration::from_secs(15)),
            heartbeat_timeout: Duration::from_secs(10),
            goodbye_wait: Duration::from_secs(5),
            step: Duration::from_secs(3),
            no_credentials_url: None,
            bad_credentials_url: None,
            other_identity_url: None,
            admin_url: None,
            only: Vec::new(),
            skip: Vec::new(),
        }
    }

    fn selects(&self, name: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|part| name.contains(part.as_str())))
            && !self.skip.iter().any(|part| name.contains(part.as_str()))
    }
}

/// Why a case did not pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The server broke the spec: what was expected and what happened.
    Fail(String),
    /// The case could not run here.
    Skip(String),
}

/// What a case body returns: `Ok(note)` passes (with an optional remark).
pub type CaseResultOf = Result<Option<String>, Verdict>;

/// The outcome of one case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The server behaved as specified (with an optional remark).
    Pass(Option<String>),
    /// It did not.
    Fail(String),
    /// Not run, and why.
    Skip(String),
}

impl Outcome {
    /// Whether the case failed.
    pub fn is_fail(&self) -> bool {
        matches!(self, Outcome::Fail(_))
    }
}

/// One case's result.
#[derive(Clone, Debug)]
pub struct CaseReport {
    /// The case's name, `group/what`.
    pub name: &'static str,
    /// The spec section it checks.
    pub section: &'static str,
    /// What happened.
    pub outcome: Outcome,
    /// How long it took.
    pub elapsed: Duration,
}

impl fmt::Display for CaseReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.elapsed.as_millis();
        match &self.outcome {
            Outcome::Pass(None) => write!(f, "PASS {} ({}, {ms} ms)", self.name, self.section),
            Outcome::Pass(Some(note)) => write!(f, "PASS {} ({}, {ms} ms): {note}", self.name, self.section),
            Outcome::Fail(why) => write!(f, "FAIL {} ({}, {ms} ms): {why}", self.name, self.section),
            Outcome::Skip(why) => write!(f, "SKIP {} ({}): {why}", self.name, self.section),
        }
    }
}

type BoxedCase = Pin<Box<dyn Future<Output = CaseResultOf> + Send>>;

/// One conformance case.
pub struct Case {
    /// `group/what`.
    pub name: &'static str,
    /// The section of docs/PROTOCOL.md it checks.
    pub section: &'static str,
    /// Runs for a long time (timeouts): started first, in parallel with the others.
    pub slow: bool,
    bound: fn(&Config) -> Duration,
    body: Box<dyn Fn(Arc<Ctx>) -> BoxedCase + Send + Sync>,
}

impl Case {
    /// The case's time bound with `config`.
    pub fn bound(&self, config: &Config) -> Duration {
        (self.bound)(config)
    }
}

/// What every case gets: the configuration and the bystander session.
pub struct Ctx {
    /// The run's configuration.
    pub config: Config,
    bystander: cases::Bystander,
}

impl Ctx {
    /// A durable connection to the echo endpoint.
    pub async fn durable(&self) -> Result<Conn, Verdict> {
        Conn::durable(&self.config.url, self.config.step).await
    }

    /// A durable connection with a new session; returns it and its token.
    pub async fn session(&self) -> Result<(Conn, durable_ws_core::Token), Verdict> {
        let mut conn = self.durable().await?;
        let token = conn.hello_new().await?;
        Ok((conn, token))
    }
}

/// Every case of the suite, in the order they are reported.
pub fn cases() -> Vec<Case> {
    cases::all()
}

/// Runs the cases `config` selects; `report` gets each result (in the order of [`cases`]) as
/// soon as it and every case before it are done. The slow cases (those waiting for a server
/// timeout) start first and run alongside the others.
pub async fn run(config: &Config, mut report: impl FnMut(&CaseReport)) -> Vec<CaseReport> {
    let all = cases();
    let bystander = cases::Bystander::start(config).await;
    let ctx = Arc::new(Ctx { config: config.clone(), bystander });
    let mut slow = Vec::new();
    for (index, case) in all.iter().enumerate() {
        if case.slow && config.selects(case.name) {
            slow.push((
                index,
                tokio::spawn(run_case(case.name, case.section, case.bound(config), (case.body)(ctx.clone()))),
            ));
        }
    }
    let mut results = Vec::new();
    let mut slow = slow.into_iter().peekable();
    for (index, case) in all.iter().enumerate() {
        let result = if !config.selects(case.name) {
            continue;
        } else if slow.peek().is_some_and(|(at, _)| *at == index) {
            let (_, handle) = slow.next().expect("peeked");
            match handle.await {
                Ok(result) => result,
                Err(error) => CaseReport {
                    name: case.name,
                    section: case.section,
                    outcome: Outcome::Fail(format!("the case panicked: {error}")),
                    elapsed: Duration::ZERO,
                },
            }
        } else {
            let future = (case.body)(ctx.clone());
            match tokio::spawn(run_case(case.name, case.section, case.bound(config), future)).await {
                Ok(result) => result,
                Err(error) => CaseReport {
                    name: case.name,
                    section: case.section,
                    outcome: Outcome::Fail(format!("the case panicked: {error}")),
                    elapsed: Duration::ZERO,
                },
            }
        };
        report(&result);
        results.push(result);
    }
    results
}

async fn run_case(name: &'static str, section: &'static str, bound: Duration, body: BoxedCase) -> CaseReport {
    let started = Instant::now();
    let outcome = match tokio::time::timeout(bound, body).await {
        Err(_) => Outcome::Fail(format!("the case did not finish within its bound of {} ms", bound.as_millis())),
        Ok(Ok(note)) => Outcome::Pass(note),
        Ok(Err(Verdict::Fail(why))) => Outcome::Fail(why),
        Ok(Err(Verdict::Skip(why))) => Outcome::Skip(why),
    };
    CaseReport { name, section, outcome, elapsed: started.elapsed() }
}

/// A `POST` to `base` + `path_and_query` over plain HTTP/1.1; returns status and body.
pub(crate) async fn http_post(base: &str, path_and_query: &str) -> Result<(u16, String), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = base.trim_start_matches("http://").trim_end_matches('/');
    if authority.contains("://") {
        return Err(format!("{base}: only http:// fault endpoints are supported"));
    }
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|error| format!("cannot connect to {authority}: {error}"))?;
    let request = format!(
        "POST {path_and_query} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.map_err(|error| error.to_string())?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .map_err(|_| "no HTTP answer within 5 s".to_owned())?
        .map_err(|error| error.to_string())?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or("an incomplete HTTP response")?;
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or("an HTTP response without a status")?;
    Ok((status, body.to_owned()))
}
