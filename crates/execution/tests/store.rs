//! Executing chains into the MDBX store: every root checked, bad blocks refused with the
//! blocks before them kept, and a reorg across blocks with transactions leaving exactly
//! the state of a fresh import of the new branch; batches executed ahead of the store
//! (bulk sync's pipeline) storing the same chain.

use alloy_consensus::{Block, TxEnvelope};
use alloy_primitives::Address;
use std::path::PathBuf;
use tern_chainspec::ChainSpec;
use tern_consensus::recover_senders;
use tern_execution::{
    chain::{executed_chain, genesis_state},
    execute_and_store, store_executed, AheadError, BlockToExecute, ExecuteAhead, ExecutedBatch,
    StateRootCheck, StoreExecutionError,
};
use tern_storage::{ChainStore, SealedBlock, StateRead};

const EVERY: StateRootCheck = StateRootCheck::EveryBlock;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tern-exec-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn dev_key() -> secp256k1::SecretKey {
    let bytes = alloy_primitives::hex::decode(tern_chainspec::DEV_VALIDATOR_KEY).unwrap();
    secp256k1::SecretKey::from_byte_array(bytes.try_into().unwrap()).unwrap()
}

fn to_execute(blocks: &[Block<TxEnvelope>]) -> Vec<BlockToExecute> {
    blocks
        .iter()
        .map(|b| BlockToExecute {
            senders: recover_senders(&b.body.transactions).unwrap(),
            beneficiary: tern_consensus::clique::recover_signer(&b.header).unwrap(),
            block: SealedBlock::seal(b.clone()),
        })
        .collect()
}

/// Recipients of the generated transfers.
fn recipients() -> Vec<Address> {
    (0..8).map(tern_consensus::chain_gen::transfer_recipient).collect()
}

#[test]
fn a_chain_with_transfers_executes_into_the_store() {
    let spec = ChainSpec::dev();
    let key = dev_key();
    let mut state = genesis_state(&spec);
    let blocks = executed_chain(
        &spec,
        &[key],
        (spec.genesis_hash, &spec.genesis_header),
        &mut state,
        20,
        5,
        (&key, 0),
    )
    .unwrap();
    let store = ChainStore::init(&tmp("chain"), &spec).unwrap();
    let executed = execute_and_store(&spec, &store, &to_execute(&blocks), EVERY).unwrap();
    assert_eq!(executed.len(), 20);
    assert_eq!(store.best_block().unwrap().0, 20);
    assert_eq!(store.state_number().unwrap(), 20);
    let reader = store.state().unwrap();
    assert_eq!(reader.state_root().unwrap(), blocks[19].header.state_root);
    let signer = tern_consensus::address_of(&key);
    assert_eq!(reader.account(signer).unwrap().unwrap().nonce, 100);
    for r in recipients().into_iter().take(5) {
        let account = reader.account(r).unwrap().unwrap_or_else(|| panic!("{r} missing"));
        assert_eq!(account.balance, alloy_primitives::U256::from(20), "{r}");
    }
    assert_eq!(store.receipts(7).unwrap().len(), 5);
}

#[test]
fn a_block_that_does_not_execute_to_its_header_is_refused_after_the_good_ones() {
    let spec = ChainSpec::dev();
    let key = dev_key();
    let mut state = genesis_state(&spec);
    let mut blocks = executed_chain(
        &spec,
        &[key],
        (spec.genesis_hash, &spec.genesis_header),
        &mut state,
        6,
        2,
        (&key, 0),
    )
    .unwrap();
    blocks[4].header.gas_used += 1;
    let store = ChainStore::init(&tmp("bad"), &spec).unwrap();
    let err = execute_and_store(&spec, &store, &to_execute(&blocks), EVERY).unwrap_err();
    let StoreExecutionError::BadBlock { index, error, .. } = err else { panic!("{err}") };
    assert_eq!(index, 4);
    let text = error.to_string();
    assert!(text.contains("block 5") && text.contains("gas_used"), "{text}");
    assert_eq!(store.best_block().unwrap().0, 4, "the four good blocks are stored");
    assert_eq!(store.state().unwrap().state_root().unwrap(), blocks[3].header.state_root);
    // A wrong state root is refused too.
    blocks[4].header.gas_used -= 1;
    blocks[4].header.state_root = blocks[3].header.state_root;
    let err = execute_and_store(&spec, &store, &to_execute(&blocks[4..]), EVERY).unwrap_err();
    assert!(err.to_string().contains("state_root"), "{err}");
    assert_eq!(store.best_block().unwrap().0, 4);
}

