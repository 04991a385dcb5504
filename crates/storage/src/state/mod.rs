//! The world state (DESIGN §5): plain accounts, storage and bytecodes at the best block,
//! per-block change sets to unwind them, and receipts. State is written in the same
//! transaction as the blocks that produced it, so blocks and state never disagree.

use crate::{
    store::{ChainStore, SealedBlock},
    tables::{corrupted, decode_u64, meta, Table},
    StoreError,
};
use alloy_consensus::ReceiptEnvelope;
use alloy_eips::Decodable2718;
use alloy_primitives::{
    keccak256,
    map::{AddressMap, B256Map},
    Address, Bytes, B256, U256,
};
use alloy_trie::{root, TrieAccount, EMPTY_ROOT_HASH};
use std::collections::{BTreeMap, BTreeSet};
use trie::{delete_prefix, update_trie, PrefixSet, TrieKind};

mod history;
mod trie;
pub use history::{AccountProof, HistoricalState, StateBlock};
use signet_libmdbx::{
    tx::{
        aliases::{RoTxUnsync, RwTxUnsync, TxUnsync},
        PtrUnsync, TransactionKind,
    },
    WriteFlags,
};

/// keccak256 of empty bytecode: the code hash of an account without code.
pub const EMPTY_CODE_HASH: B256 = alloy_primitives::KECCAK256_EMPTY;

/// An account as the state holds it (its storage is separate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    /// Transactions sent (or contracts created).
    pub nonce: u64,
    /// Balance, in wei.
    pub balance: U256,
    /// keccak256 of its code ([`EMPTY_CODE_HASH`] without code).
    pub code_hash: B256,
}

impl Default for Account {
    fn default() -> Self {
        Self { nonce: 0, balance: U256::ZERO, code_hash: EMPTY_CODE_HASH }
    }
}

impl Account {
    const LEN: usize = 8 + 32 + 32;

    fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..8].copy_from_slice(&self.nonce.to_be_bytes());
        out[8..40].copy_from_slice(&self.balance.to_be_bytes::<32>());
        out[40..].copy_from_slice(self.code_hash.as_slice());
        out
    }

    fn decode(table: Table, bytes: &[u8]) -> Result<Self, StoreError> {
        if bytes.len() != Self::LEN {
            return Err(corrupted(table, format!("account of {} bytes", bytes.len())));
        }
        Ok(Self {
            nonce: decode_u64(table, &bytes[..8])?,
            balance: U256::from_be_slice(&bytes[8..40]),
            code_hash: B256::from_slice(&bytes[40..]),
        })
    }
}

/// The storage changes of one account in a block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageChange {
    /// The account.
    pub address: Address,
    /// Every slot was cleared first (the account was destroyed or re-created).
    pub wipe: bool,
    /// New values (zero: cleared).
    pub slots: Vec<(U256, U256)>,
}

/// What executing one block changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateChanges {
    /// New accounts (`None`: removed).
    pub accounts: Vec<(Address, Option<Account>)>,
    /// New storage values.
    pub storage: Vec<StorageChange>,
    /// New bytecodes by hash.
    pub codes: Vec<(B256, Bytes)>,
}

/// A block with what executing it produced, ready to be stored.
#[derive(Debug, Clone)]
pub struct ExecutedBlock {
    /// The block.
    pub block: SealedBlock,
    /// What it changed.
    pub changes: StateChanges,
    /// Its receipts, one per transaction.
    pub receipts: Vec<ReceiptEnvelope>,
}

/// Reads of the world state and the canonical chain below it.
pub trait StateRead {
    /// An account.
    fn account(&self, address: Address) -> Result<Option<Account>, StoreError>;
    /// A storage slot (zero when unset).
    fn storage(&self, address: Address, slot: U256) -> Result<U256, StoreError>;
    /// A bytecode by hash.
    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StoreError>;
    /// The canonical hash of block `number`.
    fn block_hash(&self, number: u64) -> Result<Option<B256>, StoreError>;
    /// The state root this state would have with `changes` applied, without writing them
    /// (hashes the whole state: for receipts before Byzantium, which carry one per
    /// transaction).
    fn state_root_with(&self, changes: &StateChanges) -> Result<B256, StoreError>;
}

