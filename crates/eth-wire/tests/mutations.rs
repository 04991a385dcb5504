//! The short, stable-toolchain version of the fuzz targets (`fuzz/`), run by `cargo test`:
//! the seed inputs of `fuzz/corpus/` mutated many times (bit flips, random bytes, cuts,
//! insertions, repeated slices) and fed to every decoder a peer can reach. Nothing may
//! panic; decoded eth messages must round-trip; a sealed frame must not survive any
//! change.

use bytes::BytesMut;
use tern_chainspec::{ChainSpec, Head};
use tern_ecies::{pk2id, FrameCodec, Handshake, PublicKey, SecretKey};
use tern_eth_wire::{genesis_status, EthMessage, EthVersion};
use tern_p2p::{DisconnectReason, HelloMessage};
use tokio_util::codec::{Decoder, Encoder};

#[path = "../../../fuzz/corpus.rs"]
mod corpus;
use corpus::{each_mutation, mutate, seeds, Rng, ROUNDS};

#[test]
fn eth_messages_never_panic_and_round_trip() {
    let mut decoded = 0;
    let n = each_mutation("eth_message", |data| {
        let [v, id, payload @ ..] = data else { return };
        let version = if v % 2 == 0 { EthVersion::Eth68 } else { EthVersion::Eth69 };
        // The seed's id, and every other id with the same payload.
        for id in std::iter::once(*id).chain(0..=0x11) {
            if let Ok(msg) = EthMessage::decode(version, id, payload) {
                decoded += 1;
                let again = EthMessage::decode(version, msg.id(), &msg.payload()).unwrap();
                assert_eq!(again, msg, "id {id}");
            }
        }
    });
    assert!(decoded > n / 20, "mutations too destructive: {decoded} of {n} decoded");
}

#[test]
fn status_validation_never_panics() {
    let spec = ChainSpec::dev();
    let filter =
        spec.fork_filter(Head { timestamp: spec.genesis_header.timestamp, ..Default::default() });
    let local = genesis_status(&spec);
    let mut validated = 0;
    each_mutation("eth_status", |data| {
        let [v, payload @ ..] = data else { return };
        let version = if v % 2 == 0 { EthVersion::Eth68 } else { EthVersion::Eth69 };
        if let Ok(EthMessage::Status(status)) = EthMessage::decode(version, 0, payload) {
            let _ = local.validate(version, &status, &filter);
            validated += 1;
        }
    });
    assert!(validated > 100, "{validated}");
}

#[test]
fn hello_and_disconnect_never_panic() {
    each_mutation("p2p_hello", |data| {
        let _ = <HelloMessage as alloy_rlp::Decodable>::decode(&mut &data[..]);
    });
    each_mutation("p2p_disconnect", |data| {
        let _ = DisconnectReason::decode_payload(data);
    });
}

#[test]
fn handshake_packets_never_panic() {
    let key_b = SecretKey::from_byte_array(
        hex::decode("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")
            .unwrap()
            .try_into()
            .unwrap(),
    )
    .unwrap();
    let key_a = SecretKey::from_byte_array(
        hex::decode("49a7b37aa6f6645917e7b807e9d1c00d4fa71f18343b0d4122a4d2df64dd6fee")
            .unwrap()
            .try_into()
            .unwrap(),
    )
    .unwrap();
    // Only the vectors themselves are accepted: every byte of an auth is authenticated
    // (EIP-8 MACs its size prefix too).
    let vectors = seeds("ecies_auth");
    each_mutation("ecies_auth", |data| {
        if Handshake::recipient(key_b).read_auth(data).is_ok() {
            assert!(vectors.iter().any(|v| v == data), "a changed auth was accepted");
        }
    });
    let remote = pk2id(&PublicKey::from_secret_key(secp256k1::SECP256K1, &key_a));
    let mut sent_auth = Handshake::initiator(key_a, remote).unwrap();
    let _ = sent_auth.create_auth();
    each_mutation("ecies_ack", |data| {
        let _ = sent_auth.clone().read_ack(data);
    });
}

#[test]
fn a_sealed_frame_survives_no_change() {
    let (ka, kb) = (
        SecretKey::from_byte_array([1; 32]).unwrap(),
        SecretKey::from_byte_array([2; 32]).unwrap(),
    );
    let id_b = pk2id(&PublicKey::from_secret_key(secp256k1::SECP256K1, &kb));
    let mut a = Handshake::initiator(ka, id_b).unwrap();
    let mut b = Handshake::recipient(kb);
    b.read_auth(&a.create_auth()).unwrap();
    let (ack, secrets_b) = b.create_ack().unwrap();
    let mut sender = FrameCodec::new(a.read_ack(&ack).unwrap());
    let receiver = FrameCodec::new(secrets_b);
    let mut sealed = BytesMut::new();
    sender.encode(bytes::Bytes::from_static(b"\x80\xc0 a frame payload"), &mut sealed).unwrap();
    assert!(receiver.clone().decode(&mut sealed.clone()).unwrap().is_some());
    let mut rng = Rng(42);
    for round in 0..ROUNDS * 3 {
        let bad = mutate(&mut rng, &sealed);
        if bad.starts_with(&sealed) || sealed.starts_with(&bad) {
            continue; // unchanged, bytes after it, or a cut the decoder rightly waits on
        }
        let result = receiver.clone().decode(&mut BytesMut::from(&bad[..]));
        assert!(matches!(result, Err(_) | Ok(None)), "round {round}: a changed frame decoded");
    }
}
