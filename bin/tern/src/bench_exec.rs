//! `tern bench exec`: importing executed chains (ether transfers among many accounts, an
//! ERC-20 token), and the state root after many changes on a large state.
//!
//! Each chain is built first on a scratch store by the same builder the validator uses
//! (executed, sealed with the executed roots), then imported into a fresh store through
//! `tern import`'s path: headers, seals and bodies verified, senders recovered, every
//! block executed and every root checked. Only the import is timed.

use alloy_consensus::{Block, TxEip1559, TxEnvelope};
use alloy_genesis::GenesisAccount;
use alloy_primitives::{keccak256, Address, Bytes, TxKind, B256, U256};
use eyre::Result;
use secp256k1::SecretKey;
use std::{path::Path, time::Instant};
use tern_chainspec::{ChainSpec, DEV_VALIDATOR_KEY};
use tern_consensus::{address_of, chain_gen::sign_tx, Sealer, Snapshot};
use tern_execution::{build_and_store, ListedCandidates};
use tern_storage::{ChainStore, StateRead, EMPTY_CODE_HASH};

/// Gas limit of one ERC-20 transfer (it uses about 30,000–50,000).
const TOKEN_TRANSFER_GAS: u64 = 100_000;
/// Gas limit of the token deployment.
const DEPLOY_GAS: u64 = 300_000;

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Resets the process's peak RSS (Linux: `clear_refs` 5), so the next reading of VmHWM
/// covers only what follows.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The key of benchmark account `i`.
pub(crate) fn account_key(i: usize) -> SecretKey {
    let seed = keccak256([b"tern-bench-account".as_slice(), &(i as u64).to_be_bytes()].concat());
    SecretKey::from_byte_array(seed.0).expect("a keccak output is a valid key")
}

fn dev_key() -> SecretKey {
    let bytes: [u8; 32] =
        alloy_primitives::hex::decode(DEV_VALIDATOR_KEY).expect("hex").try_into().expect("32");
    SecretKey::from_byte_array(bytes).expect("valid key")
}

/// The dev chain with `accounts` more accounts, 1,000 ETH each.
fn spec_with_accounts(accounts: &[Address]) -> Result<ChainSpec> {
    let mut genesis = ChainSpec::dev().genesis;
    let balance = U256::from(10u64).pow(U256::from(21u64));
    for a in accounts {
        genesis.alloc.insert(*a, GenesisAccount { balance, ..Default::default() });
    }
    Ok(ChainSpec::from_genesis(genesis)?)
}

