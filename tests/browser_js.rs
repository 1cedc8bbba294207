//! The JavaScript API (`DurableWebSocket`, feature `js`) driven from Rust in a real browser,
//! against the reference server at `DURABLE_WS_SERVER`.
#![cfg(all(target_arch = "wasm32", feature = "js"))]

mod browser_support;

use std::cell::RefCell;
use std::rc::Rc;

use browser_support::{admin, echo_url, sleep, PATIENCE_MS};
use durable_ws::js::DurableWebSocket;
use js_sys::{Array, ArrayBuffer, Function, Object, Promise, Reflect, Uint8Array, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn options(json: &str) -> Option<Object> {
    Some(JSON::parse(json).expect("test options are JSON").unchecked_into())
}

fn get(object: &JsValue, key: &str) -> JsValue {
    Reflect::get(object, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

/// The `TypeError` message thrown by the constructor for these arguments.
fn construction_error(url: JsValue, options_json: &str) -> String {
    match DurableWebSocket::new(url, options(options_json)) {
        Ok(_) => panic!("{options_json} was accepted"),
        Err(error) => {
            assert!(error.is_instance_of::<js_sys::TypeError>(), "{error:?}");
            get(&error, "message").as_string().unwrap_or_default()
        }
    }
}

/// Every event dispatched to the listeners registered by [`Recorder::listen`].
#[derive(Default)]
struct Recorder {
    events: Rc<RefCell<Vec<(String, JsValue)>>>,
    listeners: Vec<Closure<dyn FnMut(JsValue)>>,
}

impl Recorder {
    fn listen(&mut self, ws: &DurableWebSocket, kinds: &[&str]) {
        for kind in kinds {
            let events = self.events.clone();
            let name = kind.to_string();
            let listener =
                Closure::<dyn FnMut(JsValue)>::new(move |event| events.borrow_mut().push((name.clone(), event)));
            ws.add_event_listener(kind, listener.as_ref().clone(), JsValue::UNDEFINED).expect("listener added");
            self.listeners.push(listener);
        }
    }

    fn count(&self, kind: &str) -> usize {
        self.events.borrow().iter().filter(|(k, _)| k == kind).count()
    }

    fn of(&self, kind: &str) -> Vec<JsValue> {
        self.events.borrow().iter().filter(|(k, _)| k == kind).map(|(_, e)| e.clone()).collect()
    }

    async fn wait_for(&self, kind: &str, count: usize) {
        for _ in 0..PATIENCE_MS / 10 {
            if self.count(kind) >= count {
                return;
            }
            sleep(10).await;
        }
        let seen: Vec<String> = self.events.borrow().iter().map(|(k, _)| k.clone()).collect();
        panic!("timed out waiting for {count} {kind} events; saw {seen:?}");
    }
}

async fn settle(promise: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(promise).await
}

#[wasm_bindgen_test]
fn bad_options_throw_a_type_error_naming_the_field() {
    let url = || JsValue::from_str(&echo_url());
    assert!(construction_error(url(), r#"{"reconnect": {"minDelayMs": -1}}"#).contains("options.reconnect.minDelayMs"));
    assert!(construction_error(url(), r#"{"reconnct": {}}"#).contains("options.reconnct"));
    assert!(construction_error(url(), r#"{"reconnect": {"maxDelay": 5}}"#).contains("options.reconnect.maxDelay"));
    assert!(construction_error(url(), r#"{"json": "yes"}"#).contains("options.json"));
    assert!(
        construction_error(url(), r#"{"heartbeat": {"intervalMs": "15s"}}"#).contains("options.heartbeat.intervalMs")
    );
    assert!(construction_error(url(), r#"{"buffer": {"maxMessages": 0.5}}"#).contains("options.buffer.maxMessages"));
    assert!(construction_error(url(), r#"{"connectTimeoutMs": 0}"#).contains("options.connectTimeoutMs"));
    assert!(construction_error(url(), r#"{"reconnect": {"factor": 0.5}}"#).contains("options.reconnect.factor"));
    assert!(construction_error(url(), r#"{"reconnect": {"minDelayMs": 10, "maxDelayMs": 5}}"#).contains("minDelayMs"));
    assert!(construction_error(url(), r#"{"protocols": ["durable.v1"]}"#).contains("options.protocols"));
    assert!(construction_error(url(), r#"{"protocols": "chat"}"#).contains("options.protocols"));
    assert!(
        construction_error(url(), r#"{"terminalCloseCodes": [[4999, 4000]]}"#).contains("options.terminalCloseCodes")
    );
    assert!(construction_error(url(), r#"[]"#).contains("options"));
    assert!(construction_error(JsValue::from(42), "{}").contains("url"));
    assert!(construction_error(JsValue::from_str("ftp://example.com/"), "{}").contains("url"));
}

#[wasm_bindgen_test]
async fn json_mode_round_trips_values_text_and_bytes() {
    let ws = DurableWebSocket::new(echo_url().into(), options(r#"{"json": true, "protocols": ["chat"]}"#)).unwrap();
    let mut recorder = Recorder::default();
    recorder.listen(&ws, &["open", "message", "error"]);
    let value = JSON::parse(r#"{"any": "JSON value", "n": [1, 2.5, null]}"#).unwrap();
    settle(ws.send(value.clone())).await.expect("object acknowledged");
    settle(ws.send("plain text".into())).await.expect("string acknowledged");
    settle(ws.send(Uint8Array::from(&[1u8, 2, 3][..]).into())).await.expect("bytes acknowledged");
    recorder.wait_for("message", 3).await;

    assert_eq!(recorder.count("open"), 1);
    assert_eq!(get(&recorder.of("open")[0], "durable"), JsValue::TRUE);
    let data: Vec<JsValue> = recorder.of("message").iter().map(|e| get(e, "data")).collect();
    assert_eq!(JSON::stringify(&data[0]).unwrap(), JSON::stringify(&value).unwrap());
    assert_eq!(data[1].as_string().as_deref(), Some("plain text"));
    let bytes = data[2].dyn_ref::<ArrayBuffer>().expect("binary arrives as an ArrayBuffer");
    assert_eq!(Uint8Array::new(bytes).to_vec(), [1, 2, 3]);
    assert_eq!(recorder.count("error"), 0);
    assert_eq!(ws.ready_state(), 1);
    assert_eq!(ws.pending(), 0.0);
    assert_eq!(get(&ws.stats(), "acked").as_f64(), Some(3.0));
}

#[wasm_bindgen_test]
async fn text_mode_sends_objects_as_json_text_and_delivers_strings() {
    let ws = DurableWebSocket::new(echo_url().into(), None).unwrap();
    let received = Rc::new(RefCell::new(Vec::new()));
    let sink = received.clone();
    let onmessage = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| sink.borrow_mut().push(get(&e, "data")));
    ws.set_onmessage(onmessage.as_ref().clone());
    assert!(ws.onmessage().is_function());
    settle(ws.send(JSON::parse(r#"{"a":1}"#).unwrap())).await.unwrap();
    settle(ws.send("\"quoted\"".into())).await.unwrap();
    for _ in 0..PATIENCE_MS / 10 {
        if received.borrow().len() >= 2 {
            break;
        }
        sleep(10).await;
    }
    let texts: Vec<Option<String>> = received.borrow().iter().map(|v| v.as_string()).collect();
    assert_eq!(texts, [Some(r#"{"a":1}"#.to_owned()), Some("\"quoted\"".to_owned())]);
}

#[wasm_bindgen_test]
async fn url_function_returning_a_promise_is_used() {
    let provider = Function::new_with_args("", &format!("return Promise.resolve({:?})", echo_url()));
    let ws = DurableWebSocket::new(provider.into(), None).unwrap();
    let mut recorder = Recorder::default();
    recorder.listen(&ws, &["open"]);
    recorder.wait_for("open", 1).await;
}

#[wasm_bindgen_test]
async fn undeliverable_values_reject_and_bad_close_arguments_throw() {
    let ws = DurableWebSocket::new(echo_url().into(), None).unwrap();
    let error = settle(ws.send(JsValue::UNDEFINED)).await.expect_err("undefined has no JSON form");
    assert!(error.is_instance_of::<js_sys::TypeError>());
    let cyclic = Object::new();
    Reflect::set(&cyclic, &"self".into(), &cyclic).unwrap();
    settle(ws.send(cyclic.into())).await.expect_err("cycles cannot be stringified");
    assert!(ws.close(Some(1001.0), None).is_err(), "browsers refuse 1001");
    assert!(ws.close(Some(3000.5), None).is_err());
    assert!(ws.close(None, Some("x".repeat(124))).is_err());
}

#[wasm_bindgen_test]
async fn close_event_then_no_reconnect() {
    let ws = DurableWebSocket::new(echo_url().into(), None).unwrap();
    let mut recorder = Recorder::default();
    recorder.listen(&ws, &["open", "close", "reconnecting"]);
    recorder.wait_for("open", 1).await;
    ws.close(Some(1000.0), Some("bye".into())).unwrap();
    recorder.wait_for("close", 1).await;
    let close = &recorder.of("close")[0];
    assert_eq!(get(close, "code").as_f64(), Some(1000.0));
    assert_eq!(get(close, "willReconnect"), JsValue::FALSE);
    sleep(300).await;
    assert_eq!(recorder.count("reconnecting"), 0);
    assert_eq!(ws.ready_state(), 3);
    let error = settle(ws.send("late".into())).await.expect_err("closed");
    assert_eq!(get(&error, "name").as_string().as_deref(), Some("InvalidStateError"));
}

#[wasm_bindgen_test]
async fn session_loss_lists_unconfirmed_payloads() {
    let ws = DurableWebSocket::new(echo_url().into(), options(r#"{"json": true, "heartbeat": false}"#)).unwrap();
    let mut recorder = Recorder::default();
    recorder.listen(&ws, &["open", "sessionlost"]);
    recorder.wait_for("open", 1).await;
    // Find this session's token through the server: stall every connection, then expire all.
    let (status, body) = admin("/admin/stall?ms=20000&session=all").await;
    assert_eq!(status, 200, "{body}");
    let pending = [ws.send(JSON::parse(r#"{"n":1}"#).unwrap()), ws.send("two".into())];
    let (status, body) = admin("/admin/expire?session=all").await;
    assert_eq!(status, 200, "{body}");
    recorder.wait_for("sessionlost", 1).await;
    let lost = &recorder.of("sessionlost")[0];
    assert_eq!(get(lost, "reason").as_string().as_deref(), Some("expired"));
    let unconfirmed: Array = get(lost, "unconfirmed").unchecked_into();
    assert_eq!(JSON::stringify(&unconfirmed).unwrap(), r#"[{"n":1},"two"]"#);
    for promise in pending {
        let error = settle(promise).await.expect_err("never confirmed");
        assert_eq!(get(&error, "name").as_string().as_deref(), Some("SessionLostError"));
    }
    recorder.wait_for("open", 2).await;
}

#[wasm_bindgen_test]
async fn free_stops_every_event() {
    let ws =
        DurableWebSocket::new(echo_url().into(), options(r#"{"reconnect": {"minDelayMs": 10, "maxDelayMs": 10}}"#))
            .unwrap();
    let mut recorder = Recorder::default();
    recorder.listen(&ws, &["open", "message", "close", "reconnecting", "error", "sessionlost"]);
    recorder.wait_for("open", 1).await;
    let _ = ws.send("unanswered".into());
    drop(ws); // what `free()` does
    sleep(500).await;
    let seen: Vec<String> = recorder.events.borrow().iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(seen, ["open"]);
}

#[wasm_bindgen_test]
async fn events_of_a_call_reach_listeners_added_right_after_it() {
    // `new WebSocket` refuses this URL (port out of range), so the socket fails inside the
    // constructor; as with a WebSocket, the events still reach listeners registered afterwards.
    let ws = DurableWebSocket::new("ws://127.0.0.1:99999/".into(), None).unwrap();
    let mut recorder = Recorder::default();
    recorder.listen(&ws, &["error", "close", "reconnecting"]);
    recorder.wait_for("close", 1).await;
    let error = get(&recorder.of("error")[0], "error");
    assert_eq!(get(&error, "name").as_string().as_deref(), Some("UrlError"));
    assert_eq!(get(&recorder.of("close")[0], "willReconnect"), JsValue::FALSE, "a fixed URL that fails never works");
    assert_eq!(recorder.count("reconnecting"), 0);
    assert_eq!(ws.ready_state(), 3);
}