fn storage_key(address: Address, slot: U256) -> [u8; 52] {
    let mut key = [0u8; 52];
    key[..20].copy_from_slice(address.as_slice());
    key[20..].copy_from_slice(&slot.to_be_bytes::<32>());
    key
}

pub(crate) fn block_key(number: u64, rest: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + rest.len());
    key.extend_from_slice(&number.to_be_bytes());
    key.extend_from_slice(rest);
    key
}

/// A table row: key and value.
type Row = (Vec<u8>, Vec<u8>);

/// The keys changed since the trie was last brought up to date (in one write
/// transaction).
#[derive(Debug, Default)]
pub(crate) struct Dirty {
    /// Hashed addresses whose account leaf changed.
    accounts: BTreeSet<B256>,
    /// Hashed address → hashed slots changed (an entry without slots: the storage was
    /// wiped).
    storage: BTreeMap<B256, BTreeSet<B256>>,
}

impl Dirty {
    fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.storage.is_empty()
    }
}

/// The hashed account row: the account trie's leaf value (RLP of the account with its
/// storage root), so the trie walk feeds rows as they are.
fn hashed_account(account: &Account, storage_root: B256) -> Vec<u8> {
    alloy_rlp::encode(TrieAccount {
        nonce: account.nonce,
        balance: account.balance,
        storage_root,
        code_hash: account.code_hash,
    })
}

/// The storage root in a hashed account row.
fn storage_root_of(row: &[u8]) -> Result<B256, StoreError> {
    let account = <TrieAccount as alloy_rlp::Decodable>::decode(&mut &row[..])
        .map_err(|e| corrupted(Table::HashedAccounts, e.to_string()))?;
    Ok(account.storage_root)
}

/// Writes to the plain and hashed state inside one write transaction, noting what the
/// trie must catch up with.
struct StateTxn<'a> {
    store: &'a ChainStore,
    txn: &'a RwTxUnsync,
}

