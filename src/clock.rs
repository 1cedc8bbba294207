//! The driver's clock and jitter seed: `performance.now()` and `Math.random()`.

use durable_ws_core::Millis;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    // Monotonic and available in windows and workers alike; `Date.now()` can jump backwards.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// Milliseconds since the page (or worker) started.
pub(crate) fn now() -> Millis {
    performance_now() as Millis
}

/// 64 random bits for the reconnect jitter (not a secret, so `Math.random` is enough).
pub(crate) fn seed() -> u64 {
    let word = || (js_sys::Math::random() * 4_294_967_296.0) as u64;
    (word() << 32) | word()
}
