//! The options object of `new DurableWebSocket(url, options)`, checked field by field: unknown
//! keys (typos), wrong types and out-of-range values throw a `TypeError` naming the field.

use durable_ws_core::{ClientConfig, HeartbeatConfig, Millis};
use js_sys::{Array, Object};
use wasm_bindgen::{JsCast, JsValue};

use crate::config::protocol_problem;
use crate::js::errors::type_error;

/// What the options say.
pub(crate) struct JsOptions {
    pub(crate) client: ClientConfig,
    pub(crate) protocols: Vec<String>,
    pub(crate) json: bool,
}

const TOP: &[&str] = &[
    "reconnect",
    "connectTimeoutMs",
    "closeTimeoutMs",
    "heartbeat",
    "buffer",
    "protocols",
    "terminalCloseCodes",
    "json",
];
const RECONNECT: &[&str] = &["minDelayMs", "maxDelayMs", "factor", "jitter", "maxAttempts", "stableAfterMs"];
const HEARTBEAT: &[&str] = &["intervalMs", "timeoutMs"];
const BUFFER: &[&str] = &["maxMessages", "maxBytes", "maxMessageBytes"];

/// Reads `options` (`undefined` or `null`: all defaults).
pub(crate) fn parse(options: &JsValue) -> Result<JsOptions, JsValue> {
    let mut parsed = JsOptions { client: ClientConfig::default(), protocols: Vec::new(), json: false };
    let Some(top) = Fields::open(options, "options", TOP)? else {
        return Ok(parsed);
    };
    let client = &mut parsed.client;

    if let Some(reconnect) = Fields::open(&top.get("reconnect"), "options.reconnect", RECONNECT)? {
        let backoff = &mut client.backoff;
        set(&mut backoff.min_delay_ms, reconnect.millis("minDelayMs", false)?);
        set(&mut backoff.max_delay_ms, reconnect.millis("maxDelayMs", false)?);
        if backoff.min_delay_ms > backoff.max_delay_ms {
            return Err(reconnect.fail("minDelayMs", "must not exceed maxDelayMs"));
        }
        if let Some(factor) = reconnect.number("factor")? {
            if !(factor >= 1.0 && factor.is_finite()) {
                return Err(reconnect.fail("factor", "must be a finite number of at least 1"));
            }
            backoff.factor = factor;
        }
        set(&mut backoff.jitter, reconnect.boolean("jitter")?);
        if let Some(attempts) = reconnect.number("maxAttempts")? {
            backoff.max_attempts = if attempts == f64::INFINITY {
                None
            } else if attempts >= 1.0 && attempts.fract() == 0.0 && attempts <= u32::MAX as f64 {
                Some(attempts as u32)
            } else {
                return Err(reconnect.fail("maxAttempts", "must be a positive integer or Infinity"));
            };
        }
        set(&mut backoff.stable_after_ms, reconnect.millis("stableAfterMs", false)?);
    }

    set(&mut client.connect_timeout_ms, top.millis("connectTimeoutMs", true)?);
    set(&mut client.close_timeout_ms, top.millis("closeTimeoutMs", false)?);

    let heartbeat = top.get("heartbeat");
    if heartbeat.is_null() || heartbeat.as_bool() == Some(false) {
        client.session.heartbeat = None;
    } else if let Some(fields) = Fields::open(&heartbeat, "options.heartbeat", HEARTBEAT)? {
        let mut config = HeartbeatConfig::default();
        set(&mut config.interval_ms, fields.millis("intervalMs", true)?);
        set(&mut config.timeout_ms, fields.millis("timeoutMs", true)?);
        client.session.heartbeat = Some(config);
    }

    if let Some(buffer) = Fields::open(&top.get("buffer"), "options.buffer", BUFFER)? {
        set(&mut client.session.limits.max_messages, buffer.count("maxMessages")?);
        set(&mut client.session.limits.max_bytes, buffer.count("maxBytes")?);
        set(&mut client.session.max_message_bytes, buffer.count("maxMessageBytes")?);
    }

    let protocols = top.get("protocols");
    if !protocols.is_undefined() {
        let Some(list) = protocols.dyn_ref::<Array>() else {
            return Err(top.fail("protocols", "must be an array of strings"));
        };
        for item in list.iter() {
            let Some(protocol) = item.as_string() else {
                return Err(top.fail("protocols", "must be an array of strings"));
            };
            if let Some(problem) = protocol_problem(&protocol, &parsed.protocols) {
                return Err(top.fail("protocols", problem));
            }
            parsed.protocols.push(protocol);
        }
    }

    let codes = top.get("terminalCloseCodes");
    if !codes.is_undefined() {
        let problem = "must be an array of close codes (1000–4999) or [from, to] ranges";
        let Some(list) = codes.dyn_ref::<Array>() else {
            return Err(top.fail("terminalCloseCodes", problem));
        };
        let mut terminal = Vec::new();
        for item in list.iter() {
            let range = match item.dyn_ref::<Array>() {
                Some(pair) if pair.length() == 2 => (close_code(&pair.get(0)), close_code(&pair.get(1))),
                Some(_) => (None, None),
                None => (close_code(&item), close_code(&item)),
            };
            match range {
                (Some(from), Some(to)) if from <= to => terminal.push((from, to)),
                _ => return Err(top.fail("terminalCloseCodes", problem)),
            }
        }
        client.close_policy.terminal = terminal;
    }

    set(&mut parsed.json, top.boolean("json")?);
    Ok(parsed)
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

fn close_code(value: &JsValue) -> Option<u16> {
    value.as_f64().filter(|code| code.fract() == 0.0 && (1000.0..=4999.0).contains(code)).map(|code| code as u16)
}

/// One (nested) options object and its path for messages.
struct Fields<'a> {
    object: &'a JsValue,
    path: &'static str,
}