impl StateTxn<'_> {
    fn view(&self) -> View<'_, signet_libmdbx::tx::Rw> {
        View { store: self.store, txn: self.txn }
    }

    /// Sets (or, `None`, removes) an account; a removed account loses its storage.
    fn put_account(
        &self,
        dirty: &mut Dirty,
        address: Address,
        account: Option<&Account>,
    ) -> Result<(), StoreError> {
        let (store, txn, none) = (self.store, self.txn, WriteFlags::empty());
        let hashed = keccak256(address);
        match account {
            Some(a) => {
                txn.put(store.db(Table::PlainAccounts), address, a.encode(), none)?;
                let row = store.get(txn, Table::HashedAccounts, hashed.as_slice())?;
                let storage_root = match row {
                    Some(row) => storage_root_of(&row)?,
                    None => EMPTY_ROOT_HASH,
                };
                let row = hashed_account(a, storage_root);
                txn.put(store.db(Table::HashedAccounts), hashed, row, none)?;
            }
            None => {
                txn.del(store.db(Table::PlainAccounts), address, None)?;
                txn.del(store.db(Table::HashedAccounts), hashed, None)?;
                self.wipe_hashed_storage(hashed)?;
                dirty.storage.remove(&hashed);
            }
        }
        dirty.accounts.insert(hashed);
        Ok(())
    }

    /// Sets a storage slot (zero: clears it).
    fn put_slot(
        &self,
        dirty: &mut Dirty,
        address: Address,
        slot: U256,
        value: U256,
    ) -> Result<(), StoreError> {
        self.put_slots(dirty, address, &[(slot, value)])
    }

    /// Sets storage slots of `address` (zero: clears one): the account's address hashed
    /// once, and the hashed rows written in key order.
    fn put_slots(
        &self,
        dirty: &mut Dirty,
        address: Address,
        slots: &[(U256, U256)],
    ) -> Result<(), StoreError> {
        let (txn, none) = (self.txn, WriteFlags::empty());
        let plain = self.store.db(Table::PlainStorage);
        let mut hashed_rows = Vec::with_capacity(slots.len());
        for (slot, value) in slots {
            let key = storage_key(address, *slot);
            if value.is_zero() {
                txn.del(plain, key, None)?;
            } else {
                txn.put(plain, key, value.to_be_bytes::<32>(), none)?;
            }
            hashed_rows.push((keccak256(slot.to_be_bytes::<32>()), *value));
        }
        hashed_rows.sort_unstable_by_key(|(hashed_slot, _)| *hashed_slot);
        let hashed_db = self.store.db(Table::HashedStorage);
        let hashed = keccak256(address);
        let changed = dirty.storage.entry(hashed).or_default();
        let mut key = [0u8; 64];
        key[..32].copy_from_slice(hashed.as_slice());
        let mut row = Vec::with_capacity(33);
        for (hashed_slot, value) in hashed_rows {
            key[32..].copy_from_slice(hashed_slot.as_slice());
            if value.is_zero() {
                txn.del(hashed_db, key, None)?;
            } else {
                row.clear();
                alloy_rlp::Encodable::encode(&value, &mut row);
                txn.put(hashed_db, key, &row, none)?;
            }
            changed.insert(hashed_slot);
        }
        Ok(())
    }

    /// Clears every slot of `address`; returns the values they had.
    fn wipe_storage(
        &self,
        dirty: &mut Dirty,
        address: Address,
    ) -> Result<Vec<(U256, U256)>, StoreError> {
        let slots = self.view().slots(address)?;
        for (slot, _) in &slots {
            self.txn.del(self.store.db(Table::PlainStorage), storage_key(address, *slot), None)?;
        }
        let hashed = keccak256(address);
        self.wipe_hashed_storage(hashed)?;
        dirty.storage.insert(hashed, BTreeSet::new());
        Ok(slots)
    }

    fn wipe_hashed_storage(&self, hashed: B256) -> Result<(), StoreError> {
        delete_prefix(self.store, self.txn, Table::HashedStorage, hashed.as_slice())?;
        delete_prefix(self.store, self.txn, Table::StorageTrie, hashed.as_slice())
    }

    /// Brings the tries up to date with `dirty` (storage tries first, then the account
    /// trie) and returns the state root.
    fn commit_trie(&self, dirty: &mut Dirty) -> Result<B256, StoreError> {
        let (store, txn) = (self.store, self.txn);
        for (hashed, slots) in std::mem::take(&mut dirty.storage) {
            let mut changed = PrefixSet::new(slots);
            let root = update_trie(store, txn, TrieKind::Storage(hashed), &mut changed)?;
            // The account may be gone (its storage was wiped with it).
            if let Some(row) = store.get(txn, Table::HashedAccounts, hashed.as_slice())? {
                let mut account = <TrieAccount as alloy_rlp::Decodable>::decode(&mut &row[..])
                    .map_err(|e| corrupted(Table::HashedAccounts, e.to_string()))?;
                account.storage_root = root;
                let row = alloy_rlp::encode(account);
                txn.put(store.db(Table::HashedAccounts), hashed, row, WriteFlags::empty())?;
            }
            dirty.accounts.insert(hashed);
        }
        let mut changed = PrefixSet::new(std::mem::take(&mut dirty.accounts));
        update_trie(store, txn, TrieKind::Accounts, &mut changed)
    }
}

/// Every (key, value) of `table` whose key is `prefix` and `rest` more bytes, in key order.
/// A key with the prefix but another length is corruption.
fn scan_prefix<K: TransactionKind<Access = PtrUnsync>>(
    store: &ChainStore,
    txn: &TxUnsync<K>,
    table: Table,
    prefix: &[u8],
    rest: usize,
) -> Result<Vec<Row>, StoreError> {
    let mut cursor = txn.cursor(store.db(table))?;
    let mut out = Vec::new();
    let mut next = cursor.set_range::<Vec<u8>, Vec<u8>>(prefix)?;
    while let Some((k, v)) = next {
        if !k.starts_with(prefix) {
            break;
        }
        if k.len() != prefix.len() + rest {
            return Err(corrupted(table, format!("key of {} bytes", k.len())));
        }
        out.push((k, v));
        next = cursor.next::<Vec<u8>, Vec<u8>>()?;
    }
    Ok(out)
}

