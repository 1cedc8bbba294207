//! Admission of a WebSocket handshake, before the upgrade: the `Origin` check (403), then
//! authentication (401/403). Handlers take [`Admitted`] as their first extractor, so a refused
//! request never reaches the upgrade.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{HOST, ORIGIN, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::auth::{AuthError, Identity};
use crate::registry::ConnId;
use crate::state::Shared;
use crate::stats::Counters;

/// A handshake that may proceed.
pub(crate) struct Admitted {
    /// The client's address, when the server knows it.
    pub peer: Option<SocketAddr>,
    /// Who the client is.
    pub identity: Identity,
}

impl FromRequestParts<Arc<Shared>> for Admitted {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, shared: &Arc<Shared>) -> Result<Self, Response> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0);
        let peer_field = peer.map(tracing::field::display);
        let path = parts.uri.path();
        // A header that is not visible ASCII is no origin at all (refused unless any is allowed).
        let origin = parts.headers.get(ORIGIN).map(|value| value.to_str().unwrap_or(""));
        let host = parts.headers.get(HOST).and_then(|value| value.to_str().ok()).or(parts.uri.host());
        if !shared.config.origins.allows(origin, shared.listen, host) {
            Counters::add(&shared.counters.origin_rejections, 1);
            tracing::warn!(peer = peer_field, origin = origin.unwrap_or_default(), path, "handshake refused: origin not allowed");
            return Err((StatusCode::FORBIDDEN, "origin not allowed\n").into_response());
        }
        let identity = match &shared.config.authenticator {
            None => Identity::anonymous(),
            Some(authenticator) => match authenticator.authenticate(parts) {
                Ok(identity) => identity,
                Err(error) => {
                    Counters::add(&shared.counters.auth_failures, 1);
                    tracing::warn!(peer = peer_field, path, %error, "handshake refused: authentication failed");
                    return Err(refusal(error));
                }
            },
        };
        Ok(Admitted { peer, identity })
    }
}

impl Admitted {
    /// The span every log line of connection `conn` of `route` is in.
    pub fn span(&self, conn: ConnId, route: &'static str) -> tracing::Span {
        tracing::info_span!("conn", id = conn, route, peer = self.peer.map(tracing::field::display), user = %self.identity)
    }
}

fn refusal(error: AuthError) -> Response {
    let mut response = (error.status(), format!("{error}\n")).into_response();
    if error == AuthError::Missing {
        response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"durable-ws\""));
    }
    response
}
