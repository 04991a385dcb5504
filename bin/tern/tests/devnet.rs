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

/// A running `tern devnet` with its nodes' RPC URLs and the funded accounts' keys it
/// printed.
struct Started {
    _devnet: Devnet,
    dir: std::path::PathBuf,
    /// (name, rpc url)
    nodes: Vec<(String, String)>,
    /// (address, key) of the funded test-mnemonic accounts printed.
    accounts: Vec<(String, String)>,
}

fn start_devnet(name: &str, validators: usize, fullnodes: usize) -> Started {
    let dir = std::env::temp_dir().join(format!("tern-devnet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = Command::new(TERN)
        .args(["--log.level", "warn", "devnet", "--dir", dir.to_str().unwrap()])
        .args(["--validators", &validators.to_string(), "--fullnodes", &fullnodes.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let devnet = Devnet(child);
    let (mut nodes, mut accounts) = (Vec::new(), Vec::new());
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() >= 2 && words[1].starts_with("http://") {
            nodes.push((words[0].to_string(), words[1].to_string()));
        }
        // "  (0) 0xADDRESS key 0xKEY"
        if words.len() == 4 && words[0].starts_with('(') && words[2] == "key" {
            accounts.push((words[1].to_string(), words[3].to_string()));
        }
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
    Started { _devnet: devnet, dir, nodes, accounts }
}

#[test]
fn three_validators_and_two_fullnodes_agree() {
    let Started { _devnet, dir, nodes, .. } = start_devnet("agree", 3, 2);
    assert_eq!(nodes.len(), 5, "{nodes:?}");

    // Every node reaches height 8 (about 8 s of 1-second blocks).
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

#[path = "../../../tests/interop/harness.rs"]
mod harness;

#[test]
fn a_dapp_developer_uses_the_devnet_with_ethers_viem_and_web3py() {
    let started = start_devnet("dapp", 1, 1);
    let (_, fullnode) = started.nodes.iter().find(|(n, _)| n == "fullnode-0").unwrap();
    // Until the fullnode serves and has joined the chain (a block past genesis).
    let deadline = Instant::now() + Duration::from_secs(60);
    while rpc(fullnode, "eth_blockNumber", serde_json::json!([])).is_none_or(|n| n == "0x0") {
        assert!(Instant::now() < deadline, "the fullnode does not follow the chain");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The well-known test-mnemonic accounts, funded and printed.
    assert_eq!(started.accounts.len(), 3, "{:?}", started.accounts);
    assert_eq!(started.accounts[0].0, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    let balance = rpc(fullnode, "eth_getBalance", serde_json::json!([started.accounts[1].0]));
    assert_eq!(balance, Some(serde_json::json!("0x21e19e0c9bab2400000")), "10,000 ETH");

    // Through the fullnode: deployed, used and read with ethers and viem (transactions
    // reach the validator by gossip); account 0 deploys, account 1 uses web3.py.
    let ws = fullnode.replace("http://", "ws://");
    let key0 = &started.accounts[0].1;
    let dapp =
        harness::run_node_script(&["dapp.mjs", "--rpc", fullnode, "--ws", &ws, "--key", key0]);
    assert_eq!(dapp.last().map(|e| e["event"].clone()), Some("done".into()), "{dapp:?}");
    let reverted = dapp.iter().find(|e| e["event"] == "reverted").unwrap();
    assert_eq!(reverted["reason"], "insufficient balance", "ethers decodes the revert reason");
    let key1 = &started.accounts[1].1;
    let web3 = harness::run_python_script(&["web3_check.py", "--rpc", fullnode, "--key", key1]);
    assert_eq!(web3.last().map(|e| e["event"].clone()), Some("done".into()), "{web3:?}");

    // The token is on every node: the validator reports the same code.
    let token = dapp.last().unwrap()["token"].as_str().unwrap().to_string();
    let (_, validator) = started.nodes.iter().find(|(n, _)| n == "validator-0").unwrap();
    let code = |url: &str| rpc(url, "eth_getCode", serde_json::json!([token, "latest"]));
    assert_eq!(code(validator), code(fullnode));
    assert!(code(validator).unwrap().as_str().unwrap().len() > 1000, "the token's code");
}