/// State reads inside one transaction of `store`.
struct View<'a, K: TransactionKind<Access = PtrUnsync>> {
    store: &'a ChainStore,
    txn: &'a TxUnsync<K>,
}

impl<K: TransactionKind<Access = PtrUnsync>> View<'_, K> {
    fn account(&self, address: Address) -> Result<Option<Account>, StoreError> {
        let v = self.store.get(self.txn, Table::PlainAccounts, address.as_slice())?;
        v.map(|v| Account::decode(Table::PlainAccounts, &v)).transpose()
    }

    fn storage(&self, address: Address, slot: U256) -> Result<U256, StoreError> {
        let v = self.store.get(self.txn, Table::PlainStorage, &storage_key(address, slot))?;
        Ok(v.map(|v| U256::from_be_slice(&v)).unwrap_or_default())
    }

    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StoreError> {
        Ok(self.store.get(self.txn, Table::Bytecodes, code_hash.as_slice())?.map(Bytes::from))
    }

    fn block_hash(&self, number: u64) -> Result<Option<B256>, StoreError> {
        self.store.canonical_in(self.txn, number)
    }

    /// Every slot of `address`, in key order.
    fn slots(&self, address: Address) -> Result<Vec<(U256, U256)>, StoreError> {
        let rows = scan_prefix(self.store, self.txn, Table::PlainStorage, address.as_slice(), 32)?;
        Ok(rows
            .into_iter()
            .map(|(k, v)| (U256::from_be_slice(&k[20..]), U256::from_be_slice(&v)))
            .collect())
    }

    fn state_root_with(&self, changes: &StateChanges) -> Result<B256, StoreError> {
        let mut accounts = std::collections::BTreeMap::new();
        for (k, v) in scan_prefix(self.store, self.txn, Table::PlainAccounts, &[], 20)? {
            accounts.insert(Address::from_slice(&k), Account::decode(Table::PlainAccounts, &v)?);
        }
        let storage: std::collections::HashMap<Address, &StorageChange> =
            changes.storage.iter().map(|c| (c.address, c)).collect();
        for (address, account) in &changes.accounts {
            match account {
                Some(a) => accounts.insert(*address, *a),
                None => accounts.remove(address),
            };
        }
        let mut leaves = Vec::with_capacity(accounts.len());
        for (address, account) in accounts {
            let change = storage.get(&address).copied();
            let mut slots: std::collections::BTreeMap<U256, U256> = match change {
                Some(c) if c.wipe => Default::default(),
                _ => self.slots(address)?.into_iter().collect(),
            };
            for (slot, value) in change.iter().flat_map(|c| &c.slots) {
                if value.is_zero() {
                    slots.remove(slot);
                } else {
                    slots.insert(*slot, *value);
                }
            }
            let storage_root = root::storage_root_unsorted(
                slots.into_iter().map(|(k, v)| (keccak256(k.to_be_bytes::<32>()), v)),
            );
            let leaf = TrieAccount {
                nonce: account.nonce,
                balance: account.balance,
                storage_root,
                code_hash: account.code_hash,
            };
            leaves.push((keccak256(address), leaf));
        }
        Ok(root::state_root_unsorted(leaves))
    }

    /// The state root, hashing every account and slot (O(state); an incremental root from
    /// stored trie nodes is the next step).
    fn state_root(&self) -> Result<B256, StoreError> {
        self.state_root_with(&StateChanges::default())
    }
}

