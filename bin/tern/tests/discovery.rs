//! Node discovery between `tern node` processes on loopback: 30 nodes that know only the
//! first as bootnode mesh and sync its chain; a node of another chain is found but never
//! dialed.

mod common;
use common::*;
use std::time::{Duration, Instant};
use tern_chainspec::{ChainSpec, DEV_VALIDATOR_KEY};

/// Nodes of the network: the validator and 29 fullnodes.
const NODES: usize = 30;
/// Peers every node must reach.
const MIN_PEERS: u64 = 10;

fn hex_u64(v: &serde_json::Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

fn peer_ids(port: &str) -> Vec<String> {
    rpc(port, "admin_peers", serde_json::json!([]))
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p["id"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn thirty_nodes_mesh_from_one_bootnode_and_sync_while_another_chain_is_never_dialed() {
    let started = Instant::now();
    let validator_dir = dir("disc-validator");
    std::fs::create_dir_all(&validator_dir).unwrap();
    let key = validator_dir.join("validator.key");
    std::fs::write(&key, DEV_VALIDATOR_KEY).unwrap();
    let metrics = format!("127.0.0.1:{}", free_port());
    let (_validator, validator_log, validator_port) = node_with_rpc(
        &validator_dir,
        &["--enable-consensus", "--validator-key", key.to_str().unwrap(), "--metrics", &metrics],
    );
    let mut ports = vec![validator_port];
    let bootnode = enode_of(&validator_log);
    let mut nodes = Vec::new();
    for i in 1..NODES {
        let d = dir(&format!("disc-full{i}"));
        let (child, _log, port) = node_with_rpc(&d, &["--bootnodes", &bootnode]);
        nodes.push(child);
        ports.push(port);
    }
    // A node of another chain (the dev chain with another genesis timestamp and chain id:
    // another genesis hash, so another fork id) that also knows the bootnode.
    let foreign_dir = dir("disc-foreign");
    std::fs::create_dir_all(&foreign_dir).unwrap();
    let mut genesis = ChainSpec::dev().genesis.clone();
    genesis.config.chain_id = 4_242;
    genesis.timestamp += 1;
    let genesis_path = foreign_dir.join("genesis.json");
    std::fs::write(&genesis_path, serde_json::to_string(&genesis).unwrap()).unwrap();
    let (_foreign, foreign_log, foreign_port) = node_with_rpc(
        &foreign_dir,
        &["--chain", genesis_path.to_str().unwrap(), "--bootnodes", &bootnode],
    );
    let foreign_id = enode_of(&foreign_log)
        .trim_start_matches("enode://")
        .split('@')
        .next()
        .unwrap()
        .to_string();

    // Every node reaches MIN_PEERS peers.
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let counts: Vec<u64> = ports
            .iter()
            .map(|p| rpc(p, "net_peerCount", serde_json::json!([])).map_or(0, |v| hex_u64(&v)))
            .collect();
        if counts.iter().all(|c| *c >= MIN_PEERS) {
            eprintln!(
                "meshed: {counts:?} peers, {:.1} s after the first start",
                started.elapsed().as_secs_f64()
            );
            break;
        }
        if Instant::now() >= deadline {
            let exited: Vec<String> = nodes
                .iter_mut()
                .enumerate()
                .filter_map(|(i, n)| Some(format!("node {}: {}", i + 1, n.try_wait().ok()??)))
                .collect();
            panic!("not meshed: peers {counts:?}, exited {exited:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }

    // All sync the validator's chain.
    let head = loop {
        let n = rpc(&ports[0], "eth_blockNumber", serde_json::json!([])).map_or(0, |v| hex_u64(&v));
        if n >= 2 {
            break n;
        }
        assert!(Instant::now() < deadline, "the validator seals no blocks");
        std::thread::sleep(Duration::from_millis(200));
    };
    let block = |port: &str| {
        rpc(port, "eth_getBlockByNumber", serde_json::json!([format!("{head:#x}"), false]))
            .and_then(|b| b["hash"].as_str().map(str::to_owned))
    };
    let want = block(&ports[0]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    for (i, port) in ports.iter().enumerate() {
        while block(port).as_ref() != Some(&want) {
            assert!(Instant::now() < deadline, "node {i} lacks block {head}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // The foreign node was found (the bootnode's discovery filtered it by its fork id)
    // but is nobody's peer, and has none.
    let series = "tern_discovery_not_dialed_total{reason=\"fork_id\"}";
    while sample(&scrape(&metrics), series).unwrap_or(0.0) < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the foreign node was not filtered: {}",
            scrape(&metrics)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for (i, port) in ports.iter().enumerate() {
        assert!(!peer_ids(port).contains(&foreign_id), "node {i} has the foreign node as a peer");
    }
    assert!(peer_ids(&foreign_port).is_empty());
    // Each node says how it found its peers: the bootnode, discovery, or they dialed in.
    let sources: std::collections::BTreeSet<String> = ports
        .iter()
        .flat_map(|p| {
            rpc(p, "admin_peers", serde_json::json!([])).unwrap().as_array().cloned().unwrap()
        })
        .map(|p| p["source"].as_str().unwrap().to_owned())
        .collect();
    assert!(sources.contains("discovery"), "{sources:?}");
    drop(nodes);
}
