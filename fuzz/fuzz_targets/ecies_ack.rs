//! Parsing an ack packet (EIP-8 or legacy) as the initiator, with the vectors' key A.
//! The initiator's state after sending its auth is built once and cloned per input, so
//! each execution measures only the ack parsing.
#![no_main]
use std::sync::OnceLock;
use tern_ecies::{pk2id, Handshake, PublicKey, SecretKey};

static SENT_AUTH: OnceLock<Handshake> = OnceLock::new();

fn sent_auth() -> Handshake {
    let a = SecretKey::from_byte_array([
        0x49, 0xa7, 0xb3, 0x7a, 0xa6, 0xf6, 0x64, 0x59, 0x17, 0xe7, 0xb8, 0x07, 0xe9, 0xd1, 0xc0, 0x0d, 0x4f, 0xa7,
        0x1f, 0x18, 0x34, 0x3b, 0x0d, 0x41, 0x22, 0xa4, 0xd2, 0xdf, 0x64, 0xdd, 0x6f, 0xee,
    ])
    .unwrap();
    let remote = pk2id(&PublicKey::from_secret_key(secp256k1::SECP256K1, &a));
    let mut hs = Handshake::initiator(a, remote).unwrap();
    let _ = hs.create_auth();
    hs
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut hs = SENT_AUTH.get_or_init(sent_auth).clone();
    let _ = hs.read_ack(data);
});