/// The next value of a xorshift64 generator (deterministic workloads).
pub(crate) fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Signs `txs` on every core.
fn sign_all(txs: Vec<(TxEip1559, SecretKey)>) -> Vec<TxEnvelope> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = txs.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = txs
            .chunks(chunk)
            .map(|c| {
                s.spawn(move || {
                    c.iter()
                        .map(|(tx, key)| TxEnvelope::Eip1559(sign_tx(tx.clone(), key)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("signer thread")).collect()
    })
}

/// Builds `count` blocks on `store` (the validator's path), each holding the transactions
/// `txs_for(block index)` returns (with their senders).
fn build_chain(
    spec: &ChainSpec,
    store: &ChainStore,
    count: usize,
    mut txs_for: impl FnMut(usize) -> Vec<(TxEip1559, SecretKey)>,
) -> Result<Vec<Block<TxEnvelope>>> {
    let sealer = Sealer::new(dev_key());
    let snapshot = Snapshot::new(vec![sealer.address()], 30_000);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let (_, hash) = store.best_block()?;
        let parent = store.header(hash)?.ok_or_else(|| eyre::eyre!("parent missing"))?;
        let unsigned = txs_for(i);
        let senders: Vec<Address> = unsigned.iter().map(|(_, k)| address_of(k)).collect();
        let mut txs = ListedCandidates::new(sign_all(unsigned).into_iter().zip(senders));
        let block = sealer.template(spec, &snapshot, &parent, hash, parent.timestamp + 2);
        let no_deadline = std::time::Instant::now() + std::time::Duration::from_secs(3600);
        let seal = |h: &mut alloy_consensus::Header| sealer.seal(h);
        let (sealed, built) =
            build_and_store(spec, store, block, &mut txs, sealer.address(), no_deadline, seal)?;
        if let Some((hash, why)) = built.failed.first() {
            eyre::bail!("transaction {hash} did not execute: {why}");
        }
        if let Some(i) = built.executed.receipts.iter().position(|r| !r.status()) {
            eyre::bail!("transaction {i} of block {} failed", sealed.block.header.number);
        }
        out.push(sealed.block);
    }
    Ok(out)
}

fn transfer(
    chain_id: u64,
    nonce: u64,
    to: Address,
    gas: u64,
    input: Bytes,
    value: u64,
) -> TxEip1559 {
    TxEip1559 {
        chain_id,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(to),
        value: U256::from(value),
        input,
        ..Default::default()
    }
}

/// Imports `blocks` into a fresh store in `dir` and prints the figures.
fn import_and_report(
    name: &str,
    spec: &ChainSpec,
    dir: &Path,
    blocks: Vec<Block<TxEnvelope>>,
) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    let store = ChainStore::init(dir, spec)?;
    let count = blocks.len();
    reset_peak_rss();
    let started = Instant::now();
    let stats = tern_sync::import_blocks(spec, &store, blocks, 4096, u64::MAX / 2)?;
    let secs = started.elapsed().as_secs_f64();
    eyre::ensure!(stats.blocks == count as u64, "imported {} of {count}", stats.blocks);
    println!(
        "{name:<28} {:>7} blocks {:>9} txs  {:>7.2} s  {:>8.0} blocks/s  {:>7.1} Mgas/s  {:>7.0} tx/s  root {:>6.2} ms/block  peak RSS {} MB",
        stats.blocks,
        stats.transactions,
        secs,
        stats.blocks as f64 / secs,
        stats.gas as f64 / 1e6 / secs,
        stats.transactions as f64 / secs,
        stats.state_root_time.as_secs_f64() * 1e3 / stats.blocks.max(1) as f64,
        status_kib("VmHWM:") / 1024,
    );
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

/// (a) `blocks` blocks of `txs` ether transfers among `accounts` accounts.
fn transfers(dir: &Path, blocks: usize, txs: usize, accounts: usize) -> Result<()> {
    let keys: Vec<SecretKey> = (0..accounts).map(account_key).collect();
    let addresses: Vec<Address> = keys.iter().map(address_of).collect();
    let spec = spec_with_accounts(&addresses)?;
    let build_dir = dir.join("build-transfers");
    let _ = std::fs::remove_dir_all(&build_dir);
    let store = ChainStore::init(&build_dir, &spec)?;
    let mut nonces = vec![0u64; accounts];
    let mut rng = 0x853c_49e6_748f_ea9bu64;
    let started = Instant::now();
    let chain = build_chain(&spec, &store, blocks, |b| {
        (0..txs)
            .map(|j| {
                let from = (b * txs + j) % accounts;
                let to = addresses[(next_random(&mut rng) % accounts as u64) as usize];
                nonces[from] += 1;
                let tx = transfer(spec.chain_id, nonces[from] - 1, to, 21_000, Bytes::new(), 1);
                (tx, keys[from])
            })
            .collect()
    })?;
    eprintln!(
        "built {blocks} blocks of {txs} transfers in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&build_dir);
    import_and_report(
        &format!("{txs} transfers/block"),
        &spec,
        &dir.join("import-transfers"),
        chain,
    )
}

/// A minimal ERC-20 `transfer(address,uint256)`: balances at slot = holder address;
/// reverts on an unknown selector or a short balance; emits `Transfer`; returns true.
/// Its creation code gives the deployer 2^64 − 1 tokens.
fn token_creation_code() -> Vec<u8> {
    let transfer_topic = keccak256("Transfer(address,address,uint256)");
    let mut runtime: Vec<u8> = vec![
        0x60, 0x00, 0x35, 0x60, 0xe0, 0x1c, // selector = calldata[0..4]
        0x63, 0xa9, 0x05, 0x9c, 0xbb, 0x14, // == transfer(address,uint256)
        0x60, 0x00, 0x57, // JUMPI ok (patched)
        0x60, 0x00, 0x80, 0xfd, // revert
        0x5b, // ok:
        0x60, 0x24, 0x35, // amount
        0x33, 0x54, // balance of the caller
        0x81, 0x81, 0x10, 0x60, 0x00, 0x57, // balance < amount → fail (patched)
        0x81, 0x90, 0x03, 0x33, 0x55, // caller's balance -= amount
        0x60, 0x04, 0x35, 0x80, 0x54, 0x82, 0x01, 0x90, 0x55, // to's balance += amount
        0x60, 0x00, 0x52, // memory[0] = amount
        0x60, 0x04, 0x35, 0x33, 0x7f, // topics: to, caller, Transfer
    ];
    runtime.extend_from_slice(transfer_topic.as_slice());
    runtime.extend_from_slice(&[
        0x60, 0x20, 0x60, 0x00, 0xa3, // LOG3(0, 32, …)
        0x60, 0x01, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xf3, // return true
        0x5b, 0x60, 0x00, 0x80, 0xfd, // fail: revert
    ]);
    let ok = runtime.iter().position(|b| *b == 0x5b).expect("ok label");
    let fail = runtime.len() - 5;
    runtime[13] = ok as u8;
    runtime[29] = fail as u8;
    // Creation: balance[caller] = 2^64 - 1, then return the runtime code.
    let mut init: Vec<u8> = vec![0x67, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x33, 0x55];
    let header_len = init.len() + 12;
    init.extend_from_slice(&[
        0x60,
        runtime.len() as u8,
        0x80,
        0x60,
        header_len as u8,
        0x60,
        0x00,
        0x39, // codecopy
        0x60,
        0x00,
        0xf3, // return(0, len)
    ]);
    debug_assert_eq!(init.len() + 1, header_len);
    init.push(0x00); // padding so the offsets above hold
    init.extend_from_slice(&runtime);
    init
}

/// (b) one block deploying the token, then `blocks` blocks of `txs` token transfers from
/// the deployer to `accounts` holders.
fn token(dir: &Path, blocks: usize, txs: usize, accounts: usize) -> Result<()> {
    let deployer = account_key(0);
    let spec = spec_with_accounts(&[address_of(&deployer)])?;
    let holders: Vec<Address> = (1..=accounts).map(|i| address_of(&account_key(i))).collect();
    let build_dir = dir.join("build-token");
    let _ = std::fs::remove_dir_all(&build_dir);
    let store = ChainStore::init(&build_dir, &spec)?;
    let token = address_of(&deployer).create(0);
    let mut nonce = 0u64;
    let mut rng = 0xda3e_39cb_94b9_5bdbu64;
    let started = Instant::now();
    let chain = build_chain(&spec, &store, blocks + 1, |b| {
        if b == 0 {
            let mut tx = transfer(
                spec.chain_id,
                0,
                Address::ZERO,
                DEPLOY_GAS,
                token_creation_code().into(),
                0,
            );
            tx.to = TxKind::Create;
            nonce = 1;
            return vec![(tx, deployer)];
        }
        (0..txs)
            .map(|_| {
                let r = next_random(&mut rng);
                let to = holders[(r % accounts as u64) as usize];
                let mut input = vec![0xa9, 0x05, 0x9c, 0xbb];
                input.extend_from_slice(B256::left_padding_from(to.as_slice()).as_slice());
                input.extend_from_slice(&U256::from(1 + r % 1000).to_be_bytes::<32>());
                nonce += 1;
                let tx =
                    transfer(spec.chain_id, nonce - 1, token, TOKEN_TRANSFER_GAS, input.into(), 0);
                (tx, deployer)
            })
            .collect()
    })?;
    let deployed = store.state()?.account(token)?.is_some_and(|a| a.code_hash != EMPTY_CODE_HASH);
    eyre::ensure!(deployed, "the token was not deployed");
    eprintln!(
        "built {blocks} blocks of {txs} token transfers in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&build_dir);
    import_and_report(
        &format!("{txs} ERC-20 transfers/block"),
        &spec,
        &dir.join("import-token"),
        chain,
    )
}

/// What `tern bench exec` runs.
#[derive(Debug, clap::Args)]
pub(crate) struct ExecArgs {
    /// Scratch directory (removed afterwards); default: the system temp dir.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Blocks of ether transfers (0: skip).
    #[arg(long, default_value_t = 10_000)]
    blocks: usize,
    /// Ether transfers per block.
    #[arg(long, default_value_t = 200)]
    txs: usize,
    /// Accounts sending and receiving them (and holding the token).
    #[arg(long, default_value_t = 10_000)]
    accounts: usize,
    /// Blocks of ERC-20 transfers after the token's deployment (0: skip).
    #[arg(long, default_value_t = 2_000)]
    token_blocks: usize,
    /// ERC-20 transfers per block.
    #[arg(long, default_value_t = 100)]
    token_txs: usize,
    /// Accounts in the state-root measurement (0: skip).
    #[arg(long, default_value_t = 1_000_000)]
    state_accounts: usize,
    /// Accounts changed before the measured root.
    #[arg(long, default_value_t = 10_000)]
    state_changes: usize,
}

/// Everything `tern bench exec` measures.
pub(crate) fn run(args: &ExecArgs) -> Result<()> {
    let default_dir = std::env::temp_dir().join("tern-bench-exec");
    let dir = args.dir.as_deref().unwrap_or(&default_dir);
    let ExecArgs {
        blocks,
        txs,
        accounts,
        token_blocks,
        token_txs,
        state_accounts,
        state_changes,
        ..
    } = *args;
    std::fs::create_dir_all(dir)?;
    if blocks > 0 {
        transfers(dir, blocks, txs, accounts)?;
    }
    if token_blocks > 0 {
        token(dir, token_blocks, token_txs, accounts)?;
    }
    if state_accounts > 0 {
        let r = tern_storage::state_root_benchmark(
            &dir.join("root"),
            state_accounts,
            state_changes,
            7,
        )?;
        let each: Vec<String> =
            r.roots.iter().map(|d| format!("{:.0}", d.as_secs_f64() * 1e3)).collect();
        println!(
            "state root after {} account changes on {} accounts: median {:.1} ms of {} blocks ({} ms); building the trie from nothing: {:.1} s",
            r.changed,
            r.accounts,
            r.median().as_secs_f64() * 1e3,
            r.roots.len(),
            each.join(", "),
            r.build.as_secs_f64()
        );
    }
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
