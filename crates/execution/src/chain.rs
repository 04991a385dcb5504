//! Chains for tests and benchmarks whose blocks execute: built by
//! `tern_consensus::chain_gen`, executed on a [`MemState`], and sealed with the executed
//! state root, receipts root, logs bloom and gas used.

use crate::{execute_block, ExecutionError, MemState};
use alloy_consensus::{Block, Header, TxEnvelope};
use alloy_primitives::B256;
use secp256k1::SecretKey;
use tern_chainspec::ChainSpec;
use tern_consensus::{address_of, chain_gen::generate_chain, clique::seal_header, recover_senders};

/// The genesis allocations of `spec` as a [`MemState`].
pub fn genesis_state(spec: &ChainSpec) -> MemState {
    let mut state = MemState::default();
    for (address, a) in &spec.genesis.alloc {
        let storage = a.storage.iter().flatten().map(|(k, v)| ((*k).into(), (*v).into()));
        let code = a.code.clone().unwrap_or_default();
        state.insert(*address, a.nonce.unwrap_or_default(), a.balance, &code, storage);
    }
    state.block_hashes.insert(spec.genesis_header.number, spec.genesis_hash);
    state
}

/// `count` Clique blocks on `parent` (hash, header) whose state is `state`, each with
/// `txs` transfers from `sender` (key, next nonce), sealed in turn by `signer_keys`;
/// `state` ends at the last block. A block that does not execute (a sender without the
/// funds, say) is an error. Panics where [`generate_chain`] does: a missing signer key or
/// a chain that is not Clique.
pub fn executed_chain(
    spec: &ChainSpec,
    signer_keys: &[SecretKey],
    parent: (B256, &Header),
    state: &mut MemState,
    count: usize,
    txs: usize,
    sender: (&SecretKey, u64),
) -> Result<Vec<Block<TxEnvelope>>, ExecutionError> {
    let (mut parent_hash, parent) = parent;
    let mut parent = parent.clone();
    let (sender, mut nonce) = sender;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let mut block =
            generate_chain(spec, signer_keys, (parent_hash, &parent), 1, txs, (sender, nonce))
                .pop()
                .expect("one block");
        nonce += txs as u64;
        let signer = tern_consensus::clique::recover_signer(&block.header).expect("sealed");
        let key = signer_keys.iter().find(|k| address_of(k) == signer).expect("signer key");
        let senders = recover_senders(&block.body.transactions).expect("signed");
        let executed = execute_block(spec, state, &block, &senders, signer)?;
        if executed.receipts.iter().any(|r| !r.status()) {
            return Err(ExecutionError::Evm {
                number: block.header.number,
                reason: "a generated transfer failed".into(),
            });
        }
        state.apply(&executed.changes);
        let header = &mut block.header;
        executed.fill_header(header);
        header.state_root = state.state_root();
        seal_header(header, key).expect("room for the seal");
        parent_hash = header.hash_slow();
        state.block_hashes.insert(header.number, parent_hash);
        parent = header.clone();
        out.push(block);
    }
    Ok(out)
}

/// Blocks per write transaction of [`build_chain`].
const BUILD_BATCH: usize = 256;

/// Like [`executed_chain`], but built on and into `store` (its best block is the parent):
/// each block executed on the stored state, its state root computed incrementally by the
/// store's tries, then sealed (on Clique) and stored with its state, [`BUILD_BATCH`] blocks per write
/// transaction. For long chains or large states (from Cancun on, the system contracts'
/// storage grows every block, which [`MemState`]'s full rehash makes quadratic). Returns
/// the blocks.
pub fn build_chain(
    spec: &ChainSpec,
    store: &tern_storage::ChainStore,
    signer_keys: &[SecretKey],
    count: usize,
    txs: usize,
    sender: (&SecretKey, u64),
) -> Result<Vec<Block<TxEnvelope>>, crate::StoreExecutionError> {
    use crate::{store::state_changes, StoreDb};
    let (sender, mut nonce) = sender;
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let batch = BUILD_BATCH.min(count - out.len());
        let built = store.write_state(|w| {
            let mut blocks = Vec::with_capacity(batch);
            for _ in 0..batch {
                let (parent_hash, parent) = {
                    let (_, hash) = w.best();
                    (hash, w.header(hash)?.ok_or(tern_storage::StoreError::NotInitialised)?)
                };
                let mut block = generate_chain(
                    spec,
                    signer_keys,
                    (parent_hash, &parent),
                    1,
                    txs,
                    (sender, nonce),
                )
                .pop()
                .expect("one block");
                nonce += txs as u64;
                let clique = matches!(spec.consensus, tern_chainspec::Consensus::Clique { .. });
                let (signer, key) = if clique {
                    let signer = tern_consensus::clique::recover_signer(&block.header)
                        .expect("generated blocks are sealed");
                    (signer, signer_keys.iter().find(|k| address_of(k) == signer))
                } else {
                    (block.header.beneficiary, None)
                };
                let senders = recover_senders(&block.body.transactions).expect("signed");
                let executed = execute_block(spec, &StoreDb(&*w), &block, &senders, signer)
                    .map_err(|error| crate::StoreExecutionError::BadBlock {
                        index: blocks.len(),
                        hash: B256::ZERO,
                        error,
                    })?;
                let header = &mut block.header;
                executed.fill_header(header);
                header.state_root = w.stage(&state_changes(&executed.changes))?;
                if clique {
                    seal_header(header, key.expect("signer key given")).expect("room for the seal");
                }
                let sealed = tern_storage::SealedBlock::seal(block);
                w.finish(&sealed, &executed.receipts)?;
                blocks.push(sealed.block);
            }
            Ok::<_, crate::StoreExecutionError>(blocks)
        })?;
        out.extend(built);
    }
    Ok(out)
}

/// [`build_chain`] from `spec`'s genesis in a scratch store at `scratch` (created there,
/// removed afterwards, also on error).
pub fn build_chain_from_genesis(
    spec: &ChainSpec,
    scratch: &std::path::Path,
    signer_keys: &[SecretKey],
    count: usize,
    txs: usize,
    sender: (&SecretKey, u64),
) -> Result<Vec<Block<TxEnvelope>>, crate::StoreExecutionError> {
    let _ = std::fs::remove_dir_all(scratch);
    let built = tern_storage::ChainStore::init(scratch, spec)
        .map_err(crate::StoreExecutionError::from)
        .and_then(|store| build_chain(spec, &store, signer_keys, count, txs, sender));
    let _ = std::fs::remove_dir_all(scratch);
    built
}
