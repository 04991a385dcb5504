//! `tern`: the command-line entry point. Parses flags and wires the libraries together;
//! protocol logic lives in the crates.

use clap::{Parser, Subcommand};
use eyre::{Context, Result};
use futures::StreamExt;
use std::{net::SocketAddr, path::PathBuf, sync::Arc};
use tern_chainspec::{ChainSpec, ForkFilter, Head};
use tern_consensus::Sealer;
use tern_eth_wire::{eth_protocols, status_at, EthStream, LocalStatus};
use tern_p2p::{Enode, P2pConfig, TcpP2pStream};
use tern_storage::ChainStore;
use tokio::net::TcpListener;
use tracing::{info, warn};

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
    Node(NodeArgs),
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
    /// Benchmarks (figures for the issue notes; not tests).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Manage the node key in the data directory.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

#[derive(clap::Args)]
struct NodeArgs {
    /// Data directory (holds `nodekey`).
    #[arg(long, default_value = "./tern-data")]
    datadir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    addr: std::net::IpAddr,
    /// TCP port for RLPx.
    #[arg(long, default_value_t = 30303)]
    port: u16,
    /// Comma-separated enode URLs to dial.
    #[arg(long, value_delimiter = ',')]
    bootnodes: Vec<String>,
    /// The chain: `dev` (built-in Clique devnet) or a path to a geth-style genesis.json.
    #[arg(long, default_value = "dev")]
    chain: String,
    /// devp2p network id (default: the chain id).
    #[arg(long = "network-id")]
    network_id: Option<u64>,
    /// Run the Clique validator: seal a block every period with --validator-key.
    #[arg(long = "enable-consensus")]
    enable_consensus: bool,
    /// The validator's signing key (64 hex digits); must be a signer of the chain.
    #[arg(long = "validator-key")]
    validator_key: Option<PathBuf>,
}

#[derive(Subcommand)]
enum BenchCommand {
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

/// What every session needs: our p2p identity, our Status and the fork filter.
struct SessionContext {
    p2p: P2pConfig,
    spec: ChainSpec,
    store: ChainStore,
}

impl SessionContext {
    /// Our Status and fork filter at the stored best block, now.
    fn status(&self) -> Result<(LocalStatus, ForkFilter)> {
        let (number, hash) = self.store.best_block()?;
        let best = self
            .store
            .header(hash)?
            .ok_or_else(|| eyre::eyre!("best block {number} has no header"))?;
        let td = self.store.total_difficulty(hash)?.unwrap_or_default();
        let head = Head { number, timestamp: best.timestamp, hash, ..Default::default() };
        Ok((status_at(&self.spec, &best, hash, td), self.spec.fork_filter(head)))
    }
}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log_level))
        .with_target(false)
        .init();
    if let Err(e) = run(cli.command) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Key { command } => key(command),
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
            let sender = tern_p2p::generate_secret_key();
            let chain_blocks = tern_consensus::chain_gen::generate_chain(
                &spec,
                &keys,
                (spec.genesis_hash, &spec.genesis_header),
                blocks,
                txs,
                (&sender, 0),
            );
            tern_consensus::chain_gen::write_chain_file(&out, &chain_blocks)?;
            println!("wrote {blocks} blocks ({txs} txs each) to {}", out.display());
            Ok(())
        }
        Command::Init { datadir, chain } => {
            let spec = ChainSpec::load(&chain)?;
            let store = ChainStore::init(&datadir, &spec)?;
            let (number, hash) = store.best_block()?;
            println!("genesis {} best block {number} {hash}", spec.genesis_hash);
            Ok(())
        }
        Command::Bench { command: BenchCommand::Store { dir } } => {
            let dir = dir.unwrap_or_else(|| std::env::temp_dir().join("tern-bench-store"));
            print!("{}", tern_storage::store_benchmark(&dir)?);
            Ok(())
        }
        Command::Node(args) => tokio::runtime::Runtime::new()?.block_on(node(args)),
    }
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

