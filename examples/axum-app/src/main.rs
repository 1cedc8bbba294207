//! An ordinary axum application — its own routes, its own auth middleware — with a durable
//! endpoint: everything sent into the `lobby` room (by a browser, by `POST /notes`, by a
//! background task) reaches every member exactly once, in one order, across reconnects.
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use durable_ws_server::{serve, Durable, Identity, OriginLayer, OriginPolicy, Refusal, ServeLimits, Session};
use serde::{Deserialize, Serialize};

/// What a browser (or `POST /notes`) sends: the text. Who sent it is the server's to say.
#[derive(Deserialize)]
struct Draft {
    text: String,
}

/// What every member of the room gets.
#[derive(Serialize)]
struct Note {
    from: String,
    text: String,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr: SocketAddr =
        std::env::var("LISTEN").unwrap_or("127.0.0.1:3000".into()).parse().expect("LISTEN=host:port");
    let durable = Durable::builder().session_ttl(Duration::from_secs(60)).build();

    // A background task that publishes into the room.
    let lobby = durable.room("lobby");
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        for n in 0.. {
            tick.tick().await;
            let _ = lobby.send(&Note { from: "clock".into(), text: format!("tick {n}") });
        }
    });

    let app = Router::new()
        .route("/ws", durable.endpoint(lobby_member).layer(middleware::from_fn(sign_in)))
        .route("/notes", post(push_note))
        .route("/health", get(|| async { "ok" }))
        .layer(OriginLayer::new(OriginPolicy::SameHost, addr))
        .with_state(durable.clone());

    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("axum-app listening on {}", listener.local_addr()?);
    // axum's own server would do too; this one adds connection caps (total, per IP) and a
    // deadline for request heads (slowloris), with defaults for a small box.
    let shutdown = async move {
        let _ = tokio::signal::ctrl_c().await;
        durable.shutdown().await; // every client gets 1012 and resumes elsewhere
    };
    serve(listener, app, ServeLimits::default(), shutdown).await
}

/// One browser session (it lives across reconnects): what it sends goes to the whole room.
async fn lobby_member(mut session: Session<Draft, Note>) {
    session.join("lobby");
    let room = session.room("lobby");
    let me = session.identity().to_string();
    while let Some(Draft { text }) = session.recv().await {
        let _ = room.send(&Note { from: me.clone(), text });
    }
}

/// `POST /notes`: pushes a note into the room from plain HTTP.
async fn push_note(State(durable): State<Durable>, Json(Draft { text }): Json<Draft>) -> StatusCode {
    match durable.room("lobby").send(&Note { from: "http".into(), text }) {
        Ok(_) => StatusCode::ACCEPTED,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The app's own sign-in (a stand-in for a cookie check): `?user=NAME`. The durable endpoint
/// reads the `Identity`; a `Refusal` reaches the browser as close code 4401.
async fn sign_in(mut request: Request, next: Next) -> Response {
    let user = request.uri().query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("user=")));
    match user.filter(|name| !name.is_empty() && name.chars().all(char::is_alphanumeric)) {
        Some(name) => {
            let identity = Identity::named(name);
            request.extensions_mut().insert(identity);
        }
        None => {
            request.extensions_mut().insert(Refusal::unauthorized("sign in with ?user=NAME"));
        }
    }
    next.run(request).await
}
