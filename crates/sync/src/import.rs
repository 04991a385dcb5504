//! Importing a list of blocks (an RLP chain file, or the local floor of the sync
//! benchmark): the same verification as sync, without the network, and every block
//! executed before it is stored.

use alloy_consensus::{Block, Header, TxEnvelope};
use tern_chainspec::ChainSpec;
use tern_consensus::{clique::recover_signers, validate_body, validate_header, ConsensusError};
use tern_execution::{
    execute_and_store, BlockToExecute, ExecutionError, StateRootCheck, StoreExecutionError,
};
use tern_storage::{ChainStore, SealedBlock, StoreError};

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The Clique signer state at our head could not be found.
    #[error(transparent)]
    Snapshot(#[from] tern_consensus::SnapshotError),
    /// A block failed verification; everything before it was committed.
    #[error("block {number} is invalid: {error}")]
    Invalid {
        /// Its number.
        number: u64,
        /// The rule it breaks.
        error: ConsensusError,
    },
    /// A block does not execute to what its header says (gas used, receipts root, logs
    /// bloom, requests hash or state root); everything before it was committed.
    #[error("block {number} is invalid: {error}")]
    Execution {
        /// Its number.
        number: u64,
        /// What differs.
        error: ExecutionError,
    },
    /// The blocks do not continue the stored chain.
    #[error("block {number} does not extend the stored best block {best}")]
    Gap {
        /// The first block's number.
        number: u64,
        /// Our best block.
        best: u64,
    },
}

/// Gas per import transaction at most (about; the block that crosses it is included): a
/// transaction's changes stay in memory until it commits, so heavy blocks commit in
/// smaller batches (≈ 4 s of execution at 250 Mgas/s).
pub const IMPORT_BATCH_GAS: u64 = 1_000_000_000;

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportStats {
    /// Blocks imported.
    pub blocks: u64,
    /// Their transactions.
    pub transactions: u64,
    /// Their gas used.
    pub gas: u64,
    /// Time spent computing state roots.
    pub state_root_time: std::time::Duration,
}

/// Verifies `blocks` (ascending; blocks at or below our head are skipped) exactly as sync
/// does, executes each on the stored state (state roots checked as
/// [`StateRootCheck::for_batch`] says: per block for small batches) and commits them in
/// batches of `batch` blocks (fewer when they reach [`IMPORT_BATCH_GAS`]). Returns what was imported; on an invalid block, the blocks before
/// it are committed.
pub fn import_blocks(
    spec: &ChainSpec,
    store: &ChainStore,
    blocks: Vec<Block<TxEnvelope>>,
    batch: usize,
    now: u64,
) -> Result<ImportStats, ImportError> {
    let (best, best_hash) = store.best_block()?;
    let mut parent: Header = store.header(best_hash)?.ok_or(StoreError::NotInitialised)?;
    let mut parent_hash = best_hash;
    let mut snapshot = match crate::CliqueSnapshots::new(spec, store.clone()) {
        Some(snapshots) => Some(snapshots.after(best_hash)?),
        None => None,
    };
    let blocks: Vec<Block<TxEnvelope>> =
        blocks.into_iter().filter(|b| b.header.number > best).collect();
    if let Some(first) = blocks.first() {
        if first.header.number != best + 1 {
            return Err(ImportError::Gap { number: first.header.number, best });
        }
    }
    let mut imported = ImportStats::default();
    let mut chunks = blocks.into_iter().peekable();
    while chunks.peek().is_some() {
        // At most `batch` blocks and about IMPORT_BATCH_GAS gas per transaction: a batch's
        // changes stay in memory until it commits.
        let mut chunk: Vec<Block<TxEnvelope>> = Vec::new();
        let mut gas = 0u64;
        while chunk.len() < batch.max(1) && gas < IMPORT_BATCH_GAS {
            let Some(block) = chunks.next() else { break };
            gas += block.header.gas_used;
            chunk.push(block);
        }
        let headers: Vec<Header> = chunk.iter().map(|b| b.header.clone()).collect();
        let signers = if snapshot.is_some() { recover_signers(&headers) } else { Vec::new() };
        let mut verified = Vec::with_capacity(chunk.len());
        let mut invalid = None;
        for (i, block) in chunk.into_iter().enumerate() {
            let number = block.header.number;
            let checked = (|| {
                validate_header(spec, &block.header, &parent, parent_hash, now)?;
                let signer = match &mut snapshot {
                    Some(snap) => Some(snap.verify_recovered(&block.header, signers[i].clone())?),
                    None => None,
                };
                let senders = validate_body(spec, &block.header, &block.body)?;
                Ok((signer, senders))
            })();
            let (signer, senders) = match checked {
                Ok(ok) => ok,
                Err(error) => {
                    invalid = Some(ImportError::Invalid { number, error });
                    break;
                }
            };
            let beneficiary = signer.unwrap_or(block.header.beneficiary);
            let b = SealedBlock::seal(block);
            parent_hash = b.hash;
            parent = b.block.header.clone();
            verified.push(BlockToExecute { block: b, senders, beneficiary });
        }
        let roots = StateRootCheck::for_batch(verified.len(), false);
        match execute_and_store(spec, store, &verified, roots) {
            Ok(executed) => {
                imported.blocks += verified.len() as u64;
                for (b, e) in verified.iter().zip(&executed) {
                    imported.transactions += b.block.block.body.transactions.len() as u64;
                    imported.gas += e.gas_used;
                    imported.state_root_time += e.state_root_time;
                }
            }
            Err(StoreExecutionError::Store(e)) => return Err(e.into()),
            Err(StoreExecutionError::BadBlock { index, error, .. }) => {
                let number = verified[index].block.block.header.number;
                return Err(ImportError::Execution { number, error });
            }
        }
        if let Some(e) = invalid {
            return Err(e);
        }
    }
    Ok(imported)
}
