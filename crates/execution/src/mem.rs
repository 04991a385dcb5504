//! A world state held in memory: for tests, the consensus-test runner and small chains.

use crate::root::{state_root_of, RootAccount};
use alloy_primitives::{keccak256, map::HashMap, Address, B256, U256};
use revm::{
    bytecode::Bytecode,
    database::{states::StateChangeset, DatabaseRef},
    state::AccountInfo,
};
use std::{collections::BTreeMap, convert::Infallible};

/// One account in a [`MemState`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemAccount {
    /// Nonce, balance and code hash.
    pub info: AccountInfo,
    /// Non-zero storage slots.
    pub storage: BTreeMap<U256, U256>,
}

/// Accounts, storage, bytecodes and the hashes of recent blocks (for `BLOCKHASH`), in
/// memory. Reads through [`DatabaseRef`] never fail.
#[derive(Debug, Clone, Default)]
pub struct MemState {
    /// Accounts by address.
    pub accounts: BTreeMap<Address, MemAccount>,
    /// Bytecodes by code hash.
    pub codes: HashMap<B256, Bytecode>,
    /// Block hashes by number.
    pub block_hashes: BTreeMap<u64, B256>,
}

impl MemState {
    /// Sets an account with its code and storage (genesis allocations, test fixtures).
    pub fn insert(
        &mut self,
        address: Address,
        nonce: u64,
        balance: U256,
        code: &[u8],
        storage: impl IntoIterator<Item = (U256, U256)>,
    ) {
        let (code_hash, bytecode) = if code.is_empty() {
            (revm::primitives::KECCAK_EMPTY, None)
        } else {
            let b = Bytecode::new_raw(code.to_vec().into());
            (b.hash_slow(), Some(b))
        };
        if let Some(b) = bytecode {
            self.codes.insert(code_hash, b);
        }
        let info = AccountInfo { balance, nonce, code_hash, ..Default::default() };
        let storage = storage.into_iter().filter(|(_, v)| !v.is_zero()).collect();
        self.accounts.insert(address, MemAccount { info, storage });
    }

    /// Applies what a block changed.
    pub fn apply(&mut self, changes: &StateChangeset) {
        for (hash, code) in &changes.contracts {
            self.codes.insert(*hash, code.clone());
        }
        for (address, info) in &changes.accounts {
            match info {
                Some(info) => {
                    let mut info = info.clone();
                    info.code = None;
                    self.accounts.entry(*address).or_default().info = info;
                }
                None => {
                    self.accounts.remove(address);
                }
            }
        }
        for s in &changes.storage {
            let Some(account) = self.accounts.get_mut(&s.address) else { continue };
            if s.wipe_storage {
                account.storage.clear();
            }
            for (slot, value) in &s.storage {
                if value.is_zero() {
                    account.storage.remove(slot);
                } else {
                    account.storage.insert(*slot, *value);
                }
            }
        }
    }

    /// The state root (every account and slot hashed: fine for small states).
    pub fn state_root(&self) -> B256 {
        state_root_of(self.accounts.iter().map(|(address, a)| {
            let storage = a.storage.iter().map(|(k, v)| (keccak256(k.to_be_bytes::<32>()), *v));
            RootAccount::new(keccak256(address), &a.info, storage)
        }))
    }
}

impl DatabaseRef for MemState {
    type Error = Infallible;

    /// The account with its code: revm's system calls run the code an account carries and
    /// do not look it up by hash.
    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, Infallible> {
        Ok(self.accounts.get(&address).map(|a| {
            let mut info = a.info.clone();
            info.code = self.codes.get(&info.code_hash).cloned();
            info
        }))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, Infallible> {
        Ok(self.codes.get(&code_hash).cloned().unwrap_or_default())
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, Infallible> {
        let slot = self.accounts.get(&address).and_then(|a| a.storage.get(&index));
        Ok(slot.copied().unwrap_or_default())
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, Infallible> {
        Ok(self.block_hashes.get(&number).copied().unwrap_or_default())
    }
}

impl crate::execute::StateRootWith for MemState {
    fn state_root_with(&self, changes: &StateChangeset) -> Result<B256, crate::ExecutionError> {
        let mut after = self.clone();
        after.apply(changes);
        Ok(after.state_root())
    }
}
