//! Reads of the state at an earlier block (from the latest state and the change sets of
//! the blocks above it) and Merkle proofs of the latest state (EIP-1186).

use super::{block_key, scan_prefix, storage_key, Account, StateChanges, StateRead, View};
use crate::{
    store::ChainStore,
    tables::{corrupted, meta, Table},
    StoreError,
};
use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use alloy_trie::{proof::ProofRetainer, HashBuilder, Nibbles, TrieAccount, EMPTY_ROOT_HASH};
use signet_libmdbx::tx::aliases::RoTxUnsync;

/// The state after canonical block `number` ([`ChainStore::state_at`]): a value is the
/// one recorded before the first later block that changed it, or the latest one.
///
/// A read costs one lookup per block between `number` and the state's block, so callers
/// bound how far back they ask.
pub struct HistoricalState {
    store: ChainStore,
    txn: RoTxUnsync,
    number: u64,
    head: u64,
}

impl std::fmt::Debug for HistoricalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoricalState")
            .field("number", &self.number)
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

impl HistoricalState {
    fn view(&self) -> View<'_, signet_libmdbx::tx::Ro> {
        View { store: &self.store, txn: &self.txn }
    }

    /// The block this state is after.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The block the latest state is at (the head).
    pub fn head(&self) -> u64 {
        self.head
    }

    /// The value of `key` before the first block above `number` that recorded one.
    fn before_later_block(&self, table: Table, rest: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        for block in self.number + 1..=self.head {
            if let Some(v) = self.store.get(&self.txn, table, &block_key(block, rest))? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// The EIP-1186 proof of `address` and its `slots`: only for the latest state (the
    /// tries are kept for it alone).
    pub fn proof(&self, address: Address, slots: &[B256]) -> Result<AccountProof, StoreError> {
        if self.number != self.head {
            return Err(StoreError::ProofUnavailable { number: self.number, head: self.head });
        }
        account_proof(&self.store, &self.txn, address, slots)
    }
}

impl StateRead for HistoricalState {
    fn account(&self, address: Address) -> Result<Option<Account>, StoreError> {
        match self.before_later_block(Table::AccountChangeSets, address.as_slice())? {
            Some(v) if v.is_empty() => Ok(None),
            Some(v) => Account::decode(Table::AccountChangeSets, &v).map(Some),
            None => self.view().account(address),
        }
    }

    fn storage(&self, address: Address, slot: U256) -> Result<U256, StoreError> {
        match self.before_later_block(Table::StorageChangeSets, &storage_key(address, slot))? {
            Some(v) if v.len() == 32 => Ok(U256::from_be_slice(&v)),
            Some(v) => {
                Err(corrupted(Table::StorageChangeSets, format!("value of {} bytes", v.len())))
            }
            None => self.view().storage(address, slot),
        }
    }

    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StoreError> {
        self.view().code(code_hash)
    }

    fn block_hash(&self, number: u64) -> Result<Option<B256>, StoreError> {
        self.view().block_hash(number)
    }

    fn state_root_with(&self, _changes: &StateChanges) -> Result<B256, StoreError> {
        Err(StoreError::ProofUnavailable { number: self.number, head: self.head })
    }
}

/// An account with its Merkle proof and proofs of some of its slots (EIP-1186).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountProof {
    /// The account (`None`: it does not exist; the proof shows its absence).
    pub account: Option<Account>,
    /// Its storage root ([`EMPTY_ROOT_HASH`] without storage).
    pub storage_root: B256,
    /// The account trie's nodes from the root towards the account, RLP-encoded.
    pub account_proof: Vec<Bytes>,
    /// Each requested slot: key, value and the storage trie's nodes towards it.
    pub storage: Vec<(B256, U256, Vec<Bytes>)>,
}

/// The proof nodes on the paths to `targets` in the trie with `leaves` (hashed keys in
/// order, RLP values).
fn trie_proofs(
    leaves: impl IntoIterator<Item = (B256, Vec<u8>)>,
    targets: &[B256],
) -> Vec<Vec<Bytes>> {
    let paths: Vec<Nibbles> = targets.iter().map(|t| Nibbles::unpack(t)).collect();
    let mut hb = HashBuilder::default().with_proof_retainer(ProofRetainer::new(paths.clone()));
    for (key, value) in leaves {
        hb.add_leaf(Nibbles::unpack(key), &value);
    }
    hb.root();
    let nodes = hb.take_proof_nodes();
    paths
        .iter()
        .map(|p| nodes.matching_nodes_sorted(p).into_iter().map(|(_, node)| node).collect())
        .collect()
}

/// Rows of `table` under `prefix` as (hashed key, value): the key is the 32 bytes after
/// the prefix.
fn hashed_leaves(
    store: &ChainStore,
    txn: &RoTxUnsync,
    table: Table,
    prefix: &[u8],
) -> Result<Vec<(B256, Vec<u8>)>, StoreError> {
    Ok(scan_prefix(store, txn, table, prefix, 32)?
        .into_iter()
        .map(|(k, v)| (B256::from_slice(&k[prefix.len()..]), v))
        .collect())
}

