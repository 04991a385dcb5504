use crate::{chain::genesis_state, execute_block, EvmForks, MemState};
use alloy_consensus::{Block, BlockBody, Header, TxEnvelope};
use alloy_primitives::{address, Address, U256};
use revm::{database::DatabaseRef, primitives::hardfork::SpecId};
use tern_chainspec::ChainSpec;

fn empty_block(spec: &ChainSpec, beneficiary: Address) -> Block<TxEnvelope> {
    let parent = &spec.genesis_header;
    let header = Header {
        parent_hash: spec.genesis_hash,
        number: 1,
        timestamp: parent.timestamp + 2,
        gas_limit: parent.gas_limit,
        beneficiary,
        difficulty: parent.difficulty,
        base_fee_per_gas: parent.base_fee_per_gas,
        ..Default::default()
    };
    Block { header, body: BlockBody::default() }
}

#[test]
fn genesis_state_has_the_genesis_root() {
    let spec = ChainSpec::dev();
    assert_eq!(genesis_state(&spec).state_root(), spec.genesis_header.state_root);
}

#[test]
fn clique_runs_london_rules_and_pays_no_block_reward() {
    let spec = ChainSpec::dev();
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
