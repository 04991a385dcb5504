use alloy_primitives::{Address, B256};

/// How bad a validation failure is, for the caller's peer penalty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The header breaks a rule: the peer served an invalid header.
    BadHeader,
    /// The body does not match its header or holds an invalid transaction.
    BadBody,
    /// Valid perhaps, but not yet (timestamp in the future): retry later, no penalty.
    NotYetValid,
}

/// A block that breaks a consensus rule; every variant names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsensusError {
    // ---- header ----
    /// The block failed execution before (its state root, receipts or gas used disagree
    /// with what it holds): it is refused without executing it again.
    #[error("block is known to be invalid (it did not execute to its header)")]
    KnownBad,
    /// `parent_hash` is not the parent's hash.
    #[error("parent hash {got} is not the parent's hash {expected}")]
    ParentHash {
        /// In the header.
        got: B256,
        /// The parent's hash.
        expected: B256,
    },
    /// `number` is not parent + 1.
    #[error("block number {got} is not parent number + 1 ({expected})")]
    Number {
        /// In the header.
        got: u64,
        /// Expected.
        expected: u64,
    },
    /// Timestamp not after the parent's.
    #[error("timestamp {got} is not after the parent's {parent}")]
    TimestampNotAfterParent {
        /// In the header.
        got: u64,
        /// The parent's.
        parent: u64,
    },
    /// Timestamp more than [`crate::MAX_FUTURE_SECS`] ahead of our clock.
    #[error("timestamp {got} is more than 15 s in the future (now {now})")]
    TimestampInFuture {
        /// In the header.
        got: u64,
        /// Our clock.
        now: u64,
    },
    /// Clique: timestamp earlier than parent + period.
    #[error("timestamp {got} is earlier than parent + period ({min})")]
    TimestampBeforePeriod {
        /// In the header.
        got: u64,
        /// parent timestamp + period.
        min: u64,
    },
    /// Gas used above gas limit.
    #[error("gas used {used} exceeds gas limit {limit}")]
    GasUsedExceedsLimit {
        /// Used.
        used: u64,
        /// Limit.
        limit: u64,
    },
    /// Gas limit above [`crate::MAX_GAS_LIMIT`].
    #[error("gas limit {got} is above the maximum {max}")]
    GasLimitTooHigh {
        /// In the header.
        got: u64,
        /// The maximum.
        max: u64,
    },
    /// Gas limit changed by more than parent/1024, or fell below the minimum.
    #[error(
        "gas limit {got} is outside the allowed range {min}..={max} from the parent's {parent}"
    )]
    GasLimit {
        /// In the header.
        got: u64,
        /// The parent's (after the London elasticity adjustment at the fork block).
        parent: u64,
        /// Lowest allowed.
        min: u64,
        /// Highest allowed.
        max: u64,
    },
    /// EIP-1559 base fee wrong.
    #[error("base fee {got:?} is not the EIP-1559 base fee {expected:?}")]
    BaseFee {
        /// In the header.
        got: Option<u64>,
        /// Computed from the parent.
        expected: Option<u64>,
    },
    /// EIP-4844 excess blob gas does not follow from the parent.
    #[error("excess blob gas {got} is not the parent's next excess blob gas {expected}")]
    ExcessBlobGas {
        /// In the header.
        got: u64,
        /// Computed from the parent.
        expected: u64,
    },
    /// A field present before its fork or absent after it.
    #[error("header field {field} must be {} at this block ({fork})", if *.present { "present" } else { "absent" })]
    ForkField {
        /// The field.
        field: &'static str,
        /// Whether it must be present.
        present: bool,
        /// The fork that decides it.
        fork: &'static str,
    },
    /// extraData size rule of the consensus kind.
    #[error("extraData of {len} bytes breaks the rule: {rule}")]
    ExtraData {
        /// Its length.
        len: usize,
        /// The rule.
        rule: &'static str,
    },
    /// A post-merge or Clique constant has another value.
    #[error("header field {field} must be {expected}")]
    Constant {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// Clique: the seal does not recover a public key.
    #[error("invalid Clique seal: {0}")]
    InvalidSeal(String),
    /// Clique: sealed by an address that is not a signer.
    #[error("block sealed by {0}, which is not an authorized signer")]
    UnauthorizedSigner(Address),
    /// Clique: the signer sealed one of the last floor(N/2) blocks.
    #[error(
        "signer {signer} signed block {previous} too recently (limit: once per {limit} blocks)"
    )]
    SignedRecently {
        /// The signer.
        signer: Address,
        /// The block it signed before.
        previous: u64,
        /// One block per this many.
        limit: u64,
    },
    /// Clique: difficulty does not match the signer's turn.
    #[error("difficulty {got} does not match the signer's turn (expected {expected})")]
    WrongDifficulty {
        /// In the header.
        got: u64,
        /// 2 in turn, 1 out of turn.
        expected: u64,
    },
    /// Clique: checkpoint signer list differs from the current signers.
    #[error("checkpoint block lists other signers than the current set")]
    CheckpointSigners,

    // ---- body ----
    /// Transactions root mismatch.
    #[error("transactions root {got} does not match the header's {expected}")]
    TransactionsRoot {
        /// Computed from the body.
        got: B256,
        /// In the header.
        expected: B256,
    },
    /// Ommers hash mismatch.
    #[error("ommers hash {got} does not match the header's {expected}")]
    OmmersHash {
        /// Computed.
        got: B256,
        /// In the header.
        expected: B256,
    },
    /// Withdrawals root mismatch or presence mismatch.
    #[error("withdrawals do not match the header's withdrawals root ({0})")]
    Withdrawals(&'static str),
    /// A transaction's signature does not recover a sender.
    #[error("transaction {index} has an invalid signature")]
    TransactionSignature {
        /// Index in the body.
        index: usize,
    },
    /// A transaction for another chain.
    #[error("transaction {index} has chain id {got}, the chain's is {expected}")]
    TransactionChainId {
        /// Index in the body.
        index: usize,
        /// Its chain id.
        got: u64,
        /// The chain's.
        expected: u64,
    },
    /// A transaction type its fork does not allow yet.
    #[error("transaction {index} of type {ty} is not allowed before {fork}")]
    TransactionType {
        /// Index in the body.
        index: usize,
        /// EIP-2718 type.
        ty: u8,
        /// The fork that introduces it.
        fork: &'static str,
    },
    /// A transaction whose gas limit alone exceeds the block's (the sum may: only gas
    /// used counts, and execution checks each transaction against what is left).
    #[error("transaction {index} has gas limit {gas_limit}, above the block gas limit {limit}")]
    TransactionGas {
        /// Position in the body.
        index: usize,
        /// The transaction's gas limit.
        gas_limit: u64,
        /// Block gas limit.
        limit: u64,
    },
    /// blob_gas_used does not match the blobs in the body.
    #[error("blob gas used {got:?} does not match the body's blobs ({expected})")]
    BlobGasUsed {
        /// In the header.
        got: Option<u64>,
        /// From the body.
        expected: u64,
    },
}

impl ConsensusError {
    /// The penalty class of this error.
    pub fn kind(&self) -> ErrorKind {
        use ConsensusError::*;
        match self {
            TimestampInFuture { .. } => ErrorKind::NotYetValid,
            TransactionsRoot { .. }
            | OmmersHash { .. }
            | Withdrawals(_)
            | TransactionSignature { .. }
            | TransactionChainId { .. }
            | TransactionType { .. }
            | TransactionGas { .. }
            | BlobGasUsed { .. } => ErrorKind::BadBody,
            _ => ErrorKind::BadHeader,
        }
    }
}
