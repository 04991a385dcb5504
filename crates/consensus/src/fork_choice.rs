//! Fork choice: which of two valid chain tips to follow.

use alloy_primitives::{B256, U256};
use tern_chainspec::Consensus;

/// A chain tip as fork choice sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainTip {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// Total difficulty up to and including the block.
    pub total_difficulty: U256,
}

/// Whether to switch from `current` to `candidate`: Clique (and proof of work) by total
/// difficulty, post-merge by length (the longest valid chain peers serve). Ties keep the
/// current head.
pub fn should_switch(consensus: &Consensus, current: &ChainTip, candidate: &ChainTip) -> bool {
    match consensus {
        Consensus::PostMerge => candidate.number > current.number,
        Consensus::Clique { .. } | Consensus::ProofOfWork => {
            candidate.total_difficulty > current.total_difficulty
        }
    }
}
