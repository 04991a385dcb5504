//! ECIES as RLPx uses it: secp256k1 ECDH, the NIST SP 800-56 concat KDF with SHA-256,
//! AES-128-CTR and HMAC-SHA256.
//!
//! Spec: <https://github.com/ethereum/devp2p/blob/master/rlpx.md#ecies-encryption>

use crate::{EciesError, PeerId};
use aes::cipher::{KeyIvInit, StreamCipher};
use alloy_primitives::B256;
use hmac::{Hmac, Mac as _};
use rand::RngCore;
use secp256k1::{PublicKey, SecretKey, SECP256K1};
use sha2::{Digest, Sha256};

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;
type HmacSha256 = Hmac<Sha256>;

/// Bytes ECIES adds to a plaintext: 65-byte ephemeral key, 16-byte IV, 32-byte HMAC.
pub(crate) const ECIES_OVERHEAD: usize = 65 + 16 + 32;

/// The 64-byte node id of a public key: the uncompressed point without its `0x04` prefix.
pub fn pk2id(pk: &PublicKey) -> PeerId {
    PeerId::from_slice(&pk.serialize_uncompressed()[1..])
}

/// The public key of a 64-byte node id; fails for points not on the curve.
pub fn id2pk(id: &PeerId) -> Result<PublicKey, EciesError> {
    let mut buf = [0u8; 65];
    buf[0] = 0x04;
    buf[1..].copy_from_slice(id.as_slice());
    PublicKey::from_slice(&buf).map_err(EciesError::InvalidPublicKey)
}

/// The x coordinate of `sk * pk` (the "ecdh.agree" of rlpx.md).
pub(crate) fn ecdh_x(pk: &PublicKey, sk: &SecretKey) -> B256 {
    let point = secp256k1::ecdh::shared_secret_point(pk, sk);
    B256::from_slice(&point[..32])
}

/// Concat KDF (NIST SP 800-56A, single-step, SHA-256) producing 32 bytes from `secret`.
///
/// 32 bytes is one SHA-256 block of output, so the counter only takes the value 1.
pub(crate) fn kdf32(secret: &B256) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(1u32.to_be_bytes());
    h.update(secret);
    h.finalize().into()
}

/// Derives (AES-128 key, HMAC-SHA256 key) from the ECDH secret.
fn ecies_keys(shared: &B256) -> ([u8; 16], [u8; 32]) {
    let key = kdf32(shared);
    let mut enc = [0u8; 16];
    enc.copy_from_slice(&key[..16]);
    let mac: [u8; 32] = Sha256::digest(&key[16..]).into();
    (enc, mac)
}

fn ecies_hmac(
    mac_key: &[u8; 32],
    iv: &[u8],
    ciphertext: &[u8],
    shared_mac_data: &[u8],
) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(mac_key).expect("HMAC takes any key size");
    m.update(iv);
    m.update(ciphertext);
    m.update(shared_mac_data);
    m
}

/// Encrypts `plaintext` to `remote` and appends `R || iv || c || d` to `out`.
///
/// `shared_mac_data` is authenticated but not sent (EIP-8 uses the 2-byte size prefix).
pub(crate) fn encrypt(
    remote: &PublicKey,
    plaintext: &[u8],
    shared_mac_data: &[u8],
    out: &mut Vec<u8>,
) {
    let mut rng = rand::rng();
    let r = SecretKey::new(&mut rng);
    let (enc_key, mac_key) = ecies_keys(&ecdh_x(remote, &r));
    let mut iv = [0u8; 16];
    rng.fill_bytes(&mut iv);

    out.extend_from_slice(&PublicKey::from_secret_key(SECP256K1, &r).serialize_uncompressed());
    out.extend_from_slice(&iv);
    let start = out.len();
    out.extend_from_slice(plaintext);
    Aes128Ctr::new(&enc_key.into(), &iv.into()).apply_keystream(&mut out[start..]);
    let tag = ecies_hmac(&mac_key, &iv, &out[start..], shared_mac_data).finalize().into_bytes();
    out.extend_from_slice(&tag);
}

/// Decrypts an ECIES message addressed to `sk`; checks the HMAC before decrypting.
pub(crate) fn decrypt(
    sk: &SecretKey,
    msg: &[u8],
    shared_mac_data: &[u8],
) -> Result<Vec<u8>, EciesError> {
    if msg.len() < ECIES_OVERHEAD {
        return Err(EciesError::HandshakePacketTooShort(msg.len()));
    }
    // Rejects points that are not on the curve (and non-uncompressed encodings).
    if msg[0] != 0x04 {
        return Err(EciesError::InvalidPublicKey(secp256k1::Error::InvalidPublicKey));
    }
    let r = PublicKey::from_slice(&msg[..65]).map_err(EciesError::InvalidPublicKey)?;
    let (iv, rest) = msg[65..].split_at(16);
    let (ciphertext, tag) = rest.split_at(rest.len() - 32);
    let (enc_key, mac_key) = ecies_keys(&ecdh_x(&r, sk));
    ecies_hmac(&mac_key, iv, ciphertext, shared_mac_data)
        .verify_slice(tag)
        .map_err(|_| EciesError::EciesMacMismatch)?;
    let mut plain = ciphertext.to_vec();
    let iv: [u8; 16] = iv.try_into().expect("split_at(16)");
    Aes128Ctr::new(&enc_key.into(), &iv.into()).apply_keystream(&mut plain);
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecies_round_trip_and_tamper() {
        let sk = SecretKey::new(&mut rand::rng());
        let pk = PublicKey::from_secret_key(SECP256K1, &sk);
        let mut ct = Vec::new();
        encrypt(&pk, b"hello rlpx", b"\x01\x02", &mut ct);
        assert_eq!(ct.len(), ECIES_OVERHEAD + 10);
        assert_eq!(decrypt(&sk, &ct, b"\x01\x02").unwrap(), b"hello rlpx");
        // Wrong authenticated data, or any flipped bit, fails the MAC.
        assert!(matches!(decrypt(&sk, &ct, b"\x01\x03"), Err(EciesError::EciesMacMismatch)));
        let mut bad = ct.clone();
        bad[70] ^= 1;
        assert!(matches!(decrypt(&sk, &bad, b"\x01\x02"), Err(EciesError::EciesMacMismatch)));
    }

    #[test]
    fn rejects_points_off_the_curve() {
        let sk = SecretKey::new(&mut rand::rng());
        let mut msg = vec![0x04];
        msg.extend_from_slice(&[0x11; 64]); // (0x11.., 0x11..) is not on secp256k1
        msg.extend_from_slice(&[0u8; 16 + 32 + 4]);
        assert!(matches!(decrypt(&sk, &msg, &[]), Err(EciesError::InvalidPublicKey(_))));
        assert!(id2pk(&PeerId::repeat_byte(0x11)).is_err());
    }

    #[test]
    fn id_round_trip() {
        let sk = SecretKey::new(&mut rand::rng());
        let pk = PublicKey::from_secret_key(SECP256K1, &sk);
        assert_eq!(id2pk(&pk2id(&pk)).unwrap(), pk);
    }
}
