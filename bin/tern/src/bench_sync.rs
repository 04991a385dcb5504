//! `tern bench sync`: a fresh fullnode (a separate `tern node` process) syncing generated
//! chains from one and from three in-process peers over loopback, against the local
//! serial import (`import_blocks`: the same blocks verified, executed and committed one
//! batch at a time, no network, no overlap — a reference point, not a floor: sync
//! overlaps commits with download and verification, infers empty bodies, and does not
//! execute yet).

use eyre::Result;
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};
use tern_chainspec::{ChainSpec, DEV_VALIDATOR_KEY};
use tern_network::NetworkConfig;
use tern_node::{Node, NodeConfig};
use tern_storage::{ChainStore, SealedBlock};

/// A field of `/proc/<pid>/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Runs the benchmark under `dir` and prints a table.
pub(crate) async fn run(dir: &Path, empty: usize, full: usize, txs: usize) -> Result<()> {
    let spec = ChainSpec::dev();
    let key = tern_p2p::parse_secret_key(DEV_VALIDATOR_KEY).map_err(eyre::Report::msg)?;
    println!(
        "{:<24} {:>6} {:>9} {:>11} {:>9} {:>10} {:>10} {:>9}",
        "workload",
        "peers",
        "blocks",
        "blocks/s",
        "MB/s",
        "peak RSS",
        "peak anon",
        "vs serial import"
    );
    println!("(peak RSS includes the MDBX memory map; peak anon is the process's own heap)");
    for (name, count, per_block) in [("empty blocks", empty, 0), ("blocks x txs", full, txs)] {
        if count == 0 {
            continue;
        }
        let _ = std::fs::remove_dir_all(dir);
        eprintln!("generating {count} blocks with {per_block} transactions each...");
        let blocks = tern_execution::chain::build_chain_from_genesis(
            &spec,
            &dir.join("gen"),
            &[key],
            count,
            per_block,
            (&key, 0),
        )?;
        let bytes: usize = blocks.iter().map(alloy_rlp::Encodable::length).sum();
        let mb = bytes as f64 / 1e6;

        // The serial import: decode, verify, execute and commit, no network, no overlap
        // (sync does the same work, with download, verification and execution
        // overlapping).
        let encoded: Vec<u8> = blocks.iter().flat_map(alloy_rlp::encode).collect();
        let floor_store = ChainStore::init(&dir.join("floor"), &spec)?;
        let started = Instant::now();
        let mut buf = encoded.as_slice();
        let mut decoded = Vec::with_capacity(count);
        while !buf.is_empty() {
            decoded.push(<alloy_consensus::Block<alloy_consensus::TxEnvelope> as alloy_rlp::Decodable>::decode(&mut buf)?);
        }
        tern_sync::import_blocks(&spec, &floor_store, decoded, 4096, now_secs())?;
        let floor = started.elapsed();
        drop(floor_store);
        println!(
            "{:<24} {:>6} {:>9} {:>11.0} {:>9.1} {:>10} {:>10} {:>9}",
            format!("{name} (serial import)"),
            "-",
            count,
            count as f64 / floor.as_secs_f64(),
            mb / floor.as_secs_f64(),
            "-",
            "-",
            "1.00"
        );

        // Serving peers, each with its own store of the chain.
        let sealed: Vec<SealedBlock> = blocks.into_iter().map(SealedBlock::seal).collect();
        let mut servers = Vec::new();
        for i in 0..3 {
            let datadir = dir.join(format!("server{i}"));
            let store = ChainStore::init(&datadir, &spec)?;
            for c in sealed.chunks(4096) {
                store.insert_blocks(c)?;
            }
            drop(store);
            let mut network = NetworkConfig::new(tern_p2p::generate_secret_key());
            network.listen_addr = "127.0.0.1:0".parse()?;
            let config = NodeConfig {
                datadir,
                spec: spec.clone(),
                network,
                validator_key: None,
                sync: Default::default(),
                http: None,
                metrics: None,
                txpool: Default::default(),
                rpc: Default::default(),
                discovery: None,
            };
            servers.push(Node::start(config).await?);
        }
        for peers in [1usize, 3] {
            let bootnodes: Vec<String> =
                servers[..peers].iter().map(|s| s.network.local_enode().to_string()).collect();
            let datadir: PathBuf = dir.join(format!("full{peers}"));
            let mut child = Command::new(std::env::current_exe()?)
                .args([
                    "node",
                    "--datadir",
                    datadir.to_str().unwrap_or_default(),
                    "--addr",
                    "127.0.0.1",
                    "--port",
                    "0",
                ])
                .args(["--bootnodes", &bootnodes.join(","), "--log.level", "warn"])
                .stdout(Stdio::null())
                .spawn()?;
            // Wait for the store to exist, then for the head.
            while !datadir.join("db/mdbx.dat").exists() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let started = Instant::now();
            let store = ChainStore::open(&datadir)?;
            let mut anon = 0;
            let mut peak = 0;
            // The node creates the file before it writes the genesis block.
            let best = |store: &ChainStore| match store.best_block() {
                Ok((n, _)) => Ok(n),
                Err(tern_storage::StoreError::NotInitialised) => Ok(0),
                Err(e) => Err(e),
            };
            while best(&store)? < count as u64 {
                anon = anon.max(status_kib(child.id(), "RssAnon:"));
                peak = peak.max(status_kib(child.id(), "VmHWM:"));
                tokio::time::sleep(Duration::from_millis(5)).await;
                if started.elapsed() > Duration::from_secs(1800) {
                    eyre::bail!("sync did not finish");
                }
            }
            let took = started.elapsed();
            peak = peak.max(status_kib(child.id(), "VmHWM:"));
            let _ = child.kill();
            let _ = child.wait();
            println!(
                "{:<24} {:>6} {:>9} {:>11.0} {:>9.1} {:>7} MB {:>7} MB {:>9.2}",
                name,
                peers,
                count,
                count as f64 / took.as_secs_f64(),
                mb / took.as_secs_f64(),
                peak / 1024,
                anon / 1024,
                floor.as_secs_f64() / took.as_secs_f64()
            );
        }
        for s in servers {
            s.stop().await?;
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
