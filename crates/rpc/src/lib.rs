//! Tern's JSON-RPC: the methods wallets, dapps and operators use, in the shapes geth and
//! reth answer with (alloy's RPC types), over HTTP and WebSocket on one port.
//!
//! - `eth_`: blocks, transactions and receipts; balances, nonces, code, storage and
//!   EIP-1186 proofs at the latest block or one within `state_history` blocks;
//!   `eth_call` (with state overrides), `eth_estimateGas`, `eth_createAccessList`;
//!   `eth_getLogs` (blooms skip blocks) and polled filters; fee suggestions and history;
//!   `eth_subscribe` (`newHeads`, `logs`, `newPendingTransactions`);
//!   `eth_sendRawTransaction`.
//! - `net_`, `web3_`, `txpool_`, `admin_`, and `debug_getRaw*`.
//!
//! The methods read a [`RpcContext`]; the transaction pool is reached through the
//! [`TransactionPool`] trait so this crate does not depend on the node that assembles it.

mod admin;
mod args;
mod clique;
mod context;
mod convert;
mod error;
mod eth;
mod fees;
mod filters;
mod params;
mod pubsub;
mod server;

pub use context::{FoundBlock, RpcConfig, RpcContext, TransactionPool};
pub use error::{
    RpcError, RpcResult, EXECUTION_REVERTED, INTERNAL_ERROR, INVALID_PARAMS, LIMIT_EXCEEDED,
    SERVER_ERROR, UNKNOWN_BLOCK,
};
pub use filters::Filters;
pub use pubsub::{BlockEvent, ChainEvent, ChainEvents};
pub use server::{rpc_module, start_rpc};
