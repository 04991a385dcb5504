use crate::DisconnectReason;
use tern_ecies::EciesError;

/// Errors of the p2p base protocol layer and of node keys and enode URLs.
#[derive(Debug, thiserror::Error)]
pub enum P2pError {
    /// The RLPx transport below failed (MAC mismatch, socket error, handshake failure…).
    #[error(transparent)]
    Ecies(#[from] EciesError),
    /// The connection closed.
    #[error("connection closed by peer")]
    Closed,
    /// No Hello arrived within [`crate::HELLO_TIMEOUT`].
    #[error("no Hello from peer within {0:?}")]
    HelloTimeout(std::time::Duration),
    /// The first message was not Hello.
    #[error("expected Hello as the first message, got message id {0:#04x}")]
    ExpectedHello(u64),
    /// A Hello larger than [`crate::MAX_HELLO_SIZE`].
    #[error("Hello of {size} bytes exceeds the limit of {limit} bytes")]
    HelloTooLarge {
        /// Received size, in bytes.
        size: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The Hello's node id is not the key the RLPx handshake authenticated.
    #[error("Hello node id {} differs from the handshake key {}", .0.hello, .0.handshake)]
    HelloIdMismatch(Box<IdMismatch>),
    /// The peer speaks a p2p version older than 5 (no snappy).
    #[error("peer speaks p2p version {0}, we need at least 5")]
    IncompatibleVersion(u64),
    /// We and the peer have no capability in common.
    #[error("no shared capabilities (peer offers {0})")]
    NoSharedCapabilities(String),
    /// The peer sent Disconnect.
    #[error("peer disconnected: {}", .0.map(|r| r.to_string()).unwrap_or_else(|| "unknown reason".into()))]
    Disconnected(Option<DisconnectReason>),
    /// A message's decompressed size exceeds [`crate::MAX_MESSAGE_SIZE`].
    #[error("message of {size} bytes (decompressed) exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// Announced decompressed size, in bytes.
        size: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// Invalid snappy data.
    #[error("snappy decompression failed: {0}")]
    Snappy(#[from] snap::Error),
    /// Undecodable RLP in a p2p message.
    #[error("malformed p2p message: {0}")]
    Rlp(#[from] alloy_rlp::Error),
    /// A message id outside every shared capability's range.
    #[error("message id {0:#04x} belongs to no shared capability")]
    UnknownMessageId(u64),
    /// A message we were asked to send names a capability or id we did not negotiate.
    #[error("cannot send message {id} of capability #{capability}: not negotiated")]
    InvalidOutgoing {
        /// Index into the shared capabilities.
        capability: usize,
        /// Message id relative to the capability.
        id: u8,
    },
    /// No Pong within [`crate::PONG_TIMEOUT`] of our Ping.
    #[error("no Pong within {0:?}")]
    PingTimeout(std::time::Duration),
    /// A node key file could not be read or parsed.
    #[error("key file {path}: {reason}")]
    NodeKey {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An enode URL could not be parsed.
    #[error("invalid enode URL {url:?}: {reason}")]
    InvalidEnode {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl P2pError {
    /// The Disconnect reason to send the peer for this error, if one fits.
    pub fn disconnect_reason(&self) -> Option<DisconnectReason> {
        Some(match self {
            Self::HelloIdMismatch(_) => DisconnectReason::UnexpectedIdentity,
            Self::IncompatibleVersion(_) => DisconnectReason::IncompatibleP2pVersion,
            Self::NoSharedCapabilities(_) => DisconnectReason::UselessPeer,
            Self::PingTimeout(_) => DisconnectReason::PingTimeout,
            Self::ExpectedHello(_)
            | Self::HelloTooLarge { .. }
            | Self::MessageTooLarge { .. }
            | Self::Snappy(_)
            | Self::Rlp(_)
            | Self::UnknownMessageId(_) => DisconnectReason::ProtocolBreach,
            _ => return None,
        })
    }
}

/// The two ids of a [`P2pError::HelloIdMismatch`].
#[derive(Debug)]
pub struct IdMismatch {
    /// Node id in the Hello.
    pub hello: tern_ecies::PeerId,
    /// Node id authenticated by the RLPx handshake.
    pub handshake: tern_ecies::PeerId,
}
