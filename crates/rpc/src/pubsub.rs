//! New canonical blocks as events ([`ChainEvents`]) and the `eth_subscribe` kinds built
//! on them: `newHeads`, `logs` (with `removed` logs after a reorg) and
//! `newPendingTransactions`.

use crate::{
    context::RpcContext,
    convert,
    error::{RpcError, RpcResult},
};
use alloy_rpc_types_eth::{Filter, Header as RpcHeader, Log, TransactionReceipt};
use jsonrpsee::{core::SubscriptionResult, PendingSubscriptionSink, SubscriptionMessage};
use serde::Serialize;
use std::{collections::VecDeque, sync::Arc};
use tern_chainspec::ChainSpec;
use tern_storage::ChainStore;
use tokio::sync::{broadcast, Notify};
use tracing::warn;

/// Blocks remembered to report the logs of ones a reorg removes (receipts of unwound
/// blocks are gone from the store).
const REMEMBERED_BLOCKS: usize = 128;

/// New blocks reported per store change at most: a node far behind reports the last
/// ones (subscribers want the tip, not history).
const MAX_BLOCKS_PER_CHANGE: u64 = 256;

/// Events buffered per subscriber: a slower one misses the oldest (it is told by a gap
/// in block numbers, as with geth).
const EVENT_BUFFER: usize = 1_024;

/// A canonical block with its receipts in RPC form.
#[derive(Debug)]
pub struct BlockEvent {
    /// The header (with hash and size).
    pub header: RpcHeader,
    /// Its receipts (logs with positions).
    pub receipts: Vec<TransactionReceipt>,
}

/// A change of the canonical chain.
#[derive(Debug, Clone)]
pub enum ChainEvent {
    /// A block became canonical.
    Added(Arc<BlockEvent>),
    /// A block stopped being canonical (a reorg), newest first.
    Removed(Arc<BlockEvent>),
}

/// New canonical blocks, published after each store commit.
#[derive(Debug, Clone)]
pub struct ChainEvents {
    tx: broadcast::Sender<ChainEvent>,
}

impl Default for ChainEvents {
    fn default() -> Self {
        Self { tx: broadcast::channel(EVENT_BUFFER).0 }
    }
}

impl ChainEvents {
    /// Publishes the canonical changes of `store` from now on (a task on the current
    /// runtime, woken by each commit).
    pub fn spawn(spec: Arc<ChainSpec>, store: ChainStore) -> RpcResult<Self> {
        let events = Self::default();
        let wake = Arc::new(Notify::new());
        let notify = wake.clone();
        store.on_chain_change(move || notify.notify_one());
        let mut follower = Follower { spec, store, recent: VecDeque::new() };
        follower.start()?;
        let tx = events.tx.clone();
        tokio::spawn(async move {
            loop {
                wake.notified().await;
                if let Err(e) = follower.catch_up(&tx) {
                    warn!(error = %e, "cannot read new blocks for RPC subscriptions");
                }
            }
        });
        Ok(events)
    }

    /// Receives the changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ChainEvent> {
        self.tx.subscribe()
    }
}

/// Follows the canonical chain, remembering its last blocks.
struct Follower {
    spec: Arc<ChainSpec>,
    store: ChainStore,
    recent: VecDeque<Arc<BlockEvent>>,
}

impl Follower {
    fn start(&mut self) -> RpcResult<()> {
        let (best, _) = self.store.best_block()?;
        self.recent.push_back(self.load(best)?);
        Ok(())
    }

    fn load(&self, number: u64) -> RpcResult<Arc<BlockEvent>> {
        let block = self
            .store
            .block_by_number(number)?
            .ok_or_else(|| RpcError::Internal(format!("canonical block {number} missing")))?;
        let stored = self.store.receipts(number)?;
        let receipts = if stored.len() == block.block.body.transactions.len() {
            convert::receipts(&self.spec, &block, stored)?
        } else {
            Vec::new() // stored without execution: no receipts to report
        };
        let size = alloy_rlp::Encodable::length(&block.block);
        let header = convert::header(block.block.header.clone(), block.hash, Some(size));
        Ok(Arc::new(BlockEvent { header, receipts }))
    }

