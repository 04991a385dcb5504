//! Why the pool refuses a transaction, in the words geth and reth use.

use alloy_primitives::{Address, U256};

/// Why a transaction was not added to the pool. The messages are geth's (and reth's), so
/// wallets and scripts that match on them keep working.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The pool already holds this transaction.
    #[error("already known")]
    AlreadyKnown,
    /// The signature does not recover to a sender.
    #[error("invalid sender")]
    InvalidSender,
    /// Signed for another chain.
    #[error("invalid chain id for signer: have {have} want {want}")]
    WrongChainId {
        /// The transaction's chain id.
        have: u64,
        /// Ours.
        want: u64,
    },
    /// A legacy transaction without EIP-155 replay protection.
    #[error("only replay-protected (EIP-155) transactions allowed over RPC")]
    NotReplayProtected,
    /// A transaction type the active fork does not have.
    #[error("transaction type not supported")]
    TypeNotSupported,
    /// A blob transaction (EIP-4844) without its sidecar: the pool takes them only in
    /// their network form, with blobs, commitments and proofs.
    #[error("blob transaction without its sidecar: send it in its network form (with blobs, commitments and proofs)")]
    BlobSidecarMissing,
    /// A blob transaction with no blobs, or more than one transaction may carry.
    #[error("invalid blob count: {count} (a blob transaction carries 1 to {max})")]
    BlobCount {
        /// Blobs it carries.
        count: usize,
        /// The most one transaction may carry at the next block.
        max: u64,
    },
    /// A sidecar of the wrong version for the next block: cell proofs (EIP-7594) from
    /// Osaka on, blob proofs before.
    #[error("blob sidecar version mismatch: the next block needs {0}")]
    BlobSidecarVersion(&'static str),
    /// The sidecar's commitments, proofs or versioned hashes do not verify.
    #[error("invalid blobs: {0}")]
    InvalidBlobs(String),
    /// Larger than [`crate::MAX_TX_SIZE`].
    #[error("oversized data: transaction size {size}, limit {limit}")]
    Oversized {
        /// Encoded size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// Contract creation code larger than EIP-3860 allows.
    #[error("max initcode size exceeded: code size {size} limit {limit}")]
    InitcodeTooLarge {
        /// Initcode length in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The gas limit does not cover the intrinsic gas.
    #[error("intrinsic gas too low: gas {gas}, minimum needed {needed}")]
    IntrinsicGas {
        /// The transaction's gas limit.
        gas: u64,
        /// Its intrinsic gas.
        needed: u64,
    },
    /// The gas limit is above the block's.
    #[error("exceeds block gas limit")]
    GasLimit,
    /// The priority fee is above the fee cap.
    #[error("max priority fee per gas higher than max fee per gas")]
    TipAboveFeeCap,
    /// The nonce is below the sender's account nonce.
    #[error("nonce too low: address {sender}, tx: {nonce} state: {state}")]
    NonceTooLow {
        /// The sender.
        sender: Address,
        /// The transaction's nonce.
        nonce: u64,
        /// The account's nonce.
        state: u64,
    },
    /// The sender cannot pay `gas_limit × max_fee + value`.
    #[error(
        "insufficient funds for gas * price + value: address {sender} have {have} want {want}"
    )]
    InsufficientFunds {
        /// The sender.
        sender: Address,
        /// Its balance in wei.
        have: U256,
        /// The cost in wei.
        want: U256,
    },
    /// A replacement whose fees are not at least [`crate::PoolConfig::price_bump`] percent
    /// above the transaction it replaces.
    #[error("replacement transaction underpriced")]
    ReplacementUnderpriced,
    /// The fee cap is below the pool's minimum.
    #[error("transaction underpriced: gas tip cap {tip}, minimum needed {min}")]
    Underpriced {
        /// The transaction's tip cap.
        tip: u128,
        /// The pool's minimum.
        min: u128,
    },
    /// The sender already has the most transactions the pool keeps per sender.
    #[error("account limit exceeded: {sender} has {limit} transactions in the pool")]
    AccountLimit {
        /// The sender.
        sender: Address,
        /// The limit.
        limit: usize,
    },
    /// The pool is full and this transaction pays less than everything in it.
    #[error("txpool is full")]
    Full,
    /// The head state could not be read.
    #[error("state unavailable: {0}")]
    State(String),
}

impl PoolError {
    /// Whether the sender of the transaction could have known it would be refused (a
    /// peer relaying it deserves a penalty); the rest depend on our pool or our head
    /// (full, known, nonce already used by a block the peer may not have yet).
    pub fn is_bad_transaction(&self) -> bool {
        matches!(
            self,
            Self::InvalidSender
                | Self::WrongChainId { .. }
                | Self::TypeNotSupported
                | Self::Oversized { .. }
                | Self::InitcodeTooLarge { .. }
                | Self::IntrinsicGas { .. }
                | Self::TipAboveFeeCap
                | Self::BlobCount { .. }
                | Self::BlobSidecarVersion(_)
                | Self::InvalidBlobs(_)
        )
    }

    /// A fixed label for metrics (never text from a peer).
    pub fn label(&self) -> &'static str {
        match self {
            Self::AlreadyKnown => "already_known",
            Self::InvalidSender => "invalid_sender",
            Self::WrongChainId { .. } => "wrong_chain_id",
            Self::NotReplayProtected => "not_replay_protected",
            Self::TypeNotSupported => "type_not_supported",
            Self::BlobSidecarMissing => "blob_sidecar_missing",
            Self::BlobCount { .. } => "blob_count",
            Self::BlobSidecarVersion(_) => "blob_sidecar_version",
            Self::InvalidBlobs(_) => "invalid_blobs",
            Self::Oversized { .. } => "oversized",
            Self::InitcodeTooLarge { .. } => "initcode_too_large",
            Self::IntrinsicGas { .. } => "intrinsic_gas",
            Self::GasLimit => "gas_limit",
            Self::TipAboveFeeCap => "tip_above_fee_cap",
            Self::NonceTooLow { .. } => "nonce_too_low",
            Self::InsufficientFunds { .. } => "insufficient_funds",
            Self::ReplacementUnderpriced => "replacement_underpriced",
            Self::Underpriced { .. } => "underpriced",
            Self::AccountLimit { .. } => "account_limit",
            Self::Full => "pool_full",
            Self::State(_) => "state",
        }
    }
}
