//! The node's transaction pool: [`tern_txpool::Pool`] behind a lock, validated against
//! the store's head, moved to every new head by [`NodePool::maintain`], fed by JSON-RPC
//! and gossip, drained by the validator.

use alloy_consensus::{Header, TxEnvelope};
use alloy_primitives::{Address, B256};
use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::{SystemTime, UNIX_EPOCH},
};
use tern_chainspec::ChainSpec;
use tern_storage::{ChainStore, StateRead, StoreError};
use tern_txpool::{
    AccountSource, BestTransactions, Incoming, NextBlock, Pool, PoolConfig, PoolError, PoolStatus,
    SenderAccount, ValidTx,
};
use tokio::sync::{broadcast, watch, Notify};
use tracing::{debug, info, warn};

/// Most newly pending transactions waiting for the gossip task; beyond it the oldest are
/// not propagated (counted), never the pool's work. (The pool itself holds at most its
/// pending limit, so this is only reached if gossip stalls.)
pub const PROPAGATE_QUEUE: usize = 65_536;
/// How many blocks back a reorg is followed to return the transactions of unwound blocks
/// to the pool.
pub const MAX_REORG_DEPTH: u64 = 64;

/// Newly pending hashes buffered per RPC subscriber; a slower one misses the oldest.
const PENDING_HASH_BUFFER: usize = 4_096;

/// Accounts read from a state snapshot.
struct HeadAccounts<'a, S>(&'a S);

impl<S: StateRead> AccountSource for HeadAccounts<'_, S> {
    fn account(&self, address: Address) -> Result<SenderAccount, String> {
        let a = self.0.account(address).map_err(|e| e.to_string())?;
        Ok(a.map(|a| SenderAccount { nonce: a.nonce, balance: a.balance }).unwrap_or_default())
    }
}

