//! The numbers `readOptions` (`src/js/face.js`) makes of the options object, into the client's
//! configuration. The JavaScript side checks types and ranges field by field; `NaN` means "not
//! set", so the defaults stay those of the core.

use durable_ws_core::{ClientConfig, HeartbeatConfig, Millis};

/// The configuration `numbers` describe: 14 option values in `readOptions`' order, then, if the
/// application gave `terminalCloseCodes`, a `1` and the codes as inclusive `[from, to]` pairs.
pub(crate) fn client_config(numbers: &[f64]) -> Result<ClientConfig, &'static str> {
    let at = |i: usize| numbers.get(i).copied().filter(|n| !n.is_nan());
    let mut client = ClientConfig::default();
    let backoff = &mut client.backoff;
    set_ms(&mut backoff.min_delay_ms, at(0));
    set_ms(&mut backoff.max_delay_ms, at(1));
    if backoff.min_delay_ms > backoff.max_delay_ms {
        return Err("DurableWebSocket: options.reconnect.minDelayMs must not exceed maxDelayMs");
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
    if let Some(codes) = numbers.get(15..) {
        client.close_policy.terminal = codes.chunks_exact(2).map(|pair| (pair[0] as u16, pair[1] as u16)).collect();
    }
    Ok(client)
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
