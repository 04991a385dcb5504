//! The RLPx handshake: auth and ack messages (EIP-8 and legacy), and secret derivation.
//!
//! This module does no I/O: it turns packets into state and state into packets, so the
//! EIP-8 test vectors can drive it directly.
//!
//! Specs: <https://github.com/ethereum/devp2p/blob/master/rlpx.md#initial-handshake>,
//! <https://eips.ethereum.org/EIPS/eip-8>

use crate::{
    crypto::{decrypt, ecdh_x, encrypt, id2pk, pk2id, ECIES_OVERHEAD},
    mac::MacState,
    EciesError, PeerId,
};
use alloy_primitives::{keccak256, B256};
use alloy_rlp::{Decodable, Encodable, Header};
use rand::{Rng, RngCore};
use secp256k1::{
    ecdsa::{RecoverableSignature, RecoveryId},
    Message, PublicKey, SecretKey, SECP256K1,
};

/// The auth and ack version we send (`auth-vsn`, `ack-vsn`).
///
/// Spec: <https://github.com/ethereum/devp2p/blob/master/rlpx.md#initial-handshake>
pub const HANDSHAKE_VERSION: u8 = 4;

/// Largest auth or ack packet we accept, in bytes, including the 2-byte size prefix.
///
/// EIP-8 packets carry random padding; real ones are 300–600 bytes. 2 KiB leaves room for
/// extra list elements without letting a peer make us buffer much.
pub const MAX_HANDSHAKE_PACKET_SIZE: usize = 2048;

/// Plaintext size of a legacy (pre-EIP-8) auth: sig || keccak(eph-pubk) || pubk || nonce || 0x00.
const LEGACY_AUTH_PLAIN: usize = 65 + 32 + 64 + 32 + 1;
/// Plaintext size of a legacy ack: eph-pubk || nonce || 0x00.
const LEGACY_ACK_PLAIN: usize = 64 + 32 + 1;
/// Size of a legacy auth packet on the wire, in bytes (307).
pub const LEGACY_AUTH_SIZE: usize = LEGACY_AUTH_PLAIN + ECIES_OVERHEAD;
/// Size of a legacy ack packet on the wire, in bytes (210).
pub const LEGACY_ACK_SIZE: usize = LEGACY_ACK_PLAIN + ECIES_OVERHEAD;

/// The secrets of a completed handshake, ready for the frame codec.
pub struct Secrets {
    /// `aes-secret`: the AES-256-CTR key of both directions.
    pub aes: B256,
    /// `mac-secret`: the AES-256 key of the MAC construction.
    pub mac: B256,
    pub(crate) egress_mac: MacState,
    pub(crate) ingress_mac: MacState,
    /// The authenticated node id of the remote peer.
    pub remote_id: PeerId,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets").field("remote_id", &self.remote_id).finish_non_exhaustive()
    }
}

/// A decoded auth body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Auth {
    pub(crate) signature: [u8; 65],
    pub(crate) initiator_id: PeerId,
    pub(crate) nonce: B256,
    pub(crate) version: u64,
    pub(crate) legacy: bool,
    /// Legacy auths carry keccak256(ephemeral-pubk) next to the signature.
    pub(crate) ephemeral_hash: Option<B256>,
}

/// A decoded ack body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ack {
    pub(crate) ephemeral_id: PeerId,
    pub(crate) nonce: B256,
    pub(crate) version: u64,
    pub(crate) legacy: bool,
}

/// Which side of the handshake we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Initiator,
    Recipient,
}

/// One side of an RLPx handshake.
///
/// Initiator: [`Handshake::initiator`], [`Handshake::create_auth`], [`Handshake::read_ack`].
/// Recipient: [`Handshake::recipient`], [`Handshake::read_auth`], [`Handshake::create_ack`].
#[derive(Clone)]
pub struct Handshake {
    role: Role,
    secret_key: SecretKey,
    ephemeral_key: SecretKey,
    nonce: B256,
    remote_pk: Option<PublicKey>,
    remote_ephemeral: Option<PublicKey>,
    remote_nonce: Option<B256>,
    /// The auth packet as sent on the wire (it seeds one MAC).
    auth_packet: Option<Vec<u8>>,
    /// Whether the peer spoke the legacy format (we answer in kind).
    legacy: bool,
}

