//! `tern`: the command-line entry point. Parses flags and wires the libraries together;
//! protocol logic lives in the crates.

mod bench_clique;
mod bench_discovery;
mod bench_exec;
mod bench_rpc;
mod bench_sync;
mod bench_txpool;
mod clique_cli;
mod devnet;
mod mnemonic;

use clap::{Parser, Subcommand};
use eyre::{Result, WrapErr};
use std::{net::SocketAddr, path::PathBuf};
use tern_chainspec::ChainSpec;
use tern_network::NetworkConfig;
use tern_node::{Node, NodeConfig};
use tern_p2p::Enode;
use tern_rpc::RpcConfig;
use tern_storage::ChainStore;
use tern_txpool::PoolConfig;
use tracing::info;

#[derive(Parser)]
#[command(name = "tern", version, about = "Tern: an Ethereum-style devp2p/RLPx client")]
struct Cli {
    /// Log filter (`error`, `warn`, `info`, `debug`, `trace`, or a tracing directive).
    #[arg(long = "log.level", global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the chain store in `<datadir>/db` from a genesis (refuses another chain's datadir).
    Init {
        /// Data directory.
        #[arg(long, default_value = "./tern-data")]
        datadir: PathBuf,
        /// The chain: `dev` or a path to a geth-style genesis.json.
        #[arg(long, default_value = "dev")]
        chain: String,
    },
    /// Run a node: listen for peers, dial bootnodes, complete ECIES, Hello and eth Status.
    Node(Box<NodeArgs>),
    /// Write a test chain: valid sealed Clique blocks with signed transfers, as an RLP
    /// chain file (blocks concatenated).
    GenChain {
        /// The chain: `dev` or a Clique genesis.json.
        #[arg(long, default_value = "dev")]
        chain: String,
        /// Number of blocks after genesis.
        #[arg(long, default_value_t = 100)]
        blocks: usize,
        /// Transactions per block.
        #[arg(long, default_value_t = 0)]
        txs: usize,
        /// Signer key files (hex); default: the dev chain's published key.
        #[arg(long = "signer-key")]
        signer_keys: Vec<PathBuf>,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Start a local Clique network of separate `tern node` processes on loopback: a
    /// genesis with V signers, validators meshed, fullnodes bootstrapped from them.
    Devnet {
        /// Number of validators (signers).
        #[arg(long, default_value_t = 1)]
        validators: usize,
        /// Number of fullnodes.
        #[arg(long, default_value_t = 2)]
        fullnodes: usize,
        /// Directory for keys, datadirs, genesis.json and logs (reused on restart).
        #[arg(long, default_value = "./tern-devnet")]
        dir: PathBuf,
        /// Seconds between blocks.
        #[arg(long, default_value_t = 1)]
        period: u64,
        /// Accounts of the test mnemonic ("test test … junk") funded with 10,000 ETH each,
        /// as Hardhat, Anvil and reth --dev fund them (their keys are public: development
        /// only).
        #[arg(long, default_value_t = 20)]
        accounts: u32,
    },
    /// Import an RLP chain file, verifying every block as sync does.
    Import {
        /// Data directory.
        #[arg(long, default_value = "./tern-data")]
        datadir: PathBuf,
        /// The chain: `dev` or a path to a geth-style genesis.json.
        #[arg(long, default_value = "dev")]
        chain: String,
        /// The file (concatenated RLP blocks).
        file: PathBuf,
        /// After importing, mark the safe and finalized blocks from this JSON file: an
        /// `engine_forkchoiceUpdated` request, or an object with `safeBlockHash` and
        /// `finalizedBlockHash` (what `safe`/`finalized` block tags then return).
        #[arg(long = "fork-choice", value_name = "FILE")]
        fork_choice: Option<PathBuf>,
    },
    /// Export the canonical chain (blocks 1..best) as an RLP chain file.
    Export {
        /// Data directory.
        #[arg(long, default_value = "./tern-data")]
        datadir: PathBuf,
        /// The chain: `dev` or a path to a geth-style genesis.json.
        #[arg(long, default_value = "dev")]
        chain: String,
        /// The file to write.
        file: PathBuf,
    },
    /// Play scripted hostile peers against a node and report how it reacted.
    Adversary {
        /// The node to test, as an enode URL.
        #[arg(long)]
        target: String,
        /// Which behaviour (`all`: every one in turn); see the README for the list.
        #[arg(long, default_value = "all")]
        behaviour: String,
        /// The chain: `dev` or a path to a geth-style genesis.json.
        #[arg(long, default_value = "dev")]
        chain: String,
        /// An RLP chain file (`tern export`, `tern gen-chain`) to pretend to serve;
        /// without it, only genesis. Body tricks need blocks with transactions.
        #[arg(long)]
        blocks: Option<PathBuf>,
        /// Longest run of one behaviour, in seconds.
        #[arg(long, default_value_t = 15)]
        seconds: u64,
        /// Offer only this eth version (68, 69 or 70) instead of all three.
        #[arg(long = "eth-version")]
        eth_version: Option<u64>,
    },
    /// Benchmarks (figures for the issue notes; not tests).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Clique signer voting on a running validator: propose, discard, status.
    Clique {
        #[command(subcommand)]
        command: clique_cli::CliqueCommand,
    },
    /// Manage the node key in the data directory.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

#[derive(clap::Args)]
struct NodeArgs {
    /// Stop when standard input closes (`tern devnet` uses it, so its nodes stop when it
    /// dies, however it dies).
    #[arg(long, hide = true)]
    stop_on_stdin_close: bool,
    /// Data directory (holds `nodekey`).
    #[arg(long, default_value = "./tern-data")]
    datadir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    addr: std::net::IpAddr,
    /// TCP port for RLPx.
    #[arg(long, default_value_t = 30303)]
    port: u16,
    /// Comma-separated enode URLs to dial (and redial).
    #[arg(long, value_delimiter = ',')]
    bootnodes: Vec<String>,
    /// Comma-separated enode URLs of peers that are always dialed and never banned.
    #[arg(long = "trusted-peers", value_delimiter = ',')]
    trusted_peers: Vec<String>,
    /// Most inbound peers.
    #[arg(long = "max-inbound-peers", default_value_t = tern_network::DEFAULT_MAX_INBOUND)]
    max_inbound_peers: usize,
    /// Most outbound peers.
    #[arg(long = "max-outbound-peers", default_value_t = tern_network::DEFAULT_MAX_OUTBOUND)]
    max_outbound_peers: usize,
    /// Bytes per second each peer may be served (headers, bodies) once its burst is spent.
    #[arg(long, default_value_t = tern_network::DEFAULT_SERVE_RATE)]
    peer_serve_rate: u64,
    /// Bytes each peer may be served at once.
    #[arg(long, default_value_t = tern_network::DEFAULT_SERVE_BURST)]
    peer_serve_burst: u64,
    /// Most inbound connections from one IP address (loopback is exempt).
    #[arg(long, default_value_t = tern_network::DEFAULT_MAX_INBOUND_PER_IP)]
    max_inbound_per_ip: usize,
    /// The chain: `dev` (built-in Clique devnet) or a path to a geth-style genesis.json.
    #[arg(long, default_value = "dev")]
    chain: String,
    /// devp2p network id (default: the chain id).
    #[arg(long = "network-id")]
    network_id: Option<u64>,
    /// Serve JSON-RPC over HTTP and WebSocket (one port: http://ADDR:PORT and
    /// ws://ADDR:PORT).
    #[arg(long, alias = "ws")]
    http: bool,
    /// JSON-RPC listen address.
    #[arg(long = "http.addr", default_value = "127.0.0.1")]
    http_addr: std::net::IpAddr,
    /// JSON-RPC port.
    #[arg(long = "http.port", default_value_t = 8545)]
    http_port: u16,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<SocketAddr>,
    /// Run the Clique validator: seal a block every period with --validator-key.
    #[arg(long = "enable-consensus")]
    enable_consensus: bool,
    /// The validator's signing key (64 hex digits); must be a signer of the chain.
    #[arg(long = "validator-key")]
    validator_key: Option<PathBuf>,
    /// Check the state root of every block also in bulk sync (by default a batch of 64 or
    /// more blocks far from the tip has its root checked after its last block, as reth's
    /// pipeline does; blocks at the tip are always checked one by one).
    #[arg(long = "sync.every-state-root")]
    sync_every_state_root: bool,
    /// Most transactions of one sender in the pool.
    #[arg(long = "txpool.max-account-slots", default_value_t = PoolConfig::default().max_account_slots)]
    txpool_max_account_slots: usize,
    /// Most pending (executable) transactions in the pool.
    #[arg(long = "txpool.pending-max-count", default_value_t = PoolConfig::default().max_pending)]
    txpool_pending_max_count: usize,
    /// Most queued (not yet executable) transactions in the pool.
    #[arg(long = "txpool.queued-max-count", default_value_t = PoolConfig::default().max_queued)]
    txpool_queued_max_count: usize,
    /// Most memory of transactions in the pool, in MiB.
    #[arg(long = "txpool.max-size", default_value_t = PoolConfig::default().max_bytes / (1024 * 1024))]
    txpool_max_size: usize,
    /// Percent a replacement must raise both fee caps by.
    #[arg(long = "txpool.pricebump", default_value_t = PoolConfig::default().price_bump)]
    txpool_pricebump: u128,
    /// Do not run node discovery (discv4): peers then come only from --bootnodes,
    /// --trusted-peers and known-peers.json. With discovery (the default) the bootnodes
    /// are its first contacts, its table is kept in `<datadir>/discovery-nodes.txt`, and
    /// the nodes it finds whose record carries our chain's fork id are dialed.
    #[arg(long = "disable-discovery")]
    disable_discovery: bool,
    /// UDP port of node discovery (default: the TCP --port).
    #[arg(long = "discovery.port")]
    discovery_port: Option<u16>,
    /// The address other nodes reach us at, put in discovery packets: `extip:<IP>`.
    #[arg(long, value_name = "extip:IP")]
    nat: Option<String>,
    /// Most gas an eth_call or eth_estimateGas may use.
    #[arg(long = "rpc.gascap", default_value_t = RpcConfig::default().gas_cap)]
    rpc_gascap: u64,
    /// Most blocks one eth_getLogs (or filter poll) may span.
    #[arg(long = "rpc.max-blocks-per-filter", default_value_t = RpcConfig::default().max_blocks_per_filter)]
    rpc_max_blocks_per_filter: u64,
    /// Most logs one eth_getLogs may return.
    #[arg(long = "rpc.max-logs-per-response", default_value_t = RpcConfig::default().max_logs_per_response)]
    rpc_max_logs_per_response: usize,
    /// Blocks below the head whose state is served (older: "missing trie node").
    #[arg(long = "rpc.state-history", default_value_t = RpcConfig::default().state_history)]
    rpc_state_history: u64,
    /// Largest request body, in MiB.
    #[arg(long = "rpc.max-request-size", default_value_t = RpcConfig::default().max_request_size / (1024 * 1024))]
    rpc_max_request_size: u32,
    /// Largest response body, in MiB.
    #[arg(long = "rpc.max-response-size", default_value_t = RpcConfig::default().max_response_size / (1024 * 1024))]
    rpc_max_response_size: u32,
    /// Connections served at once (HTTP and WebSocket).
    #[arg(long = "rpc.max-connections", default_value_t = RpcConfig::default().max_connections)]
    rpc_max_connections: u32,
    /// Most calls in one batch request.
    #[arg(long = "rpc.max-batch-size", default_value_t = RpcConfig::default().max_batch_size)]
    rpc_max_batch_size: u32,
    /// Subscriptions per WebSocket connection.
    #[arg(long = "rpc.max-subscriptions-per-connection", default_value_t = RpcConfig::default().max_subscriptions_per_connection)]
    rpc_max_subscriptions_per_connection: u32,
}

impl NodeArgs {
    fn txpool(&self) -> PoolConfig {
        PoolConfig {
            max_account_slots: self.txpool_max_account_slots,
            max_pending: self.txpool_pending_max_count,
            max_queued: self.txpool_queued_max_count,
            max_bytes: self.txpool_max_size * 1024 * 1024,
            price_bump: self.txpool_pricebump,
            ..PoolConfig::default()
        }
    }

    fn rpc(&self) -> RpcConfig {
        RpcConfig {
            gas_cap: self.rpc_gascap,
            max_blocks_per_filter: self.rpc_max_blocks_per_filter.max(1),
            max_logs_per_response: self.rpc_max_logs_per_response,
            state_history: self.rpc_state_history,
            max_request_size: self.rpc_max_request_size.saturating_mul(1024 * 1024),
            max_response_size: self.rpc_max_response_size.saturating_mul(1024 * 1024),
            max_connections: self.rpc_max_connections,
            max_batch_size: self.rpc_max_batch_size,
            max_subscriptions_per_connection: self.rpc_max_subscriptions_per_connection,
            ..RpcConfig::default()
        }
    }
}

#[derive(Subcommand)]
enum BenchCommand {
    /// A fresh fullnode process syncing (executing every block) generated chains from 1 and
    /// 3 in-process peers, against a serial import of the same chain; or any peer's chain
    /// (`--against`).
    Sync(bench_sync::SyncArgs),
    /// Importing executed chains (ether transfers, ERC-20 transfers) and the state root
    /// after many changes on a large state.
    Exec(bench_exec::ExecArgs),
    /// A devnet of validator and fullnode processes under a flood of transfers sent to a
    /// fullnode over JSON-RPC: throughput, inclusion latency, pool sizes, state roots.
    Txpool(bench_txpool::TxpoolArgs),
    /// JSON-RPC reads (eth_getBalance, eth_call of balanceOf) on one and many connections
    /// against a fullnode following a devnet at 1-second blocks: requests/s, p50, p99.
    Rpc(bench_rpc::RpcArgs),
    /// A devnet where every node knows only the first: time until all are meshed,
    /// discovery packets per node per minute, discovery table memory.
    Discovery(bench_discovery::DiscoveryArgs),
    /// Verifying a Clique chain with a signer vote every 100 blocks vs. one without.
    Clique(bench_clique::CliqueArgs),
    /// Chain store insert throughput vs. raw MDBX puts of the same bytes.
    Store {
        /// Scratch directory (removed afterwards); default: the system temp dir.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create `<datadir>/nodekey` (refuses to overwrite an existing key).
    Generate {
        /// Data directory.
        #[arg(long, default_value = "./tern-data")]
        datadir: PathBuf,
    },
    /// Print the node id (public key) of `<datadir>/nodekey`.
    Show {
        /// Data directory.
        #[arg(long, default_value = "./tern-data")]
        datadir: PathBuf,
    },
    /// Print the enode URL for `<datadir>/nodekey`.
    Enode {
        /// Data directory.
        #[arg(long, default_value = "./tern-data")]
        datadir: PathBuf,
        /// Address to put in the URL.
        #[arg(long, default_value = "127.0.0.1")]
        addr: std::net::IpAddr,
        /// Port to put in the URL.
        #[arg(long, default_value_t = 30303)]
        port: u16,
    },
}

fn main() {
    let cli = Cli::parse();
    use std::io::IsTerminal;
    // Colour codes only on a terminal (log files and pipes get plain text), never with
    // NO_COLOR set.
    let ansi = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log_level))
        .with_target(false)
        .with_ansi(ansi)
        .init();
    // A panic anywhere is logged where the operator reads (then reported as usual).
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(%info, "panic");
        default_hook(info);
    }));
    if let Err(e) = run(cli.command) {
        eprintln!("error: {}", one_line(&e));
        std::process::exit(1);
    }
}

