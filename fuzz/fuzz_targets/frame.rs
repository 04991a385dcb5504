//! Decoding RLPx frames from arbitrary bytes on an established session (the MACs must
//! reject everything that was not sealed by the peer, without panicking or allocating
//! more than a frame).
#![no_main]
use bytes::BytesMut;
use std::sync::Mutex;
use tern_ecies::{pk2id, FrameCodec, Handshake, PublicKey, SecretKey};
use tokio_util::codec::Decoder;

static SESSION: Mutex<Option<(FrameCodec, FrameCodec)>> = Mutex::new(None);

fn session() -> (FrameCodec, FrameCodec) {
    let (ka, kb) = (SecretKey::from_byte_array([1; 32]).unwrap(), SecretKey::from_byte_array([2; 32]).unwrap());
    let id_b = pk2id(&PublicKey::from_secret_key(secp256k1::SECP256K1, &kb));
    let mut a = Handshake::initiator(ka, id_b).unwrap();
    let mut b = Handshake::recipient(kb);
    b.read_auth(&a.create_auth()).unwrap();
    let (ack, sb) = b.create_ack().unwrap();
    let sa = a.read_ack(&ack).unwrap();
    (FrameCodec::new(sa), FrameCodec::new(sb))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut guard = SESSION.lock().unwrap();
    let (sender, receiver) = guard.get_or_insert_with(session);
    let _ = sender;
    // A fresh receiver per input would re-run the handshake; reuse it but stop at the first
    // error, as a session does.
    let mut buf = BytesMut::from(data);
    if receiver.decode(&mut buf).is_err() {
        *guard = None;
    }
});
