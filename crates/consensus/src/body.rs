//! Body rules: the body matches its header, and every transaction is well-formed for
//! the chain and the block's fork.

use crate::ConsensusError;
use alloy_consensus::{
    proofs::{calculate_ommers_root, calculate_transaction_root, calculate_withdrawals_root},
    transaction::SignerRecoverable,
    BlockBody, Header, Transaction, TxEnvelope, Typed2718,
};
use alloy_eips::eip4844::DATA_GAS_PER_BLOB;
use alloy_primitives::Address;
use tern_chainspec::ChainSpec;

/// Bodies with more transactions than this recover senders on every core.
const PARALLEL_RECOVERY_THRESHOLD: usize = 64;

/// Checks `body` against `header` under `spec` and returns the transactions' senders.
///
/// Rules: ommers hash, transactions root, withdrawals present exactly when the header has a
/// withdrawals root and matching it; each transaction of a type its fork allows, with the
/// chain's id (unprotected legacy transactions carry none and are allowed, as on
/// Ethereum), a signature that recovers a sender, and a gas limit no higher than the
/// block's (their sum may be: execution checks each against the gas left); blob gas used
/// matching the blobs.
pub fn validate_body(
    spec: &ChainSpec,
    header: &Header,
    body: &BlockBody<TxEnvelope>,
) -> Result<Vec<Address>, ConsensusError> {
    check_body(spec, header, body)?;
    recover_senders(&body.transactions)
}

/// [`validate_body`] without recovering the senders (the signatures are checked when
/// they are recovered, see [`recover_senders_of_blocks`]): what sync checks as a body
/// arrives, so the peer that served it answers for it, leaving the expensive recovery to
/// a later stage that runs on every core over many blocks.
pub fn check_body(
    spec: &ChainSpec,
    header: &Header,
    body: &BlockBody<TxEnvelope>,
) -> Result<(), ConsensusError> {
    let ommers = calculate_ommers_root(&body.ommers);
    if ommers != header.ommers_hash {
        return Err(ConsensusError::OmmersHash { got: ommers, expected: header.ommers_hash });
    }
    let tx_root = calculate_transaction_root(&body.transactions);
    if tx_root != header.transactions_root {
        return Err(ConsensusError::TransactionsRoot {
            got: tx_root,
            expected: header.transactions_root,
        });
    }
    match (&body.withdrawals, header.withdrawals_root) {
        (None, None) => {}
        (Some(w), Some(root)) => {
            if calculate_withdrawals_root(w) != root {
                return Err(ConsensusError::Withdrawals("root mismatch"));
            }
        }
        (Some(_), None) => {
            return Err(ConsensusError::Withdrawals("body has withdrawals, header none"))
        }
        (None, Some(_)) => {
            return Err(ConsensusError::Withdrawals("header has a withdrawals root, body none"))
        }
    }
    let active = |fork| spec.is_active(fork, header.number, header.timestamp);
    let mut blobs: u64 = 0;
    for (index, tx) in body.transactions.iter().enumerate() {
        let ty = tx.ty();
        let fork = match ty {
            0 => None,
            1 => Some("berlin"),
            2 => Some("london"),
            3 => Some("cancun"),
            4 => Some("prague"),
            _ => Some("a fork Tern does not know"),
        };
        if let Some(fork) = fork.filter(|f| !active(f)) {
            return Err(ConsensusError::TransactionType { index, ty, fork });
        }
        if let Some(id) = tx.chain_id() {
            if id != spec.chain_id {
                return Err(ConsensusError::TransactionChainId {
                    index,
                    got: id,
                    expected: spec.chain_id,
                });
            }
        }
        if tx.gas_limit() > header.gas_limit {
            return Err(ConsensusError::TransactionGas {
                index,
                gas_limit: tx.gas_limit(),
                limit: header.gas_limit,
            });
        }
        blobs += tx.blob_versioned_hashes().map_or(0, |h| h.len() as u64);
    }
    if active("cancun") && header.blob_gas_used != Some(blobs * DATA_GAS_PER_BLOB) {
        return Err(ConsensusError::BlobGasUsed {
            got: header.blob_gas_used,
            expected: blobs * DATA_GAS_PER_BLOB,
        });
    }
    Ok(())
}

/// The senders of every transaction of many blocks (`blocks[i]` is block i's
/// transactions), recovered on every core at once when there are more than a few: one
/// result per block, its error naming the first transaction whose signature recovers no
/// sender.
pub fn recover_senders_of_blocks(
    blocks: &[&[TxEnvelope]],
) -> Vec<Result<Vec<Address>, ConsensusError>> {
    let all: Vec<&TxEnvelope> = blocks.iter().flat_map(|txs| txs.iter()).collect();
    let recover = |chunk: &[&TxEnvelope]| -> Vec<Option<Address>> {
        chunk.iter().map(|tx| tx.recover_signer().ok()).collect()
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let recovered: Vec<Option<Address>> = if all.len() <= PARALLEL_RECOVERY_THRESHOLD
        || threads == 1
    {
        recover(&all)
    } else {
        let chunk = all.len().div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = all.chunks(chunk).map(|c| s.spawn(move || recover(c))).collect();
            handles.into_iter().flat_map(|h| h.join().expect("recovery thread panicked")).collect()
        })
    };
    let mut rest = recovered.as_slice();
    blocks
        .iter()
        .map(|txs| {
            let (mine, after) = rest.split_at(txs.len());
            rest = after;
            mine.iter()
                .enumerate()
                .map(|(index, a)| a.ok_or(ConsensusError::TransactionSignature { index }))
                .collect()
        })
        .collect()
}

/// Recovers every sender; large batches are split across all cores.
pub fn recover_senders(txs: &[TxEnvelope]) -> Result<Vec<Address>, ConsensusError> {
    let recover = |offset: usize, chunk: &[TxEnvelope]| -> Result<Vec<Address>, ConsensusError> {
        chunk
            .iter()
            .enumerate()
            .map(|(i, tx)| {
                tx.recover_signer()
                    .map_err(|_| ConsensusError::TransactionSignature { index: offset + i })
            })
            .collect()
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if txs.len() <= PARALLEL_RECOVERY_THRESHOLD || threads == 1 {
        return recover(0, txs);
    }
    let chunk = txs.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = txs
            .chunks(chunk)
            .enumerate()
            .map(|(i, c)| s.spawn(move || recover(i * chunk, c)))
            .collect();
        let mut out = Vec::with_capacity(txs.len());
        for h in handles {
            out.extend(h.join().expect("recovery thread panicked")?);
        }
        Ok(out)
    })
}
