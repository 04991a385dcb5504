//! The eth protocol's messages, as RLP types.
//!
//! Spec: <https://github.com/ethereum/devp2p/blob/master/caps/eth.md>, request ids from
//! EIP-2481 (<https://eips.ethereum.org/EIPS/eip-2481>), eth/69 from EIP-7642
//! (<https://eips.ethereum.org/EIPS/eip-7642>).

use alloy_consensus::{Block, BlockBody, Eip658Value, Header, ReceiptEnvelope, TxEnvelope};
use alloy_eip2124::ForkId;
use alloy_eips::eip1898::HashOrNumber;
use alloy_primitives::{Bytes, Log, B256, U256};
use alloy_rlp::{
    Decodable, Encodable, Header as RlpHeader, RlpDecodable, RlpDecodableWrapper, RlpEncodable,
    RlpEncodableWrapper,
};

pub use alloy_consensus::transaction::PooledTransaction;

/// eth/68 Status: `[version, networkid, td, blockhash, genesis, forkid]`.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Status68 {
    /// Protocol version (68).
    pub version: u8,
    /// Network id.
    pub network_id: u64,
    /// Total difficulty of the best chain.
    pub total_difficulty: U256,
    /// Hash of the best block.
    pub best_hash: B256,
    /// Genesis hash.
    pub genesis: B256,
    /// EIP-2124 fork id.
    pub fork_id: ForkId,
}

/// eth/69 Status: `[version, networkid, genesis, forkid, earliest, latest, latesthash]`.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Status69 {
    /// Protocol version (69).
    pub version: u8,
    /// Network id.
    pub network_id: u64,
    /// Genesis hash.
    pub genesis: B256,
    /// EIP-2124 fork id.
    pub fork_id: ForkId,
    /// Earliest block served.
    pub earliest: u64,
    /// Latest block.
    pub latest: u64,
    /// Hash of the latest block.
    pub latest_hash: B256,
}

/// A request or response with its EIP-2481 request id: `[request-id, message]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPair<T> {
    /// The request id (any 64-bit value; duplicates allowed).
    pub request_id: u64,
    /// The message.
    pub message: T,
}

impl<T: Encodable> Encodable for RequestPair<T> {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        let payload_length = self.request_id.length() + self.message.length();
        RlpHeader { list: true, payload_length }.encode(out);
        self.request_id.encode(out);
        self.message.encode(out);
    }

    fn length(&self) -> usize {
        let payload_length = self.request_id.length() + self.message.length();
        payload_length + alloy_rlp::length_of_length(payload_length)
    }
}

impl<T: Decodable> Decodable for RequestPair<T> {
    fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        let header = RlpHeader::decode(buf)?;
        if !header.list {
            return Err(alloy_rlp::Error::UnexpectedString);
        }
        let (mut payload, rest) = buf.split_at(header.payload_length);
        let request_id = u64::decode(&mut payload)?;
        let message = T::decode(&mut payload)?;
        if !payload.is_empty() {
            return Err(alloy_rlp::Error::ListLengthMismatch {
                expected: header.payload_length,
                got: header.payload_length - payload.len(),
            });
        }
        *buf = rest;
        Ok(Self { request_id, message })
    }
}

/// One entry of NewBlockHashes: `[hash, number]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct BlockHashNumber {
    /// Block hash.
    pub hash: B256,
    /// Block number.
    pub number: u64,
}

/// NewBlockHashes (0x01).
#[derive(Debug, Clone, PartialEq, Eq, Default, RlpEncodableWrapper, RlpDecodableWrapper)]
pub struct NewBlockHashes(pub Vec<BlockHashNumber>);

/// Transactions (0x02): full transactions, typed ones as byte strings.
#[derive(Debug, Clone, PartialEq, Eq, Default, RlpEncodableWrapper, RlpDecodableWrapper)]
pub struct Transactions(pub Vec<TxEnvelope>);

/// GetBlockHeaders (0x03) body: `[startblock, limit, skip, reverse]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct GetBlockHeaders {
    /// First block, by hash or number.
    pub start: HashOrNumber,
    /// Maximum number of headers.
    pub limit: u64,
    /// Blocks to skip between consecutive headers.
    pub skip: u64,
    /// Falling numbers when true.
    pub reverse: bool,
}

/// BlockHeaders (0x04) body.
#[derive(Debug, Clone, PartialEq, Eq, Default, RlpEncodableWrapper, RlpDecodableWrapper)]
pub struct BlockHeaders(pub Vec<Header>);

/// GetBlockBodies (0x05) body.
#[derive(Debug, Clone, PartialEq, Eq, Default, RlpEncodableWrapper, RlpDecodableWrapper)]
pub struct GetBlockBodies(pub Vec<B256>);

