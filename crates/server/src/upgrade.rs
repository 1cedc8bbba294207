//! The WebSocket upgrade (RFC 6455 §4.2), on tokio-tungstenite directly: the server owns its
//! WebSocket configuration and error types (one tungstenite, no downcasting through axum).

use axum::body::Body;
use axum::http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

/// An upgraded connection.
pub(crate) type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// A request that asked for a WebSocket, not yet answered.
pub(crate) struct Upgrade {
    key: HeaderValue,
    on_upgrade: hyper::upgrade::OnUpgrade,
    /// Whether the client offered `durable.v1`.
    pub durable: bool,
}

/// Why a request is not a WebSocket handshake (HTTP 400 / 405 / 426).
#[derive(Debug)]
pub(crate) struct NotWebSocket(StatusCode, &'static str);

impl IntoResponse for NotWebSocket {
    fn into_response(self) -> Response {
        (self.0, format!("{}\n", self.1)).into_response()
    }
}

impl Upgrade {
    /// Checks the handshake headers and takes the upgrade out of the request.
    pub fn from_parts(parts: &mut Parts) -> Result<Upgrade, NotWebSocket> {
        if parts.method != Method::GET {
            return Err(NotWebSocket(StatusCode::METHOD_NOT_ALLOWED, "a WebSocket handshake is a GET"));
        }
        let headers = &parts.headers;
        if !has_token(headers, CONNECTION, "upgrade") || !has_token(headers, UPGRADE, "websocket") {
            return Err(NotWebSocket(StatusCode::UPGRADE_REQUIRED, "expected a WebSocket upgrade"));
        }
        if headers.get(SEC_WEBSOCKET_VERSION).is_none_or(|v| v != "13") {
            return Err(NotWebSocket(StatusCode::BAD_REQUEST, "Sec-WebSocket-Version must be 13"));
        }
        let key = headers
            .get(SEC_WEBSOCKET_KEY)
            .cloned()
            .ok_or(NotWebSocket(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key"))?;
        let durable = has_token(headers, SEC_WEBSOCKET_PROTOCOL, durable_ws_core::SUBPROTOCOL);
        let on_upgrade = parts
            .extensions
            .remove::<hyper::upgrade::OnUpgrade>()
            .ok_or(NotWebSocket(StatusCode::UPGRADE_REQUIRED, "this connection cannot be upgraded"))?;
        Ok(Upgrade { key, on_upgrade, durable })
    }

    /// Answers 101 (selecting `durable.v1` if offered) and runs `callback` on the WebSocket.
    pub fn respond<F, Fut>(self, config: WebSocketConfig, callback: F) -> Response
    where
        F: FnOnce(Ws) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let Upgrade { key, on_upgrade, durable } = self;
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else { return };
            let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
            callback(ws).await;
        });
        let mut response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(CONNECTION, "upgrade")
            .header(UPGRADE, "websocket")
            .header(SEC_WEBSOCKET_ACCEPT, derive_accept_key(key.as_bytes()))
            .body(Body::empty())
            .expect("static headers are valid");
        if durable {
            response
                .headers_mut()
                .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(durable_ws_core::SUBPROTOCOL));
        }
        response
    }
}

/// Whether a comma-separated header contains `token` (without case).
fn has_token(headers: &HeaderMap, name: axum::http::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}
