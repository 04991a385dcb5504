//! Stored blocks, transactions and receipts in alloy's RPC shapes (the field names and
//! encodings geth and reth answer with).

use crate::error::{RpcError, RpcResult};
use alloy_consensus::{
    transaction::{Recovered, SignerRecoverable, TransactionInfo},
    Header, ReceiptEnvelope, Transaction as _, TxEnvelope,
};
use alloy_primitives::{Address, TxKind, B256, U256};
use alloy_rpc_types_eth::{
    Block, BlockTransactions, Header as RpcHeader, Log, Transaction, TransactionReceipt,
};
use tern_chainspec::ChainSpec;
use tern_execution::EvmForks;
use tern_storage::SealedBlock;

/// Where an included transaction is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TxAt {
    pub(crate) block_hash: B256,
    pub(crate) block_number: u64,
    pub(crate) index: u64,
    pub(crate) base_fee: Option<u64>,
    pub(crate) timestamp: u64,
}

impl TxAt {
    pub(crate) fn new(header: &Header, hash: B256, index: usize) -> Self {
        Self {
            block_hash: hash,
            block_number: header.number,
            index: index as u64,
            base_fee: header.base_fee_per_gas,
            timestamp: header.timestamp,
        }
    }
}

/// The sender of a stored (already verified) transaction.
pub(crate) fn sender(tx: &TxEnvelope) -> RpcResult<Address> {
    tx.recover_signer().map_err(|e| {
        RpcError::Internal(format!("stored transaction without a valid signature: {e}"))
    })
}

/// A transaction in RPC form: pending (`at` = `None`) or included.
pub(crate) fn transaction(tx: TxEnvelope, sender: Address, at: Option<TxAt>) -> Transaction {
    let hash = *tx.tx_hash();
    let info = match at {
        Some(at) => TransactionInfo {
            hash: Some(hash),
            index: Some(at.index),
            block_hash: Some(at.block_hash),
            block_number: Some(at.block_number),
            base_fee: at.base_fee,
            block_timestamp: Some(at.timestamp),
        },
        None => TransactionInfo { hash: Some(hash), ..Default::default() },
    };
    Transaction::from_transaction(Recovered::new_unchecked(tx, sender), info)
}

/// The header in RPC form, with the block's size when known.
pub(crate) fn header(header: Header, hash: B256, size: Option<usize>) -> RpcHeader {
    RpcHeader { hash, inner: header, total_difficulty: None, size: size.map(U256::from) }
}

/// A block in RPC form: transactions in full or as hashes.
pub(crate) fn block(b: &SealedBlock, full: bool) -> RpcResult<Block> {
    let size = alloy_rlp::Encodable::length(&b.block);
    let h = &b.block.header;
    let txs = &b.block.body.transactions;
    let transactions = if full {
        let mut out = Vec::with_capacity(txs.len());
        for (i, tx) in txs.iter().enumerate() {
            out.push(transaction(tx.clone(), sender(tx)?, Some(TxAt::new(h, b.hash, i))));
        }
        BlockTransactions::Full(out)
    } else {
        BlockTransactions::Hashes(txs.iter().map(|t| *t.tx_hash()).collect())
    };
    Ok(Block {
        header: header(h.clone(), b.hash, Some(size)),
        uncles: b.block.body.ommers.iter().map(|o| o.hash_slow()).collect(),
        transactions,
        withdrawals: b.block.body.withdrawals.clone(),
    })
}

/// The blob gas price of `header`'s block (Cancun on), in wei.
pub(crate) fn blob_gas_price(spec: &ChainSpec, header: &Header) -> Option<u128> {
    let params = EvmForks::at(spec, header).blob_params(header.timestamp)?;
    Some(params.calc_blob_fee(header.excess_blob_gas?))
}

/// The logs of block `b` in RPC form (positions in the block, no sender recovery), from
/// its stored receipts.
pub(crate) fn logs(b: &SealedBlock, stored: &[ReceiptEnvelope]) -> Vec<Log> {
    let h = &b.block.header;
    let txs = &b.block.body.transactions;
    let mut out = Vec::new();
    for (i, (tx, receipt)) in txs.iter().zip(stored).enumerate() {
        for l in receipt.logs() {
            out.push(Log {
                inner: l.clone(),
                block_hash: Some(b.hash),
                block_number: Some(h.number),
                block_timestamp: Some(h.timestamp),
                transaction_hash: Some(*tx.tx_hash()),
                transaction_index: Some(i as u64),
                log_index: Some(out.len() as u64),
                removed: false,
            });
        }
    }
    out
}

/// The gas each transaction of a block used, from its receipts' cumulative gas.
pub(crate) fn gas_used_per_tx(receipts: &[ReceiptEnvelope]) -> Vec<u64> {
    let mut last = 0;
    receipts
        .iter()
        .map(|r| {
            let used = r.cumulative_gas_used() - last;
            last = r.cumulative_gas_used();
            used
        })
        .collect()
}

/// The receipts of block `b` in RPC form, from its stored receipts.
pub(crate) fn receipts(
    spec: &ChainSpec,
    b: &SealedBlock,
    stored: Vec<ReceiptEnvelope>,
) -> RpcResult<Vec<TransactionReceipt>> {
    let h = &b.block.header;
    let txs = &b.block.body.transactions;
    if stored.len() != txs.len() {
        return Err(RpcError::Internal(format!(
            "block {} has {} transactions but {} receipts are stored",
            h.number,
            txs.len(),
            stored.len()
        )));
    }
    let blob_price = blob_gas_price(spec, h);
    let gas_used = gas_used_per_tx(&stored);
    let mut logs = logs(b, &stored).into_iter();
    let mut out = Vec::with_capacity(txs.len());
    for (i, ((tx, receipt), gas_used)) in txs.iter().zip(stored).zip(gas_used).enumerate() {
        let from = sender(tx)?;
        let tx_hash = *tx.tx_hash();
        // The same logs, with their positions in the block.
        let inner = receipt.map_logs(|_| logs.next().expect("one log built per stored log"));
        let blob_gas_used = tx.blob_gas_used();
        out.push(TransactionReceipt {
            inner,
            transaction_hash: tx_hash,
            transaction_index: Some(i as u64),
            block_hash: Some(b.hash),
            block_number: Some(h.number),
            gas_used,
            effective_gas_price: tx.effective_gas_price(h.base_fee_per_gas),
            blob_gas_used,
            blob_gas_price: blob_gas_used.and(blob_price),
            from,
            to: tx.to(),
            contract_address: match tx.kind() {
                TxKind::Create => Some(from.create(tx.nonce())),
                TxKind::Call(_) => None,
            },
        });
    }
    Ok(out)
}
