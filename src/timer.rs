//! One re-armable timeout on `setTimeout`.
//!
//! A single callback lives as long as the timer and is re-armed with new deadlines, so the
//! callback is never dropped while it runs (a one-shot timer replaced from its own callback
//! would be).

use durable_ws_core::Millis;
use js_sys::Function;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &Function, delay_ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

/// A timeout that fires `on_fire` once per `arm`.
pub(crate) struct Timer {
    callback: Closure<dyn FnMut()>,
    armed: Option<(Millis, JsValue)>,
}

impl Timer {
    /// A disarmed timer.
    pub(crate) fn new(on_fire: impl FnMut() + 'static) -> Self {
        Timer { callback: Closure::new(on_fire), armed: None }
    }

    /// Fire at `deadline` (on the `clock` scale), replacing any earlier arming.
    pub(crate) fn arm(&mut self, deadline: Millis, now: Millis) {
        if matches!(&self.armed, Some((armed, _)) if *armed == deadline) {
            return;
        }
        self.disarm();
        let delay = deadline.saturating_sub(now) as f64;
        let id = set_timeout(self.callback.as_ref().unchecked_ref(), delay);
        self.armed = Some((deadline, id));
    }

    /// Cancel the pending firing, if any.
    pub(crate) fn disarm(&mut self) {
        if let Some((_, id)) = self.armed.take() {
            clear_timeout(&id);
        }
    }

    /// The callback ran: nothing is armed any more.
    pub(crate) fn fired(&mut self) {
        self.armed = None;
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.disarm();
    }
}
