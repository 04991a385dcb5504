//! `tern`: the command-line entry point. Parses flags and wires the libraries together;
//! protocol logic lives in the crates.

use clap::{Parser, Subcommand};
use eyre::{Context, Result};
use futures::StreamExt;
use std::{net::SocketAddr, path::PathBuf, sync::Arc};
use tern_p2p::{Capability, Enode, P2pConfig, Protocol, TcpP2pStream};
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
    /// Run an RLPx node: listen for peers, dial bootnodes, complete ECIES + Hello.
    Node(NodeArgs),
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

fn protocols() -> Vec<Protocol> {
    vec![
        Protocol::new(Capability::new("eth", 68), 17),
        Protocol::new(Capability::new("eth", 69), 18),
    ]
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
    let mut config = P2pConfig::new(key, protocols());
    config.port = local.port();
    let config = Arc::new(config);
    let shown = if local.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], local.port()))
    } else {
        local
    };
    info!(enode = %Enode::new(tern_p2p::peer_id(&key), shown), client = %config.client_id, "node started");

    for enode in bootnodes {
        let config = config.clone();
        tokio::spawn(async move {
            match tern_p2p::connect(&config, &enode).await {
                Ok(stream) => run_session(stream, "outbound").await,
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
                    match tern_p2p::accept(&config, tcp).await {
                        Ok(stream) => run_session(stream, "inbound").await,
                        Err(e) => warn!(%addr, error = %e, "inbound connection failed"),
                    }
                });
            }
            _ = tokio::signal::ctrl_c() => {
                info!("shutting down");
                return Ok(());
            }
        }
    }
}

/// Keeps a session alive (Ping/Pong) until it ends; the eth protocol is not spoken yet.
async fn run_session(mut stream: TcpP2pStream, direction: &str) {
    let hello = stream.remote_hello().clone();
    let caps: Vec<String> =
        stream.shared_capabilities().iter().map(|c| c.cap.to_string()).collect();
    info!(peer = %hello.id, client = %hello.client_id, ?caps, direction, "peer connected");
    let reason = loop {
        match stream.next().await {
            Some(Ok(msg)) => tracing::debug!(
                id = msg.id,
                len = msg.payload.len(),
                "message (eth not handled yet)"
            ),
            Some(Err(e)) => break e.to_string(),
            None => break "connection closed".to_string(),
        }
    };
    info!(peer = %hello.id, %reason, "peer disconnected");
}
