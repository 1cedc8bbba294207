//! The HTTP routes.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue};
use axum::response::Response;
use axum::routing::get;
use axum::{middleware, Json, Router};
use tower_http::services::ServeDir;

use crate::{admin, chat, echo};
use crate::state::Shared;
use crate::stats::Stats;

/// Every route of the server.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let mut open_to_all = Router::new().route("/stats", get(stats));
    if shared.config.enable_faults {
        open_to_all = open_to_all.merge(admin::routes());
    }
    let open_to_all = open_to_all.layer(middleware::map_response(allow_any_origin));
    let room = Arc::new(chat::Room::default());
    let mut router = Router::new()
        .route("/echo", get(echo::handler))
        .route("/chat", get(move |admitted, ws, state| chat::handler(admitted, ws, state, room.clone())))
        .merge(open_to_all);
    if let Some(www) = &shared.config.www {
        router = router.fallback_service(ServeDir::new(www));
    }
    router.with_state(shared)
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<Stats> {
    Json(shared.stats())
}

/// Pages served from elsewhere (the demo, browser tests) may read the stats and call the
/// fault endpoints.
async fn allow_any_origin(mut response: Response) -> Response {
    response.headers_mut().insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}
