//! [`EthMessage`]: every eth/68, eth/69 and eth/70 message, with ids and version-gated decoding.

use crate::{types::*, EthError};
use alloy_rlp::{Decodable, Encodable};
use bytes::BufMut;

/// A negotiated eth protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EthVersion {
    /// eth/68 (EIP-5793).
    Eth68 = 68,
    /// eth/69 (EIP-7642).
    Eth69 = 69,
    /// eth/70 (EIP-7975): eth/69 with paged receipts.
    Eth70 = 70,
}

impl EthVersion {
    /// Every version we speak, lowest first.
    pub const ALL: [Self; 3] = [Self::Eth68, Self::Eth69, Self::Eth70];

    /// Number of message ids the version uses (eth/68: 0x00–0x10, eth/69 and eth/70:
    /// 0x00–0x11).
    pub const fn message_count(self) -> u8 {
        match self {
            Self::Eth68 => 17,
            Self::Eth69 | Self::Eth70 => 18,
        }
    }

    /// Whether the version has eth/69's Status, receipts without bloom and
    /// BlockRangeUpdate (eth/69 and later).
    pub const fn is_eth69_or_later(self) -> bool {
        !matches!(self, Self::Eth68)
    }

    /// The version for a capability version number.
    pub fn from_u64(v: u64) -> Option<Self> {
        match v {
            68 => Some(Self::Eth68),
            69 => Some(Self::Eth69),
            70 => Some(Self::Eth70),
            _ => None,
        }
    }
}

/// eth message ids.
///
/// Spec: <https://github.com/ethereum/devp2p/blob/master/caps/eth.md#protocol-messages>
pub mod id {
    /// Status.
    pub const STATUS: u8 = 0x00;
    /// NewBlockHashes.
    pub const NEW_BLOCK_HASHES: u8 = 0x01;
    /// Transactions.
    pub const TRANSACTIONS: u8 = 0x02;
    /// GetBlockHeaders.
    pub const GET_BLOCK_HEADERS: u8 = 0x03;
    /// BlockHeaders.
    pub const BLOCK_HEADERS: u8 = 0x04;
    /// GetBlockBodies.
    pub const GET_BLOCK_BODIES: u8 = 0x05;
    /// BlockBodies.
    pub const BLOCK_BODIES: u8 = 0x06;
    /// NewBlock.
    pub const NEW_BLOCK: u8 = 0x07;
    /// NewPooledTransactionHashes.
    pub const NEW_POOLED_TRANSACTION_HASHES: u8 = 0x08;
    /// GetPooledTransactions.
    pub const GET_POOLED_TRANSACTIONS: u8 = 0x09;
    /// PooledTransactions.
    pub const POOLED_TRANSACTIONS: u8 = 0x0a;
    /// GetReceipts.
    pub const GET_RECEIPTS: u8 = 0x0f;
    /// Receipts.
    pub const RECEIPTS: u8 = 0x10;
    /// BlockRangeUpdate (eth/69).
    pub const BLOCK_RANGE_UPDATE: u8 = 0x11;
}

/// A Status of any version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// eth/68 form.
    Eth68(Status68),
    /// eth/69 form (also eth/70's, with version 70).
    Eth69(Status69),
}

impl Status {
    /// The version field.
    pub fn version(&self) -> u8 {
        match self {
            Self::Eth68(s) => s.version,
            Self::Eth69(s) => s.version,
        }
    }
    /// The network id.
    pub fn network_id(&self) -> u64 {
        match self {
            Self::Eth68(s) => s.network_id,
            Self::Eth69(s) => s.network_id,
        }
    }
    /// The genesis hash.
    pub fn genesis(&self) -> alloy_primitives::B256 {
        match self {
            Self::Eth68(s) => s.genesis,
            Self::Eth69(s) => s.genesis,
        }
    }
    /// The fork id.
    pub fn fork_id(&self) -> alloy_eip2124::ForkId {
        match self {
            Self::Eth68(s) => s.fork_id,
            Self::Eth69(s) => s.fork_id,
        }
    }
    /// The best (eth/68) or latest (eth/69) block hash.
    pub fn head_hash(&self) -> alloy_primitives::B256 {
        match self {
            Self::Eth68(s) => s.best_hash,
            Self::Eth69(s) => s.latest_hash,
        }
    }
    /// The latest block number, which only eth/69 carries.
    pub fn head_number(&self) -> Option<u64> {
        match self {
            Self::Eth68(_) => None,
            Self::Eth69(s) => Some(s.latest),
        }
    }
}