/// The error and its causes on one line, leaving out causes the message already quotes.
fn one_line(e: &eyre::Report) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Key { command } => key(command),
        Command::Clique { command } => clique_cli::run(command),
        Command::GenChain { chain, blocks, txs, signer_keys, out } => {
            let spec = ChainSpec::load(&chain)?;
            let keys = if signer_keys.is_empty() {
                vec![tern_p2p::parse_secret_key(tern_chainspec::DEV_VALIDATOR_KEY)
                    .map_err(eyre::Report::msg)?]
            } else {
                signer_keys
                    .iter()
                    .map(|p| tern_p2p::load_secret_key(p))
                    .collect::<Result<_, _>>()?
            };
            if !matches!(spec.consensus, tern_chainspec::Consensus::Clique { .. }) {
                eyre::bail!("gen-chain needs a Clique chain; {chain} is not one");
            }
            // The transfers come from the first signer, which the genesis must fund (the
            // dev chain's is); every block is executed so its roots are the real ones.
            let sender = keys[0];
            let scratch =
                std::env::temp_dir().join(format!("tern-gen-chain-{}", std::process::id()));
            let chain_blocks = tern_execution::chain::build_chain_from_genesis(
                &spec,
                &scratch,
                &keys,
                blocks,
                txs,
                (&sender, 0),
            )
            .wrap_err("generating the chain (is the first signer funded in the genesis?)")?;
            tern_consensus::chain_gen::write_chain_file(&out, &chain_blocks)?;
            println!("wrote {blocks} blocks ({txs} txs each) to {}", out.display());
            Ok(())
        }
        Command::Devnet { validators, fullnodes, dir, period, accounts } => {
            devnet::run(&dir, validators, fullnodes, period, accounts)
        }
        Command::Import { datadir, chain, file, fork_choice } => {
            let spec = ChainSpec::load(&chain)?;
            let store = ChainStore::init(&datadir, &spec)?;
            let blocks = tern_consensus::chain_gen::read_chain_file(&file)?;
            let total = blocks.len();
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
            let imported = tern_sync::import_blocks(&spec, &store, blocks, 4096, now)?.blocks;
            let (best, hash) = store.best_block()?;
            // Every imported block's state root was checked against the state.
            let root = store.header(hash)?.map(|h| h.state_root).unwrap_or_default();
            println!(
                "imported {imported} of {total} blocks, each executed; best block {best} {hash}, \
                 state root {root}"
            );
            if let Some(path) = fork_choice {
                let (safe, finalized) = read_fork_choice(&path).wrap_err("--fork-choice")?;
                store.set_fork_choice(safe, finalized).wrap_err("--fork-choice")?;
                println!("safe block {safe}, finalized block {finalized}");
            }
            Ok(())
        }
        Command::Export { datadir, chain, file } => {
            let spec = ChainSpec::load(&chain)?;
            let store = ChainStore::init(&datadir, &spec)?;
            let (best, _) = store.best_block()?;
            let mut blocks = Vec::with_capacity(best as usize);
            for n in 1..=best {
                let b =
                    store.block_by_number(n)?.ok_or_else(|| eyre::eyre!("block {n} missing"))?;
                blocks.push(b.block);
            }
            tern_consensus::chain_gen::write_chain_file(&file, &blocks)?;
            println!("exported {best} blocks to {}", file.display());
            Ok(())
        }
        Command::Adversary { target, behaviour, chain, blocks, seconds, eth_version } => {
            let target: tern_p2p::Enode = target.parse().wrap_err("--target")?;
            let behaviours = if behaviour == "all" {
                tern_adversary::Behaviour::ALL.to_vec()
            } else {
                vec![behaviour.parse().wrap_err("--behaviour")?]
            };
            let spec = ChainSpec::load(&chain).wrap_err("--chain")?;
            let blocks = match blocks {
                Some(path) => tern_consensus::chain_gen::read_chain_file(&path)
                    .wrap_err_with(|| format!("--blocks {}", path.display()))?,
                None => Vec::new(),
            };
            let mut adversary =
                tern_adversary::Adversary::new(spec, blocks, tern_p2p::generate_secret_key());
            if let Some(v) = eth_version {
                let version = tern_eth_wire::EthVersion::from_u64(v)
                    .ok_or_else(|| eyre::eyre!("--eth-version: {v} is not 68, 69 or 70"))?;
                adversary = adversary.speaking(version);
            }
            let duration = std::time::Duration::from_secs(seconds);
            tokio::runtime::Runtime::new()?.block_on(adversaries(
                &adversary,
                &target,
                &behaviours,
                duration,
            ))
        }
        Command::Init { datadir, chain } => {
            let spec = ChainSpec::load(&chain)?;
            let store = ChainStore::init(&datadir, &spec)?;
            let (number, hash) = store.best_block()?;
            println!("genesis {} best block {number} {hash}", spec.genesis_hash);
            Ok(())
        }
        Command::Bench { command: BenchCommand::Exec(args) } => bench_exec::run(&args),
        Command::Bench { command: BenchCommand::Txpool(args) } => bench_txpool::run(&args),
        Command::Bench { command: BenchCommand::Rpc(args) } => bench_rpc::run(&args),
        Command::Bench { command: BenchCommand::Discovery(args) } => bench_discovery::run(&args),
        Command::Bench { command: BenchCommand::Clique(args) } => bench_clique::run(&args),
        Command::Bench { command: BenchCommand::Sync(args) } => {
            tokio::runtime::Runtime::new()?.block_on(bench_sync::run(&args))
        }
        Command::Bench { command: BenchCommand::Store { dir } } => {
            let dir = dir.unwrap_or_else(|| std::env::temp_dir().join("tern-bench-store"));
            print!("{}", tern_storage::store_benchmark(&dir)?);
            Ok(())
        }
        Command::Node(args) => {
            let runtime = tokio::runtime::Runtime::new()?;
            let result = runtime.block_on(node(*args));
            // Nothing left running may hold the process (a stuck write is abandoned; the
            // store is consistent at every commit).
            runtime.shutdown_timeout(std::time::Duration::from_millis(500));
            result
        }
    }
}

