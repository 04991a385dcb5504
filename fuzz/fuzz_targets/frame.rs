//! Decoding RLPx frames from arbitrary bytes on an established session (the MACs must
//! reject everything that was not sealed by the peer, without panicking or allocating
//! more than a frame). The session is set up once; each input goes to a fresh clone of
//! the receiver, as if it were the first bytes after the handshake.
#![no_main]
use bytes::BytesMut;
use std::sync::OnceLock;
use tern_ecies::{pk2id, FrameCodec, Handshake, PublicKey, SecretKey};
use tokio_util::codec::Decoder;

static RECEIVER: OnceLock<FrameCodec> = OnceLock::new();

fn receiver() -> FrameCodec {
    let (ka, kb) = (SecretKey::from_byte_array([1; 32]).unwrap(), SecretKey::from_byte_array([2; 32]).unwrap());
    let id_b = pk2id(&PublicKey::from_secret_key(secp256k1::SECP256K1, &kb));
    let mut a = Handshake::initiator(ka, id_b).unwrap();
    let mut b = Handshake::recipient(kb);
    b.read_auth(&a.create_auth()).unwrap();
    let (ack, sb) = b.create_ack().unwrap();
    let _ = a.read_ack(&ack).unwrap();
    FrameCodec::new(sb)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut receiver = RECEIVER.get_or_init(receiver).clone();
    let mut buf = BytesMut::from(data);
    // Keep decoding while frames come out; stop at the first error, as a session does.
    while let Ok(Some(_)) = receiver.decode(&mut buf) {}
});
