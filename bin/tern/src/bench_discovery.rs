//! `tern bench discovery`: a devnet of `tern node` processes where every node knows only
//! the first: how long until each has `--min-peers` peers, how many discovery packets a
//! node sends per minute once meshed, and what the discovery table costs in memory.

use crate::{
    bench_txpool::{metrics_text, poll, quantity, rpc},
    devnet::{launch, DevnetOptions},
};
use eyre::Result;
use serde_json::{json, Value};
use std::{
    net::SocketAddr,
    path::PathBuf,
    time::{Duration, Instant},
};

/// Arguments of `tern bench discovery`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DiscoveryArgs {
    /// Nodes (one validator, the rest fullnodes).
    #[arg(long, default_value_t = 30)]
    nodes: usize,
    /// Peers every node must reach to count as meshed.
    #[arg(long, default_value_t = 10)]
    min_peers: u64,
    /// Seconds of steady state over which packets are counted.
    #[arg(long, default_value_t = 60)]
    steady_secs: u64,
    /// Scratch directory (removed afterwards); default: the system temp dir.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Discovery packets a node has sent (all kinds), from its metrics.
fn packets_sent(metrics: SocketAddr) -> f64 {
    let prefix = "tern_discv4_packets_total{direction=\"out\"";
    metrics_text(metrics)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum()
}

/// Bytes of a table that saw `candidates` random nodes, and the bookkeeping per node the
/// service keeps beside it (two endpoint proofs and a record sequence number).
fn table_memory(candidates: usize) -> Value {
    use tern_discv4::{NodeEndpoint, NodeRecord, Table};
    let mut table = Table::new(&alloy_primitives::B512::random());
    let ip = std::net::IpAddr::from([10, 0, 0, 1]);
    for i in 0..candidates {
        let port = (i % 60_000) as u16;
        let endpoint = NodeEndpoint { ip, udp: port, tcp: port };
        table.seen(NodeRecord { endpoint, id: alloy_primitives::B512::random() });
    }
    let held = table.len() + table.replacements_len();
    // hashbrown: one control byte per slot, slots ≥ 8/7 of the entries.
    let slot = |bytes: usize| (bytes + 1) * 8 / 7;
    let proof = std::mem::size_of::<(alloy_primitives::B512, Instant)>();
    let seq = std::mem::size_of::<(alloy_primitives::B512, u64)>();
    let per_node_maps = 2 * slot(proof) + slot(seq);
    let table_bytes = table.heap_bytes();
    json!({
        "candidates": candidates,
        "in_buckets": table.len(),
        "replacements": table.replacements_len(),
        "table_bytes": table_bytes,
        "bytes_per_held_node": table_bytes / held.max(1),
        "service_bytes_per_node": per_node_maps,
        "estimate_1000_nodes_kib": (1000 * (table_bytes / held.max(1) + per_node_maps)) / 1024,
    })
}

pub(crate) fn run(args: &DiscoveryArgs) -> Result<()> {
    eyre::ensure!(args.nodes >= 2, "--nodes must be at least 2");
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("tern-bench-discovery-{}", std::process::id()));
    let opts = DevnetOptions {
        validators: 1,
        fullnodes: args.nodes - 1,
        period: Some(2),
        gas_limit: None,
        funded: vec![],
        node_args: vec![],
        print: false,
        metrics: true,
    };
    let result = (|| -> Result<Value> {
        let started = Instant::now();
        let devnet = launch(&dir, &opts)?;
        let launched = started.elapsed();
        let peers = |addr| rpc(addr, "net_peerCount", json!([])).map(|v| quantity(&v)).unwrap_or(0);
        poll(Duration::from_secs(600), "every node to reach --min-peers", || {
            devnet.nodes.iter().all(|n| peers(n.rpc) >= args.min_peers)
        })?;
        let meshed = started.elapsed();
        let counts: Vec<u64> = devnet.nodes.iter().map(|n| peers(n.rpc)).collect();
        let metrics: Vec<SocketAddr> =
            devnet.nodes.iter().map(|n| n.metrics.expect("metrics on")).collect();
        let before: f64 = metrics.iter().map(|m| packets_sent(*m)).sum();
        std::thread::sleep(Duration::from_secs(args.steady_secs));
        let after: f64 = metrics.iter().map(|m| packets_sent(*m)).sum();
        let per_node_per_min =
            (after - before) / args.nodes as f64 / (args.steady_secs as f64 / 60.0);
        Ok(json!({
            "nodes": args.nodes,
            "min_peers": args.min_peers,
            "launch_s": launched.as_secs_f64(),
            "meshed_s": meshed.as_secs_f64(),
            "peers_at_mesh": counts,
            "steady_secs": args.steady_secs,
            "packets_sent_per_node_per_min": per_node_per_min.round(),
            "table": table_memory(1000),
        }))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    let v = result?;
    if args.json {
        println!("{v}");
    } else {
        println!(
            "{} nodes, one bootnode: every node has ≥ {} peers {:.1} s after the first start (launching took {:.1} s)",
            v["nodes"], v["min_peers"], v["meshed_s"].as_f64().unwrap_or(0.0), v["launch_s"].as_f64().unwrap_or(0.0)
        );
        println!("peers then: {}", v["peers_at_mesh"]);
        println!(
            "steady state: {} discovery packets sent per node per minute (over {} s)",
            v["packets_sent_per_node_per_min"], v["steady_secs"]
        );
        println!("table after 1,000 random candidates: {}", v["table"]);
    }
    Ok(())
}
