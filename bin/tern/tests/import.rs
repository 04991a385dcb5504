//! `tern import` executes every block: the execution-apis chain imports with every root
//! checked, a generated chain round-trips, and a block whose header lies about its
//! execution is refused by number and field with the blocks before it kept.

use alloy_consensus::{Block, TxEnvelope, TxReceipt};
use std::{path::PathBuf, process::Command};
use tern_chainspec::ChainSpec;
use tern_storage::ChainStore;

const TERN: &str = env!("CARGO_BIN_EXE_tern");

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tern-import-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/rpc-tests").join(name)
}

/// Runs `tern` with `args`: (success, stdout, stderr).
fn tern(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(TERN).arg("--log.level").arg("warn").args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn the_execution_apis_chain_imports_with_every_root_checked() {
    let d = dir("rpc");
    let genesis = testdata("genesis.json");
    let chain = testdata("chain.rlp");
    let datadir = d.join("node");
    let (ok, out, err) = tern(&[
        "import",
        "--datadir",
        datadir.to_str().unwrap(),
        "--chain",
        genesis.to_str().unwrap(),
        chain.to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("imported 54 of 54 blocks, each executed"), "{out}");
    let spec = ChainSpec::from_file(&genesis).unwrap();
    let store = ChainStore::init(&datadir, &spec).unwrap();
    assert_eq!(store.state_number().unwrap(), 54);
    let head = store.header_by_number(54).unwrap().unwrap();
    assert_eq!(store.state().unwrap().state_root().unwrap(), head.state_root);
    assert!(out.contains(&head.state_root.to_string()), "{out}");
    // Receipts of a pre-Byzantium block carry intermediate state roots.
    let first = store.receipts(1).unwrap();
    assert!(
        !first.is_empty()
            && first.iter().all(|r| r.status_or_post_state().as_post_state().is_some())
    );
}

#[test]
fn a_block_whose_header_lies_about_its_execution_is_refused() {
    let d = dir("lie");
    let file = d.join("chain.rlp");
    let (ok, out, err) =
        tern(&["gen-chain", "--blocks", "12", "--txs", "3", "--out", file.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    // A clean import executes all twelve.
    let good = d.join("good");
    let (ok, out, err) =
        tern(&["import", "--datadir", good.to_str().unwrap(), file.to_str().unwrap()]);
    assert!(ok && out.contains("imported 12 of 12"), "{out}{err}");
    // Block 8 claims more gas than it uses; re-sealed, so only execution can tell.
    let mut blocks: Vec<Block<TxEnvelope>> =
        tern_consensus::chain_gen::read_chain_file(&file).unwrap();
    let bytes = alloy_primitives::hex::decode(tern_chainspec::DEV_VALIDATOR_KEY).unwrap();
    let key = secp256k1::SecretKey::from_byte_array(bytes.try_into().unwrap()).unwrap();
    blocks[7].header.gas_used += 1;
    tern_consensus::clique::seal_header(&mut blocks[7].header, &key).unwrap();
    let bad = d.join("bad.rlp");
    tern_consensus::chain_gen::write_chain_file(&bad, &blocks[..8]).unwrap();
    let datadir = d.join("node");
    let (ok, out, err) =
        tern(&["import", "--datadir", datadir.to_str().unwrap(), bad.to_str().unwrap()]);
    assert!(!ok, "{out}{err}");
    assert!(err.contains("block 8 is invalid") && err.contains("gas_used"), "{err}");
    let store = ChainStore::init(&datadir, &ChainSpec::dev()).unwrap();
    assert_eq!(store.best_block().unwrap().0, 7, "the blocks before it are kept");
    assert_eq!(store.state_number().unwrap(), 7);
}
