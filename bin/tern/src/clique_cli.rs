//! `tern clique propose|discard|status --rpc URL`: a thin client of a validator's
//! `clique_*` JSON-RPC methods.

use crate::bench_txpool::Conn;
use eyre::{eyre, Result};
use serde_json::{json, Value};
use std::net::{SocketAddr, ToSocketAddrs};

/// `tern clique` subcommands.
#[derive(clap::Subcommand)]
pub(crate) enum CliqueCommand {
    /// Vote to add (default) or drop ADDRESS in every block this validator seals until
    /// the vote passes or is discarded (`clique_propose`).
    Propose {
        /// The validator's JSON-RPC URL.
        #[arg(long, default_value = "http://127.0.0.1:8545")]
        rpc: String,
        /// The candidate signer.
        address: String,
        /// Vote to drop the signer instead of adding it.
        #[arg(long)]
        drop: bool,
    },
    /// Stop voting on ADDRESS (`clique_discard`).
    Discard {
        /// The validator's JSON-RPC URL.
        #[arg(long, default_value = "http://127.0.0.1:8545")]
        rpc: String,
        /// The candidate signer.
        address: String,
    },
    /// Print the signers, this validator's proposals, the standing votes and who sealed
    /// the last 64 blocks (`clique_getSnapshot`, `clique_proposals`, `clique_status`).
    Status {
        /// The node's JSON-RPC URL.
        #[arg(long, default_value = "http://127.0.0.1:8545")]
        rpc: String,
    },
}

/// The socket address of an `http://host:port` URL.
fn socket_of(url: &str) -> Result<SocketAddr> {
    let rest =
        url.strip_prefix("http://").ok_or_else(|| eyre!("--rpc must be an http:// URL: {url}"))?;
    let host = rest.split('/').next().unwrap_or(rest);
    host.to_socket_addrs()
        .map_err(|e| eyre!("--rpc {url}: {e}"))?
        .next()
        .ok_or_else(|| eyre!("--rpc {url}: no address"))
}

fn call(rpc: &str, method: &str, params: Value) -> Result<Value> {
    let mut conn = Conn::new(socket_of(rpc)?);
    conn.call(method, params).map_err(|e| eyre!("{method} at {rpc}: {e}"))
}

/// Runs `tern clique …`.
pub(crate) fn run(command: CliqueCommand) -> Result<()> {
    match command {
        CliqueCommand::Propose { rpc, address, drop } => {
            call(&rpc, "clique_propose", json!([address, !drop]))?;
            let what = if drop { "drop" } else { "add" };
            println!("proposed: {what} {address} (voted in the blocks this validator seals)");
        }
        CliqueCommand::Discard { rpc, address } => {
            call(&rpc, "clique_discard", json!([address]))?;
            println!("discarded the proposal on {address}");
        }
        CliqueCommand::Status { rpc } => {
            let snap = call(&rpc, "clique_getSnapshot", json!([]))?;
            let proposals = call(&rpc, "clique_proposals", json!([]))?;
            let status = call(&rpc, "clique_status", json!([]))?;
            let out = json!({
                "block": snap["number"],
                "signers": snap["signers"].as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()),
                "votes": snap["votes"],
                "tally": snap["tally"],
                "proposals": proposals,
                "status": status,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
    }
    Ok(())
}