/// Runs each behaviour with a fresh key, then checks the target with a fresh honest
/// connection, and prints a verdict on each reaction (see [`tern_adversary::judge`]).
async fn adversaries(
    adversary: &tern_adversary::Adversary,
    target: &tern_p2p::Enode,
    behaviours: &[tern_adversary::Behaviour],
    duration: std::time::Duration,
) -> Result<()> {
    let mut wrong = 0;
    for &behaviour in behaviours {
        let a = adversary.with_key(tern_p2p::generate_secret_key());
        // A slow handshake shows only once the target's handshake timeout (Tern: 10 s) passes.
        let duration = if behaviour == tern_adversary::Behaviour::SlowHandshake {
            duration.max(std::time::Duration::from_secs(15))
        } else {
            duration
        };
        let r = a.run(behaviour, target, duration).await;
        let after = a.aftermath(&r, target).await;
        let verdict = tern_adversary::judge(&r, &after);
        wrong += usize::from(verdict.is_wrong());
        println!(
            "{behaviour:<24} outcome {:?} after {:.1}s; requests from it {}, messages sent {}, \
             answers {} (most headers {}), banned {}, forged blocks checked {}: {verdict}",
            r.outcome,
            r.elapsed.as_secs_f64(),
            r.requests_received,
            r.messages_sent,
            r.responses_received,
            r.max_headers_per_response,
            after.banned,
            r.forged.len(),
        );
    }
    if wrong > 0 {
        eyre::bail!("{wrong} of {} behaviours met a wrong reaction", behaviours.len());
    }
    Ok(())
}