impl Handshake {
    /// The initiator side, dialing `remote_id`, with a fresh ephemeral key and nonce.
    pub fn initiator(secret_key: SecretKey, remote_id: PeerId) -> Result<Self, EciesError> {
        let mut rng = rand::rng();
        Self::initiator_with(secret_key, remote_id, SecretKey::new(&mut rng), B256::random())
    }

    fn initiator_with(
        secret_key: SecretKey,
        remote_id: PeerId,
        ephemeral_key: SecretKey,
        nonce: B256,
    ) -> Result<Self, EciesError> {
        let mut hs = Self::new(Role::Initiator, secret_key, ephemeral_key, nonce);
        hs.remote_pk = Some(id2pk(&remote_id)?);
        Ok(hs)
    }

    /// The recipient side, with a fresh ephemeral key and nonce.
    pub fn recipient(secret_key: SecretKey) -> Self {
        let mut rng = rand::rng();
        Self::new(Role::Recipient, secret_key, SecretKey::new(&mut rng), B256::random())
    }

    fn new(role: Role, secret_key: SecretKey, ephemeral_key: SecretKey, nonce: B256) -> Self {
        Self {
            role,
            secret_key,
            ephemeral_key,
            nonce,
            remote_pk: None,
            remote_ephemeral: None,
            remote_nonce: None,
            auth_packet: None,
            legacy: false,
        }
    }

    /// The remote node id, once known (initiator: always; recipient: after the auth).
    pub fn remote_id(&self) -> Option<PeerId> {
        self.remote_pk.as_ref().map(pk2id)
    }

    /// Builds our EIP-8 auth packet (size prefix included) and remembers it.
    pub fn create_auth(&mut self) -> Vec<u8> {
        let remote_pk = self.remote_pk.expect("initiator knows the remote key");
        let shared = ecdh_x(&remote_pk, &self.secret_key);
        let to_sign = shared ^ self.nonce;
        let (rec_id, sig) = SECP256K1
            .sign_ecdsa_recoverable(Message::from_digest(to_sign.0), &self.ephemeral_key)
            .serialize_compact();
        let mut signature = [0u8; 65];
        signature[..64].copy_from_slice(&sig);
        signature[64] = i32::from(rec_id) as u8;

        let our_id = pk2id(&PublicKey::from_secret_key(SECP256K1, &self.secret_key));
        let fields: [&dyn Encodable; 4] = [&signature, &our_id, &self.nonce, &HANDSHAKE_VERSION];
        let packet = eip8_packet(&remote_pk, &fields);
        self.auth_packet = Some(packet.clone());
        packet
    }

    /// Parses the peer's auth packet (EIP-8 or legacy) as the recipient.
    pub fn read_auth(&mut self, packet: &[u8]) -> Result<(), EciesError> {
        let auth = decode_auth(&self.secret_key, packet)?;
        let initiator_pk = id2pk(&auth.initiator_id)?;
        let shared = ecdh_x(&initiator_pk, &self.secret_key);
        let ephemeral = recover_ephemeral(&auth.signature, &(shared ^ auth.nonce))?;
        if auth.ephemeral_hash.is_some_and(|h| h != keccak256(pk2id(&ephemeral))) {
            return Err(EciesError::EphemeralKeyHashMismatch);
        }
        self.remote_pk = Some(initiator_pk);
        self.remote_ephemeral = Some(ephemeral);
        self.remote_nonce = Some(auth.nonce);
        self.legacy = auth.legacy;
        self.auth_packet = Some(packet.to_vec());
        Ok(())
    }

    /// Builds our ack packet (legacy if the auth was legacy) and returns the session secrets.
    pub fn create_ack(&mut self) -> Result<(Vec<u8>, Secrets), EciesError> {
        let remote_pk = self.remote_pk.ok_or(EciesError::Closed)?;
        let ephemeral_id = pk2id(&PublicKey::from_secret_key(SECP256K1, &self.ephemeral_key));
        let packet = if self.legacy {
            let mut plain = Vec::with_capacity(LEGACY_ACK_PLAIN);
            plain.extend_from_slice(ephemeral_id.as_slice());
            plain.extend_from_slice(self.nonce.as_slice());
            plain.push(0);
            let mut out = Vec::with_capacity(LEGACY_ACK_SIZE);
            encrypt(&remote_pk, &plain, &[], &mut out);
            out
        } else {
            let fields: [&dyn Encodable; 3] = [&ephemeral_id, &self.nonce, &HANDSHAKE_VERSION];
            eip8_packet(&remote_pk, &fields)
        };
        let secrets = self.secrets(&packet)?;
        Ok((packet, secrets))
    }

