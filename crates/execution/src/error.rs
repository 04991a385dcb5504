//! Execution errors.

use alloy_primitives::{Bloom, B256};

/// Why a block does not execute to what its header says.
#[derive(Debug, thiserror::Error)]
pub enum ExecutionError {
    /// The EVM refused the block (a transaction that cannot pay, a nonce gap, a system
    /// call that failed...). The text is alloy-evm's.
    #[error("block {number}: execution failed: {reason}")]
    Evm {
        /// The block number.
        number: u64,
        /// What alloy-evm reported.
        reason: String,
    },
    /// A header field differs from what executing the block produced.
    #[error("block {number}: {field} is {got} in the header, execution gives {expected}")]
    Mismatch {
        /// The block number.
        number: u64,
        /// The header field (`gas_used`, `receipts_root`, `logs_bloom`, `state_root`,
        /// `requests_hash`).
        field: &'static str,
        /// The header's value.
        got: String,
        /// The executed value.
        expected: String,
    },
    /// The block's transactions and recovered senders differ in number.
    #[error("block {number}: {txs} transactions but {senders} senders")]
    Senders {
        /// The block number.
        number: u64,
        /// Transactions in the body.
        txs: usize,
        /// Senders given.
        senders: usize,
    },
    /// The state could not be read.
    #[error("state read failed: {0}")]
    State(String),
}

impl ExecutionError {
    /// A [`ExecutionError::Mismatch`] of 32-byte values.
    pub(crate) fn hash(number: u64, field: &'static str, got: B256, expected: B256) -> Self {
        Self::Mismatch { number, field, got: got.to_string(), expected: expected.to_string() }
    }

    /// A [`ExecutionError::Mismatch`] of blooms (shown by hash: 256 bytes is unreadable).
    pub(crate) fn bloom(number: u64, got: &Bloom, expected: &Bloom) -> Self {
        let h = |b: &Bloom| alloy_primitives::keccak256(b.as_slice()).to_string();
        Self::Mismatch { number, field: "logs_bloom (by hash)", got: h(got), expected: h(expected) }
    }
}