#[test]
fn a_reorg_leaves_the_state_of_a_fresh_import_of_the_new_branch() {
    let spec = ChainSpec::dev();
    let key = dev_key();
    let genesis = (spec.genesis_hash, &spec.genesis_header);
    let mut state = genesis_state(&spec);
    let common = executed_chain(&spec, &[key], genesis, &mut state, 10, 3, (&key, 0)).unwrap();
    let at_fork = state.clone();
    let fork = (common[9].header.hash_slow(), &common[9].header);
    let a = executed_chain(&spec, &[key], fork, &mut state, 5, 4, (&key, 30)).unwrap();
    let mut state_b = at_fork;
    let b = executed_chain(&spec, &[key], fork, &mut state_b, 6, 1, (&key, 30)).unwrap();

    let store = ChainStore::init(&tmp("reorg"), &spec).unwrap();
    execute_and_store(&spec, &store, &to_execute(&common), EVERY).unwrap();
    execute_and_store(&spec, &store, &to_execute(&a), EVERY).unwrap();
    store.unwind_to(10).unwrap();
    assert_eq!(store.state().unwrap().state_root().unwrap(), common[9].header.state_root);
    execute_and_store(&spec, &store, &to_execute(&b), EVERY).unwrap();

    let fresh = ChainStore::init(&tmp("fresh"), &spec).unwrap();
    execute_and_store(&spec, &fresh, &to_execute(&common), EVERY).unwrap();
    execute_and_store(&spec, &fresh, &to_execute(&b), EVERY).unwrap();
    let (x, y) = (store.state().unwrap(), fresh.state().unwrap());
    assert_eq!(x.state_root().unwrap(), b[5].header.state_root);
    assert_eq!(x.state_root().unwrap(), y.state_root().unwrap());
    for address in recipients().into_iter().chain([tern_consensus::address_of(&key)]) {
        assert_eq!(x.account(address).unwrap(), y.account(address).unwrap(), "{address}");
    }
    assert_eq!(store.receipts(11).unwrap(), fresh.receipts(11).unwrap());
}

/// A batch that no longer extends the stored head (a local validator sealed on it
/// meanwhile) is refused as not extending, before it is executed on the wrong state: its
/// good blocks must not be reported as bad.
#[test]
fn a_batch_on_another_head_is_not_extending_not_bad() {
    let spec = ChainSpec::dev();
    let key = dev_key();
    let genesis = (spec.genesis_hash, &spec.genesis_header);
    let mut state = genesis_state(&spec);
    let ours = executed_chain(&spec, &[key], genesis, &mut state, 2, 1, (&key, 0)).unwrap();
    let mut state = genesis_state(&spec);
    let theirs = executed_chain(&spec, &[key], genesis, &mut state, 3, 2, (&key, 0)).unwrap();
    let store = ChainStore::init(&tmp("not-extending"), &spec).unwrap();
    execute_and_store(&spec, &store, &to_execute(&ours[..1]), EVERY).unwrap();
    let err = execute_and_store(&spec, &store, &to_execute(&theirs[1..]), EVERY).unwrap_err();
    assert!(
        matches!(err, StoreExecutionError::Store(tern_storage::StoreError::NotExtending { .. })),
        "{err}"
    );
    assert_eq!(store.best_block().unwrap(), (1, ours[0].header.hash_slow()));
}

