//! Executing batches ahead of the store: bulk sync executes batch N+1 on one thread while
//! another writes batch N ([`ExecuteAhead`], then [`store_executed`]).
//!
//! The executor reads the state through its [`ExecutionCache`], kept from batch to
//! batch, and a fresh snapshot of the store for what the cache has never seen. The
//! snapshot may be behind the executor (the batches before are still being written), and
//! that is sound: a key missing from the cache was not touched by any block executed
//! since the cache started, so its value in any stored state between the cache's start
//! and the executor's head is the same. [`ExecuteAhead::execute`] checks that the
//! snapshot is one of those states (the cache's start or the end of a batch it executed);
//! otherwise something else wrote the store and it answers [`AheadError::Stale`].

use crate::{
    execute::{ChainEvm, ExecutionCache, StateRootWith},
    state_changes, BlockToExecute, EvmForks, ExecutionError, StateReadError, StoreDb,
    StoreExecutionError,
};
use alloy_hardforks::EthereumHardforks;
use alloy_primitives::{Address, B256, U256};
use revm::{
    bytecode::Bytecode,
    database::{states::StateChangeset, DatabaseRef},
    state::AccountInfo,
};
use std::collections::VecDeque;
use tern_chainspec::ChainSpec;
use tern_storage::{ChainStore, ExecutedBlock, StateRead, StateReader, StoreError};

/// Accounts plus storage slots the cache may hold before the executor starts over from
/// the store (bounds its memory: ~100 bytes each).
pub const AHEAD_CACHE_ENTRIES: usize = 1 << 20;

/// How many recent block hashes `BLOCKHASH` can ask for (the 256 before the current
/// block; Yellow Paper §9.4.5 / EIP-2935's window for the opcode).
const BLOCKHASH_WINDOW: usize = 256;

/// Why [`ExecuteAhead::execute`] did not execute a batch.
#[derive(Debug, thiserror::Error)]
pub enum AheadError {
    /// The store failed, or (with a fresh cache) its state is not at the batch's parent
    /// ([`StoreError::NotExtending`]).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The cache cannot be used for this batch (it does not extend the last batch, the
    /// store moved elsewhere, or the cache is full): let every batch executed before it
    /// reach the store, call [`ExecuteAhead::reset`] and try again.
    #[error("the execution cache does not fit this batch")]
    Stale,
    /// The batch has blocks before Byzantium, whose receipts need the state root after
    /// each transaction: execute it on the store ([`crate::execute_and_store`]) once the
    /// batches before it are stored, then [`ExecuteAhead::reset`].
    #[error("blocks before Byzantium are executed on the store")]
    PreByzantium,
}

/// A batch executed ahead of the store: its blocks up to the first that does not execute
/// to its header, ready for [`store_executed`].
#[derive(Debug)]
pub struct ExecutedBatch {
    /// The block the batch builds on (number, hash).
    pub parent: (u64, B256),
    /// The blocks that executed to their headers (all but the state root, which needs
    /// the store), with their changes and receipts.
    pub blocks: Vec<ExecutedBlock>,
    /// The first block that did not: its position in the batch, hash and error.
    pub bad: Option<(usize, B256, ExecutionError)>,
}

/// Executes batches of blocks ahead of the store (see the module docs).
#[derive(Debug)]
pub struct ExecuteAhead {
    spec: ChainSpec,
    store: ChainStore,
    cache: ExecutionCache,
    /// The last block executed; `None`: the next batch starts from the stored state.
    head: Option<(u64, B256)>,
    /// The states the store may be in while the cache is valid: the block the cache
    /// started after, then the last block of each batch executed since (oldest first).
    bases: VecDeque<(u64, B256)>,
    /// The hashes of the last blocks executed, oldest first (BLOCKHASH of blocks the
    /// snapshot may not have yet).
    recent: VecDeque<(u64, B256)>,
}

impl ExecuteAhead {
    /// An executor on `store`'s state (the first batch must build on its state).
    pub fn new(spec: ChainSpec, store: ChainStore) -> Self {
        Self {
            spec,
            store,
            cache: ExecutionCache::default(),
            head: None,
            bases: VecDeque::new(),
            recent: VecDeque::new(),
        }
    }

    /// Whether the next batch starts from the stored state (so every batch before it must
    /// be stored, or have failed, first).
    pub fn needs_store(&self) -> bool {
        self.head.is_none()
    }

