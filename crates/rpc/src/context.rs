//! What the methods read: the chain, the store, the pool, the network, and the limits.

use crate::{
    error::{RpcError, RpcResult},
    filters::Filters,
    pubsub::ChainEvents,
};
use alloy_consensus::Header;
use alloy_eips::{BlockId, BlockNumberOrTag, RpcBlockHash};
use alloy_primitives::{Address, B256};
use std::{collections::BTreeMap, sync::Arc, time::Duration};
use tern_chainspec::ChainSpec;
use tern_network::NetworkHandle;
use tern_storage::{ChainStore, HistoricalState, StateBlock, StoreError};
use tern_sync::SyncHandle;
use tern_txpool::{Incoming, PoolError, PoolStatus, ValidTx};
use tokio::sync::broadcast;

/// The limits of the RPC server. Defaults are reth's where it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcConfig {
    /// The most gas an `eth_call` or `eth_estimateGas` may use (`--rpc.gascap`).
    pub gas_cap: u64,
    /// The most blocks one `eth_getLogs` (or log filter poll) may span
    /// (`--rpc.max-blocks-per-filter`).
    pub max_blocks_per_filter: u64,
    /// The most logs one `eth_getLogs` may return (`--rpc.max-logs-per-response`).
    pub max_logs_per_response: usize,
    /// How many blocks below the head state is served for (`--rpc.state-history`):
    /// older blocks get geth's "missing trie node" error.
    pub state_history: u64,
    /// The largest request body, in bytes (`--rpc.max-request-size`).
    pub max_request_size: u32,
    /// The largest response body, in bytes (`--rpc.max-response-size`).
    pub max_response_size: u32,
    /// Connections served at once, HTTP and WebSocket together (`--rpc.max-connections`).
    pub max_connections: u32,
    /// The most calls in one batch request (`--rpc.max-batch-size`).
    pub max_batch_size: u32,
    /// Subscriptions per WebSocket connection (`--rpc.max-subscriptions-per-connection`).
    pub max_subscriptions_per_connection: u32,
    /// Installed filters at once (`eth_newFilter` and friends), over all clients.
    pub max_filters: usize,
    /// A filter not polled for this long is removed (geth: 5 minutes).
    pub filter_timeout: Duration,
    /// The most blocks `eth_feeHistory` reports at once.
    pub max_fee_history: u64,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            gas_cap: 50_000_000,
            max_blocks_per_filter: 100_000,
            max_logs_per_response: 20_000,
            state_history: 10_000,
            max_request_size: 15 * 1024 * 1024,
            max_response_size: 160 * 1024 * 1024,
            max_connections: 500,
            max_batch_size: 1_000,
            max_subscriptions_per_connection: 1_024,
            max_filters: 4_096,
            filter_timeout: Duration::from_secs(300),
            max_fee_history: 1_024,
        }
    }
}

/// The transaction pool as RPC sees it.
pub trait TransactionPool: Send + Sync + std::fmt::Debug + 'static {
    /// Validates and adds a transaction (a blob transaction with its sidecar); its hash,
    /// or why it was refused.
    fn add_transaction(&self, tx: Incoming) -> Result<B256, PoolError>;
    /// A transaction the pool holds, with its sender.
    fn transaction(&self, hash: &B256) -> Option<ValidTx>;
    /// Sizes.
    fn status(&self) -> PoolStatus;
    /// Pending and queued transactions by sender, in nonce order.
    #[allow(clippy::type_complexity)]
    fn content(&self) -> (BTreeMap<Address, Vec<ValidTx>>, BTreeMap<Address, Vec<ValidTx>>);
    /// The nonce after the sender's last pending transaction, if it has any.
    fn pending_nonce(&self, sender: Address) -> Option<u64>;
    /// Hashes of transactions as they become pending.
    fn subscribe_pending(&self) -> broadcast::Receiver<B256>;
}

/// Everything a method reads.
#[derive(Debug, Clone)]
pub struct RpcContext {
    /// The chain.
    pub spec: Arc<ChainSpec>,
    /// The store.
    pub store: ChainStore,
    /// The network.
    pub network: NetworkHandle,
    /// Sync progress.
    pub sync: SyncHandle,
    /// The transaction pool.
    pub pool: Arc<dyn TransactionPool>,
    /// Our client id (`web3_clientVersion`).
    pub client_id: String,
    /// Limits.
    pub config: Arc<RpcConfig>,
    /// New canonical blocks, for subscriptions and filters.
    pub events: ChainEvents,
    /// Installed filters.
    pub filters: Arc<Filters>,
    /// Node discovery, if it runs (`admin_nodeInfo` shows its record and port).
    pub discovery: Option<tern_discv4::Discv4>,
    /// Clique signer snapshots (a Clique chain only; `clique_*` is served with them).
    pub clique: Option<tern_sync::CliqueSnapshots>,
}