    /// Parses the peer's ack packet as the initiator and returns the session secrets.
    pub fn read_ack(&mut self, packet: &[u8]) -> Result<Secrets, EciesError> {
        let ack = decode_ack(&self.secret_key, packet)?;
        self.remote_ephemeral = Some(id2pk(&ack.ephemeral_id)?);
        self.remote_nonce = Some(ack.nonce);
        self.secrets(packet)
    }

    /// Derives the secrets once both packets are known.
    ///
    /// ```text
    /// shared-secret = keccak256(ephemeral-key || keccak256(nonce || initiator-nonce))
    /// aes-secret    = keccak256(ephemeral-key || shared-secret)
    /// mac-secret    = keccak256(ephemeral-key || aes-secret)
    /// ```
    fn secrets(&self, ack_packet: &[u8]) -> Result<Secrets, EciesError> {
        let remote_ephemeral = self.remote_ephemeral.ok_or(EciesError::Closed)?;
        let remote_nonce = self.remote_nonce.ok_or(EciesError::Closed)?;
        let auth_packet = self.auth_packet.as_deref().ok_or(EciesError::Closed)?;
        let remote_pk = self.remote_pk.ok_or(EciesError::Closed)?;
        let (initiator_nonce, recipient_nonce) = match self.role {
            Role::Initiator => (self.nonce, remote_nonce),
            Role::Recipient => (remote_nonce, self.nonce),
        };
        let ephemeral_shared = ecdh_x(&remote_ephemeral, &self.ephemeral_key);
        let nonce_hash =
            keccak256([recipient_nonce.as_slice(), initiator_nonce.as_slice()].concat());
        let shared = keccak256([ephemeral_shared.as_slice(), nonce_hash.as_slice()].concat());
        let aes = keccak256([ephemeral_shared.as_slice(), shared.as_slice()].concat());
        let mac = keccak256([ephemeral_shared.as_slice(), aes.as_slice()].concat());

        // egress-mac (initiator) = keccak256.init((mac-secret ^ recipient-nonce) || auth)
        // ingress-mac (initiator) = keccak256.init((mac-secret ^ initiator-nonce) || ack)
        let mut auth_mac = MacState::new(&mac);
        auth_mac.update((mac ^ recipient_nonce).as_slice());
        auth_mac.update(auth_packet);
        let mut ack_mac = MacState::new(&mac);
        ack_mac.update((mac ^ initiator_nonce).as_slice());
        ack_mac.update(ack_packet);
        let (egress_mac, ingress_mac) = match self.role {
            Role::Initiator => (auth_mac, ack_mac),
            Role::Recipient => (ack_mac, auth_mac),
        };
        Ok(Secrets { aes, mac, egress_mac, ingress_mac, remote_id: pk2id(&remote_pk) })
    }
}

/// RLP-encodes `fields` as a list, adds 100–250 bytes of random padding, and encrypts
/// to `remote` with the 2-byte size prefix as authenticated data (EIP-8).
fn eip8_packet(remote: &PublicKey, fields: &[&dyn Encodable]) -> Vec<u8> {
    let mut rng = rand::rng();
    let payload_length: usize = fields.iter().map(|f| f.length()).sum();
    let mut plain = Vec::with_capacity(payload_length + 260);
    Header { list: true, payload_length }.encode(&mut plain);
    for f in fields {
        f.encode(&mut plain);
    }
    let pad = rng.random_range(100..=250);
    let start = plain.len();
    plain.resize(start + pad, 0);
    rng.fill_bytes(&mut plain[start..]);

    let size = (plain.len() + ECIES_OVERHEAD) as u16;
    let mut out = Vec::with_capacity(2 + size as usize);
    out.extend_from_slice(&size.to_be_bytes());
    encrypt(remote, &plain, &size.to_be_bytes(), &mut out);
    out
}

