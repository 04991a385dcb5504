//! Decoding Hello messages.
#![no_main]
use alloy_rlp::Decodable;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut buf = data;
    let _ = tern_p2p::HelloMessage::decode(&mut buf);
});
