//! `tern` as separate processes: a serving node and a fullnode killed with SIGKILL
//! mid-sync, restarted, and caught up with a consistent store.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};
use tern_chainspec::DEV_VALIDATOR_KEY;
use tern_storage::ChainStore;

mod common;
use common::*;
const BLOCKS: u64 = 12_000;

fn prefill(datadir: &Path, n: usize) {
    tern_node::testing::prefill_dev_chain(datadir, n, 1).unwrap();
}

/// A validator (the dev key) serving JSON-RPC; returns it, its enode and its RPC port.
fn validator(datadir: &Path) -> (Node, String, String) {
    std::fs::create_dir_all(datadir).unwrap();
    let key = datadir.join("validator.key");
    std::fs::write(&key, DEV_VALIDATOR_KEY).unwrap();
    let (v, log, port) =
        node_with_rpc(datadir, &["--enable-consensus", "--validator-key", key.to_str().unwrap()]);
    let enode = enode_of(&log);
    (v, enode, port)
}

#[test]
fn fullnode_killed_mid_sync_resumes_and_catches_up() {
    let server_dir = dir("server");
    prefill(&server_dir, BLOCKS as usize);
    // The server serves each peer ~3 MB/s, so the sync takes seconds and every kill below
    // lands mid-sync.
    let (mut server, server_log) =
        node(&server_dir, &["--peer-serve-rate", "3000000", "--peer-serve-burst", "100000"]);
    let enode = enode_of(&server_log);

    let full_dir = dir("full");
    let mut last = 0;
    for round in 0..2 {
        let (mut full, log) = node(&full_dir, &["--bootnodes", &enode]);
        wait_line(&log, "peer connected");
        // MDBX lets this process read while the node writes: kill right after a commit
        // lands, so the kill falls in the middle of the sync.
        let store = ChainStore::open(&full_dir).unwrap();
        while store.best_block().unwrap().0 <= last && store.best_block().unwrap().0 < BLOCKS {
            std::thread::sleep(Duration::from_millis(10));
        }
        full.kill().unwrap(); // SIGKILL
        full.wait().unwrap();
        let (best, _) = store.best_block().unwrap();
        assert!(best >= last, "round {round}: committed blocks lost ({best} < {last})");
        assert!(best < BLOCKS, "round {round}: the kill came after the sync ended");
        assert!(store.canonical_hash(best + 1).unwrap().is_none());
        eprintln!("round {round}: killed at block {best}");
        last = best;
    }
    let (mut full, log) = node(&full_dir, &["--bootnodes", &enode]);
    let resumed = strip_ansi(&wait_line(&log, "sync resumes from the stored best block"));
    assert!(!resumed.contains("best=0"), "{resumed}");
    wait_stored(&ChainStore::open(&full_dir).unwrap(), BLOCKS);
    interrupt(&mut full);
    // Logs to a pipe are plain text.
    let rest: Vec<String> = log.try_iter().collect();
    assert!(rest.iter().any(|l| l.contains("shutting down")), "{rest:?}");
    assert!(rest.iter().all(|l| !l.contains('\u{1b}')), "colour codes in a piped log");
    interrupt(&mut server);

    let full_store = ChainStore::open(&full_dir).unwrap();
    let server_store = ChainStore::open(&server_dir).unwrap();
    assert_eq!(full_store.best_block().unwrap(), server_store.best_block().unwrap());
    for n in 0..=BLOCKS {
        let block =
            full_store.block_by_number(n).unwrap().unwrap_or_else(|| panic!("block {n} missing"));
        assert_eq!(Some(block.hash), server_store.canonical_hash(n).unwrap());
        assert_eq!(block.block.header.hash_slow(), block.hash);
    }
}

