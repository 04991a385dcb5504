use crate::{chain::genesis_state, execute_block, EvmForks, MemState};
use alloy_consensus::{Block, BlockBody, Header, TxEnvelope};
use alloy_primitives::{address, Address, U256};
use revm::{database::DatabaseRef, primitives::hardfork::SpecId};
use tern_chainspec::ChainSpec;

fn empty_block(spec: &ChainSpec, beneficiary: Address) -> Block<TxEnvelope> {
    let parent = &spec.genesis_header;
    let mut header = Header {
        parent_hash: spec.genesis_hash,
        number: 1,
        timestamp: parent.timestamp + 2,
        gas_limit: parent.gas_limit,
        beneficiary,
        difficulty: parent.difficulty,
        base_fee_per_gas: parent.base_fee_per_gas,
        ..Default::default()
    };
    let withdrawals = tern_consensus::set_fork_fields(spec, &mut header, parent);
    Block { header, body: BlockBody { withdrawals, ..Default::default() } }
}

/// The dev chain with forks through London only (as geth ran Clique).
fn london_dev() -> ChainSpec {
    let mut g = ChainSpec::dev().genesis;
    (g.config.shanghai_time, g.config.cancun_time, g.config.prague_time) = (None, None, None);
    ChainSpec::from_genesis(g).unwrap()
}

#[test]
fn genesis_state_has_the_genesis_root() {
    let spec = ChainSpec::dev();
    assert_eq!(genesis_state(&spec).state_root(), spec.genesis_header.state_root);
}

#[test]
fn clique_runs_london_rules_and_pays_no_block_reward() {
    let spec = london_dev();
    let block = empty_block(&spec, Address::ZERO);
    let forks = EvmForks::at(&spec, &block.header);
    // Not the merge: DIFFICULTY is the header's.
    assert_eq!(forks.spec_id(1, block.header.timestamp), SpecId::LONDON);
    let env = forks.evm_env(&block.header, Address::repeat_byte(7));
    assert_eq!(env.block_env.difficulty, block.header.difficulty);
    assert_eq!(env.block_env.beneficiary, Address::repeat_byte(7));
    let state = genesis_state(&spec);
    let signer = Address::repeat_byte(7);
    let executed = execute_block(&spec, &state, &block, &[], signer).unwrap();
    assert!(executed.changes.accounts.iter().all(|(a, _)| *a != signer), "no reward paid");
    assert_eq!(executed.gas_used, 0);
}

/// The dev chain runs Prague's rules on Clique: the system calls of Cancun and Prague
/// write the parent's hash (EIP-2935) and the block's timestamp (EIP-4788, with the zero
/// parent beacon root) into their contracts, and no requests come out of an empty block.
#[test]
fn clique_on_prague_runs_the_system_calls() {
    use alloy_eips::{eip2935::HISTORY_STORAGE_ADDRESS, eip4788::BEACON_ROOTS_ADDRESS};
    let spec = ChainSpec::dev();
    let block = empty_block(&spec, Address::ZERO);
    let forks = EvmForks::at(&spec, &block.header);
    assert_eq!(forks.spec_id(1, block.header.timestamp), SpecId::PRAGUE);
    let state = genesis_state(&spec);
    let executed = execute_block(&spec, &state, &block, &[], Address::repeat_byte(7)).unwrap();
    let written: Vec<Address> = executed.changes.storage.iter().map(|s| s.address).collect();
    assert!(written.contains(&HISTORY_STORAGE_ADDRESS), "{written:?}");
    assert!(written.contains(&BEACON_ROOTS_ADDRESS), "{written:?}");
    assert!(executed.requests.is_empty());
}

/// Prague refuses a block when a request contract (EIP-7002, EIP-7251) has no code: the
/// call would quietly return no requests. Each contract in turn is left out of the dev
/// genesis; with both present the same block executes.
#[test]
fn a_prague_block_without_a_request_contract_is_refused() {
    use alloy_eips::{eip7002, eip7251};
    for missing in [
        eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
        eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
    ] {
        let mut genesis = ChainSpec::dev().genesis;
        assert!(genesis.alloc.remove(&missing).is_some(), "the dev genesis deploys {missing}");
        let spec = ChainSpec::from_genesis(genesis).unwrap();
        let block = empty_block(&spec, Address::ZERO);
        let state = genesis_state(&spec);
        let err = execute_block(&spec, &state, &block, &[], Address::ZERO).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&missing.to_string()) && text.contains("no code"), "{text}");
    }
    let spec = ChainSpec::dev();
    let block = empty_block(&spec, Address::ZERO);
    execute_block(&spec, &genesis_state(&spec), &block, &[], Address::ZERO).unwrap();
}

