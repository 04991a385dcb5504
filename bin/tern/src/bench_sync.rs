//! `tern bench sync`: a fresh fullnode (a separate `tern node` process) syncing a chain
//! over loopback, executing every block and checking every root, timed from its start to
//! the last block stored.
//!
//! By default the chains are generated (post-merge or Clique, empty blocks and blocks of
//! transfers) and served by one and by three in-process Tern peers, against the local
//! serial import (`import_blocks`: the same blocks verified, executed and committed one
//! batch at a time, no network, no overlap — a reference point, not a floor). With
//! `--against <enode>` the chain is whatever that peer serves (any eth/68–70 peer: reth,
//! geth, another Tern), given its genesis with `--genesis` and its head with `--blocks`.

use eyre::{Context, Result};
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};
use tern_chainspec::{ChainSpec, DEV_VALIDATOR_KEY};
use tern_node::{Node, NodeConfig};
use tern_storage::{ChainStore, SealedBlock};

/// `tern bench sync` arguments.
#[derive(clap::Args)]
pub(crate) struct SyncArgs {
    /// Scratch directory (removed afterwards); default: the system temp dir.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The generated chains' consensus: `postmerge` (the dev chain after the merge: no
    /// seals, as reth `--dev` makes) or `clique` (the dev chain: every header sealed).
    #[arg(long, default_value = "postmerge", value_parser = ["postmerge", "clique"])]
    chain: String,
    /// Empty blocks in the first workload (0 skips it).
    #[arg(long, default_value_t = 100_000)]
    empty_blocks: usize,
    /// Blocks in the second workload (0 skips it).
    #[arg(long, default_value_t = 10_000)]
    full_blocks: usize,
    /// Transactions (transfers) per block in the second workload.
    #[arg(long, default_value_t = 100)]
    txs: usize,
    /// Peer counts to sync from, in turn (each from a fresh datadir).
    #[arg(long, value_delimiter = ',', default_value = "1,3")]
    peers: Vec<usize>,
    /// Sync from this peer instead of generated ones (needs `--genesis` and `--blocks`).
    #[arg(long, value_name = "ENODE", requires_all = ["genesis", "blocks"])]
    against: Option<String>,
    /// With `--against`: the peer's chain (`dev` or a geth-style genesis.json).
    #[arg(long, value_name = "dev|FILE")]
    genesis: Option<String>,
    /// With `--against`: the peer's head block number: the sync is timed until it is
    /// stored.
    #[arg(long)]
    blocks: Option<u64>,
    /// An extra argument for the syncing `tern node` (repeatable), e.g.
    /// `--node-arg=--sync.every-state-root`.
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    node_args: Vec<String>,
}

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

/// What one timed run did.
struct Run {
    secs: f64,
    blocks: u64,
    txs: u64,
    gas: u64,
    bytes: u64,
    peak_rss_kib: u64,
    peak_anon_kib: u64,
}

fn header_row() {
    println!(
        "{:<34} {:>5} {:>8} {:>8} {:>9} {:>9} {:>7} {:>6} {:>9} {:>9} {:>7}",
        "workload",
        "peers",
        "blocks",
        "secs",
        "blocks/s",
        "txs/s",
        "Mgas/s",
        "MB/s",
        "peak RSS",
        "peak anon",
        "vs serial"
    );
}

fn print_row(name: &str, peers: &str, r: &Run, serial: Option<f64>) {
    let (rss, anon) = if r.peak_rss_kib == 0 {
        ("-".to_string(), "-".to_string())
    } else {
        (format!("{} MB", r.peak_rss_kib / 1024), format!("{} MB", r.peak_anon_kib / 1024))
    };
    println!(
        "{:<34} {:>5} {:>8} {:>8.2} {:>9.0} {:>9.0} {:>7.1} {:>6.1} {:>9} {:>9} {:>7}",
        name,
        peers,
        r.blocks,
        r.secs,
        r.blocks as f64 / r.secs,
        r.txs as f64 / r.secs,
        r.gas as f64 / 1e6 / r.secs,
        r.bytes as f64 / 1e6 / r.secs,
        rss,
        anon,
        serial.map_or("-".to_string(), |s| format!("{:.2}", s / r.secs)),
    );
}

