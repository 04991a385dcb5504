//! Consensus for Tern: header and body validation for every chain, Clique (EIP-225)
//! sealing and verification, fork choice, the validator's block builder and a test-chain
//! generator.
//!
//! Validation is pure: headers, bodies and the clock in, a typed [`ConsensusError`] out,
//! whose [`ErrorKind`] tells the caller how to treat the peer that served the block.

mod body;
mod builder;
pub mod chain_gen;
pub mod clique;
mod error;
mod fork_choice;
mod header;
pub mod snapshots;

pub use body::{check_body, recover_senders, recover_senders_of_blocks, validate_body};
pub use builder::{set_fork_fields, SealPlan, Sealer};
pub use clique::{address_of, Snapshot, Vote};
pub use error::{ConsensusError, ErrorKind};
pub use fork_choice::{should_switch, ChainTip};
pub use header::{
    expected_base_fee, validate_gas_limit, validate_header, GAS_LIMIT_BOUND_DIVISOR,
    MAX_EXTRA_DATA, MAX_FUTURE_SECS, MAX_GAS_LIMIT, MIN_GAS_LIMIT,
};
pub use snapshots::{snapshot_after, SnapshotError, SnapshotSource, SNAPSHOT_INTERVAL};

#[cfg(test)]
mod tests;
