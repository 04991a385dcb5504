//! Executing blocks on the chain store's state and storing them with it.

use crate::{
    execute::ChainEvm, execute_candidates, BlockCandidates, Built, Executed, ExecutionError,
};
use alloy_primitives::{Address, B256, U256};
use revm::{
    bytecode::Bytecode,
    database::{states::StateChangeset, DatabaseRef},
    database_interface::DBErrorMarker,
    state::AccountInfo,
};
use tern_chainspec::ChainSpec;
use tern_storage::{
    Account, ChainStore, ExecutedBlock, SealedBlock, StateChanges, StateRead, StorageChange,
    StoreError,
};

/// A state read that failed (the store's error, as text: revm needs `Clone`-free,
/// thread-safe errors).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StateReadError(String);

impl DBErrorMarker for StateReadError {}

impl From<StoreError> for StateReadError {
    fn from(e: StoreError) -> Self {
        Self(e.to_string())
    }
}

/// revm's view of a [`StateRead`] (the store's state at its best block, or a write
/// transaction's).
#[derive(Debug)]
pub struct StoreDb<'a, S>(pub &'a S);

impl<S: StateRead> DatabaseRef for StoreDb<'_, S> {
    type Error = StateReadError;

    /// The account with its code: revm's system calls run the code an account carries.
    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, StateReadError> {
        let Some(a) = self.0.account(address)? else { return Ok(None) };
        let code = self.0.code(a.code_hash)?.map(Bytecode::new_raw);
        Ok(Some(AccountInfo {
            balance: a.balance,
            nonce: a.nonce,
            code_hash: a.code_hash,
            code,
            ..Default::default()
        }))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, StateReadError> {
        Ok(self.0.code(code_hash)?.map(Bytecode::new_raw).unwrap_or_default())
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, StateReadError> {
        Ok(self.0.storage(address, index)?)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, StateReadError> {
        Ok(self.0.block_hash(number)?.unwrap_or_default())
    }
}

impl<S: StateRead> crate::execute::StateRootWith for StoreDb<'_, S> {
    fn state_root_with(&self, changes: &StateChangeset) -> Result<B256, ExecutionError> {
        self.0
            .state_root_with(&state_changes(changes))
            .map_err(|e| ExecutionError::State(e.to_string()))
    }
}

/// A verified block ready to execute: the block, its transactions' senders and the
/// account that receives its fees (the header's beneficiary; on Clique the signer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockToExecute {
    /// The block.
    pub block: SealedBlock,
    /// One sender per transaction.
    pub senders: Vec<Address>,
    /// Fee recipient.
    pub beneficiary: Address,
}

impl AsRef<BlockToExecute> for BlockToExecute {
    fn as_ref(&self) -> &BlockToExecute {
        self
    }
}

/// Why [`execute_and_store`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum StoreExecutionError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Block `index` of the batch does not execute to its header; the blocks before it
    /// were stored.
    #[error("{error}")]
    BadBlock {
        /// Position in the batch.
        index: usize,
        /// Its hash.
        hash: B256,
        /// What differs.
        error: ExecutionError,
    },
}

/// revm's changes in the store's terms, sorted by address and slot (the change-set rows
/// of a block then append in key order).
pub fn state_changes(c: &StateChangeset) -> StateChanges {
    let account = |info: &AccountInfo| Account {
        nonce: info.nonce,
        balance: info.balance,
        code_hash: info.code_hash,
    };
    let mut accounts: Vec<_> =
        c.accounts.iter().map(|(a, info)| (*a, info.as_ref().map(account))).collect();
    accounts.sort_unstable_by_key(|(address, _)| *address);
    let mut storage: Vec<StorageChange> = c
        .storage
        .iter()
        .map(|s| {
            let mut slots = s.storage.clone();
            slots.sort_unstable_by_key(|(slot, _)| *slot);
            StorageChange { address: s.address, wipe: s.wipe_storage, slots }
        })
        .collect();
    storage.sort_unstable_by_key(|s| s.address);
    StateChanges {
        accounts,
        storage,
        codes: c.contracts.iter().map(|(h, code)| (*h, code.original_bytes())).collect(),
    }
}

/// When [`execute_and_store`] checks state roots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateRootCheck {
    /// After every block: the tries are updated and the root compared per block (the
    /// tip, small batches).
    EveryBlock,
    /// Once, after the batch's last block: the tries are updated once for the whole
    /// batch (bulk sync, as reth's pipeline checks the root at the end of a range). A
    /// batch whose root differs is executed again checking every block, so the first bad
    /// block is named and only the blocks before it are stored.
    BatchEnd,
}

impl StateRootCheck {
    /// Batches of at least this many blocks are checked at their end.
    pub const BATCH_END_MIN_BLOCKS: usize = 64;

    /// [`StateRootCheck::BatchEnd`] for batches of at least
    /// [`Self::BATCH_END_MIN_BLOCKS`] blocks unless `every_block` is set.
    pub fn for_batch(blocks: usize, every_block: bool) -> Self {
        if every_block || blocks < Self::BATCH_END_MIN_BLOCKS {
            Self::EveryBlock
        } else {
            Self::BatchEnd
        }
    }
}