#[test]
fn a_batch_checked_at_its_end_finds_the_bad_block_and_keeps_the_ones_before() {
    let spec = ChainSpec::dev();
    let key = dev_key();
    let mut state = genesis_state(&spec);
    let genesis = (spec.genesis_hash, &spec.genesis_header);
    let blocks = executed_chain(&spec, &[key], genesis, &mut state, 80, 2, (&key, 0)).unwrap();
    // Checked at the end only, a good batch ends in the same state as checked per block.
    let end = ChainStore::init(&tmp("end-good"), &spec).unwrap();
    execute_and_store(&spec, &end, &to_execute(&blocks), StateRootCheck::BatchEnd).unwrap();
    assert_eq!(end.best_block().unwrap().0, 80);
    assert_eq!(end.state().unwrap().state_root().unwrap(), blocks[79].header.state_root);
    // Block 31 sends 2 wei instead of 1 (same sender, nonce and header): its header's
    // hash and every link stay the same, but the state after it differs, so the root at
    // the batch's end does.
    let mut bad = to_execute(&blocks);
    let TxEnvelope::Eip1559(signed) = &bad[30].block.block.body.transactions[0] else {
        panic!("the dev chain sends EIP-1559 transfers")
    };
    let mut tx = signed.tx().clone();
    tx.value = alloy_primitives::U256::from(2);
    bad[30].block.block.body.transactions[0] =
        TxEnvelope::Eip1559(tern_consensus::chain_gen::sign_tx(tx, &key));
    let store = ChainStore::init(&tmp("end-bad"), &spec).unwrap();
    let err = execute_and_store(&spec, &store, &bad, StateRootCheck::BatchEnd).unwrap_err();
    let StoreExecutionError::BadBlock { index, error, .. } = err else { panic!("{err}") };
    assert_eq!(index, 30, "the first bad block is named, not the batch's last");
    assert!(error.to_string().contains("state_root"), "{error}");
    assert_eq!(store.best_block().unwrap().0, 30, "the 30 good blocks are stored");
    assert_eq!(store.state().unwrap().state_root().unwrap(), blocks[29].header.state_root);
    // Small batches are checked per block, large ones at their end, unless told.
    assert_eq!(StateRootCheck::for_batch(1, false), EVERY);
    assert_eq!(StateRootCheck::for_batch(4096, false), StateRootCheck::BatchEnd);
    assert_eq!(StateRootCheck::for_batch(4096, true), EVERY);
}

/// 210 blocks of 2 transfers, as three batches large enough to be checked at their end.
fn three_batches(spec: &ChainSpec, key: &secp256k1::SecretKey) -> Vec<Block<TxEnvelope>> {
    let mut state = genesis_state(spec);
    let genesis = (spec.genesis_hash, &spec.genesis_header);
    executed_chain(spec, &[*key], genesis, &mut state, 210, 2, (key, 0)).unwrap()
}

#[test]
fn batches_executed_ahead_of_the_store_store_the_chain_and_its_change_sets() {
    let spec = ChainSpec::dev();
    let key = dev_key();
    let blocks = three_batches(&spec, &key);
    let all = to_execute(&blocks);
    let store = ChainStore::init(&tmp("ahead"), &spec).unwrap();
    let mut ahead = ExecuteAhead::new(spec.clone(), store.clone());
    assert!(ahead.needs_store());
    // All three executed before the first is stored: the later ones read what the
    // earlier ones changed from the cache.
    let batches: Vec<ExecutedBatch> =
        all.chunks(70).map(|c| ahead.execute(&mut c.to_vec()).unwrap()).collect();
    assert!(!ahead.needs_store());
    for batch in batches {
        assert!(batch.bad.is_none());
        store_executed(&store, batch, StateRootCheck::BatchEnd).unwrap();
    }
    assert_eq!(store.best_block().unwrap(), (210, blocks[209].header.hash_slow()));
    assert_eq!(store.state().unwrap().state_root().unwrap(), blocks[209].header.state_root);
    assert_eq!(store.receipts(150).unwrap().len(), 2);
    // Each account was written once per batch; the change sets still hold every block's
    // previous values: unwinding into the middle of a batch gives that block's state.
    store.unwind_to(100).unwrap();
    assert_eq!(store.state().unwrap().state_root().unwrap(), blocks[99].header.state_root);
    let signer = tern_consensus::address_of(&key);
    assert_eq!(store.state().unwrap().account(signer).unwrap().unwrap().nonce, 200);
}

/// The dev chain with Cancun and Prague late enough that a chain crosses both.
fn dev_with_late_forks() -> ChainSpec {
    let mut genesis = ChainSpec::dev().genesis;
    genesis.config.cancun_time = Some(genesis.timestamp + 40);
    genesis.config.prague_time = Some(genesis.timestamp + 80);
    ChainSpec::from_genesis(genesis).unwrap()
}

