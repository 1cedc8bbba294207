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

#[wasm_bindgen(inline_js = r#"
const KEYS = {
  options: ["reconnect", "connectTimeoutMs", "closeTimeoutMs", "heartbeat", "buffer", "protocols", "terminalCloseCodes", "json"],
  "options.reconnect": ["minDelayMs", "maxDelayMs", "factor", "jitter", "maxAttempts", "stableAfterMs"],
  "options.heartbeat": ["intervalMs", "timeoutMs"],
  "options.buffer": ["maxMessages", "maxBytes", "maxMessageBytes"],
};
const fail = (field, problem) => { throw new TypeError(`DurableWebSocket: ${field} ${problem}`); };
function fields(value, path) {
  if (value === undefined) return {};
  if (value === null || typeof value != "object" || Array.isArray(value)) fail(path, "must be an object");
  for (const key of Object.keys(value))
    if (!KEYS[path].includes(key)) fail(`${path}.${key}`, `is not a known option (known: ${KEYS[path].join(", ")})`);
  return value;
}
// kind: 0 non-negative ms, 1 positive ms, 2 count, 3 factor, 4 attempts (Infinity: 0), 5 boolean
const PROBLEMS = [
  "must be a non-negative, finite number of milliseconds", "must be a positive, finite number of milliseconds",
  "must be a positive integer", "must be a finite number of at least 1", "must be a positive integer or Infinity",
  "must be a boolean",
];
function field(object, path, key, kind) {
  const v = object[key];
  if (v === undefined) return NaN;
  const ok = kind == 5 ? typeof v == "boolean"
    : typeof v == "number" && (kind == 0 ? v >= 0 && v < Infinity : kind == 1 ? v > 0 && v < Infinity
      : kind == 3 ? v >= 1 && v < Infinity : (kind == 4 && v == Infinity) || (Number.isInteger(v) && v >= 1 && v < 2 ** 32));
  if (!ok) fail(`${path}.${key}`, PROBLEMS[kind]);
  return kind == 5 ? +v : kind < 2 ? Math.ceil(v) : kind == 4 && v == Infinity ? 0 : v;
}
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
export function readOptions(options) {
  const o = fields(options ?? undefined, "options");
  const r = fields(o.reconnect, "options.reconnect");
  const b = fields(o.buffer, "options.buffer");
  const off = o.heartbeat === false || o.heartbeat === null;
  const h = off ? {} : fields(o.heartbeat, "options.heartbeat");
  const numbers = [
    field(r, "options.reconnect", "minDelayMs", 0), field(r, "options.reconnect", "maxDelayMs", 0),
    field(r, "options.reconnect", "factor", 3), field(r, "options.reconnect", "jitter", 5),
    field(r, "options.reconnect", "maxAttempts", 4), field(r, "options.reconnect", "stableAfterMs", 0),
    field(o, "options", "connectTimeoutMs", 1), field(o, "options", "closeTimeoutMs", 0),
    off ? 0 : field(h, "options.heartbeat", "intervalMs", 1), off ? 0 : field(h, "options.heartbeat", "timeoutMs", 1),
    field(b, "options.buffer", "maxMessages", 2), field(b, "options.buffer", "maxBytes", 2),
    field(b, "options.buffer", "maxMessageBytes", 2), field(o, "options", "json", 5),
  ];
  const protocols = o.protocols ?? [];
  if (!Array.isArray(protocols) || protocols.some((p) => typeof p != "string"))
    fail("options.protocols", "must be an array of strings");
  protocols.forEach((p, i) => {
    if (!TOKEN.test(p)) fail("options.protocols", `has ${JSON.stringify(p)}, which is not a subprotocol token`);
    if (p == "durable.v1" || protocols.indexOf(p) != i) fail("options.protocols", `offers ${p} twice (durable.v1 is always offered)`);
  });
  let terminal = null;
  if (o.terminalCloseCodes !== undefined) {
    const code = (c) => Number.isInteger(c) && c >= 1000 && c <= 4999;
    const list = o.terminalCloseCodes;
    if (!Array.isArray(list)) fail("options.terminalCloseCodes", "must be an array");
    terminal = list.flatMap((c) => (Array.isArray(c) ? c : [c, c]));
    if (!list.every((c) => code(c) || (Array.isArray(c) && c.length == 2 && code(c[0]) && code(c[1]) && c[0] <= c[1])))
      fail("options.terminalCloseCodes", "must hold close codes (1000–4999) or ascending [from, to] ranges");
  }
  return [new Float64Array(numbers), protocols, terminal && new Float64Array(terminal)];
}
"#)]
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