/// Any eth message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EthMessage {
    /// Status (0x00).
    Status(Status),
    /// NewBlockHashes (0x01).
    NewBlockHashes(NewBlockHashes),
    /// Transactions (0x02).
    Transactions(Transactions),
    /// GetBlockHeaders (0x03).
    GetBlockHeaders(RequestPair<GetBlockHeaders>),
    /// BlockHeaders (0x04).
    BlockHeaders(RequestPair<BlockHeaders>),
    /// GetBlockBodies (0x05).
    GetBlockBodies(RequestPair<GetBlockBodies>),
    /// BlockBodies (0x06).
    BlockBodies(RequestPair<BlockBodies>),
    /// NewBlock (0x07).
    NewBlock(Box<NewBlock>),
    /// NewPooledTransactionHashes (0x08), eth/68 form.
    NewPooledTransactionHashes(NewPooledTransactionHashes),
    /// GetPooledTransactions (0x09).
    GetPooledTransactions(RequestPair<GetPooledTransactions>),
    /// PooledTransactions (0x0a).
    PooledTransactions(RequestPair<PooledTransactions>),
    /// GetReceipts (0x0f) on eth/68 and eth/69.
    GetReceipts(RequestPair<GetReceipts>),
    /// GetReceipts (0x0f) on eth/70, from a receipt index of the first block.
    GetReceipts70(GetReceipts70),
    /// Receipts (0x10) on eth/68 (with bloom).
    Receipts68(RequestPair<Receipts68>),
    /// Receipts (0x10) on eth/69 (without bloom).
    Receipts69(RequestPair<Receipts69>),
    /// Receipts (0x10) on eth/70 (without bloom, the last block's list maybe partial).
    Receipts70(Receipts70),
    /// BlockRangeUpdate (0x11, eth/69).
    BlockRangeUpdate(BlockRangeUpdate),
}

fn decode_exact<T: Decodable>(mut buf: &[u8]) -> Result<T, EthError> {
    let value = T::decode(&mut buf)?;
    if !buf.is_empty() {
        return Err(EthError::Rlp(alloy_rlp::Error::Custom("trailing bytes after message")));
    }
    Ok(value)
}

impl EthMessage {
    /// The message id.
    pub fn id(&self) -> u8 {
        match self {
            Self::Status(_) => id::STATUS,
            Self::NewBlockHashes(_) => id::NEW_BLOCK_HASHES,
            Self::Transactions(_) => id::TRANSACTIONS,
            Self::GetBlockHeaders(_) => id::GET_BLOCK_HEADERS,
            Self::BlockHeaders(_) => id::BLOCK_HEADERS,
            Self::GetBlockBodies(_) => id::GET_BLOCK_BODIES,
            Self::BlockBodies(_) => id::BLOCK_BODIES,
            Self::NewBlock(_) => id::NEW_BLOCK,
            Self::NewPooledTransactionHashes(_) => id::NEW_POOLED_TRANSACTION_HASHES,
            Self::GetPooledTransactions(_) => id::GET_POOLED_TRANSACTIONS,
            Self::PooledTransactions(_) => id::POOLED_TRANSACTIONS,
            Self::GetReceipts(_) | Self::GetReceipts70(_) => id::GET_RECEIPTS,
            Self::Receipts68(_) | Self::Receipts69(_) | Self::Receipts70(_) => id::RECEIPTS,
            Self::BlockRangeUpdate(_) => id::BLOCK_RANGE_UPDATE,
        }
    }

    /// Whether `version` has this message in this form.
    pub fn is_valid_for(&self, version: EthVersion) -> bool {
        match self {
            Self::Status(Status::Eth68(_)) | Self::Receipts68(_) => version == EthVersion::Eth68,
            Self::Status(Status::Eth69(_)) | Self::BlockRangeUpdate(_) => {
                version.is_eth69_or_later()
            }
            Self::Receipts69(_) => version == EthVersion::Eth69,
            Self::GetReceipts(_) => version != EthVersion::Eth70,
            Self::GetReceipts70(_) | Self::Receipts70(_) => version == EthVersion::Eth70,
            _ => true,
        }
    }

