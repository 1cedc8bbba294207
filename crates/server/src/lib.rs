//! The server half of durable-ws: `durable.v1` sessions in your own axum application.
//!
//! A [`Durable`] owns the sessions (in memory), their sweeper and limits; clone it into your
//! state. [`Durable::endpoint`] mounts a durable WebSocket route at any path of your `Router`,
//! beside your other routes, and runs your handler once per **session** — a session outlives
//! reconnects: its [`Session::recv`] yields each client message exactly once, in order, and
//! [`Session::send`] queues a message that reaches the client exactly once, returning a
//! [`Delivery`] that resolves on the client's acknowledgement. [`Room`]s broadcast with one order
//! for every member; [`Durable::room`], [`Durable::session`] and [`Durable::send_to_identity`]
//! reach sessions from anywhere (an HTTP handler, a background task).
//!
//! Who a client is comes from your middleware: put an [`Identity`] in the request's extensions
//! (or a [`Refusal`], which the client receives as close 4401/4403 it can act on).
//! [`TokenAuthLayer`] and [`OriginLayer`] are the built-in checks, as tower layers.
//! [`Durable::shutdown`] closes every connection with 1012.
//!
//! Bounded throughout: a client that neither reads nor acknowledges fills its replay buffer and
//! `send` fails with [`SendError::Full`] (rooms drop such a member, who learns it as
//! `sessionlost`); a slow handler stops the server reading that client.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod auth;
mod clock;
mod codec;
mod connection;
mod durable;
mod keepalive;
pub mod metrics;
mod origin;
mod plain;
mod rate;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
mod registry;
mod room;
mod route;
mod serve;
mod session;
#[cfg(feature = "redis")]
mod shared;
mod socket;
mod stats;
mod token;
mod upgrade;
mod writer;

pub use auth::{
    request_token, AuthError, Authenticator, Identity, Refusal, TokenAuth, TokenAuthLayer, TokenAuthenticator,
    TokenError, TOKEN_COOKIE, TOKEN_QUERY_PARAMETER,
};
#[cfg(feature = "postcard")]
pub use codec::Postcard;
pub use codec::{Codec, CodecError, Decode, Encode, Json, Raw};
pub use durable::{Builder, Config, Durable};
pub use durable_ws_core::server::{EndReason, SessionId};
pub use durable_ws_core::{BufferLimits, HeartbeatConfig, Payload, Token, WelcomeStatus};
pub use origin::{InvalidOrigin, OriginCheck, OriginLayer, OriginPolicy};
pub use plain::PlainSocket;
pub use room::Room;
pub use serve::{serve, ServeLimits};
pub use session::{Delivery, EndInfo, SendError, Session, SessionEvent, SessionHandle, Unconfirmed};
pub use stats::Stats;
pub use token::{token_from_hex, token_to_hex};

pub(crate) use durable::lock;