/// `GET /metrics` over plain HTTP.
#[test]
fn metrics_are_scraped_during_a_sync() {
    let server_dir = dir("metrics-server");
    prefill(&server_dir, 3000);
    let (_server, server_log) = node(&server_dir, &[]);
    let enode = enode_of(&server_log);
    let addr = format!("127.0.0.1:{}", free_port());
    let full_dir = dir("metrics-full");
    let (_full, _log) = node(&full_dir, &["--bootnodes", &enode, "--metrics", &addr]);
    // Stored, and published as stored (the verified head runs ahead of the writer).
    let mut text = scrape(&addr);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while sample(&text, "tern_best_block") != Some(3000.0) {
        assert!(std::time::Instant::now() < deadline, "never stored block 3000: {text}");
        std::thread::sleep(Duration::from_millis(100));
        text = scrape(&addr);
    }
    assert_eq!(sample(&text, "tern_best_block"), Some(3000.0), "{text}");
    assert_eq!(sample(&text, "tern_sync_gap"), Some(0.0));
    assert!(sample(&text, "tern_headers_downloaded_total").unwrap_or(0.0) >= 3000.0, "{text}");
    assert!(sample(&text, "tern_bodies_downloaded_total").unwrap_or(0.0) >= 3000.0, "{text}");
    // One peer, in either direction (with discovery both sides may dial, and the
    // connection the node with the smaller id dialed is kept).
    let peers = sample(&text, "tern_peers{direction=\"outbound\",client=\"tern\"}").unwrap_or(0.0)
        + sample(&text, "tern_peers{direction=\"inbound\",client=\"tern\"}").unwrap_or(0.0);
    assert_eq!(peers, 1.0, "{text}");
    assert!(sample(&text, "tern_p2p_bytes_in_total").unwrap_or(0.0) > 100_000.0, "{text}");
    assert!(sample(&text, "tern_p2p_bytes_out_total").unwrap_or(0.0) > 0.0, "{text}");
}

/// A JSON-RPC client library (ethers, npm) reads the same block with its transactions
/// from a fullnode and from the validator it synced from.
#[test]
fn ethers_reads_matching_blocks_from_fullnode_and_validator() {
    let interop = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop");
    if !interop.join("node_modules/ethers").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&interop)
            .status()
            .unwrap();
        assert!(status.success(), "npm ci failed");
    }
    let val_dir = dir("ethers-val");
    prefill(&val_dir, 50);
    let (_val, enode, val_rpc) = validator(&val_dir);
    let full_dir = dir("ethers-full");
    let (_full, full_log, full_rpc) = node_with_rpc(&full_dir, &["--bootnodes", &enode]);
    wait_line(&full_log, "in sync");
    let out = Command::new("node")
        .args([
            "client.mjs",
            &format!("http://127.0.0.1:{full_rpc}"),
            &format!("http://127.0.0.1:{val_rpc}"),
            "25",
        ])
        .current_dir(&interop)
        .output()
        .expect("node is needed for this test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["chainId"], 1337);
    assert_eq!(v["txs"], 1);
}

