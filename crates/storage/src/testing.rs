//! Synthetic chains for tests and benchmarks: linked headers with transactions whose
//! signatures are well-formed but not checked (the store does not validate).

use crate::SealedBlock;
use alloy_consensus::{Block, BlockBody, Header, Signed, TxEnvelope, TxLegacy};
use alloy_primitives::{Address, Bytes, Signature, TxKind, B256, U256};

/// `count` blocks on top of `parent` (hash and header), each with `txs` transactions of
/// about 110 bytes; `seed` makes chains built on the same parent differ.
pub fn synthetic_chain(
    parent: (B256, &Header),
    count: usize,
    txs: usize,
    seed: u64,
) -> Vec<SealedBlock> {
    let (mut parent_hash, parent) = parent;
    let mut out = Vec::with_capacity(count);
    for number in parent.number + 1..=parent.number + count as u64 {
        let timestamp = parent.timestamp + 2 * (number - parent.number);
        let transactions = (0..txs)
            .map(|i| {
                let tx = TxLegacy {
                    chain_id: Some(1337),
                    nonce: number * 1000 + i as u64,
                    gas_price: 1_000_000_000,
                    gas_limit: 21_000,
                    to: TxKind::Call(Address::with_last_byte(i as u8)),
                    value: U256::from(seed),
                    input: Bytes::new(),
                };
                let sig =
                    Signature::new(U256::from(number + 1), U256::from(seed + i as u64 + 1), false);
                let tx = TxEnvelope::Legacy(Signed::new_unhashed(tx, sig));
                // Hash now, as validation does before blocks reach the store.
                let _ = tx.tx_hash();
                tx
            })
            .collect();
        let header = Header {
            parent_hash,
            number,
            timestamp,
            difficulty: U256::from(2),
            gas_limit: 30_000_000,
            extra_data: Bytes::copy_from_slice(&seed.to_be_bytes()),
            ..Default::default()
        };
        let block = SealedBlock::seal(Block {
            header,
            body: BlockBody { transactions, ommers: vec![], withdrawals: None },
        });
        parent_hash = block.hash;
        out.push(block);
    }
    out
}