#[test]
fn a_batch_executed_ahead_across_forks_matches_the_chain_built_block_by_block() {
    // The executor carries one EVM from block to block; at a fork it must change the
    // rules (Cancun's beacon-root call, Prague's history and request contracts).
    let spec = dev_with_late_forks();
    let key = dev_key();
    let mut state = genesis_state(&spec);
    let genesis = (spec.genesis_hash, &spec.genesis_header);
    let blocks = executed_chain(&spec, &[key], genesis, &mut state, 70, 2, (&key, 0)).unwrap();
    let cancun = blocks.iter().position(|b| b.header.parent_beacon_block_root.is_some());
    let prague = blocks.iter().position(|b| b.header.requests_hash.is_some());
    assert!(matches!((cancun, prague), (Some(c), Some(p)) if 0 < c && c < p && p < 69));
    let store = ChainStore::init(&tmp("ahead-forks"), &spec).unwrap();
    let mut ahead = ExecuteAhead::new(spec.clone(), store.clone());
    let batch = ahead.execute(&mut to_execute(&blocks)).unwrap();
    assert!(batch.bad.is_none(), "{:?}", batch.bad);
    store_executed(&store, batch, EVERY).unwrap();
    assert_eq!(store.best_block().unwrap(), (70, blocks[69].header.hash_slow()));
}

#[test]
fn a_store_moved_by_another_writer_is_not_read_through_the_cache() {
    let spec = ChainSpec::dev();
    let key = dev_key();
    let blocks = three_batches(&spec, &key);
    let all = to_execute(&blocks);
    let store = ChainStore::init(&tmp("ahead-stale"), &spec).unwrap();
    let mut ahead = ExecuteAhead::new(spec.clone(), store.clone());
    let first = ahead.execute(&mut all[..70].to_vec()).unwrap();
    store_executed(&store, first, StateRootCheck::BatchEnd).unwrap();
    // Something else unwinds the store: the cache holds state the store no longer has.
    store.unwind_to(50).unwrap();
    let mut second = all[70..140].to_vec();
    assert!(matches!(ahead.execute(&mut second), Err(AheadError::Stale)));
    assert_eq!(second.len(), 70, "a refused batch is handed back whole");
    // Started over from the store, the batch does not build on its state.
    ahead.reset();
    let err = ahead.execute(&mut second).unwrap_err();
    assert!(
        matches!(err, AheadError::Store(tern_storage::StoreError::NotExtending { .. })),
        "{err}"
    );
    // From where the store is, it executes.
    let batch = ahead.execute(&mut all[50..140].to_vec()).unwrap();
    store_executed(&store, batch, StateRootCheck::BatchEnd).unwrap();
    assert_eq!(store.state().unwrap().state_root().unwrap(), blocks[139].header.state_root);
}

#[test]
fn bad_blocks_executed_ahead_are_named_after_the_blocks_before_them_are_stored() {
    let spec = ChainSpec::dev();
    let key = dev_key();
    let blocks = three_batches(&spec, &key);
    let store = ChainStore::init(&tmp("ahead-bad"), &spec).unwrap();
    let mut ahead = ExecuteAhead::new(spec.clone(), store.clone());
    // Block 31 of the first batch claims one more gas than it uses.
    let mut bad = to_execute(&blocks[..70]);
    bad[30].block.block.header.gas_used += 1;
    let batch = ahead.execute(&mut bad).unwrap();
    assert_eq!(batch.bad.as_ref().map(|(index, ..)| *index), Some(30));
    assert!(ahead.needs_store(), "the cache saw the bad block: it starts over");
    let err = store_executed(&store, batch, StateRootCheck::BatchEnd).unwrap_err();
    let StoreExecutionError::BadBlock { index, error, .. } = err else { panic!("{err}") };
    assert_eq!(index, 30);
    assert!(error.to_string().contains("gas_used"), "{error}");
    assert_eq!(store.best_block().unwrap().0, 30);
    // The last block of the next batch lies about its state root: found at the batch's
    // end, then the blocks before it are stored.
    let mut lying = to_execute(&blocks[30..140]);
    lying[109].block.block.header.state_root = blocks[0].header.state_root;
    let batch = ahead.execute(&mut lying).unwrap();
    assert!(batch.bad.is_none(), "roots are the store's to check");
    let err = store_executed(&store, batch, StateRootCheck::BatchEnd).unwrap_err();
    let StoreExecutionError::BadBlock { index, error, .. } = err else { panic!("{err}") };
    assert_eq!(index, 109);
    assert!(error.to_string().contains("state_root"), "{error}");
    assert_eq!(store.best_block().unwrap().0, 139);
    assert_eq!(store.state().unwrap().state_root().unwrap(), blocks[138].header.state_root);
}
