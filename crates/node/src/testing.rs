//! Helpers for tests and benchmarks of whole nodes.

use alloy_consensus::{Block, TxEnvelope};
use std::path::Path;
use tern_chainspec::{ChainSpec, DEV_VALIDATOR_KEY};
use tern_execution::chain::{executed_chain, genesis_state};
use tern_storage::ChainStore;
use tern_sync::{import_blocks, ImportError};

/// The secret key of the built-in dev chain's signer.
pub fn dev_key() -> secp256k1::SecretKey {
    let bytes = alloy_primitives::hex::decode(DEV_VALIDATOR_KEY).expect("hex");
    secp256k1::SecretKey::from_byte_array(bytes.try_into().expect("32 bytes")).expect("valid key")
}

/// `blocks` sealed dev-chain blocks with `txs` signed transfers each from the dev key,
/// executed: their state roots, receipts roots and gas used are the executed ones.
pub fn dev_chain(blocks: usize, txs: usize) -> Vec<Block<TxEnvelope>> {
    let spec = ChainSpec::dev();
    let key = dev_key();
    let genesis = (spec.genesis_hash, &spec.genesis_header);
    let mut state = genesis_state(&spec);
    executed_chain(&spec, &[key], genesis, &mut state, blocks, txs, (&key, 0))
        .expect("the dev key is funded for the dev chain's transfers")
}

/// Initialises a dev-chain store in `datadir` and imports `blocks` into it (verified and
/// executed, as sync would store them).
pub fn store_dev_chain(datadir: &Path, blocks: &[Block<TxEnvelope>]) -> Result<(), ImportError> {
    let spec = ChainSpec::dev();
    let store = ChainStore::init(datadir, &spec)?;
    // Headers are checked against a clock; these are made-up times, possibly ahead.
    import_blocks(&spec, &store, blocks.to_vec(), 1000, u64::MAX / 2)?;
    Ok(())
}

/// Stores `blocks` executed dev-chain blocks with `txs` signed transfers each in
/// `datadir` (see [`dev_chain`]).
pub fn prefill_dev_chain(datadir: &Path, blocks: usize, txs: usize) -> Result<(), ImportError> {
    store_dev_chain(datadir, &dev_chain(blocks, txs))
}

/// A dev-chain node on 127.0.0.1 (any port) in `datadir`, dialing `bootnodes`, sealing
/// with the dev key if `validator`, with default sync and pool settings and no RPC.
pub fn node_config(
    datadir: std::path::PathBuf,
    bootnodes: Vec<tern_p2p::Enode>,
    validator: bool,
) -> crate::NodeConfig {
    let mut network = tern_network::NetworkConfig::new(tern_p2p::generate_secret_key());
    network.listen_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    network.bootnodes = bootnodes;
    crate::NodeConfig {
        datadir,
        spec: ChainSpec::dev(),
        network,
        validator_key: validator.then(dev_key),
        sync: Default::default(),
        http: None,
        metrics: None,
        txpool: Default::default(),
        rpc: Default::default(),
    }
}