macro_rules! state_read_via_view {
    ($ty:ty) => {
        impl StateRead for $ty {
            fn account(&self, address: Address) -> Result<Option<Account>, StoreError> {
                self.view().account(address)
            }
            fn storage(&self, address: Address, slot: U256) -> Result<U256, StoreError> {
                self.view().storage(address, slot)
            }
            fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StoreError> {
                self.view().code(code_hash)
            }
            fn block_hash(&self, number: u64) -> Result<Option<B256>, StoreError> {
                self.view().block_hash(number)
            }
            fn state_root_with(&self, changes: &StateChanges) -> Result<B256, StoreError> {
                self.view().state_root_with(changes)
            }
        }
    };
}

/// A consistent snapshot of the state at the best block ([`ChainStore::state`]).
pub struct StateReader {
    store: ChainStore,
    txn: RoTxUnsync,
}

impl std::fmt::Debug for StateReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateReader").finish_non_exhaustive()
    }
}

impl StateReader {
    fn view(&self) -> View<'_, signet_libmdbx::tx::Ro> {
        View { store: &self.store, txn: &self.txn }
    }

    /// The state root of this snapshot (hashes the whole state).
    pub fn state_root(&self) -> Result<B256, StoreError> {
        self.view().state_root()
    }

    /// The block this snapshot's state is after, and whether it is the best block (it is
    /// not while blocks stored without execution wait for it).
    pub fn state_head(&self) -> Result<((u64, B256), bool), StoreError> {
        let best = self.store.best_in(&self.txn)?;
        let number = self.store.state_number_in(&self.txn)?;
        if number == best.0 {
            return Ok((best, true));
        }
        let hash = self.store.canonical_in(&self.txn, number)?.ok_or_else(|| {
            corrupted(Table::CanonicalHashes, format!("canonical {number} missing"))
        })?;
        Ok(((number, hash), false))
    }
}

state_read_via_view!(StateReader);

/// Appends executed blocks and their state inside one write transaction
/// ([`ChainStore::write_state`]); reads see what was appended before.
pub struct StateWriter<'a> {
    store: &'a ChainStore,
    txn: &'a RwTxUnsync,
    best: (u64, B256),
    dirty: Dirty,
    /// The changes of the next block were applied ([`StateWriter::stage`]); its block is
    /// not stored yet.
    staged: bool,
}

impl std::fmt::Debug for StateWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateWriter").field("best", &self.best).finish_non_exhaustive()
    }
}

