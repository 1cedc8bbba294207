//! Close codes (RFC 6455 §7.4 and ours) and which of them end reconnection.

/// Close codes used by durable-ws.
pub mod close_code {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// The endpoint is going away (page unload, server shutdown).
    pub const GOING_AWAY: u16 = 1001;
    /// Protocol error (sent by servers; browsers cannot send it).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// Unsupported data.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// No status code was present (never sent on the wire).
    pub const NO_STATUS: u16 = 1005;
    /// Closed without a close frame (never sent on the wire).
    pub const ABNORMAL: u16 = 1006;
    /// Invalid payload data (e.g. bad UTF-8).
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// Policy violation.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// Message too big.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// A required extension is missing.
    pub const MANDATORY_EXTENSION: u16 = 1010;
    /// Internal server error.
    pub const INTERNAL_ERROR: u16 = 1011;
    /// Service restart: reconnect soon.
    pub const SERVICE_RESTART: u16 = 1012;
    /// Try again later.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// Ours: the heartbeat found the link dead.
    pub const HEARTBEAT_TIMEOUT: u16 = 4000;
    /// Ours: the client saw a protocol error (browsers cannot send 1002).
    pub const CLIENT_PROTOCOL_ERROR: u16 = 4002;
    /// Ours: the server forgot the session while a connection was attached (the resume that
    /// follows gets `LostUnknown`).
    pub const SESSION_EXPIRED: u16 = 4004;
    /// Ours: the connection did not open and handshake in time.
    pub const CONNECT_TIMEOUT: u16 = 4008;
    /// Ours: credentials missing or expired. Terminal, except that a client with a URL provider
    /// retries once at once with fresh credentials.
    pub const UNAUTHORIZED: u16 = 4401;
    /// Ours: credentials invalid, or not allowed (terminal).
    pub const FORBIDDEN: u16 = 4403;
    /// Ours: the session was resumed on another connection (terminal: reaching a client's
    /// current connection, it means someone else holds its token).
    pub const SUPERSEDED: u16 = 4409;
}

/// Which close codes received from the server end reconnection for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosePolicy {
    /// Inclusive ranges of terminal codes.
    pub terminal: Vec<(u16, u16)>,
}

impl Default for ClosePolicy {
    /// 1003, 1007, 1008, 1009, 1010 and 4400–4499 are terminal; everything else reconnects
    /// (1000 too: in durable mode a server ends a session with `Goodbye`, which is always terminal).
    fn default() -> Self {
        ClosePolicy { terminal: vec![(1003, 1003), (1007, 1010), (4400, 4499)] }
    }
}

impl ClosePolicy {
    /// Whether receiving `code` stops reconnection.
    pub fn is_terminal(&self, code: u16) -> bool {
        self.terminal.iter().any(|&(lo, hi)| (lo..=hi).contains(&code))
    }
}