/// Decrypts a handshake packet: legacy when it is exactly `legacy_size` bytes and decrypts
/// without a prefix, EIP-8 otherwise. Returns the plaintext and whether it was legacy.
fn open_packet(
    sk: &SecretKey,
    packet: &[u8],
    legacy_size: usize,
) -> Result<(Vec<u8>, bool), EciesError> {
    if packet.len() > MAX_HANDSHAKE_PACKET_SIZE {
        return Err(EciesError::HandshakePacketTooLarge {
            size: packet.len(),
            limit: MAX_HANDSHAKE_PACKET_SIZE,
        });
    }
    if packet.len() == legacy_size && packet[0] == 0x04 {
        if let Ok(plain) = decrypt(sk, packet, &[]) {
            return Ok((plain, true));
        }
    }
    if packet.len() < 2 {
        return Err(EciesError::HandshakePacketTooShort(packet.len()));
    }
    let (prefix, body) = packet.split_at(2);
    if u16::from_be_bytes([prefix[0], prefix[1]]) as usize != body.len() {
        return Err(EciesError::HandshakePacketTooShort(packet.len()));
    }
    Ok((decrypt(sk, body, prefix)?, false))
}

/// Decodes the list header of an EIP-8 body and returns its payload; padding after the
/// list and extra list elements are ignored by the callers.
fn eip8_list(plain: &[u8]) -> Result<&[u8], EciesError> {
    let mut buf = plain;
    let header = Header::decode(&mut buf)?;
    if !header.list {
        return Err(alloy_rlp::Error::UnexpectedString.into());
    }
    Ok(&buf[..header.payload_length])
}

pub(crate) fn decode_auth(sk: &SecretKey, packet: &[u8]) -> Result<Auth, EciesError> {
    let (plain, legacy) = open_packet(sk, packet, LEGACY_AUTH_SIZE)?;
    if legacy {
        if plain.len() < LEGACY_AUTH_PLAIN {
            return Err(EciesError::HandshakePacketTooShort(packet.len()));
        }
        return Ok(Auth {
            signature: plain[..65].try_into().expect("65 bytes"),
            initiator_id: PeerId::from_slice(&plain[97..161]),
            nonce: B256::from_slice(&plain[161..193]),
            version: 4,
            legacy: true,
            ephemeral_hash: Some(B256::from_slice(&plain[65..97])),
        });
    }
    let mut body = eip8_list(&plain)?;
    Ok(Auth {
        signature: <[u8; 65]>::decode(&mut body)?,
        initiator_id: PeerId::decode(&mut body)?,
        nonce: B256::decode(&mut body)?,
        version: u64::decode(&mut body)?,
        legacy: false,
        ephemeral_hash: None,
    })
}

pub(crate) fn decode_ack(sk: &SecretKey, packet: &[u8]) -> Result<Ack, EciesError> {
    let (plain, legacy) = open_packet(sk, packet, LEGACY_ACK_SIZE)?;
    if legacy {
        return Ok(Ack {
            ephemeral_id: PeerId::from_slice(&plain[..64]),
            nonce: B256::from_slice(&plain[64..96]),
            version: 4,
            legacy: true,
        });
    }
    let mut body = eip8_list(&plain)?;
    Ok(Ack {
        ephemeral_id: PeerId::decode(&mut body)?,
        nonce: B256::decode(&mut body)?,
        version: u64::decode(&mut body)?,
        legacy: false,
    })
}

fn recover_ephemeral(signature: &[u8; 65], signed: &B256) -> Result<PublicKey, EciesError> {
    let rec_id =
        RecoveryId::try_from(i32::from(signature[64])).map_err(EciesError::InvalidSignature)?;
    let sig = RecoverableSignature::from_compact(&signature[..64], rec_id)
        .map_err(EciesError::InvalidSignature)?;
    SECP256K1
        .recover_ecdsa(Message::from_digest(signed.0), &sig)
        .map_err(EciesError::InvalidSignature)
}

/// How many bytes of a handshake packet to read next, given what has arrived so far.
///
/// The first two bytes are either the EIP-8 size prefix or, for a legacy packet, the
/// start of the `0x04`-prefixed ephemeral key; the caller tries the legacy reading at
/// `legacy_size` bytes and falls back to the prefix.
pub(crate) fn eip8_packet_len(prefix: [u8; 2]) -> Result<usize, EciesError> {
    let len = 2 + u16::from_be_bytes(prefix) as usize;
    if len > MAX_HANDSHAKE_PACKET_SIZE {
        return Err(EciesError::HandshakePacketTooLarge {
            size: len,
            limit: MAX_HANDSHAKE_PACKET_SIZE,
        });
    }
    if len < 2 + ECIES_OVERHEAD {
        return Err(EciesError::HandshakePacketTooShort(len));
    }
    Ok(len)
}

#[cfg(test)]
mod tests;
