//! New canonical blocks as events ([`ChainEvents`]) and the `eth_subscribe` kinds built
//! on them: `newHeads`, `logs` (with `removed` logs after a reorg) and
//! `newPendingTransactions`.

use crate::{
    context::RpcContext,
    convert,
    error::{RpcError, RpcResult},
};
use alloy_rpc_types_eth::{Filter, Header as RpcHeader, Log};
use jsonrpsee::{core::SubscriptionResult, PendingSubscriptionSink, SubscriptionMessage};
use serde::Serialize;
use std::{collections::VecDeque, sync::Arc};
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

/// A canonical block with its logs in RPC form.
#[derive(Debug)]
pub struct BlockEvent {
    /// The header (with hash and size).
    pub header: RpcHeader,
    /// Its logs, with their positions (empty when nobody was subscribed as it arrived).
    pub logs: Vec<Log>,
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
    pub fn spawn(store: ChainStore) -> RpcResult<Self> {
        let events = Self::default();
        let wake = Arc::new(Notify::new());
        let notify = wake.clone();
        store.on_chain_change(move || notify.notify_one());
        let mut follower = Follower { store, recent: VecDeque::new() };
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
    store: ChainStore,
    recent: VecDeque<Arc<BlockEvent>>,
}

impl Follower {
    fn start(&mut self) -> RpcResult<()> {
        let (best, _) = self.store.best_block()?;
        self.recent.push_back(self.load(best, false)?);
        Ok(())
    }

    /// Block `number` as an event; its logs only if `with_logs` (someone listens).
    fn load(&self, number: u64, with_logs: bool) -> RpcResult<Arc<BlockEvent>> {
        let block = self
            .store
            .block_by_number(number)?
            .ok_or_else(|| RpcError::Internal(format!("canonical block {number} missing")))?;
        // Blocks stored without execution have no receipts: no logs to report.
        let logs = match with_logs {
            true => convert::logs(&block, &self.store.receipts(number)?),
            false => Vec::new(),
        };
        let size = alloy_rlp::Encodable::length(&block.block);
        let header = convert::header(block.block.header.clone(), block.hash, Some(size));
        Ok(Arc::new(BlockEvent { header, logs }))
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
        let listened = tx.receiver_count() > 0;
        for number in from.max(best.saturating_sub(MAX_BLOCKS_PER_CHANGE - 1))..=best {
            let block = self.load(number, listened)?;
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
        .logs
        .iter()
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::{Eip658Value, Receipt, ReceiptEnvelope, ReceiptWithBloom, TxLegacy};
    use alloy_primitives::{Address, Bytes, LogData, TxKind, B256, U256};
    use tern_chainspec::ChainSpec;
    use tern_storage::{ExecutedBlock, SealedBlock, StateChanges};

    const EMITTER: Address = Address::repeat_byte(0xe1);

    /// A block on `parent` with one signed transaction whose receipt holds one log with
    /// `topic` (no state changes: the state root stays the genesis one).
    fn block(spec: &ChainSpec, parent: &SealedBlock, topic: u8) -> ExecutedBlock {
        let key = secp256k1::SecretKey::from_byte_array([7; 32]).unwrap();
        let tx = TxLegacy {
            chain_id: Some(spec.chain_id),
            nonce: parent.block.header.number,
            gas_price: 1,
            gas_limit: 21_000,
            to: TxKind::Call(EMITTER),
            value: U256::from(topic),
            input: Bytes::new(),
        };
        let tx = tern_consensus::chain_gen::sign_tx(tx, &key).into();
        let mut b = tern_storage::testing::synthetic_chain(
            (parent.hash, &parent.block.header),
            1,
            0,
            topic.into(),
        )
        .remove(0);
        b.block.body.transactions = vec![tx];
        b.block.header.state_root = spec.genesis_header.state_root;
        let log = alloy_primitives::Log {
            address: EMITTER,
            data: LogData::new_unchecked(vec![B256::repeat_byte(topic)], Bytes::new()),
        };
        let receipt = Receipt {
            status: Eip658Value::Eip658(true),
            cumulative_gas_used: 21_000,
            logs: vec![log],
        };
        b.block.header.logs_bloom = ReceiptWithBloom::from(receipt.clone()).logs_bloom;
        let receipts = vec![ReceiptEnvelope::Legacy(receipt.into())];
        ExecutedBlock {
            block: SealedBlock::seal(b.block),
            changes: StateChanges::default(),
            receipts,
        }
    }

    fn events(rx: &mut broadcast::Receiver<ChainEvent>) -> Vec<(bool, u64, B256)> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .map(|e| match e {
                ChainEvent::Added(b) => (true, b.header.inner.number, b.header.hash),
                ChainEvent::Removed(b) => (false, b.header.inner.number, b.header.hash),
            })
            .collect()
    }

    #[test]
    fn new_blocks_are_reported_once_and_a_reorg_reports_the_removed_ones_first() {
        let spec = Arc::new(ChainSpec::dev());
        let dir = std::env::temp_dir().join(format!("tern-rpc-events-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ChainStore::init(&dir, &spec).unwrap();
        let genesis = store.block_by_number(0).unwrap().unwrap();
        let (tx, mut rx) = broadcast::channel(16);
        let mut follower = Follower { store: store.clone(), recent: VecDeque::new() };
        follower.start().unwrap();

        let a1 = block(&spec, &genesis, 1);
        let a2 = block(&spec, &a1.block, 2);
        store.write_state(|w| w.append(&a1).and_then(|()| w.append(&a2))).unwrap();
        follower.catch_up(&tx).unwrap();
        follower.catch_up(&tx).unwrap();
        assert_eq!(events(&mut rx), vec![(true, 1, a1.block.hash), (true, 2, a2.block.hash)]);

        // A reorg: a2 is replaced by b2 and b3.
        store.unwind_to(1).unwrap();
        let b2 = block(&spec, &a1.block, 3);
        let b3 = block(&spec, &b2.block, 4);
        store.write_state(|w| w.append(&b2).and_then(|()| w.append(&b3))).unwrap();
        follower.catch_up(&tx).unwrap();
        let got = events(&mut rx);
        assert_eq!(
            got,
            vec![(false, 2, a2.block.hash), (true, 2, b2.block.hash), (true, 3, b3.block.hash)]
        );

        // The logs subscription's view: a2's log again as removed, then b2's and b3's.
        let filter = Filter::new().address(EMITTER);
        let a1_event = follower.load(1, true).unwrap(); // still canonical
        assert_eq!(matching_logs(&a1_event, &filter, false).len(), 1);
        let b3_event = follower.recent.back().unwrap().clone();
        let logs = matching_logs(&b3_event, &filter, true);
        assert_eq!(logs.len(), 1);
        assert!(logs[0].removed);
        assert_eq!(logs[0].topics(), &[B256::repeat_byte(4)]);
        assert_eq!(logs[0].block_hash, Some(b3.block.hash));
        let other = Filter::new().address(Address::repeat_byte(0x99));
        assert!(matching_logs(&b3_event, &other, false).is_empty(), "bloom or address excludes it");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
