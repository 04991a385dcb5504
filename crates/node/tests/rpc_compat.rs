//! The execution-apis JSON-RPC compatibility tests (testdata/rpc-tests, see its README):
//! the chain is imported and executed, safe/finalized set from `headfcu.json`, a node
//! serves it, and every request/response file is replayed over HTTP.

use serde_json::Value;
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};
use tern_chainspec::ChainSpec;
use tern_node::{testing::rpc_post, Node};
use tern_storage::ChainStore;

/// Files Tern does not pass, each with why; the test fails if one of them passes (so this
/// list stays true) or if any other file fails.
const KNOWN_FAILURES: &[(&str, &str)] = &[];

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/rpc-tests")
}

/// Whether `got` answers like `expected` by the suite's rules: an equal result, an error
/// with the same code, or (speconly) a result of the same JSON type.
fn passes(expected: &Value, got: &Value, speconly: bool) -> Result<(), String> {
    if let Some(e) = expected.get("error") {
        return match got.get("error") {
            Some(g) if g["code"] == e["code"] => Ok(()),
            _ => Err(format!("want error code {}, got {got}", e["code"])),
        };
    }
    let want = &expected["result"];
    let Some(result) = got.get("result") else { return Err(format!("want a result, got {got}")) };
    let same_type = std::mem::discriminant(want) == std::mem::discriminant(result);
    match (speconly, result == want) {
        (_, true) | (true, false) if same_type => Ok(()),
        _ => Err(format!("want {want}\n got {result}")),
    }
}

/// Replays one `.io` file; `Err` says what differed.
async fn replay(addr: SocketAddr, text: &str) -> Result<(), String> {
    let speconly = text.lines().any(|l| l.starts_with("//") && l.contains("speconly"));
    let mut request = None;
    for line in text.lines() {
        if let Some(r) = line.strip_prefix(">> ") {
            request = Some(r.to_string());
        } else if let Some(r) = line.strip_prefix("<< ") {
            let expected: Value = serde_json::from_str(r).expect("expected response is JSON");
            let body = request.take().expect("a request before each response");
            passes(&expected, &rpc_post(addr, &body).await, speconly)?;
        }
    }
    Ok(())
}

fn import(datadir: &Path, spec: &ChainSpec) {
    let store = ChainStore::init(datadir, spec).expect("init store");
    let blocks = tern_consensus::chain_gen::read_chain_file(&testdata().join("chain.rlp"))
        .expect("chain.rlp");
    let count = blocks.len() as u64;
    let imported = tern_sync::import_blocks(spec, &store, blocks, 4096, u64::MAX / 2)
        .expect("the chain imports, every block executed");
    assert_eq!(imported.blocks as u64, count);
    let fcu: Value =
        serde_json::from_str(&std::fs::read_to_string(testdata().join("headfcu.json")).unwrap())
            .unwrap();
    let state = &fcu["params"][0];
    let hash = |k: &str| state[k].as_str().unwrap().parse().unwrap();
    assert_eq!(store.best_block().unwrap().1, hash("headBlockHash"), "head after import");
    store.set_fork_choice(hash("safeBlockHash"), hash("finalizedBlockHash")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_apis_rpc_tests_pass() {
    let datadir = std::env::temp_dir().join(format!("tern-rpc-compat-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&datadir);
    let spec = ChainSpec::load(testdata().join("genesis.json").to_str().unwrap()).unwrap();
    import(&datadir, &spec);

    let mut config = tern_node::testing::node_config(datadir.clone(), vec![], false);
    config.spec = spec;
    config.http = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let node = Node::start(config).await.expect("node starts");
    let addr = node.rpc_addr.expect("RPC is served");

    let mut files: Vec<PathBuf> = std::fs::read_dir(testdata())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .flat_map(|d| std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()))
        .filter(|p| p.extension().is_some_and(|e| e == "io"))
        .collect();
    // The suite's order: sends come before the txpool reads that show them.
    files.sort();
    assert_eq!(files.len(), 88, "the suite has 88 files");
    let (mut passed, mut failures) = (0, Vec::new());
    for path in &files {
        let name = path.strip_prefix(testdata()).unwrap().to_string_lossy().into_owned();
        let outcome = replay(addr, &std::fs::read_to_string(path).unwrap()).await;
        let known = KNOWN_FAILURES.iter().any(|(n, _)| *n == name);
        match (outcome, known) {
            (Ok(()), false) => passed += 1,
            (Ok(()), true) => {
                failures.push(format!("{name}: passes now; remove it from KNOWN_FAILURES"))
            }
            (Err(_), true) => {}
            (Err(why), false) => failures.push(format!("{name}: {why}")),
        }
    }
    node.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&datadir);
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(passed, files.len() - KNOWN_FAILURES.len());
}
