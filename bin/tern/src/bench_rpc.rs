//! `tern bench rpc`: JSON-RPC read throughput and latency of a fullnode that follows a
//! devnet's chain at 1-second blocks: `eth_getBalance`, and `eth_call` of a contract's
//! `balanceOf(address)` (a Solidity-layout mapping read: calldata, SHA3, SLOAD), each on
//! one kept-alive connection and on many at once.

use crate::{
    bench_txpool::{poll, quantity, rpc, Conn},
    devnet::{launch, test_accounts, DevnetOptions},
};
use alloy_consensus::{TxEip1559, TxEnvelope};
use alloy_eips::Encodable2718;
use alloy_primitives::{Address, Bytes, TxKind, U256};
use eyre::Result;
use serde_json::{json, Value};
use std::{
    path::PathBuf,
    sync::{atomic::AtomicBool, atomic::Ordering, Arc},
    time::{Duration, Instant},
};
use tern_consensus::chain_gen::sign_tx;

/// Arguments of `tern bench rpc`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RpcArgs {
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Connections of the concurrent measurements.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Scratch directory (removed afterwards); default: the system temp dir.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

/// A contract whose runtime returns `balances[address]` for calldata `selector ‖ address`
/// (the mapping at slot 0, as Solidity lays out `balanceOf`), and whose constructor gives
/// the deployer 10^24.
fn balance_contract() -> Bytes {
    // PUSH1 4 CALLDATALOAD PUSH1 0 MSTORE PUSH1 0 PUSH1 32 MSTORE PUSH1 64 PUSH1 0 SHA3
    // SLOAD PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN
    let runtime: &[u8] = &[
        0x60, 0x04, 0x35, 0x60, 0x00, 0x52, 0x60, 0x00, 0x60, 0x20, 0x52, 0x60, 0x40, 0x60, 0x00,
        0x20, 0x54, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xf3,
    ];
    // CALLER PUSH1 0 MSTORE PUSH1 0 PUSH1 32 MSTORE PUSH10 10^24 PUSH1 64 PUSH1 0 SHA3
    // SSTORE, then CODECOPY the runtime and RETURN it.
    let mut init = vec![0x33, 0x60, 0x00, 0x52, 0x60, 0x00, 0x60, 0x20, 0x52, 0x69];
    init.extend_from_slice(&U256::from(10u64).pow(U256::from(24)).to_be_bytes::<32>()[22..]);
    init.extend_from_slice(&[0x60, 0x40, 0x60, 0x00, 0x20, 0x55]);
    let copy_len = 12; // the CODECOPY/RETURN tail below
    let offset = (init.len() + copy_len) as u8;
    let len = runtime.len() as u8;
    init.extend_from_slice(&[0x60, len, 0x60, offset, 0x60, 0x00, 0x39]);
    init.extend_from_slice(&[0x60, len, 0x60, 0x00, 0xf3]);
    assert_eq!(init.len() as u8, offset, "the runtime starts where the init code ends");
    init.extend_from_slice(runtime);
    init.into()
}

/// Requests per second and latency percentiles of `method(params)` on `connections`
/// kept-alive connections for `seconds`.
fn measure(
    addr: std::net::SocketAddr,
    method: &'static str,
    params: Value,
    connections: usize,
    seconds: u64,
) -> Result<Value> {
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (stop, params) = (stop.clone(), params.clone());
            std::thread::spawn(move || -> Result<Vec<Duration>, String> {
                let mut conn = Conn::new(addr);
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    conn.call(method, params.clone())?;
                    latencies.push(start.elapsed());
                }
                Ok(latencies)
            })
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for w in workers {
        all.extend(
            w.join().map_err(|_| eyre::eyre!("worker panicked"))?.map_err(|e| eyre::eyre!(e))?,
        );
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct =
        |p: usize| all.get((all.len().max(1) - 1) * p / 100).map_or(0.0, |d| d.as_secs_f64() * 1e3);
    Ok(json!({
        "method": method,
        "connections": connections,
        "requests": all.len(),
        "requests_per_sec": (all.len() as f64 / elapsed).round(),
        "p50_ms": (pct(50) * 1000.0).round() / 1000.0,
        "p99_ms": (pct(99) * 1000.0).round() / 1000.0,
    }))
}

