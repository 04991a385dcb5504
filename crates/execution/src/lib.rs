//! Block execution for Tern: revm through alloy-evm's Ethereum block executor, the
//! hardforks of a [`tern_chainspec::ChainSpec`] in alloy-evm's terms, and state roots.
//!
//! [`execute_block`] runs a block on any state that implements revm's `DatabaseRef`
//! ([`MemState`] in memory; the chain store's state in MDBX) and returns the receipts and
//! the state changes; [`Executed::verify`] checks them against the header.

mod ahead;
mod call;
pub mod chain;
mod error;
mod execute;
mod forks;
mod mem;
mod root;
mod store;

pub use ahead::{store_executed, AheadError, ExecuteAhead, ExecutedBatch, AHEAD_CACHE_ENTRIES};
pub use call::{revert_reason, AccessListOutput, CallContext, CallError, CallOutput};
pub use error::ExecutionError;
pub use execute::{
    execute_block, execute_candidates, BlockCandidates, Built, Executed, ListedCandidates,
    StateRootWith,
};
pub use forks::EvmForks;
pub use mem::{MemAccount, MemState};
pub use revm;
pub use root::{state_root_of, RootAccount};
pub use store::{
    build_and_store, execute_and_store, state_changes, BlockToExecute, BuildError, StateReadError,
    StateRootCheck, StoreDb, StoreExecutionError,
};

#[cfg(test)]
mod tests;
