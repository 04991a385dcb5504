//! A validator and fullnodes in one process over real TCP on 127.0.0.1.

use alloy_primitives::B256;
use std::{path::PathBuf, time::Duration};
use tern_chainspec::ChainSpec;
use tern_network::NetworkConfig;
use tern_node::{Node, NodeConfig};
use tern_p2p::{generate_secret_key, Enode};
use tern_storage::ChainStore;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tern-node-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A datadir whose store already holds `n` dev blocks (as if the validator had run).
fn prefilled(name: &str, n: usize) -> PathBuf {
    let d = dir(name);
    tern_node::testing::prefill_dev_chain(&d, n, 1, 3).unwrap();
    d
}

fn config(datadir: PathBuf, bootnodes: Vec<Enode>, validator: bool) -> NodeConfig {
    let mut network = NetworkConfig::new(generate_secret_key());
    network.listen_addr = "127.0.0.1:0".parse().unwrap();
    network.bootnodes = bootnodes;
    NodeConfig {
        datadir,
        spec: ChainSpec::dev(),
        network,
        validator_key: validator.then(tern_node::testing::dev_key),
        sync: Default::default(),
        http: None,
        metrics: None,
    }
}

async fn wait_head(node: &mut Node, number: u64) {
    tokio::time::timeout(Duration::from_secs(60), node.sync.wait_for_head(number))
        .await
        .unwrap_or_else(|_| panic!("head {} did not reach {number}", node.sync.progress().head));
}

fn hashes(store: &ChainStore, upto: u64) -> Vec<B256> {
    (0..=upto).map(|n| store.canonical_hash(n).unwrap().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fullnode_syncs_5000_blocks_follows_the_tip_and_relays() {
    let validator = Node::start(config(prefilled("val", 5000), vec![], true)).await.unwrap();
    let v_enode = validator.network.local_enode();
    let mut full = Node::start(config(dir("full"), vec![v_enode], false)).await.unwrap();
    wait_head(&mut full, 5000).await;
    assert_eq!(hashes(&full.store, 5000), hashes(&validator.store, 5000), "every block hash equal");

    // Following: the validator seals new blocks every 2 s; the fullnode keeps up.
    let (v_head, _) = validator.store.best_block().unwrap();
    wait_head(&mut full, v_head + 2).await;
    let (f_head, f_hash) = full.store.best_block().unwrap();
    assert_eq!(validator.store.canonical_hash(f_head).unwrap(), Some(f_hash));

    // A second fullnode that only knows the first syncs through it and follows.
    let mut second =
        Node::start(config(dir("second"), vec![full.network.local_enode()], false)).await.unwrap();
    let target = validator.store.best_block().unwrap().0 + 1;
    wait_head(&mut second, target).await;
    let (s_head, s_hash) = second.store.best_block().unwrap();
    assert_eq!(validator.store.canonical_hash(s_head).unwrap(), Some(s_hash));
    assert!(second.network.peers().await.iter().all(|p| p.id == full.network.local_enode().id));

    second.stop().await.unwrap();
    full.stop().await.unwrap();
    validator.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_fullnode_resumes_without_downloading_again() {
    // A serving node (no validator) with 5,000 blocks; a fullnode stopped half-way.
    let server = Node::start(config(prefilled("srv", 5000), vec![], false)).await.unwrap();
    let enode = server.network.local_enode();
    let full_dir = dir("resume");
    let mut cfg = config(full_dir.clone(), vec![enode], false);
    cfg.sync.commit_batch = 250; // small commits, so stopping lands half-way
    cfg.sync.window = 1024;
    let key = cfg.network.secret_key;
    let mut full = Node::start(cfg.clone()).await.unwrap();
    wait_head(&mut full, 2000).await;
    full.stop().await.unwrap();
    let stopped_at = ChainStore::open(&full_dir).unwrap().best_block().unwrap().0;
    assert!((2000..5000).contains(&stopped_at), "stopped half-way at {stopped_at}");
    // Let requests of the first run that were already on the wire finish being served.
    let mut before = server.network.served();
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = server.network.served();
        if now == before {
            break;
        }
        before = now;
    }

    cfg.network.secret_key = key;
    let mut full = Node::start(cfg).await.unwrap();
    assert_eq!(
        full.store.best_block().unwrap().0,
        stopped_at,
        "resumes from the stored best block"
    );
    wait_head(&mut full, 5000).await;
    let after = server.network.served();
    let headers = after.headers - before.headers;
    let bodies = after.bodies - before.bodies;
    let missing = 5000 - stopped_at;
    // Only what was missing is fetched again (plus a probe or two).
    assert!(headers <= missing + 4, "{headers} headers re-fetched for {missing} missing blocks");
    assert!(bodies <= missing, "{bodies} bodies re-fetched for {missing} missing blocks");
    assert_eq!(hashes(&full.store, 5000), hashes(&server.store, 5000));
    full.stop().await.unwrap();
    server.stop().await.unwrap();
}
