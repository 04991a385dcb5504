//! Crash safety with execution: a child process executes and stores batches of an
//! executed chain and is killed with SIGKILL at random moments; after every kill the store
//! opens at a batch boundary with nothing committed lost, the state is at the best block,
//! and the state root recomputed from scratch (every account and slot rehashed) equals
//! the best header's. The next child continues on the incremental trie, whose roots are
//! checked against every header it stores.

use alloy_consensus::{Block, TxEnvelope};
use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};
use tern_chainspec::{ChainSpec, DEV_VALIDATOR_KEY};
use tern_execution::{chain::build_chain_from_genesis, execute_and_store, BlockToExecute};
use tern_storage::{ChainStore, SealedBlock};

const BATCH: usize = 25;
const BLOCKS: usize = 2000;
const KILLS: usize = 10;
const CHILD_ENV: &str = "TERN_EXEC_CRASH_CHILD_DATADIR";

fn chain(spec: &ChainSpec) -> Vec<Block<TxEnvelope>> {
    let bytes: [u8; 32] =
        alloy_primitives::hex::decode(DEV_VALIDATOR_KEY).unwrap().try_into().unwrap();
    let key = secp256k1::SecretKey::from_byte_array(bytes).unwrap();
    // Built on a scratch store with incremental roots: the dev chain's system contracts
    // grow storage every block, which MemState's full rehash per block makes quadratic
    // (this took minutes per child).
    let scratch = std::env::temp_dir().join(format!("tern-crash-chain-{}", std::process::id()));
    build_chain_from_genesis(spec, &scratch, &[key], BLOCKS, 10, (&key, 0)).unwrap()
}

/// The child: executes and stores the chain's batches past the best block, printing the
/// best block after each commit.
#[test]
fn exec_crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let spec = ChainSpec::dev();
    let blocks = chain(&spec);
    let signer = tern_consensus::clique::recover_signer(&blocks[0].header).unwrap();
    let store = ChainStore::init(Path::new(&dir), &spec).unwrap();
    loop {
        let (best, _) = store.best_block().unwrap();
        let batch: Vec<BlockToExecute> = blocks[best as usize..(best as usize + BATCH).min(BLOCKS)]
            .iter()
            .map(|b| BlockToExecute {
                senders: tern_consensus::recover_senders(&b.body.transactions).unwrap(),
                block: SealedBlock::seal(b.clone()),
                beneficiary: signer,
            })
            .collect();
        if batch.is_empty() {
            // All stored (a fast machine): say so, and wait to be killed.
            println!("committed {best}");
            std::thread::sleep(Duration::from_secs(3600));
        }
        execute_and_store(&spec, &store, &batch, tern_execution::StateRootCheck::EveryBlock)
            .unwrap();
        println!("committed {}", best + batch.len() as u64);
    }
}

/// A tiny deterministic generator for kill delays.
fn delays() -> impl Iterator<Item = Duration> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    std::iter::from_fn(move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        Some(Duration::from_millis(10 + x % 150))
    })
}

fn check_consistent(dir: &Path, spec: &ChainSpec, committed: u64) -> u64 {
    let store = ChainStore::init(dir, spec).unwrap();
    let (best, best_hash) = store.best_block().unwrap();
    assert!(best >= committed, "lost committed blocks: best {best} < reported {committed}");
    assert_eq!(best % BATCH as u64, 0, "best {best} is not at a batch boundary");
    assert_eq!(store.state_number().unwrap(), best, "state is not at the best block");
    let header = store.header(best_hash).unwrap().unwrap();
    let from_scratch = store.state().unwrap().state_root().unwrap();
    assert_eq!(from_scratch, header.state_root, "state root of block {best} recomputed");
    if best > 0 {
        assert_eq!(store.receipts(best).unwrap().len(), 10, "receipts of block {best}");
    }
    best
}

#[test]
fn survives_sigkill_during_execution() {
    let dir = std::env::temp_dir().join(format!("tern-exec-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let spec = ChainSpec::dev();
    let mut best = 0;
    for (round, delay) in delays().take(KILLS).enumerate() {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["exec_crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for the first commit of this round, then let it run a random while.
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut committed = best;
        let started = Instant::now();
        for line in lines.by_ref() {
            if let Some(n) = line.unwrap().strip_prefix("committed ") {
                committed = n.parse().unwrap();
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(120), "child made no progress");
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
        eprintln!("round {round}: best {now}");
        assert!(now >= best, "round {round}: store went backwards from {best} to {now}");
        best = now;
    }
    eprintln!("{KILLS} kills survived; final best block {best}");
    let _ = std::fs::remove_dir_all(&dir);
}
