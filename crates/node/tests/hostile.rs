//! A fullnode among strangers: absurd announcements and a connection flood do not stop it
//! from reaching the honest tip.

use alloy_primitives::B256;
use futures::SinkExt;
use std::{path::PathBuf, time::Duration};
use tern_chainspec::{ChainSpec, Head};
use tern_eth_wire::{
    eth_protocols, genesis_status, BlockHashNumber, EthMessage, EthStream, NewBlockHashes,
};
use tern_network::NetworkConfig;
use tern_node::{Node, NodeConfig};
use tern_p2p::{generate_secret_key, Enode, P2pConfig};
use tokio::io::AsyncWriteExt;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tern-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn prefilled(name: &str, n: usize) -> PathBuf {
    let d = dir(name);
    tern_node::testing::prefill_dev_chain(&d, n, 1, 8).unwrap();
    d
}

fn config(datadir: PathBuf, bootnodes: Vec<Enode>) -> NodeConfig {
    let mut network = NetworkConfig::new(generate_secret_key());
    network.listen_addr = "127.0.0.1:0".parse().unwrap();
    network.bootnodes = bootnodes;
    network.request_timeout_min = Duration::from_millis(300);
    network.request_timeout_max = Duration::from_millis(600);
    NodeConfig {
        datadir,
        spec: ChainSpec::dev(),
        network,
        validator_key: None,
        sync: Default::default(),
        http: None,
        metrics: None,
    }
}

async fn wait_head(node: &mut Node, number: u64) {
    tokio::time::timeout(Duration::from_secs(90), node.sync.wait_for_head(number))
        .await
        .unwrap_or_else(|_| panic!("head {} did not reach {number}", node.sync.progress().head));
}

/// A liar announces absurd heads and floods unknown hashes, then stays silent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_announcements_do_not_stop_sync() {
    let honest = Node::start(config(prefilled("honest", 2000), vec![])).await.unwrap();
    let mut full = Node::start(config(dir("full"), vec![])).await.unwrap();
    let spec = ChainSpec::dev();
    let liar_cfg = P2pConfig::new(generate_secret_key(), eth_protocols());
    let p2p = tern_p2p::connect(&liar_cfg, &full.network.local_enode()).await.unwrap();
    let filter =
        spec.fork_filter(Head { timestamp: spec.genesis_header.timestamp, ..Default::default() });
    let mut liar = EthStream::handshake(p2p, &genesis_status(&spec), &filter).await.unwrap();
    let liar_task = tokio::spawn(async move {
        for i in 0..1000u64 {
            let blocks = vec![BlockHashNumber {
                hash: B256::repeat_byte((i % 251) as u8),
                number: u64::MAX - i,
            }];
            if liar.send(EthMessage::NewBlockHashes(NewBlockHashes(blocks))).await.is_err() {
                break;
            }
        }
        // ...and never answers a request.
        tokio::time::sleep(Duration::from_secs(120)).await;
        drop(liar);
    });
    // Honest blocks arrive after the flood started, through a node that syncs from the
    // honest one and connects to ours.
    let liar_id = tern_p2p::peer_id(&liar_cfg.secret_key);
    let bridge = vec![honest.network.local_enode(), full.network.local_enode()];
    let dialer = Node::start(config(dir("bridge"), bridge)).await.unwrap();
    wait_head(&mut full, 2000).await;
    assert_eq!(
        honest.store.canonical_hash(2000).unwrap(),
        full.store.canonical_hash(2000).unwrap()
    );
    // The liar, silent to every request, times out until it is banned.
    let mut gone = false;
    for _ in 0..100 {
        if full.network.peers().await.iter().all(|p| p.id != liar_id) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the silent liar is still connected");
    liar_task.abort();
    dialer.stop().await.unwrap();
    full.stop().await.unwrap();
    honest.stop().await.unwrap();
}

/// 1,000 connections that send garbage or nothing while a fullnode syncs from the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_does_not_stop_an_honest_sync() {
    let server = Node::start(config(prefilled("flooded", 3000), vec![])).await.unwrap();
    let enode = server.network.local_enode();
    let mut full = Node::start(config(dir("flood-full"), vec![enode])).await.unwrap();
    // Wait until the fullnode is connected, then flood.
    for _ in 0..100 {
        if !full.network.peers().await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut sockets = Vec::new();
    for i in 0..1000u32 {
        if let Ok(mut s) = tokio::net::TcpStream::connect(enode.tcp_addr()).await {
            if i % 2 == 0 {
                let garbage: Vec<u8> = (0..300u32)
                    .map(|j| (j.wrapping_mul(2_654_435_761).wrapping_add(i) >> 7) as u8)
                    .collect();
                let _ = s.write_all(&garbage).await;
            }
            sockets.push(s);
        }
    }
    wait_head(&mut full, 3000).await;
    assert_eq!(
        server.store.canonical_hash(3000).unwrap(),
        full.store.canonical_hash(3000).unwrap()
    );
    drop(sockets);
    full.stop().await.unwrap();
    server.stop().await.unwrap();
}
