//! The HTTP routes.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use tower_http::services::ServeDir;

use crate::echo;
use crate::state::Shared;
use crate::stats::Stats;

/// Every route of the server.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let mut router = Router::new().route("/echo", get(echo::handler)).route("/stats", get(stats));
    if let Some(www) = &shared.config.www {
        router = router.fallback_service(ServeDir::new(www));
    }
    router.with_state(shared)
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<Stats> {
    Json(shared.stats())
}
