//! `tern devnet --validators 3 --fullnodes 2`: separate processes produce blocks from all
//! three signers, and every node reports the same chain over JSON-RPC.

use std::{
    collections::HashSet,
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    time::{Duration, Instant},
};
use tern_storage::ChainStore;

const TERN: &str = env!("CARGO_BIN_EXE_tern");

/// A JSON-RPC call over a plain HTTP/1.1 request.
fn rpc(url: &str, method: &str, params: serde_json::Value) -> Option<serde_json::Value> {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        .to_string();
    write!(s, "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let json = response.split("\r\n\r\n").nth(1)?;
    serde_json::from_str::<serde_json::Value>(json).ok()?.get("result").cloned()
}

fn number(v: &serde_json::Value) -> u64 {
    u64::from_str_radix(v["number"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

struct Devnet(std::process::Child);

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-INT", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}

#[test]
fn three_validators_and_two_fullnodes_agree() {
    let dir = std::env::temp_dir().join(format!("tern-devnet-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = Command::new(TERN)
        .args([
            "--log.level",
            "warn",
            "devnet",
            "--validators",
            "3",
            "--fullnodes",
            "2",
            "--dir",
            dir.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _devnet = Devnet(child);
    let mut nodes = Vec::new(); // (name, rpc url)
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() >= 2 && words[1].starts_with("http://") {
            nodes.push((words[0].to_string(), words[1].to_string()));
        }
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
    assert_eq!(nodes.len(), 5, "{nodes:?}");

    // Every node reaches height 8 (about 16 s of 2-second blocks).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let heights: Vec<u64> = nodes
            .iter()
            .map(|(_, url)| {
                rpc(url, "eth_getBlockByNumber", serde_json::json!(["latest", false]))
                    .map_or(0, |b| number(&b))
            })
            .collect();
        if heights.iter().all(|h| *h >= 8) {
            break;
        }
        assert!(Instant::now() < deadline, "heights {heights:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    // At a height every node has passed, every node reports the same block.
    let height = 6u64;
    let hashes: HashSet<String> = nodes
        .iter()
        .map(|(name, url)| {
            let b = rpc(
                url,
                "eth_getBlockByNumber",
                serde_json::json!([format!("{height:#x}"), false]),
            )
            .unwrap_or_else(|| panic!("{name}: no block {height}"));
            b["hash"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(hashes.len(), 1, "nodes disagree at {height}: {hashes:?}");
    let chain_id = rpc(&nodes[3].1, "eth_chainId", serde_json::json!([])).unwrap();
    assert_eq!(chain_id, "0x539");

    // Blocks 1..=6 come from all three signers (read from a fullnode's store: MDBX lets
    // another process read while the node writes).
    let store = ChainStore::open(&dir.join("fullnode-0")).unwrap();
    let signers: HashSet<_> = (1..=height)
        .map(|n| {
            tern_consensus::clique::recover_signer(&store.header_by_number(n).unwrap().unwrap())
                .unwrap()
        })
        .collect();
    assert_eq!(signers.len(), 3, "{signers:?}");
}
