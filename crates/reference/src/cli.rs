//! The command line of the `durable-ws-server` binary, and the [`ServerConfig`] it describes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use durable_ws_core::server::defaults;
use durable_ws_core::{BufferLimits, HeartbeatConfig, SessionConfig};

use durable_ws_server::{
    Authenticator, Config, InvalidOrigin, OriginPolicy, ServeLimits, TokenAuthenticator, TokenError,
};

use crate::config::ServerConfig;

const AFTER_HELP: &str = "\
Routes: GET /echo (durable echo when durable.v1 is offered, plain echo otherwise), GET /chat (one room, durable.v1
only), GET /stats (JSON counters), POST /admin/cut|stall|expire (with --enable-faults; same origin and token checks as the
WebSockets), static files at /.
Logs: structured lines on stderr; RUST_LOG sets the level (error, warn, info, debug, trace; default info). Frame
dumps of the WebSocket and HTTP stacks stay off whatever it says: tokens and payloads never reach the logs.";

/// Reference server of durable-ws: WebSocket sessions that survive reconnects (durable.v1).
#[derive(Parser, Debug, Clone)]
#[command(name = "durable-ws-server", version, after_help = AFTER_HELP)]
pub struct Options {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory of static files served at `/`.
    #[arg(long, value_name = "DIR", default_value = "www")]
    pub www: PathBuf,
    /// How long a disconnected session is kept for a resume, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = defaults::SESSION_TTL_MS / 1000)]
    pub session_ttl_secs: u64,
    /// Most sessions held at once; a new session beyond it is refused with close code 1013.
    #[arg(long, value_name = "N", default_value_t = defaults::MAX_SESSIONS)]
    pub max_sessions: usize,
    /// Largest message accepted, in bytes (larger ones close the connection with 1009).
    #[arg(long, value_name = "BYTES", default_value_t = defaults::MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,
    /// Most messages a session holds for its client (sent, unacknowledged, plus queued). A
    /// session that would need more is dropped: its connection closes with 1013 and the resume
    /// gets "lost (overflow)".
    #[arg(long, value_name = "N", default_value_t = BufferLimits::default().max_messages)]
    pub max_buffer_messages: usize,
    /// Most bytes of payload a session holds for its client (same rule); at least
    /// --max-message-bytes.
    #[arg(long, value_name = "BYTES", default_value_t = BufferLimits::default().max_bytes)]
    pub max_buffer_bytes: usize,
    /// Time between the server's heartbeat pings, in ms: durable.v1 pings on durable
    /// connections, WebSocket pings on plain ones. 0 turns the heartbeat off.
    #[arg(long, value_name = "MS", default_value_t = HeartbeatConfig::DEFAULT_INTERVAL_MS)]
    pub heartbeat_interval_ms: u64,
    /// How long after a heartbeat ping a silent connection is declared half-open and dropped,
    /// in ms (its durable session stays resumable).
    #[arg(long, value_name = "MS", default_value_t = HeartbeatConfig::DEFAULT_TIMEOUT_MS)]
    pub heartbeat_timeout_ms: u64,
    /// How long a new durable connection may take to send its Hello, in seconds (then 1002).
    #[arg(long, value_name = "SECS", default_value_t = defaults::HANDSHAKE_TIMEOUT_MS / 1000)]
    pub handshake_timeout_secs: u64,
    /// Origin allowed to open WebSockets, as `scheme://host[:port]`; repeatable; '*' allows every
    /// origin. Others get HTTP 403 at the handshake. Handshakes without an Origin header
    /// (non-browser clients) are always allowed. [default: pages from the host the server listens
    /// on, any port (every loopback name when listening on loopback; the Host header when
    /// listening on 0.0.0.0 or ::)]
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// Name the server is reached by (its public DNS name, e.g. chat.example); repeatable. With
    /// the default origin policy, pages from these hosts (any scheme and port) may open
    /// WebSockets. Needed on a non-loopback --listen for pages served under a name: the Host
    /// header alone is not trusted (DNS rebinding). [default: none: pages from the listen address
    /// only (every loopback name on loopback; loopback names and the IP address the client
    /// connected to on 0.0.0.0 or ::)]
    #[arg(long = "public-host", value_name = "NAME", value_parser = parse_public_host)]
    pub public_hosts: Vec<String>,
    /// Access token NAME=SECRET; repeatable. A WebSocket client must present a SECRET as the
    /// `access_token` query parameter, the `durable_ws_token` cookie or an `Authorization: Bearer`
    /// header (401 without one, 403 with a wrong one) and is then identity NAME; a session can
    /// only be resumed by the identity that created it. [default: none: authentication off,
    /// every client is the same anonymous identity]
    #[arg(long = "auth-token", value_name = "NAME=SECRET", value_parser = parse_token)]
    pub auth_tokens: Vec<(String, String)>,
    /// File of access tokens, one NAME=SECRET per line (blank lines and lines starting with #
    /// are skipped); added to --auth-token. Keeps secrets out of the process list. [default: none]
    #[arg(long, value_name = "FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// A bearer token that lets clients beyond loopback read /stats and /metrics
    /// (`Authorization: Bearer TOKEN`). [default: none: loopback clients only]
    #[arg(long, value_name = "TOKEN")]
    pub metrics_token: Option<String>,
    /// Record no metrics and serve no /metrics (404). [default: recorded]
    #[arg(long)]
    pub no_metrics: bool,
    /// Serve the fault-injection endpoints under /admin (never in production), behind the same
    /// origin check and access tokens as the WebSockets. [default: off]
    #[arg(long)]
    pub enable_faults: bool,
    /// Most sessions one identity (an --auth-token name) may hold at once; a new one beyond it
    /// is refused with close code 1013. Anonymous clients share --max-sessions only.
    #[arg(long, value_name = "N", default_value_t = Config::default().max_sessions_per_identity)]
    pub max_sessions_per_identity: usize,
    /// Messages from one client waiting for its session handler; when full the server stops
    /// reading that client until the handler catches up. At least 1.
    #[arg(long, value_name = "N", default_value_t = Config::default().inbound_queue)]
    pub inbound_queue: usize,
    /// Connections in a row of one session that may end in a protocol error (no message
    /// delivered between them) before the session is dropped (its resume gets LostRefused).
    #[arg(long, value_name = "N", default_value_t = Config::default().max_protocol_errors)]
    pub max_protocol_errors: u32,
    /// Most payload bytes held in all sessions' replay buffers together (a broadcast counts once
    /// per member); when reached, sends fail and new sessions are refused with 1013.
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().max_buffered_bytes)]
    pub max_buffered_bytes: usize,
    /// Most bytes waiting to be written on one connection; when reached the server stops
    /// producing frames for it and stops reading it. At least 1.
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().max_outgoing_bytes)]
    pub max_outgoing_bytes: usize,
    /// A connection whose outgoing queue stays full this long (its client does not read) is
    /// closed with 1013, in ms; its session stays resumable. At least 1.
    #[arg(long, value_name = "MS", default_value_t = Config::default().send_timeout.as_millis() as u64)]
    pub send_timeout_ms: u64,
    /// Messages per second one client may send on average (a token bucket); beyond it the server
    /// reads that client more slowly (nothing is dropped). At least 1.
    #[arg(long, value_name = "N", default_value_t = Config::default().max_messages_per_second)]
    pub max_messages_per_second: u32,
    /// Messages one client may send at once above --max-messages-per-second. At least 1.
    #[arg(long, value_name = "N", default_value_t = Config::default().burst)]
    pub burst: u32,
    /// Most TCP connections open at once (HTTP, WebSocket, durable, idle keep-alive); one
    /// beyond it is closed at once, without a response. Keep it below `ulimit -n`.
    #[arg(long, value_name = "N", default_value_t = ServeLimits::default().max_connections)]
    pub max_connections: usize,
    /// Most TCP connections open at once from one client IP address (clients behind one NAT or
    /// proxy share it); one beyond it is closed at once.
    #[arg(long, value_name = "N", default_value_t = ServeLimits::default().max_connections_per_ip)]
    pub max_connections_per_ip: usize,
    /// How long a client may take to send a complete HTTP request head, in ms (also how long a
    /// kept-alive connection may stay idle); then the connection is closed (slowloris).
    #[arg(long, value_name = "MS", default_value_t = ServeLimits::default().header_read_timeout.as_millis() as u64)]
    pub header_read_timeout_ms: u64,
    /// Largest HTTP request head (request line and headers), in bytes; a larger one gets HTTP
    /// 431. At least 1024.
    #[arg(long, value_name = "BYTES", default_value_t = ServeLimits::default().max_header_bytes)]
    pub max_header_bytes: usize,
    /// Keep the sessions in this Redis (e.g. redis://127.0.0.1:6379/) instead of in memory:
    /// several processes with the same --redis are one service (any node resumes any session, no
    /// sticky sessions, rooms span the nodes, a crash loses nothing acknowledged). [default:
    /// none: sessions in this process's memory]
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
}

