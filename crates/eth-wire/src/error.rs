use crate::EthVersion;
use alloy_primitives::B256;
use tern_p2p::{DisconnectReason, P2pError};

/// Errors of the eth protocol layer.
#[derive(Debug, thiserror::Error)]
pub enum EthError {
    /// The p2p layer below failed.
    #[error(transparent)]
    P2p(#[from] P2pError),
    /// Undecodable RLP.
    #[error("malformed eth message: {0}")]
    Rlp(#[from] alloy_rlp::Error),
    /// A message id the negotiated version does not have.
    #[error("unknown eth message id {id:#04x} for {version:?}")]
    UnknownMessage {
        /// The id.
        id: u8,
        /// The negotiated version.
        version: EthVersion,
    },
    /// NewPooledTransactionHashes with lists of different lengths.
    #[error("NewPooledTransactionHashes lists differ in length: {types} types, {sizes} sizes, {hashes} hashes")]
    InvalidAnnouncement {
        /// Types.
        types: usize,
        /// Sizes.
        sizes: usize,
        /// Hashes.
        hashes: usize,
    },
    /// BlockRangeUpdate with `earliest > latest`.
    #[error("BlockRangeUpdate with earliest {earliest} > latest {latest}")]
    InvalidBlockRange {
        /// Earliest.
        earliest: u64,
        /// Latest.
        latest: u64,
    },
    /// An eth message over [`crate::MAX_ETH_MESSAGE_SIZE`].
    #[error("eth message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// Size, in bytes.
        size: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The peer has no eth version we speak.
    #[error("peer shares no eth version with us")]
    NoEthCapability,
    /// No Status within [`crate::STATUS_TIMEOUT`].
    #[error("no Status from peer within {0:?}")]
    StatusTimeout(std::time::Duration),
    /// The first eth message was not Status, or Status came again later.
    #[error("expected Status first and only once, got message id {0:#04x}")]
    UnexpectedStatus(u8),
    /// Different genesis.
    #[error("genesis mismatch: ours {ours}, theirs {theirs}")]
    GenesisMismatch {
        /// Our genesis hash.
        ours: B256,
        /// Theirs.
        theirs: B256,
    },
    /// Different network id.
    #[error("network id mismatch: ours {ours}, theirs {theirs}")]
    NetworkIdMismatch {
        /// Ours.
        ours: u64,
        /// Theirs.
        theirs: u64,
    },
    /// The Status version differs from the negotiated capability version.
    #[error("Status version {theirs} differs from the negotiated eth/{negotiated}")]
    VersionMismatch {
        /// Negotiated.
        negotiated: u8,
        /// In the Status.
        theirs: u8,
    },
    /// The fork id failed EIP-2124 validation.
    #[error("incompatible fork id: {0}")]
    ForkId(#[from] alloy_eip2124::ValidationError),
    /// The peer sent a message we asked to send in the wrong form for the version.
    #[error("message {0:#04x} does not exist in this form on the negotiated version")]
    WrongVersionForm(u8),
}

impl EthError {
    /// The Disconnect reason this error deserves, if any.
    pub fn disconnect_reason(&self) -> Option<DisconnectReason> {
        Some(match self {
            Self::P2p(e) => return e.disconnect_reason(),
            Self::NoEthCapability => DisconnectReason::UselessPeer,
            Self::GenesisMismatch { .. } | Self::NetworkIdMismatch { .. } | Self::ForkId(_) => {
                DisconnectReason::SubprotocolSpecific
            }
            Self::StatusTimeout(_) => DisconnectReason::DisconnectRequested,
            Self::WrongVersionForm(_) => return None,
            _ => DisconnectReason::ProtocolBreach,
        })
    }
}
