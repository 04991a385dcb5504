//! `@ethereumjs/devp2p` (driven by `tests/interop/peer.mjs`) fetches headers and bodies
//! from a tern node holding a small chain and gets exactly what the store holds.

mod common;
#[path = "../../../tests/interop/harness.rs"]
mod harness;

use alloy_eips::eip1898::HashOrNumber;
use alloy_primitives::keccak256;
use common::*;
use harness::{event, spawn_peer};
use tern_chainspec::ChainSpec;
use tern_eth_wire::GetBlockHeaders;
use tern_network::{serve_bodies, serve_headers};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ethereumjs_fetches_headers_and_bodies() {
    let spec = ChainSpec::dev();
    let blocks = dev_chain(20, 2);
    let store = store_with(&spec, &blocks, "interop");
    let (node, _events) = common::node(config(), &spec, store.clone()).await;
    let genesis = tmp_dir("genesis.json");
    std::fs::write(&genesis, serde_json::to_string(&spec.genesis).unwrap()).unwrap();

    let hash10 = blocks[9].header.hash_slow();
    let queries = [
        GetBlockHeaders { start: HashOrNumber::Number(1), limit: 5, skip: 1, reverse: false },
        GetBlockHeaders { start: HashOrNumber::Hash(hash10), limit: 4, skip: 2, reverse: true },
        GetBlockHeaders { start: HashOrNumber::Number(18), limit: 10, skip: 0, reverse: false },
    ];
    let body_hashes: Vec<_> = blocks[3..8].iter().map(|b| b.header.hash_slow()).collect();
    let fetch = serde_json::json!([
        {"headers": {"start": 1, "limit": 5, "skip": 1, "reverse": false}},
        {"headers": {"start": hash10.to_string(), "limit": 4, "skip": 2, "reverse": true}},
        {"headers": {"start": 18, "limit": 10, "skip": 0, "reverse": false}},
        {"bodies": body_hashes.iter().map(ToString::to_string).collect::<Vec<_>>()},
    ]);
    let (mut child, mut lines) = spawn_peer(&[
        "dial",
        &node.local_enode().to_string(),
        "--genesis",
        genesis.to_str().unwrap(),
        "--genesis-hash",
        &spec.genesis_hash.to_string(),
        "--fetch",
        &fetch.to_string(),
    ]);
    event(&mut lines, "status").await;
    let hashes = |v: &serde_json::Value| -> Vec<String> {
        v["hashes"].as_array().unwrap().iter().map(|h| h.as_str().unwrap().to_owned()).collect()
    };
    for (i, q) in queries.iter().enumerate() {
        let got = hashes(&event(&mut lines, "response").await);
        let expected: Vec<String> =
            serve_headers(&store, q).unwrap().iter().map(|h| h.hash_slow().to_string()).collect();
        assert!(!expected.is_empty());
        assert_eq!(got, expected, "query {i}: {q:?}");
    }
    let got = hashes(&event(&mut lines, "response").await);
    let expected: Vec<String> = serve_bodies(&store, &body_hashes)
        .unwrap()
        .iter()
        .map(|b| keccak256(alloy_rlp::encode(b)).to_string())
        .collect();
    assert_eq!(got.len(), 5);
    assert_eq!(got, expected);
    assert!(child.wait().await.unwrap().success());
}