#[test]
fn proof_of_work_blocks_pay_the_block_reward() {
    // Mainnet's genesis: proof of work, Frontier at block 1 (5 ether per block).
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/genesis/mainnet.json"
    ))
    .unwrap();
    let spec = ChainSpec::from_json(&text).unwrap();
    let miner = address!("05a56e2d52c817161883f50c441c3228cfe54d9f");
    let block = empty_block(&spec, miner);
    let state = MemState::default();
    let mut executed = execute_block(&spec, &state, &block, &[], miner).unwrap();
    let (address, info) = executed.changes.accounts.pop().unwrap();
    assert_eq!(address, miner);
    assert_eq!(info.unwrap().balance, U256::from(5u128 * 10u128.pow(18)));
    assert!(state.basic_ref(miner).unwrap().is_none());
}

/// Filling a block: what the EVM refuses is reported as failed and left out, the rest
/// of that sender is skipped, the others go in; a passed deadline leaves the block empty.
#[test]
fn candidates_the_evm_refuses_are_left_out_and_reported() {
    use crate::{execute_candidates, ListedCandidates};
    use alloy_consensus::TxEip1559;
    use alloy_primitives::TxKind;
    use tern_consensus::chain_gen::sign_tx;
    let spec = ChainSpec::dev();
    let dev = {
        let bytes = alloy_primitives::hex::decode(tern_chainspec::DEV_VALIDATOR_KEY).unwrap();
        secp256k1::SecretKey::from_byte_array(bytes.try_into().unwrap()).unwrap()
    };
    let broke = secp256k1::SecretKey::from_byte_array([9; 32]).unwrap();
    let transfer = |key: &secp256k1::SecretKey, nonce| -> (TxEnvelope, Address) {
        let tx = TxEip1559 {
            chain_id: spec.chain_id,
            nonce,
            gas_limit: 21_000,
            max_fee_per_gas: 100_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            to: TxKind::Call(Address::repeat_byte(0x42)),
            value: U256::from(1),
            ..Default::default()
        };
        (sign_tx(tx, key).into(), tern_consensus::address_of(key))
    };
    let (ok, unfunded, gap, after_gap) =
        (transfer(&dev, 0), transfer(&broke, 0), transfer(&dev, 5), transfer(&dev, 1));
    let signer = tern_consensus::address_of(&dev);
    let block = empty_block(&spec, signer);
    let state = genesis_state(&spec);
    let later = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let list = [ok.clone(), unfunded.clone(), gap.clone(), after_gap];
    let mut candidates = ListedCandidates::new(list.clone());
    let (txs, built) =
        execute_candidates(&spec, &state, &block.header, &mut candidates, signer, later).unwrap();
    assert_eq!(txs, vec![ok.0]);
    let failed: Vec<_> = built.failed.iter().map(|(h, _)| *h).collect();
    assert_eq!(failed, vec![*unfunded.0.tx_hash(), *gap.0.tx_hash()]);
    assert!(!built.timed_out);
    assert_eq!(built.executed.gas_used, 21_000);
    // Past the deadline nothing is tried.
    let mut candidates = ListedCandidates::new(list);
    let past = std::time::Instant::now();
    let (txs, built) =
        execute_candidates(&spec, &state, &block.header, &mut candidates, signer, past).unwrap();
    assert!(txs.is_empty() && built.timed_out && built.failed.is_empty());
}

#[test]
fn the_evm_carried_across_a_fork_takes_the_new_fork_s_precompiles() {
    // London to Prague at the next block: the BLS12-381 precompiles (EIP-2537) appear.
    let mut g = london_dev().genesis;
    g.config.shanghai_time = Some(g.timestamp + 2);
    (g.config.cancun_time, g.config.prague_time) = (g.config.shanghai_time, g.config.shanghai_time);
    let spec = ChainSpec::from_genesis(g).unwrap();
    let bls_g1_add = address!("0x000000000000000000000000000000000000000b");
    let state = genesis_state(&spec);
    let mut chain = crate::execute::ChainEvm::new(&state, None);
    let genesis = &spec.genesis_header;
    let london = chain.take_evm(EvmForks::at(&spec, genesis).evm_env(genesis, Address::ZERO));
    let london = london.unwrap();
    assert!(alloy_evm::Evm::precompiles(&london).get(&bls_g1_add).is_none());
    chain.hand_back(london);
    let block = empty_block(&spec, Address::ZERO);
    let forks = EvmForks::at(&spec, &block.header);
    let prague = chain.take_evm(forks.evm_env(&block.header, Address::ZERO)).unwrap();
    assert_eq!(alloy_evm::Evm::cfg_env(&prague).spec, SpecId::PRAGUE);
    assert!(alloy_evm::Evm::precompiles(&prague).get(&bls_g1_add).is_some());
    assert_eq!(alloy_evm::Evm::block(&prague).timestamp, U256::from(block.header.timestamp));
}
