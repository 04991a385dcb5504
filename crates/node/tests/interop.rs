//! `@ethereumjs/devp2p` (driven by `tests/interop/peer.mjs`) as a peer of a Tern node
//! with transactions in its pool: told of the pool by hash when it connects
//! (NewPooledTransactionHashes with types and sizes), sent new ones whole (Transactions).

#[path = "../../../tests/interop/harness.rs"]
mod harness;

use alloy_consensus::{TxEnvelope, Typed2718};
use alloy_eips::Encodable2718;
use alloy_primitives::Address;
use harness::{event, spawn_peer};
use tern_chainspec::ChainSpec;
use tern_node::{
    testing::{dev_transfer, node_config},
    Node,
};

fn transfer(nonce: u64) -> TxEnvelope {
    dev_transfer(nonce, Address::repeat_byte(0x55), 1, 1)
}

fn strings(v: &serde_json::Value, key: &str) -> Vec<String> {
    v[key].as_array().unwrap().iter().map(|h| h.as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ethereumjs_is_told_of_pooled_and_new_transactions() {
    let dir = std::env::temp_dir().join(format!("tern-node-interop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let spec = ChainSpec::dev();
    let node = Node::start(node_config(dir.join("db"), vec![], false)).await.unwrap();
    let pooled: Vec<TxEnvelope> = (0..3).map(transfer).collect();
    for r in node.pool.add(pooled.clone()) {
        r.unwrap();
    }
    let genesis = dir.join("genesis.json");
    std::fs::write(&genesis, serde_json::to_string(&spec.genesis).unwrap()).unwrap();
    let (mut child, mut lines) = spawn_peer(&[
        "dial",
        &node.network.local_enode().to_string(),
        "--genesis",
        genesis.to_str().unwrap(),
        "--genesis-hash",
        &spec.genesis_hash.to_string(),
        "--await-txs",
        "5",
    ]);
    event(&mut lines, "status").await;
    // The pool, announced by hash with each transaction's type and size.
    let announced = event(&mut lines, "tx_hashes").await;
    let mut hashes = strings(&announced, "hashes");
    let mut expected: Vec<String> = pooled.iter().map(|t| t.tx_hash().to_string()).collect();
    hashes.sort();
    expected.sort();
    assert_eq!(hashes, expected);
    let types: Vec<u64> =
        announced["types"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect();
    let sizes: Vec<u64> =
        announced["sizes"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect();
    for (i, h) in strings(&announced, "hashes").iter().enumerate() {
        let tx = pooled.iter().find(|t| t.tx_hash().to_string() == *h).unwrap();
        assert_eq!((types[i], sizes[i]), (u64::from(tx.ty()), tx.encode_2718_len() as u64));
    }
    // New transactions go whole to √1 = 1 peer.
    let new: Vec<TxEnvelope> = (3..5).map(transfer).collect();
    for r in node.pool.add(new.clone()) {
        r.unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 2 {
        got.extend(strings(&event(&mut lines, "txs").await, "hashes"));
    }
    let expected: Vec<String> = new.iter().map(|t| t.tx_hash().to_string()).collect();
    assert_eq!(got, expected);
    assert!(child.wait().await.unwrap().success());
    node.stop().await.unwrap();
}