/// BlockBodies (0x06) body: `[[transactions, ommers, withdrawals?], ...]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, RlpEncodableWrapper, RlpDecodableWrapper)]
pub struct BlockBodies(pub Vec<BlockBody<TxEnvelope>>);

/// NewBlock (0x07): `[block, td]`.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct NewBlock {
    /// The block.
    pub block: Block<TxEnvelope>,
    /// Total difficulty including this block.
    pub td: U256,
}

/// NewPooledTransactionHashes (0x08), eth/68 form: `[types, [size, ...], [hash, ...]]`.
/// The three lists must have equal lengths ([`Self::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, RlpEncodable, RlpDecodable)]
pub struct NewPooledTransactionHashes {
    /// One transaction type byte per hash.
    pub types: Bytes,
    /// Encoded size of each transaction, in bytes.
    pub sizes: Vec<u32>,
    /// Transaction hashes.
    pub hashes: Vec<B256>,
}

impl NewPooledTransactionHashes {
    /// Whether the three lists have the same length.
    pub fn is_valid(&self) -> bool {
        self.types.len() == self.hashes.len() && self.sizes.len() == self.hashes.len()
    }
}

/// GetPooledTransactions (0x09) body.
#[derive(Debug, Clone, PartialEq, Eq, Default, RlpEncodableWrapper, RlpDecodableWrapper)]
pub struct GetPooledTransactions(pub Vec<B256>);

/// PooledTransactions (0x0a) body (blob transactions carry their sidecars).
#[derive(Debug, Clone, PartialEq, Eq, Default, RlpEncodableWrapper, RlpDecodableWrapper)]
pub struct PooledTransactions(pub Vec<PooledTransaction>);

/// GetReceipts (0x0f) body.
#[derive(Debug, Clone, PartialEq, Eq, Default, RlpEncodableWrapper, RlpDecodableWrapper)]
pub struct GetReceipts(pub Vec<B256>);

/// Receipts (0x10) body on eth/68: per block, consensus receipts with bloom.
#[derive(Debug, Clone, PartialEq, Eq, Default, RlpEncodableWrapper, RlpDecodableWrapper)]
pub struct Receipts68(pub Vec<Vec<ReceiptEnvelope>>);

/// An eth/69 receipt: `[tx-type, post-state-or-status, cumulative-gas, logs]` (no bloom).
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Receipt69 {
    /// Transaction type (0 for legacy).
    pub tx_type: u8,
    /// Status (EIP-658) or pre-Byzantium post-state root.
    pub status: Eip658Value,
    /// Gas used in the block up to and including this transaction.
    pub cumulative_gas_used: u64,
    /// Logs.
    pub logs: Vec<Log>,
}

/// Receipts (0x10) body on eth/69.
#[derive(Debug, Clone, PartialEq, Eq, Default, RlpEncodableWrapper, RlpDecodableWrapper)]
pub struct Receipts69(pub Vec<Vec<Receipt69>>);

/// GetReceipts (0x0f) on eth/70: `[request-id, firstBlockReceiptIndex, [blockhash, ...]]`;
/// the first block's receipts before `first_block_receipt_index` are left out.
///
/// Spec: <https://eips.ethereum.org/EIPS/eip-7975>
#[derive(Debug, Clone, PartialEq, Eq, Default, RlpEncodable, RlpDecodable)]
pub struct GetReceipts70 {
    /// The request id.
    pub request_id: u64,
    /// Receipts of the first block to skip.
    pub first_block_receipt_index: u64,
    /// Block hashes.
    pub hashes: Vec<B256>,
}

/// Receipts (0x10) on eth/70: `[request-id, lastBlockIncomplete, [[receipt, ...], ...]]`
/// with eth/69's receipts; if `last_block_incomplete`, the last list is a prefix of that
/// block's receipts and the rest is asked for with a new request.
///
/// Spec: <https://eips.ethereum.org/EIPS/eip-7975>
#[derive(Debug, Clone, PartialEq, Eq, Default, RlpEncodable, RlpDecodable)]
pub struct Receipts70 {
    /// The request id.
    pub request_id: u64,
    /// Whether the last block's list is partial.
    pub last_block_incomplete: bool,
    /// Per block, its receipts.
    pub receipts: Vec<Vec<Receipt69>>,
}

/// BlockRangeUpdate (0x11, eth/69): `[earliest, latest, latesthash]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct BlockRangeUpdate {
    /// Earliest block served.
    pub earliest: u64,
    /// Latest block.
    pub latest: u64,
    /// Hash of the latest block.
    pub latest_hash: B256,
}
