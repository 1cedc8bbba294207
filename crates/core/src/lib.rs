//! Sans-IO core of durable-ws.
//!
//! Pure code, fed received bytes, application sends and the current time (milliseconds since an
//! epoch the driver chooses), returning frames to transmit, events and the next deadline. No I/O,
//! no clock, no randomness it was not handed. Two drivers sit on it: the browser library
//! (`durable-ws`) and the reference server (`durable-ws-server`).
//!
//! - [`frame`]: the `durable.v1` wire format.
//! - [`ReplayBuffer`]: what was sent and not yet acknowledged, bounded by count and bytes.
//! - [`Client`]: the client role: one session across connections, connection lifecycle and
//!   reconnect policy.
//! - [`server::Endpoint`]: the server role: which session a `Hello` leads to, sessions'
//!   lifetimes and bounds, over a storage seam ([`server::Store`]).
//! - [`Backoff`]: the reconnect delay policy.
//! - [`persist`]: a client session stored by its driver, outliving it (a page reload).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod backoff;
mod buffer;
mod client;
mod close;
mod config;
mod error;
mod event;
pub mod frame;
mod inbound;
mod payload;
pub mod persist;
pub mod server;
mod session;

pub use backoff::{Backoff, BackoffConfig, SplitMix64};
pub use buffer::{BufferLimits, ReplayBuffer};
pub use client::{Action, Client, ClientConfig, ClientState, ClientStats};
pub use close::{close_code, ClosePolicy};
pub use config::{HeartbeatConfig, SessionConfig};
pub use error::{ConnectionError, DecodeError, ProtocolError, ResumeError, SendError};
pub use event::{Event, LostReason};
pub use frame::{Token, WelcomeStatus, SUBPROTOCOL};
pub use payload::{MessageKind, Payload, PayloadRef};
pub use session::SessionStats;

/// Milliseconds since an epoch chosen by the driver (monotonic).
pub type Millis = u64;