/// Executes `blocks` in order on the store's state (which must be at the best block, the
/// first block's parent: otherwise [`StoreError::NotExtending`], before anything is
/// executed) and stores each with its state changes and receipts, in one
/// transaction. Each block's gas used, receipts root, logs bloom and requests hash are
/// checked, and its state root after it (`roots`: [`StateRootCheck::EveryBlock`]) or the
/// last block's after the batch ([`StateRootCheck::BatchEnd`]); at the first block that
/// differs, the blocks before it are stored and the error names the block and the
/// field. Returns the executions, in order.
///
/// Why checking the root only at the end of a batch is safe: the final root commits to
/// the whole state after the batch, which is a function of the stored state and every
/// block's transactions, all executed here; a wrong block changes that state and fails
/// the final check (then every block is checked to find it). What it does not catch is a
/// header whose own state root field is wrong while the chain's later state is right:
/// such a block can only come from its producer (a Clique signer's seal or, after the
/// merge, the chain the consensus layer chose), it executes correctly, and nodes
/// following the tip (which check every block) would refuse it. Sync checks every block
/// at the tip and can be told to always do so (`--sync.every-state-root`).
pub fn execute_and_store<B: AsRef<BlockToExecute>>(
    spec: &ChainSpec,
    store: &ChainStore,
    blocks: &[B],
    roots: StateRootCheck,
) -> Result<Vec<Executed>, StoreExecutionError> {
    let run = |blocks: &[B]| {
        store.write_state(|w| {
            let mut out = Vec::with_capacity(blocks.len());
            let mut cache = crate::execute::ExecutionCache::default();
            for (index, b) in blocks.iter().map(AsRef::as_ref).enumerate() {
                let bad =
                    |error| StoreExecutionError::BadBlock { index, hash: b.block.hash, error };
                let header = &b.block.block.header;
                // Executed on another head's state, a good block would look bad.
                let best = w.best();
                if header.parent_hash != best.1 || header.number != best.0 + 1 {
                    let reason = "not the child of the best block";
                    let hash = b.block.hash;
                    return Err(
                        StoreError::NotExtending { number: header.number, hash, reason }.into()
                    );
                }
                let db = StoreDb(&*w);
                let mut chain = ChainEvm::new(&db, Some(std::mem::take(&mut cache)));
                let executed = chain.execute(spec, &b.block.block, &b.senders, b.beneficiary);
                cache = chain.into_cache();
                let mut executed = executed.map_err(bad)?;
                executed.verify(header).map_err(bad)?;
                let stored = ExecutedBlock {
                    block: b.block.clone(),
                    changes: state_changes(&executed.changes),
                    receipts: std::mem::take(&mut executed.receipts),
                };
                w.append(&stored)?;
                executed.receipts = stored.receipts;
                if roots == StateRootCheck::EveryBlock || index + 1 == blocks.len() {
                    let started = std::time::Instant::now();
                    let root = w.state_root()?;
                    executed.state_root_time = started.elapsed();
                    check_state_root(header, root).map_err(bad)?;
                }
                out.push(executed);
            }
            Ok(out)
        })
    };
    match run(blocks) {
        Err(StoreExecutionError::BadBlock {
            error: ExecutionError::Mismatch { field: "state_root", .. },
            ..
        }) if roots == StateRootCheck::BatchEnd => {
            // Some block of the batch is wrong (nothing was written): find it.
            execute_and_store(spec, store, blocks, StateRootCheck::EveryBlock)
        }
        Err(StoreExecutionError::BadBlock { index, hash, error }) => {
            // Nothing was written: store the good blocks before the bad one (their own
            // roots checked as the batch's were; an earlier bad block found there is the
            // one reported).
            execute_and_store(spec, store, &blocks[..index], roots)?;
            Err(StoreExecutionError::BadBlock { index, hash, error })
        }
        other => other,
    }
}

/// `root` (the state root after the block with `header`, as computed) against the
/// header's.
pub(crate) fn check_state_root(
    header: &alloy_consensus::Header,
    root: B256,
) -> Result<(), ExecutionError> {
    if root == header.state_root {
        return Ok(());
    }
    Err(ExecutionError::Mismatch {
        number: header.number,
        field: "state_root",
        got: header.state_root.to_string(),
        expected: root.to_string(),
    })
}

/// Why [`build_and_store`] failed; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The store failed (or the best block moved: [`StoreError::NotExtending`]).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The block does not execute.
    #[error(transparent)]
    Execution(#[from] ExecutionError),
    /// Sealing failed.
    #[error("sealing failed: {0}")]
    Seal(#[from] tern_consensus::ConsensusError),
}

/// Builds a block on the store's best block: fills `block` (a template with an empty
/// body whose parent is the best block) from `candidates` until it is full, they run out
/// or `deadline` passes, fees to `beneficiary`; fills in the header's transactions root,
/// gas used, receipts root, logs bloom, requests hash (where the header has one) and
/// state root, lets `seal` finish the header (a Clique signature) and stores the block
/// with its state, in one transaction. Returns the stored block and how it was filled.
pub fn build_and_store(
    spec: &ChainSpec,
    store: &ChainStore,
    mut block: alloy_consensus::Block<alloy_consensus::TxEnvelope>,
    candidates: &mut dyn BlockCandidates,
    beneficiary: Address,
    deadline: std::time::Instant,
    seal: impl FnOnce(&mut alloy_consensus::Header) -> Result<(), tern_consensus::ConsensusError>,
) -> Result<(SealedBlock, Built), BuildError> {
    store.write_state(|w| {
        let db = StoreDb(&*w);
        let (txs, built) =
            execute_candidates(spec, &db, &block.header, candidates, beneficiary, deadline)?;
        let executed = &built.executed;
        let header = &mut block.header;
        header.transactions_root = alloy_consensus::proofs::calculate_transaction_root(&txs);
        executed.fill_header(header);
        header.state_root = w.stage(&state_changes(&executed.changes))?;
        seal(header)?;
        block.body.transactions = txs;
        let sealed = SealedBlock::seal(block);
        w.finish(&sealed, &built.executed.receipts)?;
        Ok((sealed, built))
    })
}
