//! `tern bench store`: insert throughput of [`ChainStore`] against raw MDBX puts of the
//! same bytes (the floor).

use crate::{testing::synthetic_chain, ChainStore, SealedBlock, StoreError, Table};
use alloy_primitives::U256;
use signet_libmdbx::{DatabaseFlags, Environment, WriteFlags};
use std::{
    path::Path,
    time::{Duration, Instant},
};
use tern_chainspec::ChainSpec;

/// One workload's figures.
#[derive(Debug, Clone)]
pub struct StoreBenchCase {
    /// What was inserted.
    pub name: String,
    /// Blocks inserted.
    pub blocks: usize,
    /// Key + value bytes written.
    pub bytes: u64,
    /// Time of `ChainStore::insert_blocks` over all batches.
    pub store: Duration,
    /// Time of raw MDBX puts of the same keys and values, with the same commits.
    pub raw: Duration,
}

impl StoreBenchCase {
    /// Blocks per second through the store.
    pub fn blocks_per_sec(&self) -> f64 {
        self.blocks as f64 / self.store.as_secs_f64()
    }
    /// MB/s (10^6 bytes) through the store.
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.store.as_secs_f64()
    }
    /// MB/s of the raw puts.
    pub fn raw_mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.raw.as_secs_f64()
    }
    /// Store throughput as a fraction of the raw floor (goal ≥ 0.8).
    pub fn ratio(&self) -> f64 {
        self.raw.as_secs_f64() / self.store.as_secs_f64()
    }
}

/// The whole report.
#[derive(Debug, Clone)]
pub struct StoreBenchReport {
    /// One entry per workload.
    pub cases: Vec<StoreBenchCase>,
}

impl std::fmt::Display for StoreBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<28} {:>8} {:>9} {:>10} {:>9} {:>10} {:>6}",
            "workload", "blocks", "MB", "blocks/s", "MB/s", "raw MB/s", "ratio"
        )?;
        for c in &self.cases {
            writeln!(
                f,
                "{:<28} {:>8} {:>9.1} {:>10.0} {:>9.1} {:>10.1} {:>6.2}",
                c.name,
                c.blocks,
                c.bytes as f64 / 1e6,
                c.blocks_per_sec(),
                c.mb_per_sec(),
                c.raw_mb_per_sec(),
                c.ratio()
            )?;
        }
        Ok(())
    }
}

/// The (table, key, value) writes `insert_blocks` makes for `blocks`, td from `td`.
fn writes(blocks: &[SealedBlock], mut td: U256) -> Vec<(Table, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for b in blocks {
        let h = &b.block.header;
        td += h.difficulty;
        let key = b.hash.to_vec();
        let id = crate::store::block_id(h.number, b.hash).to_vec();
        out.push((Table::Headers, id.clone(), alloy_rlp::encode(h)));
        out.push((Table::Bodies, id.clone(), alloy_rlp::encode(&b.block.body)));
        out.push((Table::HeaderNumbers, key.clone(), h.number.to_be_bytes().to_vec()));
        out.push((Table::TotalDifficulty, id, td.to_be_bytes::<32>().to_vec()));
        out.push((Table::CanonicalHashes, h.number.to_be_bytes().to_vec(), key));
        for (i, tx) in b.block.body.transactions.iter().enumerate() {
            let mut loc = h.number.to_be_bytes().to_vec();
            loc.extend_from_slice(&(i as u32).to_be_bytes());
            out.push((Table::TxLookup, tx.tx_hash().to_vec(), loc));
        }
    }
    out.push((Table::Meta, b"best_number".to_vec(), 0u64.to_be_bytes().to_vec()));
    out
}

fn raw_env(path: &Path) -> Result<(Environment, Vec<signet_libmdbx::tx::Database>), StoreError> {
    std::fs::create_dir_all(path)
        .map_err(|e| StoreError::Corrupted { table: "bench", reason: e.to_string() })?;
    let env = crate::store::env_builder().open(path)?;
    let txn = env.begin_rw_unsync()?;
    let dbs = Table::ALL
        .iter()
        .map(|t| txn.create_db(Some(t.name()), DatabaseFlags::empty()))
        .collect::<Result<Vec<_>, _>>()?;
    txn.commit()?;
    Ok((env, dbs))
}

