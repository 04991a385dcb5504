//! `tern bench txpool`: a devnet of validator and fullnode processes at short block
//! periods under a flood of transfers sent to one fullnode over JSON-RPC: transfers
//! included per second, time from `eth_sendRawTransaction` to inclusion, pool sizes and
//! memory, block intervals, and whether every node ends on the same state root.

use crate::{
    bench_exec::account_key,
    devnet::{launch, DevnetOptions},
};
use alloy_consensus::{TxEip1559, TxEnvelope};
use alloy_eips::Encodable2718;
use alloy_primitives::{Address, TxKind, B256, U256};
use eyre::Result;
use serde_json::{json, Value};
use std::{
    collections::{BTreeMap, HashMap},
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};
use tern_chainspec::ChainSpec;
use tern_consensus::{address_of, chain_gen::sign_tx};

/// Arguments of `tern bench txpool`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TxpoolArgs {
    /// Transfers to send in all.
    #[arg(long, default_value_t = 20_000)]
    txs: usize,
    /// Senders they are spread over (each sends its share in nonce order).
    #[arg(long, default_value_t = 1_000)]
    senders: usize,
    /// Validators (signers).
    #[arg(long, default_value_t = 3)]
    validators: usize,
    /// Fullnodes (transactions go to the first).
    #[arg(long, default_value_t = 2)]
    fullnodes: usize,
    /// Seconds between blocks.
    #[arg(long, default_value_t = 1)]
    period: u64,
    /// Block gas limit.
    #[arg(long, default_value_t = 60_000_000)]
    gas_limit: u64,
    /// An extra argument for every node (repeatable), e.g.
    /// `--node-arg=--txpool.pending-max-count=1000`.
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    node_args: Vec<String>,
    /// Scratch directory (removed afterwards); default: the system temp dir.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print the result as one JSON object (for tests and scripts).
    #[arg(long)]
    json: bool,
    /// Offered load in transfers per second (0: as fast as the RPC takes them). Below the
    /// chain's capacity (gas limit / 21,000 per period) the latency is the pipeline's,
    /// not a queue's.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Keep the devnet's directory (node logs at info level) instead of removing it.
    #[arg(long)]
    keep: bool,
}

/// A kept-alive HTTP/1.1 connection for JSON-RPC calls (a real client's, and no
/// connection setup per call in the measurement).
pub(crate) struct Conn {
    addr: SocketAddr,
    stream: Option<std::io::BufReader<TcpStream>>,
}

impl Conn {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Self { addr, stream: None }
    }

    /// The result of `method`, or the error's message.
    pub(crate) fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        use std::io::BufRead;
        let body =
            json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
        if self.stream.is_none() {
            let s = TcpStream::connect(self.addr).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
            let _ = s.set_nodelay(true);
            self.stream = Some(std::io::BufReader::new(s));
        }
        let r = self.stream.as_mut().expect("connected");
        let request = format!("POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", self.addr, body.len());
        let sent = r.get_mut().write_all(request.as_bytes());
        let response = sent.map_err(|e| e.to_string()).and_then(|()| {
            let mut length = 0;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                    return Err("connection closed".to_string());
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().map_err(|_| "bad content-length")?;
                }
            }
            let mut body = vec![0u8; length];
            r.read_exact(&mut body).map_err(|e| e.to_string())?;
            serde_json::from_slice::<Value>(&body).map_err(|e| e.to_string())
        });
        let v = match response {
            Ok(v) => v,
            Err(e) => {
                self.stream = None;
                return Err(e);
            }
        };
        match v.get("error") {
            Some(e) => Err(e["message"].as_str().unwrap_or("error").to_string()),
            None => Ok(v["result"].clone()),
        }
    }
}

/// A JSON-RPC call over a new HTTP/1.1 connection; the result, or the error's message.
pub(crate) fn rpc(addr: SocketAddr, method: &str, params: Value) -> Result<Value, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    write!(s, "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    s.read_to_string(&mut response).map_err(|e| e.to_string())?;
    let json = response.split("\r\n\r\n").nth(1).ok_or("no HTTP body")?;
    let v: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    match v.get("error") {
        Some(e) => Err(e["message"].as_str().unwrap_or("error").to_string()),
        None => Ok(v["result"].clone()),
    }
}

pub(crate) fn quantity(v: &Value) -> u64 {
    v.as_str().and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()).unwrap_or(0)
}

/// The text of `/metrics` at `addr`.
pub(crate) fn metrics_text(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text)
}