/// Runs the benchmark and prints a table.
pub(crate) async fn run(args: &SyncArgs) -> Result<()> {
    let dir = args.dir.clone().unwrap_or_else(|| std::env::temp_dir().join("tern-bench-sync"));
    if let Some(enode) = &args.against {
        let genesis = args.genesis.as_ref().expect("clap requires it");
        let blocks = args.blocks.expect("clap requires it");
        let _ = std::fs::remove_dir_all(&dir);
        header_row();
        let r = sync_child(
            &dir.join("full"),
            genesis,
            std::slice::from_ref(enode),
            blocks,
            &args.node_args,
        )
        .await?;
        print_row("from the given peer", "1", &r, None);
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(());
    }
    let spec = match args.chain.as_str() {
        "clique" => ChainSpec::dev(),
        _ => ChainSpec::postmerge_dev(),
    };
    let key = tern_p2p::parse_secret_key(DEV_VALIDATOR_KEY).map_err(eyre::Report::msg)?;
    header_row();
    println!("(peak RSS includes the MDBX memory map; peak anon is the process's own heap)");
    let workloads =
        [("empty blocks", args.empty_blocks, 0), ("blocks x txs", args.full_blocks, args.txs)];
    for (name, count, per_block) in workloads {
        if count == 0 {
            continue;
        }
        let name = format!("{} {name}", args.chain);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let genesis_file = dir.join("genesis.json");
        std::fs::write(&genesis_file, serde_json::to_vec(&spec.genesis)?)?;
        eprintln!("generating {count} blocks with {per_block} transactions each...");
        let blocks = tern_execution::chain::build_chain_from_genesis(
            &spec,
            &dir.join("gen"),
            &[key],
            count,
            per_block,
            (&key, 0),
        )?;

        // The serial import: decode, verify, execute and commit, no network, no overlap.
        let encoded: Vec<u8> = blocks.iter().flat_map(alloy_rlp::encode).collect();
        let floor_store = ChainStore::init(&dir.join("floor"), &spec)?;
        let started = Instant::now();
        let mut buf = encoded.as_slice();
        let mut decoded = Vec::with_capacity(count);
        while !buf.is_empty() {
            decoded.push(<alloy_consensus::Block<alloy_consensus::TxEnvelope> as alloy_rlp::Decodable>::decode(&mut buf)?);
        }
        let stats = tern_sync::import_blocks(&spec, &floor_store, decoded, 4096, now_secs())?;
        let serial = Run {
            secs: started.elapsed().as_secs_f64(),
            blocks: stats.blocks,
            txs: stats.transactions,
            gas: stats.gas,
            bytes: encoded.len() as u64,
            peak_rss_kib: 0,
            peak_anon_kib: 0,
        };
        drop(floor_store);
        print_row(&format!("{name} (serial import)"), "-", &serial, Some(serial.secs));

        // Serving peers, each with its own store of the chain.
        let sealed: Vec<SealedBlock> = blocks.into_iter().map(SealedBlock::seal).collect();
        let most = args.peers.iter().copied().max().unwrap_or(1);
        let mut servers = Vec::new();
        for i in 0..most {
            servers.push(serve(&spec, &dir.join(format!("server{i}")), &sealed).await?);
        }
        drop(sealed);
        for &peers in &args.peers {
            let bootnodes: Vec<String> =
                servers[..peers].iter().map(|s| s.network.local_enode().to_string()).collect();
            let datadir = dir.join(format!("full{peers}"));
            let chain = genesis_file.to_string_lossy();
            let r = sync_child(&datadir, &chain, &bootnodes, count as u64, &args.node_args).await?;
            print_row(&name, &peers.to_string(), &r, Some(serial.secs));
        }
        for s in servers {
            s.stop().await?;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A node serving `blocks` from its own store at `datadir`.
async fn serve(spec: &ChainSpec, datadir: &Path, blocks: &[SealedBlock]) -> Result<Node> {
    let store = ChainStore::init(datadir, spec)?;
    for c in blocks.chunks(4096) {
        store.insert_blocks(c)?;
    }
    drop(store);
    let config = NodeConfig {
        spec: spec.clone(),
        ..tern_node::testing::node_config(datadir.to_path_buf(), vec![], false)
    };
    Ok(Node::start(config).await?)
}

/// Starts a fresh `tern node` at `datadir` on `chain` with `bootnodes` (and `node_args`)
/// and times it
/// until block `head` is stored, sampling its memory every 5 ms.
async fn sync_child(
    datadir: &Path,
    chain: &str,
    bootnodes: &[String],
    head: u64,
    node_args: &[String],
) -> Result<Run> {
    let mut command = Command::new(std::env::current_exe()?);
    command.args(["node", "--datadir"]).arg(datadir);
    command.args(["--addr", "127.0.0.1", "--port", "0", "--disable-discovery"]);
    command.args(["--chain", chain]);
    command.args(["--bootnodes", &bootnodes.join(",")]);
    if !node_args.iter().any(|a| a.starts_with("--log.level")) {
        command.args(["--log.level", "warn"]);
    }
    command.args(node_args);
    let started = Instant::now();
    // The last syncing node's log is kept, for a run that needs explaining.
    let log = std::fs::File::create(std::env::temp_dir().join("tern-bench-sync-node.log"))
        .context("creating the node log")?;
    let mut child = command.stdout(log).spawn().context("starting tern node")?;
    let pid = child.id();
    // Wait for the store to exist, then for the head.
    while !datadir.join("db/mdbx.dat").exists() {
        if let Some(status) = child.try_wait()? {
            eyre::bail!("the syncing node exited at start: {status}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let store = ChainStore::open(datadir)?;
    let (mut anon, mut peak) = (0, 0);
    // The node creates the file before it writes the genesis block.
    let best = |store: &ChainStore| match store.best_block() {
        Ok((n, _)) => Ok(n),
        Err(tern_storage::StoreError::NotInitialised) => Ok(0),
        Err(e) => Err(e),
    };
    while best(&store)? < head {
        anon = anon.max(status_kib(pid, "RssAnon:"));
        peak = peak.max(status_kib(pid, "VmHWM:"));
        tokio::time::sleep(Duration::from_millis(5)).await;
        if let Some(status) = child.try_wait()? {
            eyre::bail!("the syncing node exited: {status}");
        }
        if started.elapsed() > Duration::from_secs(3600) {
            let _ = child.kill();
            eyre::bail!("sync did not finish within an hour");
        }
    }
    let secs = started.elapsed().as_secs_f64();
    peak = peak.max(status_kib(pid, "VmHWM:"));
    let _ = child.kill();
    let _ = child.wait();
    let (mut txs, mut gas, mut bytes) = (0, 0, 0);
    for n in 1..=head {
        let Some(block) = store.block_by_number(n)? else { continue };
        txs += block.block.body.transactions.len() as u64;
        gas += block.block.header.gas_used;
        bytes += alloy_rlp::Encodable::length(&block.block) as u64;
    }
    Ok(Run { secs, blocks: head, txs, gas, bytes, peak_rss_kib: peak, peak_anon_kib: anon })
}
