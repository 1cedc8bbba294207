//! The reference server's routes, over the library: `/echo` and `/chat` (each a few lines in
//! `echo.rs` and `chat.rs`), `/stats`, `/admin/*` (with faults on), static files.

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::header::{HeaderValue, ACCESS_CONTROL_ALLOW_ORIGIN};
use axum::response::Response;
use axum::routing::get;
use axum::{middleware, Json, Router};
use durable_ws_server::{Durable, OriginLayer, Stats, TokenAuthLayer};
use tower_http::services::ServeDir;

use crate::config::ServerConfig;
use crate::{admin, chat, echo};

/// Every route of the reference server listening on `listen`.
pub fn router(durable: &Durable, config: &ServerConfig, listen: SocketAddr) -> Router {
    let mut websockets = Router::new()
        .route("/echo", durable.endpoint_or_plain(echo::session, echo::plain))
        .route("/chat", durable.endpoint(chat::session));
    if let Some(authenticator) = &config.authenticator {
        websockets = websockets.layer(TokenAuthLayer::from_arc(authenticator.clone()));
    }
    let websockets = websockets.layer(OriginLayer::new(config.origins.clone(), listen).counted_in(durable));
    let mut open_to_all = Router::new().route("/stats", get(stats));
    if config.enable_faults {
        open_to_all = open_to_all.merge(admin::routes());
    }
    let open_to_all = open_to_all.layer(middleware::map_response(allow_any_origin));
    let mut router = websockets.merge(open_to_all);
    if let Some(www) = &config.www {
        router = router.fallback_service(ServeDir::new(www));
    }
    router.with_state(durable.clone())
}

async fn stats(State(durable): State<Durable>) -> Json<Stats> {
    Json(durable.stats())
}

/// Pages served from elsewhere (the demo, browser tests) may read the stats and call the
/// fault endpoints.
async fn allow_any_origin(mut response: Response) -> Response {
    response.headers_mut().insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}