impl StateWriter<'_> {
    fn view(&self) -> View<'_, signet_libmdbx::tx::Rw> {
        View { store: self.store, txn: self.txn }
    }

    /// The best block, including what was appended in this transaction.
    pub fn best(&self) -> (u64, B256) {
        self.best
    }

    /// A stored header by hash.
    pub fn header(&self, hash: B256) -> Result<Option<alloy_consensus::Header>, StoreError> {
        self.store.header_in(self.txn, hash)
    }

    /// The state root now: the tries are brought up to date with what was appended
    /// since the last call, reading and rebuilding only the nodes on changed paths.
    pub fn state_root(&mut self) -> Result<B256, StoreError> {
        StateTxn { store: self.store, txn: self.txn }.commit_trie(&mut self.dirty)
    }

    /// Appends `b`: the block, its receipts, its state changes and the change sets that
    /// undo them. It must extend the best block.
    pub fn append(&mut self, b: &ExecutedBlock) -> Result<(), StoreError> {
        self.apply(b.block.block.header.number, &b.changes)?;
        self.staged = true;
        self.finish(&b.block, &b.receipts)
    }

    /// Appends `blocks` (a chain extending the best block) as [`StateWriter::append`]
    /// does one by one, with the same rows in the end, but each account and slot written
    /// once with its value after the last block that changed it, in key order (a batch
    /// changes the same accounts block after block: fee recipients, system contracts,
    /// busy senders). Change sets still record each block's previous values. The state in
    /// between is not there to read: use it where only the state after the batch is
    /// checked. A batch that removes an account or wipes storage is appended block by
    /// block.
    pub fn append_batch(&mut self, blocks: &[ExecutedBlock]) -> Result<(), StoreError> {
        let wipes = |b: &ExecutedBlock| {
            b.changes.accounts.iter().any(|(_, a)| a.is_none())
                || b.changes.storage.iter().any(|c| c.wipe)
        };
        if blocks.iter().any(wipes) {
            return blocks.iter().try_for_each(|b| self.append(b));
        }
        let (txn, store) = (self.txn, self.store);
        // The values as of the block being appended, for what the batch already changed.
        let mut accounts: AddressMap<Account> = AddressMap::default();
        let mut slots: AddressMap<B256Map<U256>> = AddressMap::default();
        for b in blocks {
            let number = b.block.block.header.number;
            let changes = &b.changes;
            for (hash, code) in &changes.codes {
                txn.put(store.db(Table::Bytecodes), hash, code, WriteFlags::empty())?;
            }
            // (No removals here: batches with them went block by block.)
            let changed = changes.accounts.iter().filter_map(|(a, v)| v.map(|v| (a, v)));
            for (address, account) in changed {
                let previous = match accounts.get(address) {
                    Some(a) => Some(*a),
                    None => self.view().account(*address)?,
                };
                let previous = previous.map(|a| a.encode().to_vec()).unwrap_or_default();
                let key = block_key(number, address.as_slice());
                store.put_append(txn, Table::AccountChangeSets, key, previous)?;
                accounts.insert(*address, account);
            }
            for change in &changes.storage {
                let address = change.address;
                let batch_slots = slots.entry(address).or_default();
                for (slot, value) in &change.slots {
                    let previous = match batch_slots.get(&B256::from(*slot)) {
                        Some(v) => *v,
                        None => self.view().storage(address, *slot)?,
                    };
                    let key = block_key(number, &storage_key(address, *slot));
                    store.put_append(
                        txn,
                        Table::StorageChangeSets,
                        key,
                        previous.to_be_bytes::<32>(),
                    )?;
                    batch_slots.insert(B256::from(*slot), *value);
                }
            }
        }
        let blocks = blocks.iter().map(|b| (&b.block, &b.receipts[..]));
        self.best = store.append_blocks(txn, blocks, self.best)?;
        let state = StateTxn { store, txn };
        let mut accounts: Vec<_> = accounts.into_iter().collect();
        accounts.sort_unstable_by_key(|(address, _)| *address);
        for (address, account) in accounts {
            state.put_account(&mut self.dirty, address, Some(&account))?;
        }
        let mut slots: Vec<_> = slots.into_iter().collect();
        slots.sort_unstable_by_key(|(address, _)| *address);
        for (address, values) in slots {
            let mut values: Vec<(U256, U256)> =
                values.into_iter().map(|(slot, value)| (slot.into(), value)).collect();
            values.sort_unstable_by_key(|(slot, _)| *slot);
            state.put_slots(&mut self.dirty, address, &values)?;
        }
        Ok(())
    }

    /// Applies the state changes of the next block (best + 1) before the block exists
    /// (a block being built needs its state root to be sealed) and returns the state root
    /// with them. [`StateWriter::finish`] must store the block before anything else.
    pub fn stage(&mut self, changes: &StateChanges) -> Result<B256, StoreError> {
        if self.staged {
            return Err(StoreError::Staged("a block's changes are already staged"));
        }
        self.apply(self.best.0 + 1, changes)?;
        self.staged = true;
        self.state_root()
    }

    /// Stores the block whose changes were staged, with its receipts.
    pub fn finish(
        &mut self,
        block: &SealedBlock,
        receipts: &[ReceiptEnvelope],
    ) -> Result<(), StoreError> {
        if !self.staged {
            return Err(StoreError::Staged("no changes were staged for this block"));
        }
        self.best = self.store.append_blocks(self.txn, [(block, receipts)], self.best)?;
        self.staged = false;
        Ok(())
    }

    /// Applies `changes` of block `number`, recording the previous values.
    fn apply(&mut self, number: u64, changes: &StateChanges) -> Result<(), StoreError> {
        let none = WriteFlags::empty();
        let (txn, store) = (self.txn, self.store);
        let state = StateTxn { store, txn };
        for (hash, code) in &changes.codes {
            txn.put(store.db(Table::Bytecodes), hash, code, none)?;
        }
        for (address, account) in &changes.accounts {
            let before = self.view().account(*address)?;
            let previous = before.map(|a| a.encode().to_vec()).unwrap_or_default();
            let key = block_key(number, address.as_slice());
            store.put_append(txn, Table::AccountChangeSets, key, previous)?;
            state.put_account(&mut self.dirty, *address, account.as_ref())?;
        }
        // A removed account loses its storage: wiped (and recorded) even if the changes
        // do not say so.
        let wiped: BTreeSet<Address> =
            changes.storage.iter().filter(|c| c.wipe).map(|c| c.address).collect();
        let removed: Vec<StorageChange> = changes
            .accounts
            .iter()
            .filter(|(a, account)| account.is_none() && !wiped.contains(a))
            .map(|(address, _)| StorageChange { address: *address, wipe: true, slots: vec![] })
            .collect();
        for change in changes.storage.iter().chain(&removed) {
            let address = change.address;
            // The value of each touched slot before the block.
            let mut previous = BTreeMap::new();
            if change.wipe {
                previous.extend(state.wipe_storage(&mut self.dirty, address)?);
            }
            for (slot, value) in &change.slots {
                if !previous.contains_key(slot) {
                    previous.insert(*slot, self.view().storage(address, *slot)?);
                }
                state.put_slot(&mut self.dirty, address, *slot, *value)?;
            }
            for (slot, value) in previous {
                let key = block_key(number, &storage_key(address, slot));
                store.put_append(txn, Table::StorageChangeSets, key, value.to_be_bytes::<32>())?;
            }
        }
        Ok(())
    }
}

