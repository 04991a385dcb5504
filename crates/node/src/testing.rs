//! Helpers for tests and benchmarks of whole nodes.

use alloy_consensus::{Block, TxEnvelope};
use std::path::Path;
use tern_chainspec::{ChainSpec, DEV_VALIDATOR_KEY};
use tern_execution::chain::{build_chain, build_chain_from_genesis};
use tern_storage::ChainStore;
use tern_sync::{import_blocks, ImportError};

/// The secret key of the built-in dev chain's signer.
pub fn dev_key() -> secp256k1::SecretKey {
    let bytes = alloy_primitives::hex::decode(DEV_VALIDATOR_KEY).expect("hex");
    secp256k1::SecretKey::from_byte_array(bytes.try_into().expect("32 bytes")).expect("valid key")
}

/// `blocks` sealed dev-chain blocks with `txs` signed transfers each from the dev key,
/// executed: their state roots, receipts roots and gas used are the executed ones. Built
/// in a scratch store (incremental state roots), removed afterwards.
pub fn dev_chain(blocks: usize, txs: usize) -> Vec<Block<TxEnvelope>> {
    static SCRATCH: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SCRATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("tern-devchain-{}-{n}", std::process::id()));
    let spec = ChainSpec::dev();
    let key = dev_key();
    build_chain_from_genesis(&spec, &dir, &[key], blocks, txs, (&key, 0))
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

/// Builds `blocks` executed dev-chain blocks with `txs` signed transfers each into the
/// store in `datadir` (as [`dev_chain`] builds them).
pub fn prefill_dev_chain(
    datadir: &Path,
    blocks: usize,
    txs: usize,
) -> Result<(), tern_execution::StoreExecutionError> {
    let spec = ChainSpec::dev();
    let store = ChainStore::init(datadir, &spec)?;
    let key = dev_key();
    build_chain(&spec, &store, &[key], blocks, txs, (&key, 0))?;
    Ok(())
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
        discovery: None,
    }
}

/// Posts one JSON-RPC body (a call or a batch) to the HTTP server at `addr` over a fresh
/// connection and returns the JSON answer; panics if the server does not answer with
/// JSON.
pub async fn rpc_post(addr: std::net::SocketAddr, body: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect to the RPC server");
    let req = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("read response");
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (_, body) = text.split_once("\r\n\r\n").expect("HTTP response with a body");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("response is not JSON ({e}): {body}"))
}

/// Calls `method` with `params` over HTTP at `addr`; the whole answer (`result` or
/// `error`).
pub async fn rpc_call(
    addr: std::net::SocketAddr,
    method: &str,
    params: serde_json::Value,
) -> serde_json::Value {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    rpc_post(addr, &body.to_string()).await
}

/// A signed dev-chain EIP-1559 transfer of `value` wei from the dev key to `to`, with
/// `nonce`, a 100 gwei fee cap and a `tip_gwei` tip.
pub fn dev_transfer(
    nonce: u64,
    to: alloy_primitives::Address,
    value: u64,
    tip_gwei: u128,
) -> TxEnvelope {
    let tx = alloy_consensus::TxEip1559 {
        chain_id: ChainSpec::dev().chain_id,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: tip_gwei * 1_000_000_000,
        to: alloy_primitives::TxKind::Call(to),
        value: alloy_primitives::U256::from(value),
        ..Default::default()
    };
    tern_consensus::chain_gen::sign_tx(tx, &dev_key()).into()
}