fn run_case(
    dir: &Path,
    name: &str,
    count: usize,
    txs: usize,
    batch: usize,
) -> Result<StoreBenchCase, StoreError> {
    let spec = ChainSpec::dev();
    let chain = synthetic_chain((spec.genesis_hash, &spec.genesis_header), count, txs, 7);
    let case_dir = dir.join(name.replace(' ', "-"));
    let _ = std::fs::remove_dir_all(&case_dir);

    // The raw floor: the same keys and values, put in the same batches, no encoding work.
    let (env, dbs) = raw_env(&case_dir.join("raw"))?;
    let mut td = spec.genesis_header.difficulty;
    let batches: Vec<_> = chain
        .chunks(batch)
        .map(|c| {
            let w = writes(c, td);
            td += c.iter().map(|b| b.block.header.difficulty).sum::<U256>();
            w
        })
        .collect();
    let bytes: u64 = batches.iter().flatten().map(|(_, k, v)| (k.len() + v.len()) as u64).sum();
    let started = Instant::now();
    for w in &batches {
        let txn = env.begin_rw_unsync()?;
        for (t, k, v) in w {
            let db = dbs[Table::ALL.iter().position(|x| x == t).expect("listed")];
            txn.put(db, k, v, WriteFlags::empty())?;
        }
        txn.commit()?;
    }
    let raw = started.elapsed();
    drop(env);

    let store = ChainStore::init(&case_dir.join("store"), &spec)?;
    let started = Instant::now();
    for c in chain.chunks(batch) {
        store.insert_blocks(c)?;
    }
    let store_time = started.elapsed();
    let _ = std::fs::remove_dir_all(&case_dir);
    Ok(StoreBenchCase { name: name.into(), blocks: count, bytes, store: store_time, raw })
}

/// Inserts 100,000 empty blocks (batches of 1,000) and 10,000 blocks of 100 transactions
/// (batches of 250) into fresh stores under `dir`, and the same bytes with raw puts.
pub fn store_benchmark(dir: &Path) -> Result<StoreBenchReport, StoreError> {
    Ok(StoreBenchReport {
        cases: vec![
            run_case(dir, "100k empty blocks", 100_000, 0, 1_000)?,
            run_case(dir, "10k blocks x 100 txs", 10_000, 100, 250)?,
        ],
    })
}

/// What [`state_root_benchmark`] measured.
#[derive(Debug, Clone)]
pub struct StateRootBench {
    /// Accounts in the state.
    pub accounts: usize,
    /// Accounts changed by each measured block.
    pub changed: usize,
    /// Time to write the accounts and build the trie from nothing.
    pub build: Duration,
    /// Time to compute the root after each measured block (the tries brought up to
    /// date), in order.
    pub roots: Vec<Duration>,
}

impl StateRootBench {
    /// The median of [`StateRootBench::roots`].
    pub fn median(&self) -> Duration {
        let mut sorted = self.roots.clone();
        sorted.sort();
        sorted.get(sorted.len() / 2).copied().unwrap_or_default()
    }
}

/// The state root after `changed` account changes on a state of `accounts` accounts:
/// block 1 creates the accounts (the trie built from nothing); each of `rounds` more
/// blocks changes the balance of `changed` accounts spread over the state; only their
/// roots are timed.
pub fn state_root_benchmark(
    dir: &Path,
    accounts: usize,
    changed: usize,
    rounds: usize,
) -> Result<StateRootBench, StoreError> {
    use crate::{Account, ExecutedBlock, StateChanges};
    let _ = std::fs::remove_dir_all(dir);
    let spec = ChainSpec::dev();
    let store = ChainStore::init(dir, &spec)?;
    let address =
        |i: usize| alloy_primitives::Address::left_padding_from(&(i as u64).to_be_bytes());
    let account =
        |balance: u64| Some(Account { balance: U256::from(balance), ..Default::default() });
    let blocks = synthetic_chain((spec.genesis_hash, &spec.genesis_header), rounds + 1, 0, 1);
    let first = StateChanges {
        accounts: (0..accounts).map(|i| (address(i + 1), account(1))).collect(),
        ..Default::default()
    };
    let started = Instant::now();
    store.write_state(|w| {
        w.append(&ExecutedBlock { block: blocks[0].clone(), changes: first, receipts: vec![] })?;
        w.state_root()
    })?;
    let build = started.elapsed();
    let step = (accounts / changed.max(1)).max(1);
    let mut roots = Vec::with_capacity(rounds);
    for (round, block) in blocks[1..].iter().enumerate() {
        let changes = StateChanges {
            accounts: (round % step..accounts)
                .step_by(step)
                .take(changed)
                .map(|i| (address(i + 1), account(2 + round as u64)))
                .collect(),
            ..Default::default()
        };
        roots.push(store.write_state(|w| {
            w.append(&ExecutedBlock { block: block.clone(), changes, receipts: vec![] })?;
            let started = Instant::now();
            w.state_root()?;
            Ok::<_, StoreError>(started.elapsed())
        })?);
    }
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
    Ok(StateRootBench { accounts, changed, build, roots })
}
