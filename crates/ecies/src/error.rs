use std::io;

/// Everything that can go wrong in the RLPx handshake or frame layer.
///
/// Every variant names the offending thing, so an operator can read the log line and know
/// whether the peer, the network or our own configuration is at fault.
#[derive(Debug, thiserror::Error)]
pub enum EciesError {
    /// The underlying socket failed or was closed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// The peer closed the connection before the handshake finished.
    #[error("connection closed during the RLPx handshake")]
    HandshakeEof,
    /// The handshake did not finish within [`crate::HANDSHAKE_TIMEOUT`].
    #[error("RLPx handshake timed out after {0:?}")]
    HandshakeTimeout(std::time::Duration),
    /// A handshake packet (auth or ack) announced more than [`crate::MAX_HANDSHAKE_PACKET_SIZE`] bytes.
    #[error("handshake packet of {size} bytes exceeds the limit of {limit} bytes")]
    HandshakePacketTooLarge {
        /// Size announced by the peer, in bytes (including the 2-byte size prefix).
        size: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// A handshake packet is too short to hold an ECIES message.
    #[error("handshake packet of {0} bytes is too short for an ECIES message")]
    HandshakePacketTooShort(usize),
    /// The ECIES HMAC did not verify: wrong key, corruption or garbage.
    #[error("ECIES message authentication failed (HMAC mismatch)")]
    EciesMacMismatch,
    /// The ephemeral public key in an ECIES message is not a valid secp256k1 point.
    #[error("invalid public key in handshake: {0}")]
    InvalidPublicKey(secp256k1::Error),
    /// The auth signature could not be parsed or did not recover a public key.
    #[error("invalid auth signature: {0}")]
    InvalidSignature(secp256k1::Error),
    /// The legacy auth's hash of the ephemeral key does not match the recovered key.
    #[error("legacy auth: ephemeral public key hash mismatch")]
    EphemeralKeyHashMismatch,
    /// The decrypted handshake body is not the RLP we expect.
    #[error("malformed handshake body: {0}")]
    MalformedHandshake(alloy_rlp::Error),
    /// A frame's header MAC did not verify.
    #[error("frame header MAC mismatch")]
    HeaderMacMismatch,
    /// A frame's body MAC did not verify.
    #[error("frame body MAC mismatch")]
    BodyMacMismatch,
    /// A frame larger than allowed: an outgoing one over the 24-bit frame-size field, or
    /// an incoming one over the limit of its place (the first frame is the Hello).
    #[error("frame of {size} bytes exceeds the RLPx frame limit of {limit} bytes")]
    FrameTooLarge {
        /// Size of the frame body, in bytes.
        size: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// A Sink/Stream method was used in an impossible state (e.g. after the stream failed).
    #[error("the ECIES stream is closed")]
    Closed,
}

impl From<alloy_rlp::Error> for EciesError {
    fn from(e: alloy_rlp::Error) -> Self {
        Self::MalformedHandshake(e)
    }
}