    /// Appends the RLP payload (without the id).
    pub fn encode_payload(&self, out: &mut dyn BufMut) {
        match self {
            Self::Status(Status::Eth68(m)) => m.encode(out),
            Self::Status(Status::Eth69(m)) => m.encode(out),
            Self::NewBlockHashes(m) => m.encode(out),
            Self::Transactions(m) => m.encode(out),
            Self::GetBlockHeaders(m) => m.encode(out),
            Self::BlockHeaders(m) => m.encode(out),
            Self::GetBlockBodies(m) => m.encode(out),
            Self::BlockBodies(m) => m.encode(out),
            Self::NewBlock(m) => m.encode(out),
            Self::NewPooledTransactionHashes(m) => m.encode(out),
            Self::GetPooledTransactions(m) => m.encode(out),
            Self::PooledTransactions(m) => m.encode(out),
            Self::GetReceipts(m) => m.encode(out),
            Self::Receipts68(m) => m.encode(out),
            Self::Receipts69(m) => m.encode(out),
            Self::GetReceipts70(m) => m.encode(out),
            Self::Receipts70(m) => m.encode(out),
            Self::BlockRangeUpdate(m) => m.encode(out),
        }
    }

    /// The RLP payload as bytes.
    pub fn payload(&self) -> bytes::Bytes {
        let mut out = Vec::new();
        self.encode_payload(&mut out);
        out.into()
    }

    /// Decodes message `id` of `version` from its RLP payload. Fails on unknown ids, on
    /// forms of the other version, trailing bytes, unequal announcement lists and a
    /// BlockRangeUpdate with `earliest > latest`.
    pub fn decode(version: EthVersion, id: u8, payload: &[u8]) -> Result<Self, EthError> {
        use EthVersion::*;
        let msg = match id {
            id::STATUS => Self::Status(match version {
                Eth68 => Status::Eth68(decode_exact(payload)?),
                Eth69 | Eth70 => Status::Eth69(decode_exact(payload)?),
            }),
            id::NEW_BLOCK_HASHES => Self::NewBlockHashes(decode_exact(payload)?),
            id::TRANSACTIONS => Self::Transactions(decode_exact(payload)?),
            id::GET_BLOCK_HEADERS => Self::GetBlockHeaders(decode_exact(payload)?),
            id::BLOCK_HEADERS => Self::BlockHeaders(decode_exact(payload)?),
            id::GET_BLOCK_BODIES => Self::GetBlockBodies(decode_exact(payload)?),
            id::BLOCK_BODIES => Self::BlockBodies(decode_exact(payload)?),
            id::NEW_BLOCK => Self::NewBlock(Box::new(decode_exact(payload)?)),
            id::NEW_POOLED_TRANSACTION_HASHES => {
                let m: NewPooledTransactionHashes = decode_exact(payload)?;
                if !m.is_valid() {
                    return Err(EthError::InvalidAnnouncement {
                        types: m.types.len(),
                        sizes: m.sizes.len(),
                        hashes: m.hashes.len(),
                    });
                }
                Self::NewPooledTransactionHashes(m)
            }
            id::GET_POOLED_TRANSACTIONS => Self::GetPooledTransactions(decode_exact(payload)?),
            id::POOLED_TRANSACTIONS => Self::PooledTransactions(decode_exact(payload)?),
            id::GET_RECEIPTS => match version {
                Eth68 | Eth69 => Self::GetReceipts(decode_exact(payload)?),
                Eth70 => Self::GetReceipts70(decode_exact(payload)?),
            },
            id::RECEIPTS => match version {
                Eth68 => Self::Receipts68(decode_exact(payload)?),
                Eth69 => Self::Receipts69(decode_exact(payload)?),
                Eth70 => Self::Receipts70(decode_exact(payload)?),
            },
            id::BLOCK_RANGE_UPDATE if version.is_eth69_or_later() => {
                let m: BlockRangeUpdate = decode_exact(payload)?;
                if m.earliest > m.latest {
                    return Err(EthError::InvalidBlockRange {
                        earliest: m.earliest,
                        latest: m.latest,
                    });
                }
                Self::BlockRangeUpdate(m)
            }
            other => return Err(EthError::UnknownMessage { id: other, version }),
        };
        Ok(msg)
    }
}
