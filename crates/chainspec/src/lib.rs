//! Chain specifications for Tern: a [`ChainSpec`] from a geth-style `genesis.json`.
//!
//! It builds the genesis header exactly as geth and reth do (so the genesis hash matches
//! theirs), derives the network id, the fork schedule and the EIP-2124 fork id and filter,
//! and the consensus kind (Clique or post-merge).

mod spec;

pub use alloy_eip2124::{ForkFilter, ForkFilterKey, ForkHash, ForkId, Head, ValidationError};
pub use spec::{
    system_contracts, ChainSpec, ChainSpecError, Consensus, Fork, ForkCondition, DEV_CHAIN_ID,
    DEV_VALIDATOR_KEY,
};