/// A sample of a Prometheus series from `/metrics` at `addr`.
fn scrape(addr: SocketAddr, series: &str) -> Option<f64> {
    metrics_text(addr)?
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

fn raw_transfer(
    key: &secp256k1::SecretKey,
    nonce: u64,
    max_fee: u128,
    tip: u128,
) -> (B256, String) {
    let tx = TxEip1559 {
        chain_id: ChainSpec::dev().chain_id,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: max_fee,
        max_priority_fee_per_gas: tip,
        to: TxKind::Call(Address::repeat_byte(0x99)),
        value: U256::from(1),
        ..Default::default()
    };
    let tx: TxEnvelope = sign_tx(tx, key).into();
    (*tx.tx_hash(), format!("0x{}", alloy_primitives::hex::encode(tx.encoded_2718())))
}

const GWEI: u128 = 1_000_000_000;

/// After the flood, how long inclusion may make no progress before the run counts the
/// missing transactions as lost.
const INCLUSION_STALL: Duration = Duration::from_secs(30);

/// Waits until `check` holds, polling every 100 ms, at most `limit`.
pub(crate) fn poll(limit: Duration, what: &str, mut check: impl FnMut() -> bool) -> Result<()> {
    let until = Instant::now() + limit;
    while !check() {
        eyre::ensure!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// What the block watcher saw.
#[derive(Default)]
struct Seen {
    /// Inclusion time of each transaction hash (on the watched node).
    included: HashMap<B256, Instant>,
    /// (number, timestamp, transactions) of each block.
    blocks: Vec<(u64, u64, usize)>,
    peak_pending: f64,
    peak_queued: f64,
    peak_bytes: f64,
}

pub(crate) fn run(args: &TxpoolArgs) -> Result<()> {
    eyre::ensure!(args.senders > 0 && args.txs >= args.senders, "--txs must be at least --senders");
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("tern-bench-txpool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let keys: Vec<secp256k1::SecretKey> = (0..args.senders).map(account_key).collect();
    let probe = account_key(args.senders);
    let rich = U256::from(10u128.pow(24));
    let funded = keys.iter().chain([&probe]).map(|k| (address_of(k), rich)).collect();
    let opts = DevnetOptions {
        validators: args.validators,
        fullnodes: args.fullnodes.max(1),
        period: Some(args.period),
        gas_limit: Some(args.gas_limit),
        funded,
        node_args: [
            vec!["--log.level".to_string(), if args.keep { "info" } else { "warn" }.to_string()],
            args.node_args.clone(),
        ]
        .concat(),
        print: false,
        metrics: true,
    };
    let result = flood(&dir, &opts, args, &keys, &probe);
    if args.keep {
        eprintln!("devnet kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let report = result?;
    if args.json {
        println!("{report}");
    } else {
        for (k, v) in report.as_object().expect("object") {
            println!("{k:>28}: {v}");
        }
    }
    Ok(())
}

fn flood(
    dir: &std::path::Path,
    opts: &DevnetOptions,
    args: &TxpoolArgs,
    keys: &[secp256k1::SecretKey],
    probe: &secp256k1::SecretKey,
) -> Result<Value> {
    let mut devnet = launch(dir, opts)?;
    let target = devnet.nodes.iter().find(|n| n.name == "fullnode-0").expect("a fullnode");
    let (rpc_addr, metrics_addr, target_pid) =
        (target.rpc, target.metrics.expect("metrics"), target.child.id());
    let rpcs: Vec<(String, SocketAddr)> =
        devnet.nodes.iter().map(|n| (n.name.clone(), n.rpc)).collect();
    let all_metrics: Vec<SocketAddr> = devnet.nodes.iter().filter_map(|n| n.metrics).collect();
    // The chain moves and the fullnode follows it.
    let head =
        move || rpc(rpc_addr, "eth_blockNumber", json!([])).map(|v| quantity(&v)).unwrap_or(0);
    poll(Duration::from_secs(120), "the fullnode to follow the chain", || head() >= 2)?;

    // Probes: a nonce gap waits, an underpriced replacement is refused, filling the gap
    // promotes both.
    let (p1, raw1) = raw_transfer(probe, 1, 100 * GWEI, GWEI);
    rpc(rpc_addr, "eth_sendRawTransaction", json!([raw1]))
        .map_err(|e| eyre::eyre!("probe nonce 1: {e}"))?;
    let (_, cheap) = raw_transfer(probe, 1, 105 * GWEI, GWEI * 105 / 100);
    let underpriced =
        rpc(rpc_addr, "eth_sendRawTransaction", json!([cheap])).err().unwrap_or_default();
    let queued_before =
        quantity(&rpc(rpc_addr, "txpool_status", json!([])).map_err(|e| eyre::eyre!(e))?["queued"]);
    let (p0, raw0) = raw_transfer(probe, 0, 100 * GWEI, GWEI);
    rpc(rpc_addr, "eth_sendRawTransaction", json!([raw0]))
        .map_err(|e| eyre::eyre!("probe nonce 0: {e}"))?;

    let seen = Arc::new(Mutex::new(Seen::default()));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (seen, done) = (seen.clone(), done.clone());
        let mut next = head() + 1;
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let latest = head();
                while next <= latest {
                    let Ok(b) =
                        rpc(rpc_addr, "eth_getBlockByNumber", json!([format!("{next:#x}"), false]))
                    else {
                        break;
                    };
                    let now = Instant::now();
                    let txs = b["transactions"].as_array().cloned().unwrap_or_default();
                    let mut s = seen.lock().expect("lock");
                    for h in &txs {
                        if let Some(h) = h.as_str().and_then(|h| h.parse().ok()) {
                            s.included.insert(h, now);
                        }
                    }
                    s.blocks.push((next, quantity(&b["timestamp"]), txs.len()));
                    next += 1;
                }
                let mut s = seen.lock().expect("lock");
                let sample = |series| scrape(metrics_addr, series).unwrap_or(0.0);
                s.peak_pending = s.peak_pending.max(sample("tern_txpool_pending"));
                s.peak_queued = s.peak_queued.max(sample("tern_txpool_queued"));
                s.peak_bytes = s.peak_bytes.max(sample("tern_txpool_bytes"));
                drop(s);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    // The flood: each worker sends its senders' transactions in nonce order; a sender
    // whose transaction is refused for the pool's limits retries after a while.
    let per_sender = args.txs / keys.len();
    let workers = keys.len().min(16);
    let submitted: Arc<Mutex<HashMap<B256, Instant>>> = Arc::default();
    // The raw bytes of each accepted transaction, to send again if a pool dropped it.
    let raws: Arc<Mutex<HashMap<B256, String>>> = Arc::default();
    let refused: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let started = Instant::now();
    let backoff = Duration::from_millis(args.period * 1000 / 4);
    // Past this, senders give up (the report then shows what was not sent).
    let give_up = started + Duration::from_secs(600);
    let resent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    std::thread::scope(|scope| {
        for w in 0..workers {
            let (submitted, refused, raws) = (submitted.clone(), refused.clone(), raws.clone());
            let (seen, resent) = (seen.clone(), resent.clone());
            let mine: Vec<&secp256k1::SecretKey> = keys.iter().skip(w).step_by(workers).collect();
            let per_worker_rate = args.rate as f64 / workers as f64;
            scope.spawn(move || {
                let mut conn = Conn::new(rpc_addr);
                let mut sent = 0u64;
                let mut next = vec![0u64; mine.len()];
                let mut wait_until = vec![Instant::now(); mine.len()];
                let mut checked = vec![Instant::now(); mine.len()];
                let mut hashes: Vec<Vec<B256>> = vec![Vec::new(); mine.len()];
                while next.iter().any(|n| (*n as usize) < per_sender) && Instant::now() < give_up {
                    let mut sent_any = false;
                    for (i, key) in mine.iter().enumerate() {
                        if next[i] as usize >= per_sender || Instant::now() < wait_until[i] {
                            continue;
                        }
                        if per_worker_rate > 0.0 {
                            let due =
                                started + Duration::from_secs_f64(sent as f64 / per_worker_rate);
                            std::thread::sleep(due.saturating_duration_since(Instant::now()));
                        }
                        let (hash, raw) = raw_transfer(key, next[i], 100 * GWEI, GWEI);
                        let answer = conn.call("eth_sendRawTransaction", json!([raw.clone()]));
                        // "already known": an earlier attempt got in but its answer was lost.
                        let refusal = match answer {
                            Ok(_) => None,
                            Err(e) if e.starts_with("already known") => None,
                            Err(e) => Some(e),
                        };
                        match refusal {
                            None => {
                                submitted
                                    .lock()
                                    .expect("lock")
                                    .entry(hash)
                                    .or_insert_with(Instant::now);
                                raws.lock().expect("lock").insert(hash, raw);
                                hashes[i].push(hash);
                                next[i] += 1;
                                sent += 1;
                                sent_any = true;
                            }
                            Some(e) => {
                                let reason = e.split(':').next().unwrap_or_default().to_string();
                                *refused.lock().expect("lock").entry(reason).or_default() += 1;
                                wait_until[i] = Instant::now() + backoff;
                                // Refused for a while: the pool may have evicted one of this
                                // sender's, leaving a gap; the first not yet in a block that
                                // the node no longer has is sent again, as a wallet would.
                                if checked[i].elapsed() > Duration::from_secs(2) {
                                    checked[i] = Instant::now();
                                    let unseen: Vec<B256> = {
                                        let s = seen.lock().expect("lock");
                                        hashes[i]
                                            .iter()
                                            .filter(|h| !s.included.contains_key(*h))
                                            .take(16)
                                            .copied()
                                            .collect()
                                    };
                                    for h in unseen {
                                        match conn.call("eth_getTransactionByHash", json!([h])) {
                                            Ok(t) if t.is_null() => {
                                                let raw =
                                                    raws.lock().expect("lock").get(&h).cloned();
                                                let again = raw.map(|raw| {
                                                    conn.call(
                                                        "eth_sendRawTransaction",
                                                        json!([raw]),
                                                    )
                                                });
                                                if again.is_some_and(|r| r.is_ok()) {
                                                    resent.fetch_add(1, Ordering::Relaxed);
                                                }
                                                break;
                                            }
                                            Ok(t) if !t["blockNumber"].is_null() => {
                                                seen.lock()
                                                    .expect("lock")
                                                    .included
                                                    .insert(h, Instant::now());
                                            }
                                            _ => {}
                                        }
                                    }
                                }
                            }
                        }
                    }
                    if !sent_any {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            });
        }
    });
    let sent_in = started.elapsed();
    let total = submitted.lock().expect("lock").len();
    // The watcher reads blocks by number once; a transaction whose block a reorg replaced
    // shows up in another block the watcher did not read again: asked for by hash. One
    // no node has (a full pool evicted it, as geth's and reth's do) is sent again, as a
    // wallet would.
    let mut calls = 0u64;
    let all_in = || {
        calls += 1;
        let missing: Vec<B256> = {
            let s = seen.lock().expect("lock");
            let subs = submitted.lock().expect("lock");
            subs.keys().filter(|h| !s.included.contains_key(*h)).copied().collect()
        };
        if missing.is_empty() || !calls.is_multiple_of(20) {
            return missing.is_empty();
        }
        for h in missing {
            match rpc(rpc_addr, "eth_getTransactionByHash", json!([h])) {
                Ok(t) if t.is_null() => {
                    let raw = raws.lock().expect("lock").get(&h).cloned();
                    if let Some(raw) = raw {
                        if rpc(rpc_addr, "eth_sendRawTransaction", json!([raw])).is_ok() {
                            resent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Ok(t) if !t["blockNumber"].is_null() => {
                    seen.lock().expect("lock").included.insert(h, Instant::now());
                }
                _ => {}
            }
        }
        false
    };
    // Waits while inclusion progresses: it fails only when no transaction was newly seen
    // in a block for INCLUSION_STALL (evictions and resends under load make the total time
    // unpredictable on a busy machine; a stop in progress is the failure).
    let included_count = || seen.lock().expect("lock").included.len();
    let mut last = (included_count(), Instant::now());
    let mut all_in = all_in;
    let included_all = loop {
        if all_in() {
            break true;
        }
        let now_count = included_count();
        if now_count > last.0 {
            last = (now_count, Instant::now());
        } else if last.1.elapsed() > INCLUSION_STALL {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    done.store(true, Ordering::Relaxed);
    let _ = watcher.join();

    // Where a few of the transactions never seen in a block are, per node.
    let missing: Vec<B256> = {
        let s = seen.lock().expect("lock");
        let subs = submitted.lock().expect("lock");
        subs.keys().filter(|h| !s.included.contains_key(*h)).take(5).copied().collect()
    };
    let whereabouts: BTreeMap<String, Vec<&str>> = missing
        .iter()
        .map(|h| {
            let at = rpcs
                .iter()
                .map(|(_, addr)| match rpc(*addr, "eth_getTransactionByHash", json!([h])) {
                    Ok(Value::Null) => "absent",
                    Ok(t) if t["blockNumber"].is_null() => "pooled",
                    Ok(_) => "mined",
                    Err(_) => "error",
                })
                .collect();
            (h.to_string(), at)
        })
        .collect();
    let s = seen.lock().expect("lock");
    let subs = submitted.lock().expect("lock");
    let mut latencies: Vec<Duration> = subs
        .iter()
        .filter_map(|(h, t)| s.included.get(h).map(|i| i.saturating_duration_since(*t)))
        .collect();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let last = subs.keys().filter_map(|h| s.included.get(h)).max().copied().unwrap_or(started);
    let span = last.saturating_duration_since(started).as_secs_f64().max(1e-9);
    let included = latencies.len();
    // Block intervals while transactions flowed.
    let busy: Vec<&(u64, u64, usize)> = s.blocks.iter().collect();
    let max_interval = busy.windows(2).map(|w| w[1].1.saturating_sub(w[0].1)).max().unwrap_or(0);
    let max_block_txs = busy.iter().map(|b| b.2).max().unwrap_or(0);
    let probes_included = s.included.contains_key(&p0) && s.included.contains_key(&p1);

    // Every node reaches the last block seen and agrees on its state root. Agreement is
    // waited for, not read once: with three Clique validators on a loaded machine an
    // out-of-turn sibling can still be some node's block at that height until the next
    // blocks reorg it away; a fork that lasts the whole wait is a failure.
    let final_block = s.blocks.last().map_or(0, |b| b.0);
    let mut roots = BTreeMap::new();
    let agree = poll(Duration::from_secs(60), "nodes to agree on the last block", || {
        roots = rpcs
            .iter()
            .map(|(name, addr)| {
                let block =
                    rpc(*addr, "eth_getBlockByNumber", json!([format!("{final_block:#x}"), false]));
                (name.clone(), block.map(|b| b["stateRoot"].clone()).unwrap_or(Value::Null))
            })
            .collect();
        let first = roots.values().next().cloned().unwrap_or(Value::Null);
        !first.is_null() && roots.values().all(|r| *r == first)
    })
    .is_ok();
    let rss_kib =
        std::fs::read_to_string(format!("/proc/{target_pid}/status")).ok().and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("VmHWM:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
        });
    drop(s);
    drop(subs);
    // Gossip that was shed anywhere (lagging subscribers, full session queues).
    let lost = |series: &str| all_metrics.iter().filter_map(|m| scrape(*m, series)).sum::<f64>();
    let shed = json!({
        "announcements_dropped": lost("tern_announcements_dropped_total"),
        "gossip_dropped": lost("tern_tx_gossip_dropped_total"),
        "propagation_skipped": lost("tern_txpool_propagation_skipped_total"),
    });
    // CPU seconds each node used (user + system), from /proc.
    let cpu: BTreeMap<String, f64> = devnet
        .nodes
        .iter()
        .filter_map(|n| {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", n.child.id())).ok()?;
            let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
            let ticks: f64 =
                fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
            Some((n.name.clone(), ticks / 100.0))
        })
        .collect();
    let exited: Vec<String> = devnet
        .nodes
        .iter_mut()
        .filter_map(|n| n.child.try_wait().ok().flatten().map(|st| format!("{}: {st}", n.name)))
        .collect();
    Ok(json!({
        "submitted": total,
        "included": included,
        "all_included": included_all,
        "send_seconds": sent_in.as_secs_f64(),
        "transfers_per_second": included as f64 / span,
        "inclusion_p50_ms": pct(0.50),
        "inclusion_p99_ms": pct(0.99),
        "peak_pending": s_peak(&seen, |s| s.peak_pending),
        "peak_queued": s_peak(&seen, |s| s.peak_queued),
        "peak_pool_bytes": s_peak(&seen, |s| s.peak_bytes),
        "fullnode_peak_rss_mib": rss_kib.map(|k| k / 1024),
        "max_block_interval_s": max_interval,
        "max_block_transactions": max_block_txs,
        "refused_and_retried": *refused.lock().expect("lock"),
        "dropped_and_resent": resent.load(Ordering::Relaxed),
        "probe_underpriced_replacement": underpriced,
        "probe_queued_before_gap_filled": queued_before,
        "probe_gap_filled_and_included": probes_included,
        "final_block": final_block,
        "state_roots_agree": agree,
        "state_roots": roots,
        "nodes_exited": exited,
        "gossip_shed": shed,
        "missing_per_node": whereabouts,
        "node_cpu_seconds": cpu,
    }))
}

fn s_peak(seen: &Mutex<Seen>, f: impl Fn(&Seen) -> f64) -> f64 {
    f(&seen.lock().expect("lock"))
}
