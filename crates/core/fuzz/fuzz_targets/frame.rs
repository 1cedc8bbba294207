//! Frame decoding: every input is rejected with an error, or decodes to a frame that encodes back
//! to exactly the same bytes (one encoding per frame: no padded varints, no trailing bytes).
#![no_main]

use durable_ws_core::frame::Frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = Frame::decode(data) else { return };
    let mut encoded = Vec::new();
    frame.encode(&mut encoded);
    assert_eq!(encoded, data, "{frame:?} does not encode back to its bytes");
});
