//! Decoding Disconnect payloads (list, bare byte, empty).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tern_p2p::DisconnectReason::decode_payload(data);
});
