//! Why a packet was not accepted.

/// A discovery packet that cannot be used (dropped and counted; never answered).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Shorter than a header, or longer than 1280 bytes.
    #[error("packet of {0} bytes: a packet is 98 to 1280 bytes")]
    Size(usize),
    /// The hash does not cover the rest of the packet.
    #[error("packet hash mismatch")]
    HashMismatch,
    /// The signature does not recover to a public key.
    #[error("invalid packet signature")]
    BadSignature,
    /// A packet type this protocol does not have.
    #[error("unknown packet type {0:#04x}")]
    UnknownType(u8),
    /// The packet data does not decode.
    #[error("malformed {kind} packet: {reason}")]
    Malformed {
        /// The packet type's name.
        kind: &'static str,
        /// What is wrong.
        reason: String,
    },
}