fn state_err(e: StoreError) -> PoolError {
    PoolError::State(e.to_string())
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The node's pool.
#[derive(Debug)]
pub struct NodePool {
    pool: Mutex<Pool>,
    spec: ChainSpec,
    store: ChainStore,
    /// Newly pending transactions for the gossip task, drained in batches.
    outbox: Mutex<Vec<ValidTx>>,
    /// Wakes the gossip task when the outbox fills.
    outbox_ready: Notify,
    /// The head the pool was last moved to.
    head: Mutex<(u64, B256)>,
    /// Hashes of newly pending transactions, for RPC subscriptions and filters.
    pending_hashes: broadcast::Sender<B256>,
}

impl NodePool {
    /// A pool on the store's best block; newly pending transactions are collected for
    /// gossip ([`NodePool::take_promoted`]).
    pub fn new(
        spec: ChainSpec,
        store: ChainStore,
        config: PoolConfig,
    ) -> Result<Arc<Self>, StoreError> {
        let head = store.best_block()?;
        let next = next_block(&spec, &store, head)?;
        let pool = Self {
            pool: Mutex::new(Pool::new(config, next)),
            spec,
            store,
            outbox: Mutex::new(Vec::new()),
            outbox_ready: Notify::new(),
            head: Mutex::new(head),
            pending_hashes: broadcast::channel(PENDING_HASH_BUFFER).0,
        };
        Ok(Arc::new(pool))
    }

    /// Waits until transactions became pending, and takes them all (oldest first).
    pub async fn take_promoted(&self) -> Vec<ValidTx> {
        loop {
            let batch = std::mem::take(&mut *self.outbox.lock().unwrap_or_else(|e| e.into_inner()));
            if !batch.is_empty() {
                return batch;
            }
            self.outbox_ready.notified().await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the pool under one lock.
    pub(crate) fn with_pool<T>(&self, f: impl FnOnce(&Pool) -> T) -> T {
        f(&self.lock())
    }

    /// Adds transactions (from one RPC call or one gossip message), each validated against
    /// the head; returns one result per transaction, in order. Blob transactions' proofs
    /// are verified outside the pool's lock.
    pub fn add<T: Into<Incoming>>(&self, txs: Vec<T>) -> Vec<Result<B256, PoolError>> {
        let state = match self.store.state() {
            Ok(s) => s,
            Err(e) => return txs.iter().map(|_| Err(PoolError::State(e.to_string()))).collect(),
        };
        let accounts = HeadAccounts(&state);
        let next = *self.lock().next_block();
        let checked: Vec<Result<Incoming, Result<ValidTx, PoolError>>> = txs
            .into_iter()
            .map(|tx| {
                let tx: Incoming = tx.into();
                if !tx.tx.is_eip4844() {
                    return Ok(tx);
                }
                if self.contains(tx.tx.tx_hash()) {
                    return Err(Err(PoolError::AlreadyKnown));
                }
                Err(tern_txpool::validate_stateless(tx, &next))
            })
            .collect();
        let mut promoted = Vec::new();
        let results: Vec<Result<B256, PoolError>> = {
            let mut pool = self.lock();
            checked
                .into_iter()
                .map(|tx| {
                    let (hash, added) = match tx {
                        Ok(tx) => pool.add(tx, &accounts)?,
                        Err(valid) => pool.add_validated(valid?, &accounts)?,
                    };
                    promoted.extend(added.promoted);
                    Ok(hash)
                })
                .collect()
        };
        for r in &results {
            let outcome = match r {
                Ok(_) => "added",
                Err(e) => e.label(),
            };
            metrics::counter!("tern_txpool_received_total", "outcome" => outcome).increment(1);
        }
        self.publish(promoted);
        self.record_sizes();
        results
    }

    fn publish(&self, promoted: Vec<ValidTx>) {
        if promoted.is_empty() {
            return;
        }
        if self.pending_hashes.receiver_count() > 0 {
            for tx in &promoted {
                let _ = self.pending_hashes.send(tx.hash);
            }
        }
        let mut outbox = self.outbox.lock().unwrap_or_else(|e| e.into_inner());
        outbox.extend(promoted);
        if outbox.len() > PROPAGATE_QUEUE {
            let skipped = outbox.len() - PROPAGATE_QUEUE;
            outbox.drain(..skipped);
            metrics::counter!("tern_txpool_propagation_skipped_total").increment(skipped as u64);
        }
        drop(outbox);
        self.outbox_ready.notify_one();
    }

    fn record_sizes(&self) {
        let st = self.status();
        metrics::gauge!("tern_txpool_pending").set(st.pending as f64);
        metrics::gauge!("tern_txpool_queued").set(st.queued as f64);
        metrics::gauge!("tern_txpool_bytes").set(st.bytes as f64);
    }

    /// Hashes of transactions as they become pending (for RPC subscriptions).
    pub fn subscribe_pending_hashes(&self) -> broadcast::Receiver<B256> {
        self.pending_hashes.subscribe()
    }

    /// Sizes now.
    pub fn status(&self) -> PoolStatus {
        self.lock().status()
    }

    /// The transaction `hash` if the pool holds it, and whether it is pending.
    pub fn get(&self, hash: &B256) -> Option<(ValidTx, bool)> {
        let pool = self.lock();
        pool.get(hash).map(|t| (t.clone(), pool.is_pending(hash)))
    }

    /// Whether the pool holds `hash`.
    pub fn contains(&self, hash: &B256) -> bool {
        self.lock().contains(hash)
    }

    /// Every transaction by sender, split into (pending, queued).
    pub fn content(
        &self,
    ) -> (
        std::collections::BTreeMap<Address, Vec<ValidTx>>,
        std::collections::BTreeMap<Address, Vec<ValidTx>>,
    ) {
        self.lock().content()
    }

    /// Every pending transaction (what a new peer is told of).
    pub fn pending(&self) -> Vec<ValidTx> {
        self.lock().pending()
    }

    /// The `limit` longest-waiting pending transactions.
    pub fn oldest_pending(&self, limit: usize) -> Vec<ValidTx> {
        self.lock().oldest_pending(limit)
    }

    /// The pending transactions for the next block, best first.
    pub fn best(&self) -> BestTransactions {
        self.lock().best()
    }

    /// Drops transactions that failed while a block was built.
    pub fn remove_failed(&self, failed: &[(B256, String)]) {
        if failed.is_empty() {
            return;
        }
        let hashes: Vec<B256> = failed.iter().map(|(h, _)| *h).collect();
        let removed = self.lock().remove(&hashes);
        metrics::counter!("tern_txpool_dropped_total", "reason" => "failed_in_block")
            .increment(removed.len() as u64);
        for (hash, why) in failed {
            debug!(%hash, %why, "transaction failed while building a block; dropped");
        }
        self.record_sizes();
    }

    /// Moves the pool to the store's best block if it changed: re-reads senders, removes
    /// mined transactions, returns those of blocks a reorg unwound, promotes and demotes.
    pub fn sync_head(&self) -> Result<(), PoolError> {
        let best = self.store.best_block().map_err(state_err)?;
        let last = *self.head.lock().unwrap_or_else(|e| e.into_inner());
        if best == last {
            return Ok(());
        }
        let unwound = self.unwound_transactions(last).map_err(state_err)?;
        let next = next_block(&self.spec, &self.store, best).map_err(state_err)?;
        let state = self.store.state().map_err(state_err)?;
        let accounts = HeadAccounts(&state);
        let (change, promoted) = {
            let mut pool = self.lock();
            let change = pool.on_new_head(next, &accounts)?;
            let mut promoted = change.promoted.clone();
            let mut back = 0;
            for tx in unwound {
                if let Ok((_, added)) = pool.add_returned(tx, &accounts) {
                    back += 1;
                    promoted.extend(added.promoted);
                }
            }
            if back > 0 {
                info!(transactions = back, "returned transactions of unwound blocks to the pool");
            }
            (change, promoted)
        };
        *self.head.lock().unwrap_or_else(|e| e.into_inner()) = best;
        metrics::counter!("tern_txpool_dropped_total", "reason" => "unexecutable")
            .increment(change.dropped.len() as u64);
        debug!(
            head = best.0,
            mined = change.mined,
            dropped = change.dropped.len(),
            "pool moved to new head"
        );
        self.publish(promoted);
        self.record_sizes();
        Ok(())
    }

    /// The transactions of the blocks between `last` and the first of its ancestors that
    /// is still canonical (none if `last` is canonical: the chain only grew), up to
    /// [`MAX_REORG_DEPTH`] blocks.
    fn unwound_transactions(&self, last: (u64, B256)) -> Result<Vec<TxEnvelope>, StoreError> {
        let mut blocks = Vec::new();
        let mut at = last;
        for _ in 0..MAX_REORG_DEPTH {
            if self.store.canonical_hash(at.0)? == Some(at.1) {
                break;
            }
            let Some(block) = self.store.block(at.1)? else { break };
            at = (at.0.saturating_sub(1), block.block.header.parent_hash);
            blocks.push(block.block.body.transactions);
        }
        // Older blocks first: nonce order within a sender.
        Ok(blocks.into_iter().rev().flatten().collect())
    }

    /// Keeps the pool on the store's head: wakes on every chain change until `shutdown`.
    pub async fn maintain(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let changed = Arc::new(Notify::new());
        let notify = changed.clone();
        self.store.on_chain_change(move || notify.notify_one());
        loop {
            let pool = self.clone();
            match tokio::task::spawn_blocking(move || pool.sync_head()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => warn!(error = %e, "could not move the pool to the new head"),
                Err(e) => warn!(error = %e, "pool maintenance task failed"),
            }
            tokio::select! {
                _ = changed.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// The next block after `head` as the pool validates for it.
fn next_block(
    spec: &ChainSpec,
    store: &ChainStore,
    head: (u64, B256),
) -> Result<NextBlock, StoreError> {
    let header: Header = store.header(head.1)?.ok_or(StoreError::NotInitialised)?;
    Ok(NextBlock::after(spec, &header, head.1, unix_now()))
}

/// The pool's best transactions as a block builder's candidates.
pub(crate) struct PoolCandidates(pub(crate) BestTransactions);

impl tern_execution::BlockCandidates for PoolCandidates {
    fn next_candidate(&mut self) -> Option<(Arc<TxEnvelope>, Address)> {
        // Blob transactions wait: blocks built here carry no blob gas yet (Clique chains
        // run London rules until issue 17 brings Cancun to them).
        loop {
            let t = self.0.next()?;
            if !t.tx.is_eip4844() {
                return Some((t.tx, t.sender));
            }
            self.0.skip_sender();
        }
    }

    fn skip_sender(&mut self) {
        self.0.skip_sender();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{dev_chain, store_dev_chain};

    /// After a reorg the transactions of the unwound blocks are back in the pool, pending
    /// in nonce order behind nothing; a new head that mines them takes them out again.
    #[test]
    fn a_reorg_returns_the_transactions_of_unwound_blocks() {
        let dir = std::env::temp_dir().join(format!("tern-pool-reorg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let spec = ChainSpec::dev();
        let store = ChainStore::init(&dir, &spec).unwrap();
        let pool = NodePool::new(spec, store.clone(), PoolConfig::default()).unwrap();
        let with_txs = dev_chain(2, 3);
        store_dev_chain(&dir, &with_txs).unwrap();
        pool.sync_head().unwrap();
        assert_eq!(pool.status(), PoolStatus::default());
        // A heavier branch without those transactions replaces both blocks.
        store.unwind_to(0).unwrap();
        store_dev_chain(&dir, &dev_chain(3, 0)).unwrap();
        pool.sync_head().unwrap();
        let back: Vec<B256> = with_txs
            .iter()
            .flat_map(|b| b.body.transactions.iter().map(|t| *t.tx_hash()))
            .collect();
        assert_eq!(pool.status().pending, 6);
        assert!(back.iter().all(|h| pool.get(h).is_some_and(|(_, pending)| pending)));
        // The first branch again: they are mined, and leave.
        store.unwind_to(0).unwrap();
        store_dev_chain(&dir, &dev_chain(2, 3)).unwrap();
        pool.sync_head().unwrap();
        assert_eq!(pool.status(), PoolStatus::default());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
