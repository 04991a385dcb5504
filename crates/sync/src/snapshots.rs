//! Clique signer snapshots over the chain store, with a small in-memory cache: what the
//! sync machine starts from, what the validator seals on and what `clique_*` RPC reads.

use alloy_consensus::Header;
use alloy_primitives::B256;
use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};
use tern_chainspec::{ChainSpec, Consensus};
use tern_consensus::{
    snapshot_after,
    snapshots::{decode_snapshot, encode_snapshot},
    Snapshot, SnapshotError, SnapshotSource,
};
use tern_storage::ChainStore;

/// Snapshots kept in memory (by block hash), most recent first out.
const CACHED_SNAPSHOTS: usize = 128;

/// The signer state after any stored block of a Clique chain: cached, else from the
/// nearest stored snapshot or checkpoint (see [`snapshot_after`]). Cheap to clone.
#[derive(Clone, Debug)]
pub struct CliqueSnapshots {
    store: ChainStore,
    epoch: u64,
    cache: Arc<Mutex<Cache>>,
}

#[derive(Debug, Default)]
struct Cache {
    by_hash: HashMap<B256, Snapshot>,
    order: VecDeque<B256>,
}

impl CliqueSnapshots {
    /// Snapshots of `store`'s chain, if `spec` is a Clique chain.
    pub fn new(spec: &ChainSpec, store: ChainStore) -> Option<Self> {
        let Consensus::Clique { epoch, .. } = &spec.consensus else { return None };
        Some(Self { store, epoch: *epoch, cache: Arc::default() })
    }

    /// The snapshot after stored block `hash`. Blocking: may read up to
    /// [`tern_consensus::SNAPSHOT_INTERVAL`] headers and write one snapshot.
    pub fn after(&self, hash: B256) -> Result<Snapshot, SnapshotError> {
        snapshot_after(self, self.epoch, hash)
    }

    /// Remembers `snapshot` as the state after block `hash` (e.g. one the validator just
    /// sealed), so the next [`Self::after`] finds it without reading the store.
    pub fn remember(&self, hash: B256, snapshot: &Snapshot) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.by_hash.insert(hash, snapshot.clone()).is_none() {
            cache.order.push_back(hash);
            while cache.order.len() > CACHED_SNAPSHOTS {
                let old = cache.order.pop_front().expect("non-empty");
                cache.by_hash.remove(&old);
            }
        }
    }
}

fn source(e: tern_storage::StoreError) -> SnapshotError {
    SnapshotError::Source(e.to_string())
}

impl SnapshotSource for CliqueSnapshots {
    fn header(&self, hash: B256) -> Result<Option<Header>, SnapshotError> {
        self.store.header(hash).map_err(source)
    }

    fn snapshot(&self, hash: B256) -> Result<Option<Snapshot>, SnapshotError> {
        let cached =
            self.cache.lock().unwrap_or_else(|e| e.into_inner()).by_hash.get(&hash).cloned();
        if cached.is_some() {
            return Ok(cached);
        }
        self.store.clique_snapshot(hash).map_err(source)?.map(|b| decode_snapshot(&b)).transpose()
    }

    fn save(&self, hash: B256, snapshot: &Snapshot, durable: bool) -> Result<(), SnapshotError> {
        self.remember(hash, snapshot);
        if durable {
            self.store.put_clique_snapshot(hash, &encode_snapshot(snapshot)).map_err(source)?;
        }
        Ok(())
    }
}
