//! Fault injection for browser tests and the demo (only with `--enable-faults`):
//!
//! - `POST /admin/cut?session=all|<token-hex>`: drop connections abruptly (no close frame).
//! - `POST /admin/stall?ms=N[&session=all|<token-hex>]`: stop reading and writing on the
//!   current connections for N ms (a half-open link).
//! - `POST /admin/expire?session=all|<token-hex>`: forget sessions (their connections are
//!   dropped), so the next resume gets `LostUnknown`.
//! - `POST /admin/end?session=all|<token-hex>`: end sessions as the application would (a goodbye
//!   after what is queued; the client stops for good).
//!
//! Every answer is JSON (`{"affected": n}` or `{"error": ...}`). The routes sit behind the
//! WebSockets' checks (`routes.rs`): a page the origin policy refuses gets HTTP 403, and with
//! access tokens a request needs one (`access_token` query parameter, `durable_ws_token` cookie
//! or `Authorization: Bearer`; HTTP 401 without, 403 with a wrong one). An allowed page reads the
//! answer (`Access-Control-Allow-Origin` is its own origin).

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use durable_ws_server::{token_from_hex, Durable, SessionId};
use serde::Deserialize;
use serde_json::json;

/// Longest stall accepted.
const MAX_STALL: Duration = Duration::from_secs(600);

/// The `/admin` routes.
pub fn routes() -> Router<Durable> {
    Router::new()
        .route("/admin/cut", post(cut))
        .route("/admin/stall", post(stall))
        .route("/admin/expire", post(expire))
        .route("/admin/end", post(end))
}

#[derive(Deserialize)]
struct Target {
    session: Option<String>,
    ms: Option<u64>,
}

/// A request the endpoints cannot carry out.
struct Refusal(StatusCode, &'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

/// The session a request names (`None`: all).
fn target(durable: &Durable, session: Option<&str>, default_all: bool) -> Result<Option<SessionId>, Refusal> {
    match session {
        Some("all") => Ok(None),
        None if default_all => Ok(None),
        None => Err(Refusal(StatusCode::BAD_REQUEST, "missing session=all|<token-hex>")),
        Some(hex) => {
            let token =
                token_from_hex(hex).ok_or(Refusal(StatusCode::BAD_REQUEST, "session must be all or 32 hex digits"))?;
            durable.find_token(&token).map(Some).ok_or(Refusal(StatusCode::NOT_FOUND, "no such session"))
        }
    }
}

async fn cut(State(durable): State<Durable>, Query(query): Query<Target>) -> Response {
    match target(&durable, query.session.as_deref(), false) {
        Ok(id) => {
            let affected = durable.cut(id);
            tracing::info!(affected, "admin: cut");
            affected_response(affected)
        }
        Err(refusal) => refusal.into_response(),
    }
}

async fn stall(State(durable): State<Durable>, Query(query): Query<Target>) -> Response {
    let Some(ms) = query.ms else {
        return Refusal(StatusCode::BAD_REQUEST, "missing ms=N").into_response();
    };
    let duration = Duration::from_millis(ms);
    if duration > MAX_STALL {
        return Refusal(StatusCode::BAD_REQUEST, "ms must be at most 600000").into_response();
    }
    match target(&durable, query.session.as_deref(), true) {
        Ok(id) => {
            let affected = durable.stall(id, duration);
            tracing::info!(affected, ms, "admin: stall");
            affected_response(affected)
        }
        Err(refusal) => refusal.into_response(),
    }
}

async fn expire(State(durable): State<Durable>, Query(query): Query<Target>) -> Response {
    let ids = match target(&durable, query.session.as_deref(), false) {
        Ok(Some(id)) => vec![id],
        Ok(None) => durable.session_ids(),
        Err(refusal) => return refusal.into_response(),
    };
    let affected = ids.into_iter().filter(|id| durable.expire(*id)).count();
    tracing::info!(affected, "admin: expire");
    affected_response(affected)
}

/// Ends sessions as the application would (`SessionHandle::end`): a goodbye after what is queued.
async fn end(State(durable): State<Durable>, Query(query): Query<Target>) -> Response {
    let ids = match target(&durable, query.session.as_deref(), false) {
        Ok(Some(id)) => vec![id],
        Ok(None) => durable.session_ids(),
        Err(refusal) => return refusal.into_response(),
    };
    let affected = ids.len();
    for id in ids {
        durable.session(id).end();
    }
    tracing::info!(affected, "admin: end");
    affected_response(affected)
}

fn affected_response(affected: usize) -> Response {
    Json(json!({ "affected": affected })).into_response()
}
