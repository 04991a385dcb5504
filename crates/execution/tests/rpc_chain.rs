//! The execution-apis test chain (`testdata/rpc-tests`): 54 blocks from proof of work
//! (Frontier rules, block rewards, receipts with intermediate state roots) through the
//! merge to Osaka and BPO2, each executed with its gas used, receipts root, logs bloom,
//! requests hash and state root equal to the header's.

use alloy_consensus::{Block, TxEnvelope};
use alloy_rlp::Decodable;
use std::path::Path;
use tern_chainspec::ChainSpec;
use tern_execution::{chain::genesis_state, execute_block};

#[test]
fn the_execution_apis_chain_executes_with_every_root_equal() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/rpc-tests");
    let spec = ChainSpec::from_file(&dir.join("genesis.json")).unwrap();
    let bytes = std::fs::read(dir.join("chain.rlp")).unwrap();
    let mut buf = bytes.as_slice();
    let mut state = genesis_state(&spec);
    assert_eq!(state.state_root(), spec.genesis_header.state_root);
    let (mut parent, mut count, mut pre_byzantium_txs) = (spec.genesis_hash, 0, 0);
    while !buf.is_empty() {
        let block = Block::<TxEnvelope>::decode(&mut buf).unwrap();
        let h = &block.header;
        assert_eq!(h.parent_hash, parent, "block {}", h.number);
        let senders = tern_consensus::recover_senders(&block.body.transactions).unwrap();
        let executed = execute_block(&spec, &state, &block, &senders, h.beneficiary).unwrap();
        executed.verify(h).unwrap_or_else(|e| panic!("{e}"));
        if !spec.is_active("byzantium", h.number, h.timestamp) {
            pre_byzantium_txs += executed.receipts.len();
        }
        state.apply(&executed.changes);
        assert_eq!(state.state_root(), h.state_root, "block {}", h.number);
        parent = h.hash_slow();
        state.block_hashes.insert(h.number, parent);
        count += 1;
    }
    assert_eq!(count, 54);
    assert!(pre_byzantium_txs > 0, "receipts with intermediate roots were checked");
}
