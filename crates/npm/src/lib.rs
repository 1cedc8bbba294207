//! The npm package `durable-ws`: the wasm half of the root crate's JS API (the engine under the
//! `DurableWebSocket` class of `src/js/face.js`) as a whole wasm program. Only this crate is a
//! cdylib and sets the global allocator, so a Rust application depending on `durable-ws` keeps
//! its own allocator and builds no cdylib.
#![deny(missing_docs)]

pub use durable_ws::js::Core;

/// Talc is a fraction of the size of the default dlmalloc.
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
