//! The options object of `new DurableWebSocket(url, options)`, checked field by field: unknown
//! keys (typos), wrong types and out-of-range values throw a `TypeError` naming the field.
//!
//! The checks are a small JavaScript function (reading a JS object from Rust costs a call per
//! field, and several kilobytes of wasm); it hands back plain numbers, with `NaN` for "not set"
//! so the defaults stay those of the core.

use durable_ws_core::{ClientConfig, HeartbeatConfig, Millis};
use js_sys::{Array, Float64Array};
use wasm_bindgen::prelude::*;

use crate::js::errors::type_error;

#[wasm_bindgen(module = "/src/js/face.js")]
extern "C" {
    #[wasm_bindgen(catch, js_name = readOptions)]
    fn read_options(options: &JsValue) -> Result<Array, JsValue>;
}

/// What the options say.
pub(crate) struct JsOptions {
    pub(crate) client: ClientConfig,
    pub(crate) protocols: Vec<String>,
    pub(crate) json: bool,
}

/// Reads `options` (`undefined` or `null`: all defaults).
pub(crate) fn parse(options: &JsValue) -> Result<JsOptions, JsValue> {
    let parts = read_options(options)?;
    let numbers = parts.get(0).unchecked_into::<Float64Array>().to_vec();
    let at = |i: usize| numbers.get(i).copied().filter(|n| !n.is_nan());
    let mut client = ClientConfig::default();
    let backoff = &mut client.backoff;
    set_ms(&mut backoff.min_delay_ms, at(0));
    set_ms(&mut backoff.max_delay_ms, at(1));
    if backoff.min_delay_ms > backoff.max_delay_ms {
        return Err(type_error(&["DurableWebSocket: options.reconnect.minDelayMs must not exceed maxDelayMs"]));
    }
    if let Some(factor) = at(2) {
        backoff.factor = factor;
    }
    if let Some(jitter) = at(3) {
        backoff.jitter = jitter != 0.0;
    }
    if let Some(attempts) = at(4) {
        backoff.max_attempts = (attempts != 0.0).then_some(attempts as u32);
    }
    set_ms(&mut backoff.stable_after_ms, at(5));
    set_ms(&mut client.connect_timeout_ms, at(6));
    set_ms(&mut client.close_timeout_ms, at(7));
    if at(8) == Some(0.0) {
        client.session.heartbeat = None;
    } else if let Some(heartbeat) = &mut client.session.heartbeat {
        let HeartbeatConfig { interval_ms, timeout_ms } = heartbeat;
        set_ms(interval_ms, at(8));
        set_ms(timeout_ms, at(9));
    }
    let session = &mut client.session;
    set_count(&mut session.limits.max_messages, at(10));
    set_count(&mut session.limits.max_bytes, at(11));
    set_count(&mut session.max_message_bytes, at(12));
    let json = at(13) == Some(1.0);

    let protocols = parts.get(1).unchecked_into::<Array>().iter().filter_map(|p| p.as_string()).collect();
    if let Some(codes) = parts.get(2).dyn_ref::<Float64Array>() {
        let codes = codes.to_vec();
        client.close_policy.terminal = codes.chunks_exact(2).map(|pair| (pair[0] as u16, pair[1] as u16)).collect();
    }
    Ok(JsOptions { client, protocols, json })
}

fn set_ms(field: &mut Millis, value: Option<f64>) {
    if let Some(ms) = value {
        *field = ms as Millis;
    }
}

fn set_count(field: &mut usize, value: Option<f64>) {
    if let Some(count) = value {
        *field = count as usize;
    }
}