    /// Forgets the cache: the next batch starts from the stored state.
    pub fn reset(&mut self) {
        self.cache = ExecutionCache::default();
        self.head = None;
        self.bases.clear();
        self.recent.clear();
    }

    /// Executes `blocks` (a chain) on the state after the last batch, or on the stored
    /// state after [`ExecuteAhead::reset`]. Each block's gas used, receipts root, logs
    /// bloom and requests hash are checked; the state roots are [`store_executed`]'s.
    /// The blocks move into the batch: `blocks` is left empty once execution starts, and
    /// untouched when it answers an error.
    pub fn execute(
        &mut self,
        blocks: &mut Vec<BlockToExecute>,
    ) -> Result<ExecutedBatch, AheadError> {
        let Some(first) = blocks.first().map(|b| &b.block) else {
            let parent = self.head.unwrap_or_default();
            return Ok(ExecutedBatch { parent, blocks: Vec::new(), bad: None });
        };
        let header = &first.block.header;
        let parent = (header.number.saturating_sub(1), header.parent_hash);
        if !EvmForks::at(&self.spec, header).is_byzantium_active_at_block(header.number) {
            return Err(AheadError::PreByzantium);
        }
        let reader = self.store.state()?;
        let (stored, is_best) = reader.state_head()?;
        match self.head {
            None => {
                if stored != parent || !is_best {
                    let reason = "the stored state is not at the batch's parent";
                    let (number, hash) = (header.number, first.hash);
                    return Err(StoreError::NotExtending { number, hash, reason }.into());
                }
                self.bases.push_back(parent);
            }
            Some(head) => {
                let Some(at) = self.bases.iter().position(|b| *b == stored) else {
                    return Err(AheadError::Stale);
                };
                if head != parent || self.cache.entries() > AHEAD_CACHE_ENTRIES {
                    return Err(AheadError::Stale);
                }
                self.bases.drain(..at);
            }
        }
        let mut out = ExecutedBatch { parent, blocks: Vec::with_capacity(blocks.len()), bad: None };
        let batch: Vec<(u64, B256)> =
            blocks.iter().map(|b| (b.block.block.header.number, b.block.hash)).collect();
        let db = AheadDb { reader: &reader, recent: &self.recent, batch: &batch };
        let mut chain = ChainEvm::new(&db, Some(std::mem::take(&mut self.cache)));
        for (index, b) in std::mem::take(blocks).into_iter().enumerate() {
            let header = &b.block.block.header;
            let executed = chain
                .execute(&self.spec, &b.block.block, &b.senders, b.beneficiary)
                .and_then(|e| e.verify(header).map(|()| e));
            match executed {
                Ok(executed) => out.blocks.push(ExecutedBlock {
                    block: b.block,
                    changes: state_changes(&executed.changes),
                    receipts: executed.receipts,
                }),
                Err(error) => {
                    out.bad = Some((index, b.block.hash, error));
                    break;
                }
            }
        }
        self.cache = chain.into_cache();
        let executed = &batch[..out.blocks.len()];
        let keep = executed.len().min(BLOCKHASH_WINDOW);
        self.recent.extend(&executed[executed.len() - keep..]);
        let excess = self.recent.len().saturating_sub(BLOCKHASH_WINDOW);
        self.recent.drain(..excess);
        match (&out.bad, out.blocks.last()) {
            // The cache holds a failed block's reads: start over.
            (Some(_), _) => self.reset(),
            (None, Some(last)) => {
                let end = (last.block.block.header.number, last.block.hash);
                self.head = Some(end);
                self.bases.push_back(end);
            }
            (None, None) => {}
        }
        Ok(out)
    }
}

/// revm's view for [`ExecuteAhead`]: the snapshot, with the hashes of blocks executed
/// ahead of it (`recent`, from earlier batches, and `batch`, the blocks being executed:
/// the EVM asks only for blocks before the one it executes).
#[derive(Debug)]
struct AheadDb<'a> {
    reader: &'a StateReader,
    recent: &'a VecDeque<(u64, B256)>,
    batch: &'a [(u64, B256)],
}