async fn node(args: NodeArgs) -> Result<()> {
    let mut spec = ChainSpec::load(&args.chain)?;
    if let Some(id) = args.network_id {
        spec = spec.with_network_id(id);
    }
    let bootnodes = args
        .bootnodes
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<Enode>())
        .collect::<Result<Vec<_>, _>>()?;
    let key = tern_p2p::load_or_generate_secret_key(&args.datadir.join("nodekey"))?;
    let listener = TcpListener::bind((args.addr, args.port))
        .await
        .wrap_err_with(|| format!("cannot listen on {}:{}", args.addr, args.port))?;
    let local = listener.local_addr()?;
    let mut p2p = P2pConfig::new(key, eth_protocols());
    p2p.port = local.port();
    let store = ChainStore::init(&args.datadir, &spec)?;
    let (number, _) = store.best_block()?;
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let mut validator = match (args.enable_consensus, &args.validator_key) {
        (false, _) => None,
        (true, None) => eyre::bail!("--enable-consensus needs --validator-key FILE"),
        (true, Some(path)) => {
            let sealer = Sealer::new(tern_p2p::load_secret_key(path)?);
            let (sealed_tx, _) = tokio::sync::watch::channel((number, spec.genesis_hash));
            let (spec, store) = (spec.clone(), store.clone());
            Some(tokio::spawn(async move {
                tern_node::run_validator(&spec, store, sealer, sealed_tx, shutdown_rx).await
            }))
        }
    };
    let config = Arc::new(SessionContext { p2p, spec: spec.clone(), store });
    let (status, _) = config.status()?;
    let shown = if local.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], local.port()))
    } else {
        local
    };
    info!(
        enode = %Enode::new(tern_p2p::peer_id(&key), shown),
        client = %config.p2p.client_id,
        chain = %args.chain,
        genesis = %spec.genesis_hash,
        network_id = spec.network_id,
        fork_id = ?status.fork_id,
        validator = validator.is_some(),
        best = number,
        "node started"
    );

    for enode in bootnodes {
        let config = config.clone();
        tokio::spawn(async move {
            match tern_p2p::connect(&config.p2p, &enode).await {
                Ok(stream) => run_session(&config, stream, "outbound").await,
                Err(e) => warn!(peer = %enode, error = %e, "dial failed"),
            }
        });
    }
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, addr) = accepted?;
                let config = config.clone();
                tokio::spawn(async move {
                    match tern_p2p::accept(&config.p2p, tcp).await {
                        Ok(stream) => run_session(&config, stream, "inbound").await,
                        Err(e) => warn!(%addr, error = %e, "inbound connection failed"),
                    }
                });
            }
            _ = tokio::signal::ctrl_c() => {
                info!("shutting down");
                let _ = shutdown_tx.send(true);
                if let Some(v) = validator {
                    v.await??;
                }
                return Ok(());
            }
            Some(result) = async { match &mut validator { Some(v) => Some(v.await), None => None } }, if validator.is_some() => {
                // The validator only returns early on an error.
                result??;
                eyre::bail!("validator stopped");
            }
        }
    }
}

/// Runs the eth Status handshake, then keeps the session alive (Ping/Pong) until it ends;
/// eth requests are not served yet.
async fn run_session(ctx: &SessionContext, stream: TcpP2pStream, direction: &str) {
    let hello = stream.remote_hello().clone();
    let (status, filter) = match ctx.status() {
        Ok(s) => s,
        Err(e) => return warn!(error = %e, "cannot read our status"),
    };
    let mut eth = match EthStream::handshake(stream, &status, &filter).await {
        Ok(eth) => eth,
        Err(e) => {
            warn!(peer = %hello.id, client = %hello.client_id, error = %e, direction, "eth handshake failed");
            return;
        }
    };
    info!(
        peer = %hello.id,
        client = %hello.client_id,
        version = ?eth.version(),
        head = %eth.remote_status().head_hash(),
        direction,
        "peer connected"
    );
    let reason = loop {
        match eth.next().await {
            Some(Ok(msg)) => tracing::debug!(id = msg.id(), "eth message (not handled yet)"),
            Some(Err(e)) => break e.to_string(),
            None => break "connection closed".to_string(),
        }
    };
    info!(peer = %hello.id, %reason, "peer disconnected");
}
