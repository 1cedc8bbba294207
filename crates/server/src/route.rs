//! Mounting a durable endpoint in an axum `Router`: the upgrade, the identity (or refusal) the
//! application's middleware left in the request, and the per-session handler.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use durable_ws_core::close_code;
use durable_ws_core::server::metrics::{handshake, mode};
use durable_ws_core::server::policy;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::Instrument;

use crate::auth::{Identity, Refusal};
use crate::codec::{Decode, Encode};
use crate::connection::{self, close_reason, NewSession, Spawn};
use crate::durable::Durable;
use crate::plain::PlainSocket;
use crate::session::Session;
use crate::socket::{Ending, Socket};
use crate::stats::Counters;
use crate::upgrade::Upgrade;

/// Room for a data frame's header on top of the largest payload (type byte + 10-byte varint).
const FRAME_OVERHEAD: usize = 11;

/// Read buffer per connection. tungstenite's default (128 KiB) is zero-filled before every read:
/// at 10 000 sessions that was half the server's CPU (memset) and 140 KiB of RSS per session.
const READ_BUFFER_BYTES: usize = 8 * 1024;

/// What tungstenite's write buffer holds before it waits for the socket.
const WRITE_BUFFER_BYTES: usize = 128 * 1024;

type PlainHandler = Arc<dyn Fn(PlainSocket) -> futures_util::future::BoxFuture<'static, ()> + Send + Sync>;

impl Durable {
    /// A route (mount it with `Router::route(path, ...)`) whose clients get durable sessions,
    /// each run by `handler` — one call per session, not per connection. A client that does not
    /// offer `durable.v1` is closed with 1008.
    ///
    /// The session's [`Identity`] is the one in the request's extensions (set by the
    /// application's middleware, or [`TokenAuthLayer`](crate::TokenAuthLayer)); without one it is
    /// anonymous. A [`Refusal`] in the extensions closes the WebSocket at once with its code.
    pub fn endpoint<H, Fut, In, Out, C, S>(&self, handler: H) -> MethodRouter<S>
    where
        H: Fn(Session<In, Out, C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
        In: Send + 'static,
        Out: Send + 'static,
        C: Decode<In> + Encode<Out>,
        S: Clone + Send + Sync + 'static,
    {
        self.route(spawner(handler), None)
    }

    /// Like [`endpoint`](Self::endpoint), but a client that does not offer `durable.v1` is run by
    /// `plain` on a [`PlainSocket`] (reconnecting clients in plain mode: no recovery).
    pub fn endpoint_or_plain<H, Fut, In, Out, C, P, PFut, S>(&self, handler: H, plain: P) -> MethodRouter<S>
    where
        H: Fn(Session<In, Out, C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
        In: Send + 'static,
        Out: Send + 'static,
        C: Decode<In> + Encode<Out>,
        P: Fn(PlainSocket) -> PFut + Send + Sync + 'static,
        PFut: Future<Output = ()> + Send + 'static,
        S: Clone + Send + Sync + 'static,
    {
        let plain: PlainHandler = Arc::new(move |socket| Box::pin(plain(socket)));
        self.route(spawner(handler), Some(plain))
    }

    fn route<S: Clone + Send + Sync + 'static>(&self, spawn: Spawn, plain: Option<PlainHandler>) -> MethodRouter<S> {
        let durable = self.clone();
        get(move |request: Request| {
            let durable = durable.clone();
            let spawn = spawn.clone();
            let plain = plain.clone();
            async move { upgrade(durable, request, spawn, plain) }
        })
    }

    pub(crate) fn websocket_config(&self) -> WebSocketConfig {
        let limit = self.inner.config.max_message_bytes + FRAME_OVERHEAD;
        // tungstenite's write buffer gets at most one message past its flush threshold, and one
        // pending pong (a ping flood from a client that does not read cannot grow it).
        WebSocketConfig::default()
            .max_message_size(Some(limit))
            .max_frame_size(Some(limit))
            .read_buffer_size(READ_BUFFER_BYTES)
            .write_buffer_size(WRITE_BUFFER_BYTES)
            .max_write_buffer_size(WRITE_BUFFER_BYTES + limit + 4096)
    }
}

fn spawner<H, Fut, In, Out, C>(handler: H) -> Spawn
where
    H: Fn(Session<In, Out, C>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
    In: Send + 'static,
    Out: Send + 'static,
    C: Decode<In> + Encode<Out>,
{
    Arc::new(move |new: NewSession| {
        let span = tracing::info_span!("session", id = %new.id, user = %new.identity, node = new.durable.node(), status = ?new.status);
        let session =
            Session::new(new.durable, new.id, new.identity, new.status, new.inbound, new.progress, new.processed);
        tokio::spawn(handler(session).instrument(span));
    })
}

fn upgrade(durable: Durable, request: Request, spawn: Spawn, plain: Option<PlainHandler>) -> Response {
    let (mut parts, _body) = request.into_parts();
    let upgrade = match Upgrade::from_parts(&mut parts) {
        Ok(upgrade) => upgrade,
        Err(not_websocket) => return not_websocket.into_response(),
    };
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0);
    let identity = parts.extensions.get::<Identity>().cloned().unwrap_or_else(Identity::anonymous);
    let refusal = parts.extensions.get::<Refusal>().cloned();
    let path = parts.uri.path().to_owned();
    let durable_offered = upgrade.durable;
    let config = durable.websocket_config();
    upgrade.respond(config, move |ws| async move {
        let Some(guard) = durable.inner.connections.register() else {
            return Socket::reject(ws, close_code::SERVICE_RESTART, "server restart".into()).await;
        };
        let span = tracing::info_span!("conn", id = guard.id, path, peer = peer.map(tracing::field::display), user = %identity);
        async move {
            tracing::info!(durable = durable_offered, "connection opened");
            let config = &durable.inner.config;
            let bucket = crate::rate::Bucket::new(config.max_messages_per_second, config.burst, tokio::time::Instant::now());
            let mut socket = Socket::new(ws, guard, config.max_outgoing_bytes, bucket);
            socket.count_as(if durable_offered { mode::DURABLE } else { mode::PLAIN });
            if let Some(refusal) = refusal {
                Counters::add(&durable.inner.counters.auth_failures, 1);
                tracing::warn!(code = refusal.code, reason = %refusal.reason, "connection refused");
                let ending = Ending::Close(policy::refusal_code(refusal.code), close_reason(&refusal.reason));
                return socket.end(ending, &durable.inner.counters).await;
            }
            match (durable_offered, plain) {
                (true, _) => connection::run(durable, socket, identity, spawn).await,
                (false, Some(plain)) => plain(PlainSocket::new(durable, socket)).await,
                (false, None) => {
                    crate::metrics::refused(handshake::NOT_DURABLE);
                    let ending = Ending::close(close_code::POLICY_VIOLATION, "durable.v1 required");
                    socket.end(ending, &durable.inner.counters).await;
                }
            }
        }
        .instrument(span)
        .await
    })
}
