//! Benchmark hook for the durable-ws Rust API: an echo benchmark whose loop runs entirely in
//! wasm (`DurableSocket<String, String>` with the JSON codec), called once per run from the
//! benchmark page (bench/page.js).
#![deny(missing_docs)]

use durable_ws::typed::{DurableSocket, Options, Receiver, SocketEvent};
use futures::StreamExt;
use wasm_bindgen::prelude::*;

/// What the benchmark page passes in.
struct Run {
    url: String,
    size: usize,
    count: u32,
    window: u32,
    samples: u32,
    warmup: u32,
}

/// Pipelined echo of `count` messages of `size` characters with at most `window` unanswered,
/// then `samples` one-at-a-time round trips (after `warmup` ones). Resolves with
/// `{ rate, rtt: { p50, p99, mean } }` (messages per second, milliseconds).
#[wasm_bindgen(js_name = rustEcho)]
pub async fn rust_echo(
    url: String,
    size: usize,
    count: u32,
    window: u32,
    samples: u32,
    warmup: u32,
) -> Result<JsValue, JsValue> {
    let run = Run { url, size, count, window, samples, warmup };
    let performance = web_sys::window().and_then(|w| w.performance()).ok_or("no performance clock")?;
    let socket: DurableSocket<String, String> =
        DurableSocket::connect(Options::new(run.url.clone())).map_err(|e| JsValue::from_str(&e.to_string()))?;
    let (sender, mut receiver) = socket.split();
    loop {
        match receiver.next().await {
            Some(SocketEvent::Open { .. }) => break,
            Some(_) => {}
            None => return Err("the socket ended before it opened".into()),
        }
    }
    let text = "x".repeat(run.size);

    let started = performance.now();
    let mut sent = 0;
    while sent < run.window.min(run.count) {
        drop(sender.send(text.clone()));
        sent += 1;
    }
    let mut received = 0;
    while received < run.count {
        next_message(&mut receiver).await?;
        received += 1;
        if sent < run.count {
            drop(sender.send(text.clone()));
            sent += 1;
        }
    }
    let rate = f64::from(run.count) / ((performance.now() - started) / 1000.0);

    let mut times = Vec::with_capacity(run.samples as usize);
    for i in 0..run.warmup + run.samples {
        let start = performance.now();
        drop(sender.send(text.clone()));
        next_message(&mut receiver).await?;
        if i >= run.warmup {
            times.push(performance.now() - start);
        }
    }
    times.sort_by(f64::total_cmp);
    let _ = sender.close(1000, "done");
    let pick = |q: f64| {
        times.get(((times.len() as f64 * q) as usize).min(times.len().saturating_sub(1))).copied().unwrap_or(f64::NAN)
    };
    let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
    let rtt = js_sys::Object::new();
    set(&rtt, "p50", pick(0.5))?;
    set(&rtt, "p99", pick(0.99))?;
    set(&rtt, "mean", mean)?;
    let result = js_sys::Object::new();
    set(&result, "rate", rate)?;
    js_sys::Reflect::set(&result, &"rtt".into(), &rtt)?;
    Ok(result.into())
}

/// Waits for the next message, skipping other events.
async fn next_message(receiver: &mut Receiver<String>) -> Result<String, JsValue> {
    loop {
        match receiver.next().await {
            Some(SocketEvent::Message(text)) => return Ok(text),
            Some(_) => {}
            None => return Err("the socket ended".into()),
        }
    }
}

fn set(object: &js_sys::Object, key: &str, value: f64) -> Result<(), JsValue> {
    js_sys::Reflect::set(object, &key.into(), &value.into()).map(|_| ())
}
