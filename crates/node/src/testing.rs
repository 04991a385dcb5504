//! Helpers for tests and benchmarks of whole nodes.

use alloy_consensus::{Block, TxEnvelope};
use std::path::Path;
use tern_chainspec::{ChainSpec, DEV_VALIDATOR_KEY};
use tern_consensus::chain_gen::generate_chain;
use tern_storage::{ChainStore, SealedBlock, StoreError};

/// The secret key of the built-in dev chain's signer.
pub fn dev_key() -> secp256k1::SecretKey {
    let bytes = alloy_primitives::hex::decode(DEV_VALIDATOR_KEY).expect("hex");
    secp256k1::SecretKey::from_byte_array(bytes.try_into().expect("32 bytes")).expect("valid key")
}

/// `blocks` sealed dev-chain blocks with `txs` signed transfers each, as the dev
/// validator would produce them (sender key derived from `seed`).
pub fn dev_chain(blocks: usize, txs: usize, seed: u8) -> Vec<Block<TxEnvelope>> {
    let spec = ChainSpec::dev();
    let sender = secp256k1::SecretKey::from_byte_array([seed.max(1); 32]).expect("valid key");
    generate_chain(
        &spec,
        &[dev_key()],
        (spec.genesis_hash, &spec.genesis_header),
        blocks,
        txs,
        (&sender, 0),
    )
}

/// Initialises a dev-chain store in `datadir` holding `blocks`.
pub fn store_dev_chain(datadir: &Path, blocks: &[Block<TxEnvelope>]) -> Result<(), StoreError> {
    let store = ChainStore::init(datadir, &ChainSpec::dev())?;
    let sealed: Vec<SealedBlock> = blocks.iter().cloned().map(SealedBlock::seal).collect();
    for c in sealed.chunks(1000) {
        store.insert_blocks(c)?;
    }
    Ok(())
}

/// Stores `blocks` sealed dev-chain blocks with `txs` signed transfers each in `datadir`
/// (see [`dev_chain`]).
pub fn prefill_dev_chain(
    datadir: &Path,
    blocks: usize,
    txs: usize,
    seed: u8,
) -> Result<(), StoreError> {
    store_dev_chain(datadir, &dev_chain(blocks, txs, seed))
}
