//! Fault injection for browser tests and the demo (only with `--enable-faults`):
//!
//! - `POST /admin/cut?session=all|<token-hex>`: drop connections abruptly (no close frame).
//! - `POST /admin/stall?ms=N[&session=all|<token-hex>]`: stop reading and writing on the
//!   current connections for N ms (a half-open link).
//! - `POST /admin/expire?session=all|<token-hex>`: forget sessions (their connections are
//!   dropped), so the next resume gets `LostUnknown`.
//!
//! Every answer is JSON (`{"affected": n}` or `{"error": ...}`) and carries
//! `Access-Control-Allow-Origin: *`, so a page served elsewhere can call them.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::registry::Control;
use crate::state::Shared;
use crate::stats::Counters;
use crate::store::{EntryRef, Gone};
use crate::lock;
use crate::token::token_from_hex;

/// Longest stall accepted.
const MAX_STALL: Duration = Duration::from_secs(600);

/// The `/admin` routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/admin/cut", post(cut)).route("/admin/stall", post(stall)).route("/admin/expire", post(expire))
}

#[derive(Deserialize)]
struct Target {
    session: Option<String>,
    ms: Option<u64>,
}

/// Which sessions a request names.
enum Sessions {
    All,
    One(EntryRef),
}

/// A request the endpoints cannot carry out.
struct Refusal(StatusCode, &'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn sessions(shared: &Shared, session: Option<&str>, default_all: bool) -> Result<Sessions, Refusal> {
    match session {
        Some("all") => Ok(Sessions::All),
        None if default_all => Ok(Sessions::All),
        None => Err(Refusal(StatusCode::BAD_REQUEST, "missing session=all|<token-hex>")),
        Some(hex) => {
            let token = token_from_hex(hex).ok_or(Refusal(StatusCode::BAD_REQUEST, "session must be all or 32 hex digits"))?;
            shared.store.get(&token).map(Sessions::One).ok_or(Refusal(StatusCode::NOT_FOUND, "no such session"))
        }
    }
}

/// Sends `control` to the connections of `target`; returns how many got it.
fn tell(shared: &Shared, target: &Sessions, control: Control) -> usize {
    match target {
        Sessions::All => shared.connections.broadcast(control),
        Sessions::One(entry) => {
            let attached = lock(entry).attached;
            attached.is_some_and(|id| shared.connections.send(id, control)) as usize
        }
    }
}

async fn cut(State(shared): State<Arc<Shared>>, Query(query): Query<Target>) -> Response {
    let target = match sessions(&shared, query.session.as_deref(), false) {
        Ok(target) => target,
        Err(refusal) => return refusal.into_response(),
    };
    let affected = tell(&shared, &target, Control::Cut);
    Counters::add(&shared.counters.cuts, affected as u64);
    tracing::info!(affected, "admin: cut");
    affected_response(affected)
}

async fn stall(State(shared): State<Arc<Shared>>, Query(query): Query<Target>) -> Response {
    let Some(ms) = query.ms else {
        return Refusal(StatusCode::BAD_REQUEST, "missing ms=N").into_response();
    };
    let duration = Duration::from_millis(ms);
    if duration > MAX_STALL {
        return Refusal(StatusCode::BAD_REQUEST, "ms must be at most 600000").into_response();
    }
    let target = match sessions(&shared, query.session.as_deref(), true) {
        Ok(target) => target,
        Err(refusal) => return refusal.into_response(),
    };
    let affected = tell(&shared, &target, Control::Stall(duration));
    tracing::info!(affected, ms, "admin: stall");
    affected_response(affected)
}

async fn expire(State(shared): State<Arc<Shared>>, Query(query): Query<Target>) -> Response {
    let target = match sessions(&shared, query.session.as_deref(), false) {
        Ok(target) => target,
        Err(refusal) => return refusal.into_response(),
    };
    let entries = match target {
        Sessions::All => shared.store.all(),
        Sessions::One(entry) => vec![entry],
    };
    // A removed session wakes its connection, which sees it gone and drops the link.
    let affected = entries.iter().filter(|entry| shared.store.remove(entry, Gone::Expired)).count();
    tracing::info!(affected, "admin: expire");
    affected_response(affected)
}

fn affected_response(affected: usize) -> Response {
    Json(json!({ "affected": affected })).into_response()
}
