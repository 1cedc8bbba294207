//! What operators read: `GET /stats` (counters as JSON), `GET /metrics` (the library's metrics in
//! the Prometheus text format), `GET /healthz` (the process serves) and `GET /readyz` (it takes
//! connections: not while draining after SIGTERM, nor while its Redis does not answer).
//!
//! `/stats` and `/metrics` answer requests from a loopback address, or carrying
//! `Authorization: Bearer` and the [`ServerConfig::metrics_token`]: not public by default.
//! `/healthz` and `/readyz` say nothing but a status and are open (load balancers probe them).
//! With [`ServerConfig::metrics`] off, no recorder is installed: recording costs nothing.

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{HeaderValue, ACCESS_CONTROL_ALLOW_ORIGIN, AUTHORIZATION, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use durable_ws_server::{Durable, Stats};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::config::ServerConfig;

/// The process's Prometheus recorder (a process has one global recorder: servers started by
/// tests in one process share it, as they share the process), with `durable`'s metrics described.
fn prometheus(durable: &Durable) -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let mut builder = PrometheusBuilder::new();
        for (name, buckets) in durable_ws_server::metrics::histograms() {
            builder =
                builder.set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets).expect("buckets are not empty");
        }
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed: /metrics shows only what it did not take");
        }
        durable_ws_server::metrics::describe(durable);
        handle
    })
}

/// The monitoring routes.
pub(crate) fn routes(durable: &Durable, config: &ServerConfig) -> Router<Durable> {
    let token = config.metrics_token.clone();
    let mut guarded = Router::new().route("/stats", get(stats));
    if config.metrics {
        prometheus(durable);
        guarded = guarded.route("/metrics", get(metrics));
    }
    let guarded = guarded
        .layer(middleware::from_fn(move |request: Request, next: Next| allowed(token.clone(), request, next)))
        .layer(middleware::map_response(allow_any_origin));
    Router::new().route("/healthz", get(|| async { "ok" })).route("/readyz", get(ready)).merge(guarded)
}

async fn stats(State(durable): State<Durable>) -> Json<Stats> {
    Json(durable.stats())
}

async fn metrics(State(durable): State<Durable>) -> Response {
    durable.record_gauges();
    let handle = prometheus(&durable);
    handle.run_upkeep();
    ([(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"))], handle.render())
        .into_response()
}

async fn ready(State(durable): State<Durable>) -> Response {
    if durable.ready().await {
        "ready".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

/// A loopback peer, or the token: else 403.
async fn allowed(token: Option<String>, request: Request, next: Next) -> Response {
    let loopback =
        request.extensions().get::<ConnectInfo<SocketAddr>>().is_some_and(|ConnectInfo(peer)| peer.ip().is_loopback());
    let bearer = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let token_ok =
        matches!((&token, bearer), (Some(token), Some(given)) if constant_time_eq(token.as_bytes(), given.as_bytes()));
    if loopback || token_ok {
        next.run(request).await
    } else {
        (StatusCode::FORBIDDEN, "monitoring is open to loopback clients and to --metrics-token only").into_response()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Pages served from elsewhere (the demo, browser tests) may read the stats: counters only.
async fn allow_any_origin(mut response: Response) -> Response {
    response.headers_mut().insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    /// `GET path` from `peer`, with `bearer` if given: the status.
    async fn get(config: &ServerConfig, peer: [u8; 4], path: &str, bearer: Option<&str>) -> StatusCode {
        let durable = durable_ws_server::Builder::from_config(config.durable_config()).build();
        let mut request = Request::get(path);
        if let Some(token) = bearer {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let mut request = request.body(Body::empty()).unwrap();
        request.extensions_mut().insert(ConnectInfo(SocketAddr::from((peer, 40000))));
        routes(&durable, config).with_state(durable).oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn stats_and_metrics_are_for_loopback_and_the_token_only() {
        let config = ServerConfig { metrics_token: Some("s3cret".into()), ..ServerConfig::default() };
        let remote = [203, 0, 113, 5];
        for path in ["/stats", "/metrics"] {
            assert_eq!(get(&config, [127, 0, 0, 1], path, None).await, StatusCode::OK, "{path} from loopback");
            assert_eq!(get(&config, remote, path, None).await, StatusCode::FORBIDDEN, "{path} from elsewhere");
            assert_eq!(get(&config, remote, path, Some("wrong")).await, StatusCode::FORBIDDEN, "{path}, wrong token");
            assert_eq!(get(&config, remote, path, Some("s3cret")).await, StatusCode::OK, "{path} with the token");
        }
        let open = ServerConfig::default();
        assert_eq!(get(&open, remote, "/metrics", Some("s3cret")).await, StatusCode::FORBIDDEN, "no token configured");
        for path in ["/healthz", "/readyz"] {
            assert_eq!(get(&open, remote, path, None).await, StatusCode::OK, "{path} is open");
        }
    }
}