/// The options do not describe a valid configuration.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// A number is out of its range.
    #[error("{0}")]
    Range(&'static str),
    /// A flag's value is out of its range.
    #[error("{0} must be {1}")]
    Flag(&'static str, &'static str),
    /// An `--allowed-origin` is malformed.
    #[error(transparent)]
    Origin(#[from] InvalidOrigin),
    /// An access token is malformed or repeated.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The token file cannot be read.
    #[error("cannot read {path}: {source}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line of the token file is malformed.
    #[error("{path}:{line}: {source}")]
    TokenFileLine {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        source: TokenError,
    },
}

/// A host name or IP address, without scheme, port or path.
fn parse_public_host(value: &str) -> Result<String, String> {
    let value = value.trim();
    let bad = || format!("{value:?} must be a host name or IP address, without scheme, port or path");
    let authority = value.parse::<axum::http::uri::Authority>().map_err(|_| bad())?;
    if value.is_empty() || authority.port().is_some() || authority.as_str().contains('@') {
        return Err(bad());
    }
    Ok(authority.host().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase())
}

fn parse_token(entry: &str) -> Result<(String, String), TokenError> {
    TokenAuthenticator::parse_entry(entry)
}

impl Options {
    /// Every access token of `--auth-token` and `--auth-token-file`; `None` if there is none.
    fn authenticator(&self) -> Result<Option<Arc<dyn Authenticator>>, OptionsError> {
        let mut tokens = self.auth_tokens.clone();
        if let Some(path) = &self.auth_token_file {
            let text = std::fs::read_to_string(path)
                .map_err(|source| OptionsError::TokenFile { path: path.clone(), source })?;
            for (index, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let entry = TokenAuthenticator::parse_entry(line).map_err(|source| OptionsError::TokenFileLine {
                    path: path.clone(),
                    line: index + 1,
                    source,
                })?;
                tokens.push(entry);
            }
        }
        if tokens.is_empty() {
            return Ok(None);
        }
        Ok(Some(Arc::new(TokenAuthenticator::new(tokens)?)))
    }

    /// The server configuration these options describe.
    pub fn server_config(&self) -> Result<ServerConfig, OptionsError> {
        if self.max_buffer_messages == 0 {
            return Err(OptionsError::Range("--max-buffer-messages must be at least 1"));
        }
        if self.max_buffer_bytes < self.max_message_bytes {
            return Err(OptionsError::Range("--max-buffer-bytes must be at least --max-message-bytes"));
        }
        if self.heartbeat_interval_ms > 0 && self.heartbeat_timeout_ms == 0 {
            return Err(OptionsError::Range(
                "--heartbeat-timeout-ms must be at least 1 (or turn the heartbeat off with --heartbeat-interval-ms 0)",
            ));
        }
        for (value, flag) in [
            (self.inbound_queue as u64, "--inbound-queue"),
            (self.max_outgoing_bytes as u64, "--max-outgoing-bytes"),
            (self.send_timeout_ms, "--send-timeout-ms"),
            (u64::from(self.max_messages_per_second), "--max-messages-per-second"),
            (u64::from(self.burst), "--burst"),
            (self.max_connections as u64, "--max-connections"),
            (self.max_connections_per_ip as u64, "--max-connections-per-ip"),
            (self.header_read_timeout_ms, "--header-read-timeout-ms"),
        ] {
            if value == 0 {
                return Err(OptionsError::Flag(flag, "at least 1"));
            }
        }
        if self.max_header_bytes < 1024 {
            return Err(OptionsError::Flag("--max-header-bytes", "at least 1024"));
        }
        if !self.public_hosts.is_empty() && !self.allowed_origins.is_empty() {
            return Err(OptionsError::Range(
                "--public-host applies to the default origin policy: with --allowed-origin, list every origin",
            ));
        }
        let origins = if self.allowed_origins.is_empty() {
            OriginPolicy::same_host_or(&self.public_hosts)
        } else {
            OriginPolicy::from_allowed(&self.allowed_origins)?
        };
        let heartbeat = (self.heartbeat_interval_ms > 0).then_some(HeartbeatConfig {
            interval_ms: self.heartbeat_interval_ms,
            timeout_ms: self.heartbeat_timeout_ms,
        });
        let session = SessionConfig {
            limits: BufferLimits { max_messages: self.max_buffer_messages, max_bytes: self.max_buffer_bytes },
            heartbeat,
            ..SessionConfig::default()
        };
        Ok(ServerConfig {
            www: Some(self.www.clone()),
            session_ttl: Duration::from_secs(self.session_ttl_secs),
            max_sessions: self.max_sessions,
            max_message_bytes: self.max_message_bytes,
            origins,
            authenticator: self.authenticator()?,
            enable_faults: self.enable_faults,
            metrics_token: self.metrics_token.clone(),
            metrics: !self.no_metrics,
            handshake_timeout: Duration::from_secs(self.handshake_timeout_secs),
            session,
            max_sessions_per_identity: self.max_sessions_per_identity,
            inbound_queue: self.inbound_queue,
            max_protocol_errors: self.max_protocol_errors,
            max_buffered_bytes: self.max_buffered_bytes,
            max_outgoing_bytes: self.max_outgoing_bytes,
            send_timeout: Duration::from_millis(self.send_timeout_ms),
            max_messages_per_second: self.max_messages_per_second,
            burst: self.burst,
            limits: ServeLimits {
                max_connections: self.max_connections,
                max_connections_per_ip: self.max_connections_per_ip,
                header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
                max_header_bytes: self.max_header_bytes,
                ..ServeLimits::default()
            },
            redis: self.redis.clone(),
            ..ServerConfig::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Options {
        Options::try_parse_from(std::iter::once("durable-ws-server").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn defaults_match_the_library_defaults() {
        let config = parse(&[]).server_config().unwrap();
        let default = ServerConfig::default();
        assert_eq!(config.session_ttl, default.session_ttl);
        assert_eq!(config.max_sessions, default.max_sessions);
        assert_eq!(config.max_message_bytes, default.max_message_bytes);
        assert_eq!(config.origins, OriginPolicy::SameHost);
        assert_eq!(config.handshake_timeout, default.handshake_timeout);
        assert_eq!(config.session, default.session, "buffer limits and heartbeat (on)");
        assert!(config.session.heartbeat.is_some());
        assert_eq!(config.limits, ServeLimits::default());
        let (ours, library) = (config.durable_config(), Config::default());
        assert_eq!(ours.max_sessions_per_identity, library.max_sessions_per_identity);
        assert_eq!(ours.inbound_queue, library.inbound_queue);
        assert_eq!(ours.max_protocol_errors, library.max_protocol_errors);
        assert_eq!(ours.max_buffered_bytes, library.max_buffered_bytes);
        assert_eq!(ours.max_outgoing_bytes, library.max_outgoing_bytes);
        assert_eq!(ours.send_timeout, library.send_timeout);
        assert_eq!(ours.max_messages_per_second, library.max_messages_per_second);
        assert_eq!(ours.burst, library.burst);
    }

    #[test]
    fn hostile_client_limits_reach_the_library_and_the_listener() {
        let options = parse(&[
            "--max-sessions-per-identity",
            "7",
            "--inbound-queue",
            "8",
            "--max-protocol-errors",
            "9",
            "--max-buffered-bytes",
            "10000000",
            "--max-outgoing-bytes",
            "11000",
            "--send-timeout-ms",
            "1200",
            "--max-messages-per-second",
            "13",
            "--burst",
            "14",
            "--max-connections",
            "15",
            "--max-connections-per-ip",
            "16",
            "--header-read-timeout-ms",
            "1700",
            "--max-header-bytes",
            "18000",
        ]);
        let config = options.server_config().unwrap();
        let library = config.durable_config();
        assert_eq!(
            (
                library.max_sessions_per_identity,
                library.inbound_queue,
                library.max_protocol_errors,
                library.max_buffered_bytes
            ),
            (7, 8, 9, 10_000_000)
        );
        assert_eq!((library.max_outgoing_bytes, library.send_timeout), (11_000, Duration::from_millis(1200)));
        assert_eq!((library.max_messages_per_second, library.burst), (13, 14));
        let expected = ServeLimits {
            max_connections: 15,
            max_connections_per_ip: 16,
            header_read_timeout: Duration::from_millis(1700),
            max_header_bytes: 18_000,
            ..ServeLimits::default()
        };
        assert_eq!(config.limits, expected);
        for bad in [
            &["--inbound-queue", "0"][..],
            &["--burst", "0"],
            &["--max-connections-per-ip", "0"],
            &["--header-read-timeout-ms", "0"],
            &["--max-header-bytes", "100"],
        ] {
            let error = parse(bad).server_config().unwrap_err().to_string();
            assert!(error.starts_with(bad[0]), "{bad:?}: {error}");
        }
    }

    #[test]
    fn public_hosts_extend_the_default_origin_policy() {
        let config =
            parse(&["--public-host", "Chat.Example", "--public-host", "[2001:db8::1]"]).server_config().unwrap();
        assert_eq!(config.origins, OriginPolicy::PublicHosts(vec!["chat.example".into(), "2001:db8::1".into()]));
        for bad in ["https://chat.example", "chat.example:443", "chat.example/x", "", "a@b"] {
            assert!(Options::try_parse_from(["durable-ws-server", "--public-host", bad]).is_err(), "{bad}");
        }
        assert!(parse(&["--public-host", "a.example", "--allowed-origin", "https://a.example"])
            .server_config()
            .is_err());
    }

    #[test]
    fn buffer_limits_and_heartbeat_feed_the_session_config() {
        let options = parse(&[
            "--max-buffer-messages",
            "4",
            "--max-buffer-bytes",
            "2000000",
            "--heartbeat-interval-ms",
            "100",
            "--heartbeat-timeout-ms",
            "200",
        ]);
        let session = options.server_config().unwrap().session;
        assert_eq!(session.limits, BufferLimits { max_messages: 4, max_bytes: 2_000_000 });
        assert_eq!(session.heartbeat, Some(HeartbeatConfig { interval_ms: 100, timeout_ms: 200 }));
        assert_eq!(parse(&["--heartbeat-interval-ms", "0"]).server_config().unwrap().session.heartbeat, None);
        for bad in
            [&["--max-buffer-messages", "0"][..], &["--max-buffer-bytes", "1000"], &["--heartbeat-timeout-ms", "0"]]
        {
            assert!(parse(bad).server_config().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn allowed_origins_are_repeatable_and_validated() {
        let options = parse(&["--allowed-origin", "https://a.example", "--allowed-origin", "http://b.example:8080"]);
        let expected = OriginPolicy::List(vec!["https://a.example".into(), "http://b.example:8080".into()]);
        assert_eq!(options.server_config().unwrap().origins, expected);
        assert_eq!(parse(&["--allowed-origin", "*"]).server_config().unwrap().origins, OriginPolicy::Any);
        assert!(parse(&["--allowed-origin", "a.example"]).server_config().is_err());
    }

    #[test]
    fn auth_tokens_come_from_flags_and_a_file() {
        assert!(parse(&[]).server_config().unwrap().authenticator.is_none(), "auth is off by default");
        let file = std::env::temp_dir().join(format!("durable-ws-tokens-{}", std::process::id()));
        std::fs::write(&file, "# tokens\n\ncarol = c-secret\n").unwrap();
        let options =
            parse(&["--auth-token", "alice=a=1", "--auth-token", "bob=b", "--auth-token-file", file.to_str().unwrap()]);
        let auth = options.server_config().unwrap().authenticator.expect("auth on");
        assert_eq!(format!("{auth:?}"), r#"TokenAuthenticator { names: ["alice", "bob", "carol"] }"#);
        std::fs::write(&file, "carol\n").unwrap();
        let error = parse(&["--auth-token-file", file.to_str().unwrap()]).server_config().unwrap_err();
        assert!(error.to_string().ends_with(":1: auth token must be NAME=SECRET"), "{error}");
        std::fs::remove_file(&file).unwrap();
        assert!(Options::try_parse_from(["durable-ws-server", "--auth-token", "nosecret"]).is_err());
        assert!(parse(&["--auth-token", "a=x", "--auth-token", "b=x"]).server_config().is_err());
    }
}
