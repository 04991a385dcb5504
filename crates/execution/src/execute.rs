//! Executing one block with revm through alloy-evm's Ethereum block executor.

use crate::{EvmForks, ExecutionError};
use alloy_consensus::{
    proofs::ordered_trie_root_with_encoder, Block, Header, ReceiptEnvelope, TxEnvelope, TxReceipt,
};
use alloy_eips::{eip7685::Requests, Encodable2718};
use alloy_evm::{
    block::BlockExecutor,
    eth::{receipt_builder::AlloyReceiptBuilder, EthBlockExecutionCtx, EthBlockExecutor},
    EthEvmFactory, Evm, EvmFactory,
};
use alloy_hardforks::EthereumHardforks;
use alloy_primitives::{Address, Bloom, B256};
use revm::database::{
    states::{bundle_state::BundleRetention, StateChangeset},
    DatabaseRef, OriginalValuesKnown, State,
};
use std::{borrow::Cow, fmt::Debug};
use tern_chainspec::ChainSpec;

/// What executing a block produced.
#[derive(Debug, Clone)]
pub struct Executed {
    /// One receipt per transaction.
    pub receipts: Vec<ReceiptEnvelope>,
    /// Gas used by the whole block.
    pub gas_used: u64,
    /// EIP-7685 requests (Prague and later).
    pub requests: Requests,
    /// The state after the block, as changes to the state before it.
    pub changes: StateChangeset,
    /// Time spent computing the state root after the block (zero until a store does).
    pub state_root_time: std::time::Duration,
}

impl Executed {
    /// The receipts root: the trie of index → EIP-2718 encoded receipt.
    pub fn receipts_root(&self) -> B256 {
        ordered_trie_root_with_encoder(&self.receipts, |r, buf| r.encode_2718(buf))
    }

    /// The block's logs bloom: every receipt's, or-ed.
    pub fn logs_bloom(&self) -> Bloom {
        self.receipts.iter().fold(Bloom::ZERO, |acc, r| acc | r.bloom())
    }

    /// Checks gas used, receipts root, logs bloom and (where the header has one) requests
    /// hash against `header`. The state root is the caller's to check: it needs the state
    /// with [`Executed::changes`] applied.
    pub fn verify(&self, header: &Header) -> Result<(), ExecutionError> {
        let number = header.number;
        if self.gas_used != header.gas_used {
            return Err(ExecutionError::Mismatch {
                number,
                field: "gas_used",
                got: header.gas_used.to_string(),
                expected: self.gas_used.to_string(),
            });
        }
        let root = self.receipts_root();
        if root != header.receipts_root {
            return Err(ExecutionError::hash(number, "receipts_root", header.receipts_root, root));
        }
        let bloom = self.logs_bloom();
        if bloom != header.logs_bloom {
            return Err(ExecutionError::bloom(number, &header.logs_bloom, &bloom));
        }
        if let Some(expected) = header.requests_hash {
            let got = self.requests.requests_hash();
            if got != expected {
                return Err(ExecutionError::hash(number, "requests_hash", expected, got));
            }
        }
        Ok(())
    }
}

/// A state that can say what its root would be with some changes applied: receipts
/// before Byzantium carry the state root after each transaction.
pub trait StateRootWith {
    /// The state root of this state with `changes` applied.
    fn state_root_with(&self, changes: &StateChangeset) -> Result<B256, ExecutionError>;
}

/// Executes `block` on the state `db` (the state after its parent), with `senders`
/// recovered from its transactions and `beneficiary` receiving the fees (the header's
/// beneficiary; on Clique, the block's signer).
pub fn execute_block<DB>(
    spec: &ChainSpec,
    db: &DB,
    block: &Block<TxEnvelope>,
    senders: &[Address],
    beneficiary: Address,
) -> Result<Executed, ExecutionError>
where
    DB: DatabaseRef + StateRootWith + Debug,
    DB::Error: Send + Sync + 'static,
{
    let header = &block.header;
    let number = header.number;
    let txs = &block.body.transactions;
    if txs.len() != senders.len() {
        return Err(ExecutionError::Senders { number, txs: txs.len(), senders: senders.len() });
    }
    let forks = EvmForks::at(spec, header);
    let env = forks.evm_env(header, beneficiary);
    let mut state = State::builder().with_database_ref(db).with_bundle_update().build();
    let evm = EthEvmFactory::default().create_evm(&mut state, env);
    let ctx = EthBlockExecutionCtx {
        parent_hash: header.parent_hash,
        parent_beacon_block_root: header.parent_beacon_block_root,
        ommers: &block.body.ommers,
        withdrawals: block.body.withdrawals.as_ref().map(|w| Cow::Borrowed(w.as_slice())),
        extra_data: header.extra_data.clone(),
        tx_count_hint: Some(txs.len()),
        slot_number: None,
    };
    let mut executor = EthBlockExecutor::new(evm, ctx, &forks, AlloyReceiptBuilder::default());
    let recovered = txs
        .iter()
        .zip(senders)
        .map(|(tx, sender)| alloy_consensus::transaction::Recovered::new_unchecked(tx, *sender));
    let evm_error = |e: alloy_evm::block::BlockExecutionError| ExecutionError::Evm {
        number,
        reason: e.to_string(),
    };
    let result = if forks.is_byzantium_active_at_block(number) {
        executor.execute_block(recovered).map_err(evm_error)?
    } else {
        // Before Byzantium (EIP-658) a receipt holds the state root after its transaction.
        executor.apply_pre_execution_changes().map_err(evm_error)?;
        for tx in recovered {
            executor.execute_transaction(tx).map_err(evm_error)?;
            let db = executor.evm_mut().db_mut();
            db.merge_transitions(BundleRetention::PlainState);
            let so_far = db.bundle_state.to_plain_state(OriginalValuesKnown::Yes);
            let root = db_root(db, &so_far)?;
            if let Some(r) =
                executor.receipts.last_mut().and_then(|r| r.as_receipt_with_bloom_mut())
            {
                r.receipt.status = alloy_consensus::Eip658Value::PostState(root);
            }
        }
        executor.apply_post_execution_changes().map_err(evm_error)?
    };
    state.merge_transitions(BundleRetention::PlainState);
    let changes = state.take_bundle().to_plain_state(OriginalValuesKnown::Yes);
    Ok(Executed {
        receipts: result.receipts,
        gas_used: result.gas_used,
        requests: result.requests,
        changes,
        state_root_time: std::time::Duration::ZERO,
    })
}

/// The root of the state under `state` (the block's base) with `changes` applied.
fn db_root<DB: DatabaseRef + StateRootWith>(
    state: &State<revm::database::WrapDatabaseRef<&DB>>,
    changes: &StateChangeset,
) -> Result<B256, ExecutionError> {
    state.database.0.state_root_with(changes)
}
