//! A 3-validator, 2-fullnode network as processes under a flood of 20,000 transfers from
//! 100 senders sent (signed raw, over JSON-RPC) to one fullnode, with the pool's pending
//! limit low (1,000): every transfer ends in a block, the pool stays
//! within its limits, every node ends on the same state root. The flood is `tern bench
//! txpool`, which also probes a nonce gap and an underpriced replacement.

use std::process::Command;

const TERN: &str = env!("CARGO_BIN_EXE_tern");

#[test]
fn a_flood_through_one_fullnode_is_all_included_within_the_pool_limits() {
    let out = Command::new(TERN)
        .args(["bench", "txpool", "--json", "--txs", "20000", "--senders", "100"])
        .args(["--validators", "3", "--fullnodes", "2", "--period", "1"])
        .arg("--node-arg=--txpool.pending-max-count=1000")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(r["submitted"], 20_000, "{r}");
    assert_eq!(r["all_included"], true, "{r}");
    assert_eq!(r["included"], 20_000, "{r}");
    assert_eq!(r["state_roots_agree"], true, "{r}");
    assert!(r["nodes_exited"].as_array().unwrap().is_empty(), "{r}");
    // The pending limit held (senders told "txpool is full" or "account limit exceeded"
    // retried; whether the limit is reached depends on how fast blocks drain the pool).
    assert!(r["peak_pending"].as_f64().unwrap() <= 1000.0, "{r}");
    // A nonce gap waited in queued and was promoted when filled; a 5% bump was refused.
    assert_eq!(r["probe_queued_before_gap_filled"], 1, "{r}");
    assert_eq!(r["probe_gap_filled_and_included"], true, "{r}");
    assert_eq!(r["probe_underpriced_replacement"], "replacement transaction underpriced", "{r}");
}
