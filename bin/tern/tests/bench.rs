//! `tern bench sync` end to end: a generated post-merge chain served by an in-process Tern
//! peer, synced by a fresh `tern node` process that executes every block; the row it
//! prints comes from what that node stored.

use std::process::Command;

const TERN: &str = env!("CARGO_BIN_EXE_tern");

#[test]
fn bench_sync_times_a_fresh_node_syncing_a_generated_post_merge_chain() {
    let dir = std::env::temp_dir().join(format!("tern-bench-sync-{}", std::process::id()));
    // 300 blocks: batches large enough to have their state root checked at their end.
    let out = Command::new(TERN)
        .args(["--log.level", "warn", "bench", "sync", "--empty-blocks", "0"])
        .args(["--full-blocks", "300", "--txs", "2", "--peers", "1", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let row = stdout
        .lines()
        .find(|l| l.starts_with("postmerge blocks x txs ") && !l.contains("serial"))
        .unwrap_or_else(|| panic!("no sync row in:\n{stdout}"));
    // From the end: vs serial, anon ("N MB"), RSS ("N MB"), MB/s, Mgas/s, txs/s, blocks/s,
    // secs, blocks, peers.
    let cols: Vec<&str> = row.split_whitespace().rev().collect();
    let num = |i: usize| cols[i].parse::<f64>().unwrap_or_else(|_| panic!("column {i}: {row}"));
    let (txs_per_sec, blocks_per_sec, blocks, peers) = (num(7), num(8), num(10), num(11));
    assert_eq!((blocks, peers), (300.0, 1.0), "{row}");
    assert!(blocks_per_sec > 0.0, "{row}");
    // Transactions are counted from the synced node's store: two per block.
    let ratio = txs_per_sec / blocks_per_sec;
    assert!((ratio - 2.0).abs() < 0.05, "{ratio}: {row}");
    assert!(!dir.exists(), "the scratch directory is removed");
}
