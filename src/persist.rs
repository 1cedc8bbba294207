//! A persisted session's storage as the engine sees it: `src/store.js` opened for one name, the
//! core's [`StoreBatch`]es written to it, and what it reports (read back, stored, failed) turned
//! into the engine's inputs. The callbacks are owned here; dropping it closes the store first, so
//! JavaScript never calls a freed closure.

use std::rc::Rc;

use durable_ws_core::persist::StoreBatch;
use durable_ws_core::Payload;
use js_sys::{Array, Function, Uint8Array};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// An open store (`Store` of `src/store.js`).
    pub(crate) type JsStore;
    #[wasm_bindgen(method)]
    fn write(this: &JsStore, id: f64, clear: bool, position: Option<String>, acked: f64, seqs: &[f64], payloads: Array);
    #[wasm_bindgen(method)]
    fn close(this: &JsStore);
    #[wasm_bindgen(method)]
    fn enqueue(this: &JsStore, payload: JsValue);
}

#[cfg(feature = "typed")]
#[wasm_bindgen(module = "/src/store.js")]
extern "C" {
    #[wasm_bindgen(js_name = openStore)]
    fn open_store(name: &str, loaded: &Function, stored: &Function, failed: &Function) -> JsStore;
}

/// Opens `src/store.js` for a name: the module's `openStore` (the npm build hands it over from
/// `face.js`, which bundles the module; the Rust API imports the module itself).
pub(crate) type StoreOpener = Rc<dyn Fn(&str, &Function, &Function, &Function) -> JsStore>;

/// The Rust API's opener: the module imported by wasm-bindgen.
#[cfg(feature = "typed")]
pub(crate) fn module_opener() -> StoreOpener {
    Rc::new(|name: &str, loaded: &Function, stored: &Function, failed: &Function| {
        open_store(name, loaded, stored, failed)
    })
}

/// The npm build's opener: `face.js` passes the module's `openStore`.
#[cfg(feature = "js")]
pub(crate) fn function_opener(open: Function) -> StoreOpener {
    Rc::new(move |name: &str, loaded: &Function, stored: &Function, failed: &Function| {
        let args = Array::of4(&name.into(), loaded, stored, failed);
        open.apply(&JsValue::NULL, &args).unwrap_or(JsValue::UNDEFINED).unchecked_into()
    })
}

/// What the store tells the engine.
pub(crate) enum StoreEvent {
    /// The name is ours and read: the stored position (`None`: nothing stored) and messages, and
    /// how many of the first sends made while loading another page took over (it found them left
    /// behind and sent them).
    Loaded { position: Option<String>, messages: Vec<(u64, Payload)>, adopted: usize },
    /// Every batch up to this id is durably stored.
    Stored(u64),
    /// Storage cannot be used (the message says why); nothing more comes.
    Failed(String),
}

/// One open store and its callbacks.
pub(crate) struct Persistence {
    store: JsStore,
    _loaded: Closure<dyn FnMut(JsValue, Array, Array, f64)>,
    _stored: Closure<dyn FnMut(f64)>,
    _failed: Closure<dyn FnMut(String)>,
}

impl Persistence {
    /// Opens the session `name` (waiting for its lock); `on_event` receives what the store reports.
    pub(crate) fn open(name: &str, opener: &StoreOpener, on_event: impl Fn(StoreEvent) + 'static) -> Persistence {
        let on_event: Rc<dyn Fn(StoreEvent)> = Rc::new(on_event);
        let handler = on_event.clone();
        let loaded = Closure::<dyn FnMut(JsValue, Array, Array, f64)>::new(
            move |position: JsValue, seqs: Array, payloads: Array, adopted: f64| {
                let messages = seqs
                    .iter()
                    .zip(payloads.iter())
                    .filter_map(|(seq, payload)| Some((seq.as_f64()? as u64, payload_of(&payload)?)))
                    .collect();
                handler(StoreEvent::Loaded { position: position.as_string(), messages, adopted: adopted as usize })
            },
        );
        let handler = on_event.clone();
        let stored = Closure::<dyn FnMut(f64)>::new(move |id: f64| handler(StoreEvent::Stored(id as u64)));
        let handler = on_event;
        let failed = Closure::<dyn FnMut(String)>::new(move |message: String| handler(StoreEvent::Failed(message)));
        let store = opener(
            name,
            loaded.as_ref().unchecked_ref(),
            stored.as_ref().unchecked_ref(),
            failed.as_ref().unchecked_ref(),
        );
        Persistence { store, _loaded: loaded, _stored: stored, _failed: failed }
    }

    /// Keeps a message sent while the session is being read back (it has no number yet), so that
    /// it survives the page dying before that.
    pub(crate) fn enqueue(&self, payload: &Payload) {
        self.store.enqueue(js_payload(payload));
    }

    /// Writes a batch (synchronously to the fast store; the durable commit is reported later).
    pub(crate) fn write(&self, batch: StoreBatch) {
        let seqs: Vec<f64> = batch.messages.iter().map(|(seq, _)| *seq as f64).collect();
        let payloads: Array = batch.messages.iter().map(|(_, payload)| js_payload(payload)).collect();
        let acked = batch.position.map_or(0, |p| p.acked) as f64;
        self.store.write(batch.id as f64, batch.clear, batch.position.map(|p| p.encode()), acked, &seqs, payloads);
    }
}

impl Drop for Persistence {
    fn drop(&mut self) {
        self.store.close();
    }
}

fn js_payload(payload: &Payload) -> JsValue {
    match payload {
        Payload::Text(text) => JsValue::from_str(text),
        Payload::Binary(bytes) => Uint8Array::from(&bytes[..]).into(),
    }
}

/// A stored payload: a string, or bytes (`None`: unreadable, which the core reports).
fn payload_of(value: &JsValue) -> Option<Payload> {
    if let Some(text) = value.as_string() {
        return Some(Payload::Text(text));
    }
    value.dyn_ref::<Uint8Array>().map(|bytes| Payload::Binary(bytes.to_vec()))
}
