//! Decoding every eth message of both versions: byte 0 picks the version (even: eth/68,
//! odd: eth/69), byte 1 the message id, the rest is the payload. A message that decodes
//! must re-encode and decode to itself.
#![no_main]
use tern_eth_wire::{EthMessage, EthVersion};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let [v, id, payload @ ..] = data else { return };
    let version = if v % 2 == 0 { EthVersion::Eth68 } else { EthVersion::Eth69 };
    if let Ok(msg) = EthMessage::decode(version, *id, payload) {
        let again = EthMessage::decode(version, msg.id(), &msg.payload()).expect("re-encoding decodes");
        assert_eq!(again, msg);
    }
});