/// Runs `tern bench rpc`.
pub(crate) fn run(args: &RpcArgs) -> Result<()> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("tern-bench-rpc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let accounts = test_accounts(1);
    let (holder, key) = accounts[0];
    let opts = DevnetOptions {
        validators: 1,
        fullnodes: 1,
        period: Some(1),
        gas_limit: None,
        funded: vec![(holder, U256::from(10u64).pow(U256::from(22)))],
        node_args: vec![],
        print: false,
        metrics: false,
    };
    let result = (|| -> Result<Value> {
        let devnet = launch(&dir, &opts)?;
        let node = devnet.nodes.iter().find(|n| n.name == "fullnode-0").expect("a fullnode");
        let addr = node.rpc;
        let head = || rpc(addr, "eth_blockNumber", json!([])).map(|v| quantity(&v)).unwrap_or(0);
        poll(Duration::from_secs(120), "the fullnode to follow the chain", || head() >= 1)?;
        let tx = TxEip1559 {
            chain_id: tern_chainspec::ChainSpec::dev().chain_id,
            nonce: 0,
            gas_limit: 200_000,
            max_fee_per_gas: 100_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            to: TxKind::Create,
            input: balance_contract(),
            ..Default::default()
        };
        let tx: TxEnvelope = sign_tx(tx, &key).into();
        let raw = format!("0x{}", alloy_primitives::hex::encode(tx.encoded_2718()));
        rpc(addr, "eth_sendRawTransaction", json!([raw])).map_err(|e| eyre::eyre!(e))?;
        let mut receipt = Value::Null;
        poll(Duration::from_secs(60), "the contract to be deployed", || {
            receipt =
                rpc(addr, "eth_getTransactionReceipt", json!([tx.tx_hash()])).unwrap_or_default();
            !receipt.is_null()
        })?;
        let contract: Address = serde_json::from_value(receipt["contractAddress"].clone())?;
        let mut data = vec![0x70, 0xa0, 0x82, 0x31]; // balanceOf(address)
        data.extend_from_slice(holder.into_word().as_slice());
        let call = json!([{"to": contract, "data": Bytes::from(data)}, "latest"]);
        let balance = rpc(addr, "eth_call", call.clone()).map_err(|e| eyre::eyre!(e))?;
        eyre::ensure!(
            balance == json!(format!("0x{:064x}", U256::from(10u64).pow(U256::from(24)))),
            "balanceOf returned {balance}"
        );
        let get_balance = json!([holder, "latest"]);
        let start_head = head();
        let mut runs = Vec::new();
        for (method, params) in [("eth_getBalance", &get_balance), ("eth_call", &call)] {
            for connections in [1, args.connections] {
                runs.push(measure(addr, method, params.clone(), connections, args.seconds)?);
            }
        }
        let blocks = head() - start_head;
        Ok(json!({"runs": runs, "blocks_followed_during_runs": blocks, "contract": contract}))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    let report = result?;
    if args.json {
        println!("{report}");
        return Ok(());
    }
    println!(
        "{:<16} {:>11} {:>12} {:>9} {:>9}",
        "method", "connections", "requests/s", "p50 ms", "p99 ms"
    );
    for r in report["runs"].as_array().expect("runs") {
        println!(
            "{:<16} {:>11} {:>12} {:>9} {:>9}",
            r["method"].as_str().unwrap_or_default(),
            r["connections"].to_string(),
            r["requests_per_sec"].to_string(),
            r["p50_ms"].to_string(),
            r["p99_ms"].to_string()
        );
    }
    println!("blocks followed during the runs: {}", report["blocks_followed_during_runs"]);
    Ok(())
}
