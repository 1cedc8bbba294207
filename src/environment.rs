//! The page's surroundings: `online`/`offline` and the page lifecycle's `pagehide`/`pageshow` on
//! the global object, `visibilitychange` and `resume` (a frozen page thawed) on the document
//! (absent in workers). The listeners are owned and removed on drop.

use std::rc::Rc;

use js_sys::Reflect;
use wasm_bindgen::prelude::*;
use web_sys::{Document, Event, EventTarget, PageTransitionEvent};

#[wasm_bindgen]
extern "C" {
    // One import instead of js-sys's four-way search for the global object: `globalThis` is in
    // every browser and worker this library runs in.
    #[wasm_bindgen(thread_local_v2, js_name = globalThis)]
    static GLOBAL: EventTarget;
}

/// A property of the global object (`undefined` if absent).
fn global_property(name: &str) -> JsValue {
    GLOBAL.with(|global| Reflect::get(global, &name.into()).unwrap_or(JsValue::UNDEFINED))
}

/// A change the client cares about.
pub(crate) enum EnvironmentEvent {
    /// The browser went online (`true`) or offline (`false`).
    Online(bool),
    /// The page became visible again, or was thawed after a freeze.
    Visible,
    /// `pagehide`: the page unloads (`for_good`) or enters the back/forward cache.
    PageHide {
        /// Not kept in the back/forward cache.
        for_good: bool,
    },
    /// `pageshow` of a page restored from the back/forward cache.
    PageShow,
}

/// The registered listeners; dropping it removes them.
pub(crate) struct Environment {
    _listeners: Vec<Listener>,
}

impl Environment {
    /// Starts listening; `on_event` receives the changes.
    pub(crate) fn watch(on_event: impl Fn(EnvironmentEvent) + 'static) -> Environment {
        let on_event: Rc<dyn Fn(EnvironmentEvent)> = Rc::new(on_event);
        let global = GLOBAL.with(EventTarget::clone);
        let mut listeners = Vec::with_capacity(6);
        for (kind, online) in [("online", true), ("offline", false)] {
            let handler = on_event.clone();
            listeners.push(Listener::new(&global, kind, move |_| handler(EnvironmentEvent::Online(online))));
        }
        let handler = on_event.clone();
        listeners.push(Listener::new(&global, "pagehide", move |event| {
            let kept = event.unchecked_ref::<PageTransitionEvent>().persisted();
            handler(EnvironmentEvent::PageHide { for_good: !kept })
        }));
        let handler = on_event.clone();
        listeners.push(Listener::new(&global, "pageshow", move |event| {
            if event.unchecked_ref::<PageTransitionEvent>().persisted() {
                handler(EnvironmentEvent::PageShow)
            }
        }));
        // Absent in workers.
        let document = global_property("document");
        if !document.is_undefined() {
            let document: Document = document.unchecked_into();
            let handler = on_event.clone();
            listeners.push(Listener::new(&document, "resume", move |_| handler(EnvironmentEvent::Visible)));
            let handler = on_event;
            let watched = document.clone();
            listeners.push(Listener::new(&document, "visibilitychange", move |_| {
                if !watched.hidden() {
                    handler(EnvironmentEvent::Visible)
                }
            }));
        }
        Environment { _listeners: listeners }
    }

    /// `navigator.onLine`, or `true` where there is no navigator.
    pub(crate) fn is_online() -> bool {
        Reflect::get(&global_property("navigator"), &"onLine".into())
            .ok()
            .and_then(|online| online.as_bool())
            .unwrap_or(true)
    }
}

/// One `addEventListener` registration.
struct Listener {
    target: EventTarget,
    kind: &'static str,
    callback: Closure<dyn FnMut(Event)>,
}

impl Listener {
    fn new(target: &EventTarget, kind: &'static str, handler: impl FnMut(Event) + 'static) -> Listener {
        let callback = Closure::<dyn FnMut(Event)>::new(handler);
        let _ = target.add_event_listener_with_callback(kind, callback.as_ref().unchecked_ref());
        Listener { target: target.clone(), kind, callback }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.target.remove_event_listener_with_callback(self.kind, self.callback.as_ref().unchecked_ref());
    }
}
