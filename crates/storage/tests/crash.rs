//! Crash safety: a child process inserts batches in a loop and is killed with SIGKILL at
//! random moments; after every kill the store must open consistent, at a batch boundary,
//! with nothing committed lost.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};
use tern_chainspec::ChainSpec;
use tern_storage::{testing::synthetic_chain, ChainStore};

const BATCH: usize = 25;
const KILLS: usize = 20;
const CHILD_ENV: &str = "TERN_CRASH_CHILD_DATADIR";

/// The child: inserts batches forever, printing the best block after each commit.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let spec = ChainSpec::dev();
    let store = ChainStore::init(Path::new(&dir), &spec).unwrap();
    loop {
        let (number, hash) = store.best_block().unwrap();
        let parent = store.header(hash).unwrap().unwrap();
        let batch = synthetic_chain((hash, &parent), BATCH, 5, number);
        store.insert_blocks(&batch).unwrap();
        println!("committed {}", number + BATCH as u64);
    }
}

/// A tiny deterministic generator for kill delays.
fn delays() -> impl Iterator<Item = Duration> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    std::iter::from_fn(move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        Some(Duration::from_millis(20 + x % 180))
    })
}

fn check_consistent(dir: &Path, spec: &ChainSpec, committed: u64) -> u64 {
    let store = ChainStore::init(dir, spec).unwrap();
    let (best, best_hash) = store.best_block().unwrap();
    assert!(best >= committed, "lost committed blocks: best {best} < reported {committed}");
    assert_eq!(best % BATCH as u64, 0, "best {best} is not at a batch boundary");
    assert_eq!(store.canonical_hash(best + 1).unwrap(), None, "block past the best is visible");
    let mut parent = spec.genesis_hash;
    for n in 0..=best {
        let block =
            store.block_by_number(n).unwrap().unwrap_or_else(|| panic!("block {n} missing"));
        assert_eq!(block.block.header.hash_slow(), block.hash, "header {n} hashes to its key");
        if n > 0 {
            assert_eq!(block.block.header.parent_hash, parent, "block {n} does not link");
            assert_eq!(block.block.body.transactions.len(), 5);
        }
        parent = block.hash;
    }
    assert_eq!(parent, best_hash);
    best
}

#[test]
fn survives_sigkill_during_inserts() {
    let dir = std::env::temp_dir().join(format!("tern-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let spec = ChainSpec::dev();
    let mut best = 0;
    for (round, delay) in delays().take(KILLS).enumerate() {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for the first commit of this round, then let it run a random while.
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut committed = 0;
        let started = Instant::now();
        for line in lines.by_ref() {
            if let Some(n) = line.unwrap().strip_prefix("committed ") {
                committed = n.parse().unwrap();
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "child made no progress");
        }
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
                               // Everything the child reported before dying is committed.
        for line in lines.map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("committed ") {
                committed = n.parse().unwrap();
            }
        }
        child.wait().unwrap();
        let now = check_consistent(&dir, &spec, committed);
        assert!(now >= best, "round {round}: store went backwards from {best} to {now}");
        best = now;
    }
    assert!(best > 0);
    eprintln!("{KILLS} kills survived; final best block {best}");
    let _ = std::fs::remove_dir_all(&dir);
}