impl<'a> Fields<'a> {
    /// `None` for `undefined`; an error for non-objects and unknown keys.
    fn open(value: &'a JsValue, path: &'static str, known: &[&str]) -> Result<Option<Fields<'a>>, JsValue> {
        if value.is_undefined() {
            return Ok(None);
        }
        if !value.is_object() || value.is_function() || Array::is_array(value) {
            return Err(type_error(&["DurableWebSocket: ", path, " must be an object"]));
        }
        for key in Object::keys(value.unchecked_ref::<Object>()).iter() {
            let key = key.as_string().unwrap_or_default();
            if !known.contains(&key.as_str()) {
                return Err(type_error(&[
                    "DurableWebSocket: unknown option ",
                    path,
                    ".",
                    &key,
                    " (known: ",
                    &known.join(", "),
                    ")",
                ]));
            }
        }
        Ok(Some(Fields { object: value, path }))
    }

    fn get(&self, key: &str) -> JsValue {
        js_sys::Reflect::get(self.object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
    }

    fn fail(&self, key: &str, problem: &str) -> JsValue {
        type_error(&["DurableWebSocket: ", self.path, ".", key, " ", problem])
    }

    fn number(&self, key: &str) -> Result<Option<f64>, JsValue> {
        let value = self.get(key);
        if value.is_undefined() {
            return Ok(None);
        }
        match value.as_f64() {
            Some(number) if !number.is_nan() => Ok(Some(number)),
            _ => Err(self.fail(key, "must be a number")),
        }
    }

    /// A duration in milliseconds: finite, at least 0 (or above 0 if `positive`).
    fn millis(&self, key: &str, positive: bool) -> Result<Option<Millis>, JsValue> {
        match self.number(key)? {
            Some(ms) if ms.is_finite() && (ms > 0.0 || (!positive && ms == 0.0)) => Ok(Some(ms.ceil() as Millis)),
            Some(_) if positive => Err(self.fail(key, "must be a positive, finite number of milliseconds")),
            Some(_) => Err(self.fail(key, "must be a non-negative, finite number of milliseconds")),
            None => Ok(None),
        }
    }

    /// A count: a positive integer.
    fn count(&self, key: &str) -> Result<Option<usize>, JsValue> {
        match self.number(key)? {
            Some(n) if n >= 1.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => Ok(Some(n as usize)),
            Some(_) => Err(self.fail(key, "must be a positive integer")),
            None => Ok(None),
        }
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, JsValue> {
        let value = self.get(key);
        if value.is_undefined() {
            return Ok(None);
        }
        value.as_bool().map(Some).ok_or_else(|| self.fail(key, "must be a boolean"))
    }
}
