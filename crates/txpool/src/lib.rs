//! Tern's transaction pool.
//!
//! Transactions are validated against the next block ([`NextBlock`]: chain id, fork
//! rules, gas limit, base fee) and their sender's account on the head ([`AccountSource`]),
//! then kept by sender and nonce: *pending* when executable on the head (consecutive
//! nonces from the account's, affordable, fee cap at least the base fee), *queued*
//! otherwise. A replacement needs a [`PoolConfig::price_bump`] rise of both fee caps;
//! limits per sender and overall (count and bytes) evict the cheapest. On every new head
//! [`Pool::on_new_head`] re-reads the senders' accounts, removes what was mined and
//! promotes or demotes the rest. [`Pool::best`] orders the pending transactions for a
//! block. Blob transactions (EIP-4844) are taken in their network form only
//! ([`Incoming`] keeps the sidecar beside the transaction); their KZG commitments and
//! proofs are verified before anything else is done with them.

mod best;
mod error;
mod pool;
mod validate;

pub use best::BestTransactions;
pub use error::PoolError;
pub use pool::{AccountSource, Added, HeadChange, Pool, PoolConfig, PoolStatus, SenderAccount};
pub use validate::{
    intrinsic_gas, to_pooled, validate_stateless, Forks, Incoming, NextBlock, ValidTx,
    MAX_INITCODE_SIZE, MAX_TX_SIZE,
};

#[cfg(test)]
mod tests;