state_read_via_view!(StateWriter<'_>);

impl ChainStore {
    /// A snapshot of the state at the best block.
    pub fn state(&self) -> Result<StateReader, StoreError> {
        Ok(StateReader { store: self.clone(), txn: self.begin_ro()? })
    }

    /// Runs `f` with a [`StateWriter`] in one write transaction, committed when `f`
    /// returns `Ok` (nothing is written otherwise).
    pub fn write_state<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut StateWriter<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let txn = self.begin_rw()?;
        let best = self.best_in(&txn)?;
        let at = self.state_number_in(&txn)?;
        if at != best.0 {
            return Err(StoreError::StateOutOfOrder { got: best.0 + 1, at }.into());
        }
        let mut writer =
            StateWriter { store: self, txn: &txn, best, dirty: Dirty::default(), staged: false };
        let out = f(&mut writer)?;
        if writer.staged {
            return Err(StoreError::Staged("changes were staged without their block").into());
        }
        if !writer.dirty.is_empty() {
            writer.state_root()?;
        }
        let (number, _) = writer.best;
        for key in [meta::BEST_NUMBER, meta::STATE_NUMBER] {
            txn.put(self.db(Table::Meta), key, number.to_be_bytes(), WriteFlags::empty())
                .map_err(StoreError::from)?;
        }
        txn.commit().map_err(StoreError::from)?;
        self.chain_changed();
        Ok(out)
    }

    /// The block the state is at: the best block, unless blocks were stored without
    /// execution ([`ChainStore::insert_blocks`]).
    pub fn state_number(&self) -> Result<u64, StoreError> {
        self.ro(|txn| self.state_number_in(txn))
    }

    pub(crate) fn state_number_in<K: TransactionKind<Access = PtrUnsync>>(
        &self,
        txn: &TxUnsync<K>,
    ) -> Result<u64, StoreError> {
        let v = self.get(txn, Table::Meta, meta::STATE_NUMBER)?;
        v.map(|v| decode_u64(Table::Meta, &v)).transpose().map(Option::unwrap_or_default)
    }

    /// The receipts of canonical block `number` (empty for a block without transactions).
    pub fn receipts(&self, number: u64) -> Result<Vec<ReceiptEnvelope>, StoreError> {
        self.ro(|txn| {
            let rows = scan_prefix(self, txn, Table::Receipts, &number.to_be_bytes(), 4)?;
            rows.into_iter()
                .map(|(_, v)| {
                    ReceiptEnvelope::decode_2718(&mut v.as_slice())
                        .map_err(|e| corrupted(Table::Receipts, e.to_string()))
                })
                .collect()
        })
    }

    /// Writes the genesis allocations and checks they hash to the genesis state root.
    pub(crate) fn write_genesis_state(
        &self,
        txn: &RwTxUnsync,
        spec: &tern_chainspec::ChainSpec,
    ) -> Result<(), StoreError> {
        let none = WriteFlags::empty();
        let state = StateTxn { store: self, txn };
        let mut dirty = Dirty::default();
        for (address, a) in &spec.genesis.alloc {
            let code_hash = match &a.code {
                Some(code) if !code.is_empty() => {
                    let hash = keccak256(code);
                    txn.put(self.db(Table::Bytecodes), hash, code, none)?;
                    hash
                }
                _ => EMPTY_CODE_HASH,
            };
            let account =
                Account { nonce: a.nonce.unwrap_or_default(), balance: a.balance, code_hash };
            state.put_account(&mut dirty, *address, Some(&account))?;
            for (slot, value) in a.storage.iter().flatten() {
                let (slot, value) = (U256::from_be_bytes(slot.0), U256::from_be_bytes(value.0));
                if !value.is_zero() {
                    state.put_slot(&mut dirty, *address, slot, value)?;
                }
            }
        }
        let computed = state.commit_trie(&mut dirty)?;
        if computed != spec.genesis_header.state_root {
            return Err(StoreError::GenesisState {
                computed,
                header: spec.genesis_header.state_root,
            });
        }
        Ok(())
    }

    /// Undoes the state changes and removes the receipts of block `number` (the best);
    /// what the trie must catch up with is noted in `dirty`.
    pub(crate) fn revert_state(
        &self,
        txn: &RwTxUnsync,
        dirty: &mut Dirty,
        number: u64,
    ) -> Result<(), StoreError> {
        let state = StateTxn { store: self, txn };
        let prefix = number.to_be_bytes();
        for (key, before) in scan_prefix(self, txn, Table::AccountChangeSets, &prefix, 20)? {
            let address = Address::from_slice(&key[8..]);
            let before = match before.is_empty() {
                true => None,
                false => Some(Account::decode(Table::AccountChangeSets, &before)?),
            };
            state.put_account(dirty, address, before.as_ref())?;
            txn.del(self.db(Table::AccountChangeSets), &key, None)?;
        }
        for (key, before) in scan_prefix(self, txn, Table::StorageChangeSets, &prefix, 52)? {
            let address = Address::from_slice(&key[8..28]);
            let slot = U256::from_be_slice(&key[28..]);
            state.put_slot(dirty, address, slot, U256::from_be_slice(&before))?;
            txn.del(self.db(Table::StorageChangeSets), &key, None)?;
        }
        for (key, _) in scan_prefix(self, txn, Table::Receipts, &prefix, 4)? {
            txn.del(self.db(Table::Receipts), key, None)?;
        }
        Ok(())
    }

    /// Brings the tries up to date after [`ChainStore::revert_state`] and checks the root
    /// against the header of the block the state is now at.
    pub(crate) fn commit_reverted_trie(
        &self,
        txn: &RwTxUnsync,
        dirty: &mut Dirty,
        number: u64,
    ) -> Result<(), StoreError> {
        if dirty.is_empty() {
            return Ok(());
        }
        let root = StateTxn { store: self, txn }.commit_trie(dirty)?;
        let hash = self.canonical_in(txn, number)?.ok_or_else(|| {
            corrupted(Table::CanonicalHashes, format!("canonical {number} missing"))
        })?;
        let header = self
            .header_in(txn, hash)?
            .ok_or_else(|| corrupted(Table::Headers, format!("header {hash} missing")))?;
        if root != header.state_root {
            return Err(corrupted(
                Table::AccountTrie,
                format!(
                    "state root {root} after unwinding to {number}; its header says {}",
                    header.state_root
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
