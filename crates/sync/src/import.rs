//! Importing a list of blocks (an RLP chain file, or the local floor of the sync
//! benchmark): the same verification as sync, without the network.

use alloy_consensus::{Block, Header, TxEnvelope};
use tern_chainspec::{ChainSpec, Consensus};
use tern_consensus::{
    clique::recover_signers, validate_body, validate_header, ConsensusError, Snapshot,
};
use tern_storage::{ChainStore, SealedBlock, StoreError};

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A block failed verification; everything before it was committed.
    #[error("block {number} is invalid: {error}")]
    Invalid {
        /// Its number.
        number: u64,
        /// The rule it breaks.
        error: ConsensusError,
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

/// Verifies `blocks` (ascending; blocks at or below our head are skipped) exactly as sync
/// does and commits them in batches of `batch`. Returns how many were imported.
pub fn import_blocks(
    spec: &ChainSpec,
    store: &ChainStore,
    blocks: Vec<Block<TxEnvelope>>,
    batch: usize,
    now: u64,
) -> Result<u64, ImportError> {
    let (best, best_hash) = store.best_block()?;
    let mut parent: Header = store.header(best_hash)?.ok_or(StoreError::NotInitialised)?;
    let mut parent_hash = best_hash;
    let mut snapshot = match &spec.consensus {
        Consensus::Clique { signers, epoch, .. } => {
            let window = signers.len() as u64 / 2;
            let recent = store.headers_range(best.saturating_sub(window) + 1, window)?;
            Some(
                Snapshot::with_recent(signers.clone(), *epoch, &recent)
                    .map_err(|error| ImportError::Invalid { number: best, error })?,
            )
        }
        _ => None,
    };
    let blocks: Vec<Block<TxEnvelope>> =
        blocks.into_iter().filter(|b| b.header.number > best).collect();
    if let Some(first) = blocks.first() {
        if first.header.number != best + 1 {
            return Err(ImportError::Gap { number: first.header.number, best });
        }
    }
    let mut imported = 0;
    let mut chunks = blocks.into_iter().peekable();
    while chunks.peek().is_some() {
        let chunk: Vec<Block<TxEnvelope>> = chunks.by_ref().take(batch.max(1)).collect();
        let headers: Vec<Header> = chunk.iter().map(|b| b.header.clone()).collect();
        let signers = if snapshot.is_some() { recover_signers(&headers) } else { Vec::new() };
        let mut sealed = Vec::with_capacity(chunk.len());
        for (i, block) in chunk.into_iter().enumerate() {
            let number = block.header.number;
            let invalid = |error| ImportError::Invalid { number, error };
            validate_header(spec, &block.header, &parent, parent_hash, now).map_err(invalid)?;
            if let Some(snap) = &mut snapshot {
                snap.verify_recovered(&block.header, signers[i].clone()).map_err(invalid)?;
            }
            validate_body(spec, &block.header, &block.body).map_err(invalid)?;
            let b = SealedBlock::seal(block);
            parent_hash = b.hash;
            parent = b.block.header.clone();
            sealed.push(b);
        }
        store.insert_blocks(&sealed)?;
        imported += sealed.len() as u64;
    }
    Ok(imported)
}