impl DatabaseRef for AheadDb<'_> {
    type Error = StateReadError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, StateReadError> {
        StoreDb(self.reader).basic_ref(address)
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, StateReadError> {
        StoreDb(self.reader).code_by_hash_ref(code_hash)
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, StateReadError> {
        StoreDb(self.reader).storage_ref(address, index)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, StateReadError> {
        let in_batch = self.batch.first().and_then(|(first, _)| {
            self.batch.get(usize::try_from(number.checked_sub(*first)?).ok()?)
        });
        let in_batch = in_batch.filter(|(n, _)| *n == number);
        match in_batch.or_else(|| self.recent.iter().rev().find(|(n, _)| *n == number)) {
            Some((_, hash)) => Ok(*hash),
            None => Ok(self.reader.block_hash(number)?.unwrap_or_default()),
        }
    }
}

impl StateRootWith for AheadDb<'_> {
    /// Never asked: batches before Byzantium are refused ([`AheadError::PreByzantium`]).
    fn state_root_with(&self, _: &StateChangeset) -> Result<B256, ExecutionError> {
        Err(ExecutionError::State("state roots per transaction are not kept ahead".into()))
    }
}

/// Stores a batch executed by [`ExecuteAhead`] in one transaction: each block with its
/// state changes and receipts, the state root checked per `roots` (see
/// [`crate::execute_and_store`] for why checking it at the batch's end is safe). The
/// store's best block must be the batch's parent ([`StoreError::NotExtending`]). At the
/// first block whose root differs, the blocks before it are stored and the error names
/// it; a batch whose blocks all store but that carries a bad block reports that one.
pub fn store_executed(
    store: &ChainStore,
    batch: ExecutedBatch,
    roots: crate::StateRootCheck,
) -> Result<(), StoreExecutionError> {
    store_blocks(store, batch.parent, &batch.blocks, roots)?;
    match batch.bad {
        Some((index, hash, error)) => Err(StoreExecutionError::BadBlock { index, hash, error }),
        None => Ok(()),
    }
}

fn store_blocks(
    store: &ChainStore,
    parent: (u64, B256),
    blocks: &[ExecutedBlock],
    roots: crate::StateRootCheck,
) -> Result<(), StoreExecutionError> {
    use crate::StateRootCheck;
    let run = |blocks: &[ExecutedBlock], roots| {
        store.write_state(|w| {
            if w.best() != parent {
                let (number, hash) = blocks
                    .first()
                    .map(|b| (b.block.block.header.number, b.block.hash))
                    .unwrap_or((parent.0 + 1, B256::ZERO));
                let reason = "the batch's parent is not the best block";
                return Err(StoreError::NotExtending { number, hash, reason }.into());
            }
            if roots == StateRootCheck::BatchEnd {
                w.append_batch(blocks)?;
            }
            for (index, b) in blocks.iter().enumerate() {
                if roots == StateRootCheck::EveryBlock {
                    w.append(b)?;
                }
                if roots == StateRootCheck::EveryBlock || index + 1 == blocks.len() {
                    let header = &b.block.block.header;
                    let root = w.state_root()?;
                    crate::store::check_state_root(header, root).map_err(|error| {
                        StoreExecutionError::BadBlock { index, hash: b.block.hash, error }
                    })?;
                }
            }
            Ok(())
        })
    };
    match run(blocks, roots) {
        // Some block is wrong (nothing was written): find it.
        Err(StoreExecutionError::BadBlock { .. }) if roots == StateRootCheck::BatchEnd => {
            store_blocks(store, parent, blocks, StateRootCheck::EveryBlock)
        }
        Err(StoreExecutionError::BadBlock { index, hash, error }) => {
            // Nothing was written: store the blocks before it.
            run(&blocks[..index], roots)?;
            Err(StoreExecutionError::BadBlock { index, hash, error })
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blockhash_sees_blocks_executed_ahead_of_the_snapshot() {
        let spec = ChainSpec::dev();
        let dir = std::env::temp_dir().join(format!("tern-ahead-hash-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ChainStore::init(&dir, &spec).unwrap();
        let reader = store.state().unwrap();
        let ahead = B256::repeat_byte(5);
        let recent = VecDeque::from([(1, B256::repeat_byte(1)), (2, ahead)]);
        let batch = [(3, B256::repeat_byte(3))];
        let db = AheadDb { reader: &reader, recent: &recent, batch: &batch };
        assert_eq!(db.block_hash_ref(2).unwrap(), ahead, "not stored yet");
        assert_eq!(db.block_hash_ref(0).unwrap(), spec.genesis_hash, "from the snapshot");
        assert_eq!(db.block_hash_ref(3).unwrap(), B256::repeat_byte(3), "in the batch");
        assert_eq!(db.block_hash_ref(4).unwrap(), B256::ZERO, "unknown");
        drop(reader);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