/// A block a request names, found in the store.
#[derive(Debug, Clone)]
pub struct FoundBlock {
    /// Its number.
    pub number: u64,
    /// Its hash.
    pub hash: B256,
    /// Its header.
    pub header: Header,
}

impl RpcContext {
    /// The best block's number.
    pub fn best(&self) -> RpcResult<u64> {
        Ok(self.store.best_block()?.0)
    }

    /// The number of a block tag, if the tag names a block now. `pending` is the best
    /// block (the next block is not built ahead).
    pub fn tag_number(&self, tag: BlockNumberOrTag) -> RpcResult<Option<u64>> {
        let fork_choice = |safe: bool| {
            let (s, f) = self.store.fork_choice()?;
            let name = if safe { "safe" } else { "finalized" };
            let hash = if safe { s } else { f }
                .ok_or_else(|| RpcError::UnknownBlock(format!("{name} block not found")))?;
            Ok::<_, RpcError>(self.store.block_number(hash)?)
        };
        Ok(match tag {
            BlockNumberOrTag::Latest | BlockNumberOrTag::Pending => Some(self.best()?),
            BlockNumberOrTag::Earliest => Some(0),
            BlockNumberOrTag::Number(n) => Some(n),
            BlockNumberOrTag::Safe => fork_choice(true)?,
            BlockNumberOrTag::Finalized => fork_choice(false)?,
        })
    }

    /// The block `id` names, if it exists (a hash may name a non-canonical block unless
    /// `requireCanonical` is set).
    pub fn find_block(&self, id: BlockId) -> RpcResult<Option<FoundBlock>> {
        let hash = match id {
            BlockId::Hash(RpcBlockHash { block_hash, require_canonical }) => {
                let Some(number) = self.store.block_number(block_hash)? else { return Ok(None) };
                if require_canonical == Some(true)
                    && self.store.canonical_hash(number)? != Some(block_hash)
                {
                    return Err(RpcError::InvalidParams(format!(
                        "hash {block_hash} is not currently canonical"
                    )));
                }
                block_hash
            }
            BlockId::Number(tag) => {
                let Some(n) = self.tag_number(tag)? else { return Ok(None) };
                let Some(hash) = self.store.canonical_hash(n)? else { return Ok(None) };
                hash
            }
        };
        let Some(header) = self.store.header(hash)? else { return Ok(None) };
        Ok(Some(FoundBlock { number: header.number, hash, header }))
    }

    /// Like [`RpcContext::find_block`], but a missing block is geth's "header not found".
    pub fn block(&self, id: BlockId) -> RpcResult<FoundBlock> {
        self.find_block(id)?.ok_or(RpcError::HeaderNotFound)
    }

    /// The state after the block `id` names: canonical, and within the history served
    /// (the block and its state read in one store transaction).
    pub fn state_at(&self, id: BlockId) -> RpcResult<(FoundBlock, HistoricalState)> {
        let at = match id {
            BlockId::Hash(h) => StateBlock::Hash(h.block_hash),
            BlockId::Number(BlockNumberOrTag::Latest | BlockNumberOrTag::Pending) => {
                StateBlock::Latest
            }
            BlockId::Number(tag) => match self.tag_number(tag)? {
                Some(n) => StateBlock::Number(n),
                None => return Err(RpcError::HeaderNotFound),
            },
        };
        let (hash, header, state) = match self.store.state_at_block(at) {
            Ok(Some(found)) => found,
            Ok(None) | Err(StoreError::StateAhead { .. }) => return Err(RpcError::HeaderNotFound),
            Err(StoreError::NotCanonical(hash)) => {
                return Err(RpcError::Server(format!(
                    "missing trie node: block {hash} is not canonical; state is kept for the canonical chain only"
                )))
            }
            Err(e) => return Err(e.into()),
        };
        if state.head().saturating_sub(header.number) > self.config.state_history {
            return Err(RpcError::Server(format!(
                "missing trie node: state of block {} is older than the {} blocks this node serves (--rpc.state-history)",
                header.number, self.config.state_history
            )));
        }
        Ok((FoundBlock { number: header.number, hash, header }, state))
    }
}

/// A block id parameter that defaults to `latest` when left out.
pub(crate) fn or_latest(id: Option<BlockId>) -> BlockId {
    id.unwrap_or(BlockId::Number(BlockNumberOrTag::Latest))
}