/// A validator and two fullnodes, the second bootstrapped only from the first: all report
/// the same block at the same height over JSON-RPC.
#[test]
fn validator_and_a_chain_of_fullnodes_agree_over_rpc() {
    let (_v, v_enode, v_port) = validator(&dir("chain-val"));
    let (_f1, f1_log, f1_port) = node_with_rpc(&dir("chain-f1"), &["--bootnodes", &v_enode]);
    let f1_enode = enode_of(&f1_log);
    // Without discovery, so its only peer stays the first fullnode (with it, it would find
    // the validator through the first's table).
    let (_f2, _f2_log, f2_port) =
        node_with_rpc(&dir("chain-f2"), &["--bootnodes", &f1_enode, "--disable-discovery"]);
    let ports = [v_port, f1_port, f2_port];
    let height = 4u64;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let hashes: Vec<String> = loop {
        let got: Vec<Option<String>> = ports
            .iter()
            .map(|p| {
                rpc(p, "eth_getBlockByNumber", serde_json::json!([format!("{height:#x}"), false]))
            })
            .map(|b| b.and_then(|b| b["hash"].as_str().map(str::to_owned)))
            .collect();
        if got.iter().all(Option::is_some) {
            break got.into_iter().flatten().collect();
        }
        assert!(std::time::Instant::now() < deadline, "block {height} not everywhere: {got:?}");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(hashes.iter().all(|h| *h == hashes[0]), "{hashes:?}");
    // The second fullnode's only peer is the first.
    let peers = rpc(&ports[2], "admin_peers", serde_json::json!([])).unwrap();
    assert_eq!(peers.as_array().unwrap().len(), 1);
    assert_eq!(peers[0]["source"], "bootnode", "{peers}");
    assert_eq!(rpc(&ports[2], "net_peerCount", serde_json::json!([])).unwrap(), "0x1");
}

/// Waits until the node writing `store` has stored block `n` (at most 120 s).
fn wait_stored(store: &ChainStore, n: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while store.best_block().unwrap().0 < n {
        assert!(std::time::Instant::now() < deadline, "block {n} never stored");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Checks that `store` holds a linked canonical chain from `from` to its best block,
/// each block's stored hash matching its header; returns the best number.
fn check_linked(store: &ChainStore, from: u64) -> u64 {
    let (best, best_hash) = store.best_block().unwrap();
    let mut parent = store.canonical_hash(from.saturating_sub(1)).unwrap().unwrap();
    for n in from.max(1)..=best {
        let b = store.block_by_number(n).unwrap().unwrap_or_else(|| panic!("block {n} missing"));
        assert_eq!(b.block.header.hash_slow(), b.hash, "block {n}: stored hash");
        assert_eq!(b.block.header.parent_hash, parent, "block {n}: linkage");
        parent = b.hash;
    }
    assert_eq!(parent, best_hash);
    assert!(store.canonical_hash(best + 1).unwrap().is_none(), "a block above the best");
    best
}

/// Blocks the soak's validator starts with (sync commits every 4,096).
const SOAK_BLOCKS: usize = 24_000;

/// A validator and two fullnodes; one fullnode is killed with SIGKILL at random moments
/// (`TERN_SOAK_KILLS` times, 20 by default), first while it syncs and then while it
/// follows. After each kill its store is consistent and has lost nothing committed; at the
/// end all three agree on every block.
#[test]
fn crash_restart_soak() {
    let kills: u32 =
        std::env::var("TERN_SOAK_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let mut seed = u64::from(std::process::id()) | 1;
    eprintln!("soak seed {seed}");
    let mut random_ms = |lo: u64, hi: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        lo + seed % (hi - lo)
    };
    let validator_dir = dir("soak-validator");
    prefill(&validator_dir, SOAK_BLOCKS);
    let (mut validator, validator_enode, _) = validator(&validator_dir);
    let steady_dir = dir("soak-steady");
    let (mut steady, steady_log) = node(&steady_dir, &["--bootnodes", &validator_enode]);
    let steady_enode = enode_of(&steady_log);
    let bootnodes = format!("{validator_enode},{steady_enode}");

    let victim_dir = dir("soak-victim");
    let mut checked: u64 = 0;
    for round in 0..kills {
        let (mut victim, log) = node(&victim_dir, &["--bootnodes", &bootnodes]);
        wait_line(&log, "node started");
        if round < kills / 2 {
            // While it syncs (and once synced, while it follows): soon after a commit.
            let store = ChainStore::open(&victim_dir).unwrap();
            while store.best_block().unwrap().0 <= checked {
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(random_ms(0, 200)));
        } else {
            std::thread::sleep(Duration::from_millis(random_ms(50, 2_000)));
        }
        victim.kill().unwrap(); // SIGKILL
        victim.wait().unwrap();
        let store = ChainStore::open(&victim_dir).unwrap();
        let best = check_linked(&store, checked.saturating_sub(64));
        assert!(best >= checked, "round {round}: committed blocks lost ({best} < {checked})");
        eprintln!("kill {}: at block {best}", round + 1);
        checked = best;
    }

    // The last restart catches up; the validator stops; everyone agrees.
    let (mut victim, _log) = node(&victim_dir, &["--bootnodes", &bootnodes]);
    std::thread::sleep(Duration::from_secs(3));
    interrupt(&mut validator);
    let head = ChainStore::open(&validator_dir).unwrap().best_block().unwrap();
    for d in [&victim_dir, &steady_dir] {
        let store = ChainStore::open(d).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while store.best_block().unwrap() != head {
            assert!(std::time::Instant::now() < deadline, "{d:?} did not reach {head:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    interrupt(&mut victim);
    interrupt(&mut steady);
    let stores: Vec<ChainStore> = [&validator_dir, &steady_dir, &victim_dir]
        .iter()
        .map(|d| ChainStore::open(d).unwrap())
        .collect();
    assert_eq!(check_linked(&stores[2], 0), head.0);
    for n in 0..=head.0 {
        let hashes: Vec<_> = stores.iter().map(|s| s.canonical_hash(n).unwrap()).collect();
        assert!(hashes.iter().all(|h| h.is_some() && *h == hashes[0]), "block {n}: {hashes:?}");
    }
    eprintln!("soak: {kills} kills survived, all three agree up to block {}", head.0);
}

/// SIGTERM and SIGINT stop a node in the middle of a sync (and one at the tip) with a
/// clean exit; before, a node could hang after SIGINT with every block stored.
#[test]
fn signals_stop_a_syncing_node() {
    let server_dir = dir("sig-server");
    prefill(&server_dir, BLOCKS as usize);
    let (mut server, server_log) =
        node(&server_dir, &["--peer-serve-rate", "3000000", "--peer-serve-burst", "100000"]);
    let enode = enode_of(&server_log);
    for signal in ["-TERM", "-INT"] {
        let full_dir = dir(&format!("sig-full{signal}"));
        let (mut full, log) = node(&full_dir, &["--bootnodes", &enode]);
        wait_line(&log, "peer connected");
        let status = stop_with(&mut full, signal);
        assert!(status.success(), "{signal}: {status}");
        let rest: Vec<String> = log.try_iter().collect();
        assert!(rest.iter().any(|l| l.contains("stopped")), "{signal}: {rest:?}");
        let store = ChainStore::open(&full_dir).unwrap();
        assert!(store.best_block().unwrap().0 < BLOCKS, "{signal} came mid-sync");
    }
    let status = stop_with(&mut server, "-TERM");
    assert!(status.success(), "at the tip: {status}");
}

/// A signal while the node is still starting (after the "starting" line, before "node
/// started") stops it cleanly too: the handlers are installed first (before, the default
/// action killed it).
#[test]
fn a_signal_during_startup_stops_cleanly() {
    for signal in ["-TERM", "-INT"] {
        let (mut n, log) = node(&dir(&format!("early{signal}")), &[]);
        wait_line(&log, "starting");
        let status = stop_with(&mut n, signal);
        assert!(status.success(), "{signal}: {status}");
    }
}

/// Peak resident memory of process `pid` (`VmHWM` in `/proc/<pid>/status`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).unwrap();
    line.trim().trim_end_matches("kB").trim().parse().unwrap()
}

/// An RLPx session to `enode` from a new key, by hand: the TCP stream (blocking, with
/// 30 s read and write timeouts) and the frame codec, before any frame is sent.
fn raw_rlpx(enode: &tern_p2p::Enode) -> (std::net::TcpStream, tern_ecies::FrameCodec, PeerId) {
    use std::io::{Read, Write};
    let key = tern_p2p::generate_secret_key();
    let mut hs = tern_ecies::Handshake::initiator(key, enode.id).unwrap();
    let mut tcp = std::net::TcpStream::connect(enode.tcp_addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    tcp.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    tcp.write_all(&hs.create_auth()).unwrap();
    let mut prefix = [0u8; 2];
    tcp.read_exact(&mut prefix).unwrap();
    let mut ack = prefix.to_vec();
    ack.resize(2 + u16::from_be_bytes(prefix) as usize, 0);
    tcp.read_exact(&mut ack[2..]).unwrap();
    let codec = tern_ecies::FrameCodec::new(hs.read_ack(&ack).unwrap());
    (tcp, codec, tern_p2p::peer_id(&key))
}

/// Reads until the node closes the connection (end of file or reset); false if it is
/// still open after the 30 s read timeout.
fn closed_by_node(tcp: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                )
            }
        }
    }
}

use tern_p2p::PeerId;

/// Sends the header of a frame announcing 16 MiB and `n` bytes of its body; the rest
/// never comes. A write may fail once the node has closed the connection.
fn send_partial_frame(tcp: &mut std::net::TcpStream, codec: &mut tern_ecies::FrameCodec, n: usize) {
    use std::io::Write;
    let mut frame = bytes::BytesMut::new();
    codec.encode_frame_header(tern_ecies::MAX_FRAME_SIZE, &mut frame).unwrap();
    frame.resize(frame.len() + n, 0);
    let _ = tcp.write_all(&frame);
}

/// A peer announces a frame's size in its header; the node must not turn that number into
/// memory. Every handshake slot (2 × 50 + 16) sends a first frame announcing 16 MiB and
/// 1 MiB of it (refused from the header: a first frame is a Hello, at most 2 KiB), and
/// every session slot (50) says Hello, then announces 16 MiB and sends 256 KiB (buffered
/// as it arrives, never reserved ahead). 2.6 GiB announced, 128 MiB sent: the node's peak
/// RSS grows by less than 64 MiB (before the first-frame cap the first group alone pinned
/// 116 MiB until the Hello timeout).
#[test]
fn connections_announcing_16_mib_frames_do_not_pin_memory() {
    use std::io::Write;
    const MAX_INBOUND: usize = 50;
    let d = dir("frames");
    let (mut n, log) = node(&d, &["--max-inbound-peers", &MAX_INBOUND.to_string()]);
    let enode: tern_p2p::Enode = enode_of(&log).parse().unwrap();
    let before = peak_rss_kib(n.id());
    // Before Hello.
    let mut early = Vec::new();
    for _ in 0..2 * MAX_INBOUND + 16 {
        let (mut tcp, mut codec, _) = raw_rlpx(&enode);
        send_partial_frame(&mut tcp, &mut codec, 1 << 20);
        early.push(tcp);
    }
    // The node ends each at its frame header (a first frame is a Hello, at most 2 KiB),
    // which frees its handshake slot.
    for (i, tcp) in early.iter_mut().enumerate() {
        assert!(closed_by_node(tcp), "connection {i} before Hello is still open");
    }
    // After Hello.
    let mut late = Vec::new();
    for _ in 0..MAX_INBOUND {
        let (mut tcp, mut codec, id) = raw_rlpx(&enode);
        let hello = tern_p2p::HelloMessage {
            protocol_version: 5,
            client_id: "frame-test".into(),
            capabilities: vec![tern_p2p::Capability::new("eth", 68)],
            port: 0,
            id,
        };
        let mut msg = vec![0x80]; // message id 0, then the Hello (never compressed)
        alloy_rlp::Encodable::encode(&hello, &mut msg);
        let mut wire = bytes::BytesMut::new();
        codec.encode_frame(&msg, &mut wire).unwrap();
        tcp.write_all(&wire).unwrap();
        send_partial_frame(&mut tcp, &mut codec, 256 << 10);
        late.push(tcp);
    }
    // The node ends each when its Status does not come (10 s).
    for (i, tcp) in late.iter_mut().enumerate() {
        assert!(closed_by_node(tcp), "connection {i} after Hello is still open");
    }
    let after = peak_rss_kib(n.id());
    eprintln!("16 MiB frames: peak RSS {before} KiB before, {after} KiB after");
    assert!(after - before < 64 * 1024, "peak RSS grew from {before} KiB to {after} KiB");
    // It still completes handshakes.
    let _ = raw_rlpx(&enode);
    interrupt(&mut n);
}
