//! State roots (Yellow Paper §4.1, Appendix D): the Merkle-Patricia trie of
//! keccak(address) → RLP(nonce, balance, storage root, code hash), each storage root the
//! trie of keccak(slot) → RLP(value).

use alloy_primitives::{B256, U256};
use alloy_trie::{root, TrieAccount};
use revm::state::AccountInfo;

/// An account ready for the state trie: hashed address and its trie leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootAccount {
    /// keccak256 of the address.
    pub hashed_address: B256,
    /// The leaf: nonce, balance, storage root, code hash.
    pub leaf: TrieAccount,
}

impl RootAccount {
    /// The leaf of `info` with storage `storage` (hashed slot → value, any order).
    pub fn new(
        hashed_address: B256,
        info: &AccountInfo,
        storage: impl IntoIterator<Item = (B256, U256)>,
    ) -> Self {
        let leaf = TrieAccount {
            nonce: info.nonce,
            balance: info.balance,
            storage_root: root::storage_root_unsorted(storage),
            code_hash: info.code_hash,
        };
        Self { hashed_address, leaf }
    }
}

/// The state root of `accounts` (any order).
pub fn state_root_of(accounts: impl IntoIterator<Item = RootAccount>) -> B256 {
    root::state_root_unsorted(accounts.into_iter().map(|a| (a.hashed_address, a.leaf)))
}