/// Builds the proof by hashing the whole account trie (and the account's storage trie):
/// O(state), as simple as possible and correct; answering from the stored branch nodes is
/// the next step when states grow.
pub(crate) fn account_proof(
    store: &ChainStore,
    txn: &RoTxUnsync,
    address: Address,
    slots: &[B256],
) -> Result<AccountProof, StoreError> {
    let hashed = keccak256(address);
    let view = View { store, txn };
    let account = view.account(address)?;
    let row = store.get(txn, Table::HashedAccounts, hashed.as_slice())?;
    let storage_root = match &row {
        Some(row) => {
            <TrieAccount as alloy_rlp::Decodable>::decode(&mut row.as_slice())
                .map_err(|e| corrupted(Table::HashedAccounts, e.to_string()))?
                .storage_root
        }
        None => EMPTY_ROOT_HASH,
    };
    let accounts = hashed_leaves(store, txn, Table::HashedAccounts, &[])?;
    let account_proof = trie_proofs(accounts, &[hashed]).pop().unwrap_or_default();
    let hashed_slots: Vec<B256> = slots.iter().map(keccak256).collect();
    let storage_proofs = if storage_root == EMPTY_ROOT_HASH {
        vec![Vec::new(); slots.len()]
    } else {
        let leaves = hashed_leaves(store, txn, Table::HashedStorage, hashed.as_slice())?;
        trie_proofs(leaves, &hashed_slots)
    };
    let mut storage = Vec::with_capacity(slots.len());
    for (slot, proof) in slots.iter().zip(storage_proofs) {
        let value = view.storage(address, U256::from_be_bytes(slot.0))?;
        storage.push((*slot, value, proof));
    }
    Ok(AccountProof { account, storage_root, account_proof, storage })
}

/// The block a state read names ([`ChainStore::state_at_block`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateBlock {
    /// The block the state is at (the head).
    Latest,
    /// A canonical block by number.
    Number(u64),
    /// A block by hash (it must be canonical).
    Hash(B256),
}

impl ChainStore {
    /// The state after the block `at` names, with the block's hash and header, all read in
    /// one transaction (a read transaction costs a reader-slot lock: one per request, not
    /// one per lookup). `None` if there is no such block; [`StoreError::NotCanonical`] for
    /// a block off the canonical chain, [`StoreError::StateAhead`] for one the state has
    /// not reached.
    pub fn state_at_block(
        &self,
        at: StateBlock,
    ) -> Result<Option<(B256, alloy_consensus::Header, HistoricalState)>, StoreError> {
        let txn = self.begin_ro()?;
        let head = self.state_number_in(&txn)?;
        let hash = match at {
            StateBlock::Latest => self.canonical_in(&txn, head)?,
            StateBlock::Number(n) => self.canonical_in(&txn, n)?,
            StateBlock::Hash(h) => Some(h),
        };
        let Some(hash) = hash else { return Ok(None) };
        let Some(header) = self.header_in(&txn, hash)? else { return Ok(None) };
        if self.canonical_in(&txn, header.number)? != Some(hash) {
            return Err(StoreError::NotCanonical(hash));
        }
        if header.number > head {
            return Err(StoreError::StateAhead { number: header.number, head });
        }
        let state = HistoricalState { store: self.clone(), txn, number: header.number, head };
        Ok(Some((hash, header, state)))
    }

    /// The state after canonical block `number` (at most the block the state is at).
    pub fn state_at(&self, number: u64) -> Result<HistoricalState, StoreError> {
        let txn = self.begin_ro()?;
        let head = self.state_number_in(&txn)?;
        if number > head {
            return Err(StoreError::StateAhead { number, head });
        }
        Ok(HistoricalState { store: self.clone(), txn, number, head })
    }

    /// The safe and finalized blocks a consensus layer (or an import) last named, if any
    /// and still canonical.
    pub fn fork_choice(&self) -> Result<(Option<B256>, Option<B256>), StoreError> {
        self.ro(|txn| {
            let read = |key: &[u8]| -> Result<Option<B256>, StoreError> {
                let Some(v) = self.get(txn, Table::Meta, key)? else { return Ok(None) };
                let hash = crate::tables::decode_b256(Table::Meta, &v)?;
                let number = self.get(txn, Table::HeaderNumbers, hash.as_slice())?;
                let Some(number) = number else { return Ok(None) };
                let number = crate::tables::decode_u64(Table::HeaderNumbers, &number)?;
                Ok((self.canonical_in(txn, number)? == Some(hash)).then_some(hash))
            };
            Ok((read(meta::SAFE_BLOCK)?, read(meta::FINALIZED_BLOCK)?))
        })
    }

    /// Records the safe and finalized blocks: both must be canonical, finalized no higher
    /// than safe.
    pub fn set_fork_choice(&self, safe: B256, finalized: B256) -> Result<(), StoreError> {
        let txn = self.begin_rw()?;
        let number_of = |hash: B256| -> Result<u64, StoreError> {
            let n = self
                .get(&txn, Table::HeaderNumbers, hash.as_slice())?
                .map(|v| crate::tables::decode_u64(Table::HeaderNumbers, &v))
                .transpose()?;
            match n {
                Some(n) if self.canonical_in(&txn, n)? == Some(hash) => Ok(n),
                _ => Err(StoreError::NotCanonical(hash)),
            }
        };
        if number_of(finalized)? > number_of(safe)? {
            return Err(StoreError::NotCanonical(finalized));
        }
        let none = signet_libmdbx::WriteFlags::empty();
        txn.put(self.db(Table::Meta), meta::SAFE_BLOCK, safe, none)?;
        txn.put(self.db(Table::Meta), meta::FINALIZED_BLOCK, finalized, none)?;
        txn.commit()?;
        Ok(())
    }
}
