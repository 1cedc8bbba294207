//! The page's surroundings: `online`/`offline` on the global object and `visibilitychange` on
//! the document (absent in workers). The listeners are owned and removed on drop.

use std::rc::Rc;

use js_sys::Reflect;
use wasm_bindgen::prelude::*;
use web_sys::{Event, EventTarget, Window};

/// A change the client cares about.
pub(crate) enum EnvironmentEvent {
    /// The browser went online (`true`) or offline (`false`).
    Online(bool),
    /// The page became visible again.
    Visible,
}

/// The registered listeners; dropping it removes them.
pub(crate) struct Environment {
    _listeners: Vec<Listener>,
}

impl Environment {
    /// Starts listening; `on_event` receives the changes.
    pub(crate) fn watch(on_event: impl Fn(EnvironmentEvent) + 'static) -> Environment {
        let on_event: Rc<dyn Fn(EnvironmentEvent)> = Rc::new(on_event);
        let global: EventTarget = js_sys::global().unchecked_into();
        let mut listeners = Vec::with_capacity(3);
        for (kind, online) in [("online", true), ("offline", false)] {
            let handler = on_event.clone();
            listeners.push(Listener::new(&global, kind, move |_| handler(EnvironmentEvent::Online(online))));
        }
        if let Some(document) = js_sys::global().dyn_ref::<Window>().and_then(Window::document) {
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
        Reflect::get(&js_sys::global(), &"navigator".into())
            .and_then(|navigator| Reflect::get(&navigator, &"onLine".into()))
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
