//! RLPx transport for Tern: the EIP-8 ECIES handshake and the encrypted, authenticated
//! frame codec.
//!
//! * [`Handshake`] — the auth/ack exchange as pure functions of packets (no I/O).
//! * [`FrameCodec`] — a `tokio_util` codec sealing and opening frames.
//! * [`EciesStream`] — both over any `AsyncRead + AsyncWrite`, for initiator and recipient.
//!
//! Specs: <https://github.com/ethereum/devp2p/blob/master/rlpx.md>,
//! <https://eips.ethereum.org/EIPS/eip-8>

mod codec;
mod crypto;
mod error;
mod handshake;
mod mac;
mod stream;

pub use codec::{FrameCodec, MAX_FIRST_FRAME_SIZE, MAX_FRAME_SIZE, READ_RESERVE};
pub use crypto::{id2pk, pk2id};
pub use error::EciesError;
pub use handshake::{
    Handshake, Secrets, HANDSHAKE_VERSION, LEGACY_ACK_SIZE, LEGACY_AUTH_SIZE,
    MAX_HANDSHAKE_PACKET_SIZE,
};
pub use stream::{EciesStream, HANDSHAKE_TIMEOUT};

/// A node id: the 64-byte uncompressed secp256k1 public key without its `0x04` prefix.
pub type PeerId = alloy_primitives::B512;

pub use secp256k1::{PublicKey, SecretKey};