    /// Reports blocks unwound since the last call (newest first), then new ones.
    fn catch_up(&mut self, tx: &broadcast::Sender<ChainEvent>) -> RpcResult<()> {
        let (best, best_hash) = self.store.best_block()?;
        if self.recent.back().is_some_and(|b| b.header.hash == best_hash) {
            return Ok(());
        }
        // Drop remembered blocks that are no longer canonical.
        while let Some(last) = self.recent.back() {
            let n = last.header.inner.number;
            if n <= best && self.store.canonical_hash(n)? == Some(last.header.hash) {
                break;
            }
            let removed = self.recent.pop_back().expect("checked");
            let _ = tx.send(ChainEvent::Removed(removed));
        }
        let from = match self.recent.back() {
            Some(b) => b.header.inner.number + 1,
            None => best.saturating_sub(MAX_BLOCKS_PER_CHANGE - 1),
        };
        for number in from.max(best.saturating_sub(MAX_BLOCKS_PER_CHANGE - 1))..=best {
            let block = self.load(number)?;
            self.recent.push_back(block.clone());
            if self.recent.len() > REMEMBERED_BLOCKS {
                self.recent.pop_front();
            }
            let _ = tx.send(ChainEvent::Added(block));
        }
        Ok(())
    }
}

/// The logs of `block` that `filter` matches, marked removed or not.
pub(crate) fn matching_logs(block: &BlockEvent, filter: &Filter, removed: bool) -> Vec<Log> {
    if !filter.matches_bloom(block.header.inner.logs_bloom) {
        return Vec::new();
    }
    block
        .receipts
        .iter()
        .flat_map(|r| r.inner.logs())
        .filter(|l| filter.matches_address(l.address()) && filter.matches_topics(l.topics()))
        .map(|l| Log { removed, ..l.clone() })
        .collect()
}

/// What one subscription sends.
#[derive(Debug)]
enum Kind {
    NewHeads,
    Logs(Box<Filter>),
    PendingTransactions { full: bool },
}

fn message(value: &impl Serialize) -> Result<SubscriptionMessage, serde_json::Error> {
    Ok(serde_json::value::to_raw_value(value)?.into())
}

/// `eth_subscribe`.
pub(crate) async fn subscribe(
    params: jsonrpsee::types::Params<'static>,
    pending: PendingSubscriptionSink,
    ctx: Arc<RpcContext>,
) -> SubscriptionResult {
    let mut seq = params.sequence();
    let name: String = match seq.next() {
        Ok(n) => n,
        Err(e) => {
            pending.reject(e).await;
            return Ok(());
        }
    };
    let kind = match name.as_str() {
        "newHeads" => Kind::NewHeads,
        "logs" => Kind::Logs(Box::new(seq.optional_next::<Filter>()?.unwrap_or_default())),
        "newPendingTransactions" => {
            Kind::PendingTransactions { full: seq.optional_next::<bool>()?.unwrap_or(false) }
        }
        other => {
            let e = RpcError::InvalidParams(format!("unsupported subscription kind {other:?}"));
            pending.reject(e).await;
            return Ok(());
        }
    };
    let sink = pending.accept().await?;
    match kind {
        Kind::PendingTransactions { full } => {
            let mut rx = ctx.pool.subscribe_pending();
            loop {
                let hash = tokio::select! {
                    _ = sink.closed() => return Ok(()),
                    r = rx.recv() => match r {
                        Ok(h) => h,
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return Ok(()),
                    },
                };
                let msg = if full {
                    let Some(t) = ctx.pool.transaction(&hash) else { continue };
                    message(&convert::transaction((*t.tx).clone(), t.sender, None))?
                } else {
                    message(&hash)?
                };
                sink.send(msg).await?;
            }
        }
        Kind::NewHeads | Kind::Logs(_) => {
            let mut rx = ctx.events.subscribe();
            loop {
                let event = tokio::select! {
                    _ = sink.closed() => return Ok(()),
                    r = rx.recv() => match r {
                        Ok(e) => e,
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return Ok(()),
                    },
                };
                match (&kind, event) {
                    (Kind::NewHeads, ChainEvent::Added(b)) => {
                        sink.send(message(&b.header)?).await?
                    }
                    (Kind::Logs(f), ChainEvent::Added(b)) => {
                        for log in matching_logs(&b, f, false) {
                            sink.send(message(&log)?).await?;
                        }
                    }
                    (Kind::Logs(f), ChainEvent::Removed(b)) => {
                        for log in matching_logs(&b, f, true) {
                            sink.send(message(&log)?).await?;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}
