//! Table names and key/value encodings (DESIGN §5).

use crate::StoreError;
use alloy_primitives::{B256, U256};

/// The tables of the chain store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// block number (u64 BE) → canonical block hash.
    CanonicalHashes,
    /// block hash → block number (u64 BE).
    HeaderNumbers,
    /// block number (u64 BE) ‖ block hash → header RLP (keyed by number first so a
    /// growing chain appends instead of dirtying a random page per block).
    Headers,
    /// block number ‖ block hash → body RLP `[transactions, ommers, withdrawals?]`.
    Bodies,
    /// block number ‖ block hash → total difficulty (U256, 32 bytes BE).
    TotalDifficulty,
    /// transaction hash → block number (u64 BE) || index (u32 BE), canonical only.
    TxLookup,
    /// name → value: best block, schema version, genesis hash.
    Meta,
    /// address → account (nonce u64 BE, balance 32 bytes BE, code hash): the state at the
    /// best block.
    PlainAccounts,
    /// address ‖ slot (32 bytes BE) → value (32 bytes BE); zero values are not stored.
    PlainStorage,
    /// code hash → bytecode.
    Bytecodes,
    /// block number (u64 BE) ‖ address → the account before the block (empty: it did
    /// not exist).
    AccountChangeSets,
    /// block number ‖ address ‖ slot → the value before the block (zero: not set).
    StorageChangeSets,
    /// block number ‖ index (u32 BE) → receipt (EIP-2718 encoding), canonical blocks.
    Receipts,
    /// keccak(address) → RLP of (nonce, balance, storage root, code hash): the account
    /// trie's leaves, as the trie holds them.
    HashedAccounts,
    /// keccak(address) ‖ keccak(slot) → RLP of the value (never zero): the storage tries'
    /// leaves, as the tries hold them.
    HashedStorage,
    /// nibble path (one nibble per byte) → branch node (masks and child hashes) of the
    /// account trie.
    AccountTrie,
    /// keccak(address) ‖ nibble path → branch node of that account's storage trie.
    StorageTrie,
    /// block hash → Clique signer snapshot after that block (encoded by the consensus
    /// crate), kept at checkpoints and every 1,024 blocks. Added without a schema bump:
    /// tables are created on open, and a missing snapshot is recomputed.
    CliqueSnapshots,
}

impl Table {
    /// Every table, in creation order.
    pub const ALL: [Self; 18] = [
        Self::CanonicalHashes,
        Self::HeaderNumbers,
        Self::Headers,
        Self::Bodies,
        Self::TotalDifficulty,
        Self::TxLookup,
        Self::Meta,
        Self::PlainAccounts,
        Self::PlainStorage,
        Self::Bytecodes,
        Self::AccountChangeSets,
        Self::StorageChangeSets,
        Self::Receipts,
        Self::HashedAccounts,
        Self::HashedStorage,
        Self::AccountTrie,
        Self::StorageTrie,
        Self::CliqueSnapshots,
    ];

    /// The MDBX database name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::CanonicalHashes => "CanonicalHashes",
            Self::HeaderNumbers => "HeaderNumbers",
            Self::Headers => "Headers",
            Self::Bodies => "Bodies",
            Self::TotalDifficulty => "TotalDifficulty",
            Self::TxLookup => "TxLookup",
            Self::Meta => "Meta",
            Self::PlainAccounts => "PlainAccounts",
            Self::PlainStorage => "PlainStorage",
            Self::Bytecodes => "Bytecodes",
            Self::AccountChangeSets => "AccountChangeSets",
            Self::StorageChangeSets => "StorageChangeSets",
            Self::Receipts => "Receipts",
            Self::HashedAccounts => "HashedAccounts",
            Self::HashedStorage => "HashedStorage",
            Self::AccountTrie => "AccountTrie",
            Self::StorageTrie => "StorageTrie",
            Self::CliqueSnapshots => "CliqueSnapshots",
        }
    }
}

/// Meta keys.
pub(crate) mod meta {
    /// Best (canonical head) block number, u64 BE.
    pub(crate) const BEST_NUMBER: &[u8] = b"best_number";
    /// Schema version, u64 BE.
    pub(crate) const SCHEMA_VERSION: &[u8] = b"schema_version";
    /// Genesis hash, 32 bytes.
    pub(crate) const GENESIS_HASH: &[u8] = b"genesis_hash";
    /// The block the world state is at, u64 BE.
    pub(crate) const STATE_NUMBER: &[u8] = b"state_number";
    /// The safe block's hash (named by a fork-choice update or an import).
    pub(crate) const SAFE_BLOCK: &[u8] = b"safe_block";
    /// The validator's Clique proposals (encoded by the consensus crate).
    pub(crate) const CLIQUE_PROPOSALS: &[u8] = b"clique_proposals";
    /// The finalized block's hash.
    pub(crate) const FINALIZED_BLOCK: &[u8] = b"finalized_block";
}

pub(crate) fn corrupted(table: Table, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupted { table: table.name(), reason: reason.into() }
}

pub(crate) fn decode_u64(table: Table, bytes: &[u8]) -> Result<u64, StoreError> {
    let arr: [u8; 8] = bytes.try_into().map_err(|_| corrupted(table, "expected 8 bytes"))?;
    Ok(u64::from_be_bytes(arr))
}

pub(crate) fn decode_b256(table: Table, bytes: &[u8]) -> Result<B256, StoreError> {
    if bytes.len() != 32 {
        return Err(corrupted(table, format!("expected 32 bytes, found {}", bytes.len())));
    }
    Ok(B256::from_slice(bytes))
}

pub(crate) fn decode_u256(table: Table, bytes: &[u8]) -> Result<U256, StoreError> {
    let arr: [u8; 32] = bytes.try_into().map_err(|_| corrupted(table, "expected 32 bytes"))?;
    Ok(U256::from_be_bytes(arr))
}