fn key(command: KeyCommand) -> Result<()> {
    match command {
        KeyCommand::Generate { datadir } => {
            let path = datadir.join("nodekey");
            let key = tern_p2p::generate_secret_key();
            tern_p2p::write_secret_key(&path, &key)?;
            println!("{}", hex::encode(tern_p2p::peer_id(&key)));
        }
        KeyCommand::Show { datadir } => {
            let key = tern_p2p::load_secret_key(&datadir.join("nodekey"))?;
            println!("{}", hex::encode(tern_p2p::peer_id(&key)));
        }
        KeyCommand::Enode { datadir, addr, port } => {
            let key = tern_p2p::load_secret_key(&datadir.join("nodekey"))?;
            println!("{}", Enode::new(tern_p2p::peer_id(&key), SocketAddr::new(addr, port)));
        }
    }
    Ok(())
}

/// `--nat extip:<IP>`: the address to advertise.
fn parse_nat(s: &str) -> Result<std::net::IpAddr> {
    let ip = s.strip_prefix("extip:").ok_or_else(|| {
        eyre::eyre!("expected extip:<IP>, got {s:?} (no other NAT method is supported)")
    })?;
    ip.parse().map_err(|e| eyre::eyre!("{ip:?} is not an IP address: {e}"))
}

/// The safe and finalized hashes of a fork-choice file (an `engine_forkchoiceUpdated`
/// request, or its first parameter alone).
fn read_fork_choice(
    path: &std::path::Path,
) -> Result<(alloy_primitives::B256, alloy_primitives::B256)> {
    let text = std::fs::read_to_string(path)?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    let state = v.get("params").and_then(|p| p.get(0)).unwrap_or(&v);
    let hash = |name: &str| -> Result<alloy_primitives::B256> {
        let s = state.get(name).and_then(|h| h.as_str());
        let s = s.ok_or_else(|| eyre::eyre!("{} has no {name}", path.display()))?;
        Ok(s.parse()?)
    };
    Ok((hash("safeBlockHash")?, hash("finalizedBlockHash")?))
}

