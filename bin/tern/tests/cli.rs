//! Bad input: each case ends with a one-line error naming the problem and the flag, a
//! non-zero exit code, and nothing stored harmed.

use std::process::Command;
use tern_chainspec::ChainSpec;
use tern_storage::ChainStore;

const TERN: &str = env!("CARGO_BIN_EXE_tern");

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("tern-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `tern node` with `args`; returns the last stderr line after checking the exit code.
fn fails(args: &[&str]) -> String {
    let out = Command::new(TERN)
        .args(["--log.level", "warn", "node", "--addr", "127.0.0.1", "--port", "0"])
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default().to_string();
    assert!(last.starts_with("error: "), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().filter(|l| l.starts_with("error")).count(), 1, "one line: {stderr}");
    last
}

#[test]
fn malformed_enode_url() {
    let d = dir("enode");
    let e = fails(&["--datadir", d.to_str().unwrap(), "--bootnodes", "enode://xyz@1.2.3.4:5"]);
    assert!(
        e.contains("--bootnodes") && e.contains("invalid enode URL") && e.contains("128 hex"),
        "{e}"
    );
}

#[test]
fn missing_and_malformed_genesis() {
    let d = dir("genesis");
    let e = fails(&["--datadir", d.to_str().unwrap(), "--chain", "/no/such/genesis.json"]);
    assert!(
        e.contains("--chain") && e.contains("cannot read genesis file /no/such/genesis.json"),
        "{e}"
    );
    let bad = d.join("bad.json");
    std::fs::write(&bad, "{\"config\": ").unwrap();
    let e = fails(&["--datadir", d.to_str().unwrap(), "--chain", bad.to_str().unwrap()]);
    assert!(e.contains("--chain") && e.contains("invalid genesis JSON"), "{e}");
    assert_eq!(e.matches("EOF while parsing").count(), 1, "no repeated causes: {e}");
}

#[test]
fn key_file_that_is_not_a_key() {
    let d = dir("key");
    let key = d.join("validator.key");
    std::fs::write(&key, "not a key").unwrap();
    let e = fails(&[
        "--datadir",
        d.to_str().unwrap(),
        "--enable-consensus",
        "--validator-key",
        key.to_str().unwrap(),
    ]);
    assert!(e.contains("--validator-key") && e.contains("64 hex digits"), "{e}");
    std::fs::write(d.join("nodekey"), "zz").unwrap();
    let e = fails(&["--datadir", d.to_str().unwrap()]);
    assert!(e.contains("--datadir") && e.contains("nodekey"), "{e}");
}

#[test]
fn datadir_of_another_chain_is_refused_and_kept() {
    let d = dir("other-chain");
    let dev = ChainSpec::dev();
    ChainStore::init(&d, &dev).unwrap();
    let pm = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/genesis/postmerge-dev.json");
    let e = fails(&["--datadir", d.to_str().unwrap(), "--chain", pm]);
    assert!(e.contains("--datadir") && e.contains(&dev.genesis_hash.to_string()), "{e}");
    // Nothing harmed: the store still opens with its genesis.
    assert_eq!(ChainStore::init(&d, &dev).unwrap().best_block().unwrap().1, dev.genesis_hash);
}

#[test]
fn port_in_use() {
    let d = dir("port");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(TERN)
        .args([
            "--log.level",
            "warn",
            "node",
            "--addr",
            "127.0.0.1",
            "--port",
            &port,
            "--datadir",
            d.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap();
    assert!(last.contains("--addr/--port") && last.contains("in use"), "{last}");
}

#[test]
fn adversary_bad_input() {
    let run = |args: &[&str]| {
        let out = Command::new(TERN).arg("adversary").args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or_default().to_string()
    };
    let e = run(&["--target", "enode://xyz@1.2.3.4:5"]);
    assert!(e.starts_with("error: ") && e.contains("--target"), "{e}");
    let key = tern_p2p::SecretKey::from_byte_array([7; 32]).unwrap();
    let target = format!("enode://{}@127.0.0.1:1", hex::encode(tern_p2p::peer_id(&key)));
    let e = run(&["--target", &target, "--behaviour", "polite"]);
    assert!(e.contains("--behaviour") && e.contains("polite") && e.contains("bad-seals"), "{e}");
    let e = run(&["--target", &target, "--blocks", "/no/such/chain.rlp"]);
    assert!(e.contains("--blocks"), "{e}");
    let e = run(&["--target", &target, "--eth-version", "71"]);
    assert!(e.contains("--eth-version") && e.contains("71"), "{e}");
}
