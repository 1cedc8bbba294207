//! The reference server's routes, over the library: `/echo` and `/chat` (each a few lines in
//! `echo.rs` and `chat.rs`), `/stats`, `/admin/*` (with faults on), static files.
//!
//! The WebSocket routes and `/admin/*` sit behind the same checks: the origin policy (HTTP 403
//! for a page it does not allow), then the access tokens when there are any (WebSockets: close
//! 4401/4403 after the upgrade; `/admin`: HTTP 401/403). The static files are open; `/stats`,
//! `/metrics`, `/healthz` and `/readyz` are [`crate::monitoring`]'s.

use std::net::SocketAddr;

use axum::extract::Request;
use axum::http::header::{HeaderValue, ACCESS_CONTROL_ALLOW_ORIGIN, ORIGIN, VARY};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use durable_ws_server::{Durable, OriginLayer, TokenAuthLayer};
use tower_http::services::ServeDir;

use crate::config::ServerConfig;
use crate::{admin, chat, echo};

/// Every route of the reference server listening on `listen`.
pub fn router(durable: &Durable, config: &ServerConfig, listen: SocketAddr) -> Router {
    let origin_check = OriginLayer::new(config.origins.clone(), listen).counted_in(durable);
    let guarded = |mut routes: Router<Durable>| {
        if let Some(authenticator) = &config.authenticator {
            routes = routes.layer(TokenAuthLayer::from_arc(authenticator.clone()));
        }
        routes
    };
    let websockets = Router::new()
        .route("/echo", durable.endpoint_or_plain(echo::session, echo::plain))
        .route("/chat", durable.endpoint(chat::session));
    let mut router = guarded(websockets).layer(origin_check.clone());
    if config.enable_faults {
        // The page that passed the origin check (and only it) may read the answer, 401/403 included.
        let admin = guarded(admin::routes()).layer(middleware::from_fn(allow_checked_origin)).layer(origin_check);
        router = router.merge(admin);
    }
    router = router.merge(crate::monitoring::routes(durable, config));
    if let Some(www) = &config.www {
        router = router.fallback_service(ServeDir::new(www));
    }
    router.with_state(durable.clone())
}

/// Lets the request's page read the answer: behind the origin check, the page is an allowed one.
async fn allow_checked_origin(request: Request, next: Next) -> Response {
    let origin = request.headers().get(ORIGIN).cloned();
    let mut response = next.run(request).await;
    if let Some(origin) = origin {
        response.headers_mut().insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    response.headers_mut().append(VARY, HeaderValue::from_static("origin"));
    response
}