async fn node(args: NodeArgs) -> Result<()> {
    // Signal handlers first: a SIGINT or SIGTERM while the node is still starting (peers
    // may already be connected) is kept and stops it cleanly once it has started, instead
    // of killing the process.
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut spec = ChainSpec::load(&args.chain).wrap_err("--chain")?;
    if let Some(id) = args.network_id {
        spec = spec.with_network_id(id);
    }
    let parse_enodes = |list: &[String]| -> Result<Vec<Enode>> {
        Ok(list
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<Enode>())
            .collect::<Result<_, _>>()?)
    };
    let key = tern_p2p::load_or_generate_secret_key(&args.datadir.join("nodekey"))
        .wrap_err("--datadir")?;
    let validator_key = match (args.enable_consensus, &args.validator_key) {
        (false, _) => None,
        (true, None) => eyre::bail!("--enable-consensus needs --validator-key FILE"),
        (true, Some(path)) => Some(tern_p2p::load_secret_key(path).wrap_err("--validator-key")?),
    };
    let mut network = NetworkConfig::new(key);
    network.listen_addr = SocketAddr::new(args.addr, args.port);
    network.bootnodes = parse_enodes(&args.bootnodes).wrap_err("--bootnodes")?;
    network.trusted_peers = parse_enodes(&args.trusted_peers).wrap_err("--trusted-peers")?;
    network.max_inbound = args.max_inbound_peers;
    network.max_outbound = args.max_outbound_peers;
    network.serve_rate = args.peer_serve_rate;
    network.serve_burst = args.peer_serve_burst;
    network.max_inbound_per_ip = args.max_inbound_per_ip;
    info!(
        chain = %args.chain,
        genesis = %spec.genesis_hash,
        network_id = spec.network_id,
        client = %tern_p2p::client_id(),
        "starting"
    );
    let config = NodeConfig {
        datadir: args.datadir.clone(),
        spec,
        network,
        validator_key,
        sync: tern_sync::SyncConfig {
            every_state_root: args.sync_every_state_root,
            ..Default::default()
        },
        http: args.http.then(|| SocketAddr::new(args.http_addr, args.http_port)),
        metrics: args.metrics,
        txpool: args.txpool(),
        rpc: args.rpc(),
        discovery: match args.disable_discovery {
            true => None,
            false => Some(tern_node::DiscoveryConfig {
                port: args.discovery_port,
                external_ip: args.nat.as_deref().map(parse_nat).transpose().wrap_err("--nat")?,
            }),
        },
    };
    let mut node = Node::start(config).await.map_err(|e| match e {
        tern_node::NodeError::Network(_) => eyre::Report::new(e).wrap_err("--addr/--port"),
        tern_node::NodeError::Store(_) => eyre::Report::new(e).wrap_err("--datadir"),
        other => eyre::Report::new(other),
    })?;
    let (best, hash) = node.store.best_block()?;
    info!(
        enode = %node.enode(),
        best,
        %hash,
        rpc = ?node.rpc_addr.map(|a| format!("http://{a}")),
        "node started"
    );
    let stdin_closed = async {
        if args.stop_on_stdin_close {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
                let _ = tx.send(());
            });
            let _ = rx.await;
        } else {
            std::future::pending::<()>().await
        }
    };
    let why = tokio::select! {
        _ = sigint.recv() => "SIGINT",
        _ = sigterm.recv() => "SIGTERM",
        _ = stdin_closed => "standard input closed",
        result = node.wait() => {
            // A failed task: stop the rest, then report it (exit status 1).
            let _ = node.stop().await;
            return result.map_err(eyre::Report::new);
        }
    };
    info!(signal = why, "shutting down");
    node.stop().await?;
    info!("stopped");
    Ok(())
}
