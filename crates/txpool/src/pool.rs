//! The pool: transactions by sender and nonce, split into pending (executable on the
//! head) and queued (waiting for a nonce, funds or a lower base fee), within limits.

use crate::{validate_stateless, BestTransactions, Incoming, NextBlock, PoolError, ValidTx};
use alloy_consensus::Transaction;
use alloy_primitives::{Address, B256, U256};
use std::collections::{BTreeMap, HashMap};

/// The state of a sender's account that the pool needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderAccount {
    /// The account nonce: the next nonce it can use.
    pub nonce: u64,
    /// Its balance in wei.
    pub balance: U256,
}

/// Where the pool reads accounts from: the head state.
pub trait AccountSource {
    /// The account of `address` (zero nonce and balance if it does not exist).
    fn account(&self, address: Address) -> Result<SenderAccount, String>;
}

impl<F: Fn(Address) -> Result<SenderAccount, String>> AccountSource for F {
    fn account(&self, address: Address) -> Result<SenderAccount, String> {
        self(address)
    }
}

/// The pool's limits. Defaults are reth's and geth's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Most transactions of one sender (pending and queued; geth's and reth's 16 slots).
    pub max_account_slots: usize,
    /// Most pending transactions (reth: 10,000).
    pub max_pending: usize,
    /// Most queued transactions (reth: 10,000).
    pub max_queued: usize,
    /// Most bytes of transactions in the whole pool (reth: 20 MiB per sub-pool).
    pub max_bytes: usize,
    /// How much a replacement must raise both its fee cap and its tip cap, in percent
    /// (geth's and reth's 10).
    pub price_bump: u128,
    /// The lowest tip cap accepted, in wei per gas (0: any).
    pub min_tip: u128,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_account_slots: 16,
            max_pending: 10_000,
            max_queued: 10_000,
            max_bytes: 40 * 1024 * 1024,
            price_bump: 10,
            min_tip: 0,
        }
    }
}

/// Sizes of the pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// Transactions executable on the head, in nonce order.
    pub pending: usize,
    /// Transactions waiting for an earlier nonce, funds or a lower base fee.
    pub queued: usize,
    /// Encoded bytes of all of them.
    pub bytes: usize,
}

/// What adding a transaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Added {
    /// The transaction it replaced (same sender and nonce, lower fees).
    pub replaced: Option<B256>,
    /// Transactions that became pending (the new one among them if it is executable,
    /// and any queued ones whose nonce gap it filled): the ones to propagate.
    pub promoted: Vec<ValidTx>,
    /// Transactions evicted to stay within the limits.
    pub evicted: Vec<B256>,
}

/// What a new head did to the pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeadChange {
    /// Transactions gone because their nonce was used (mined, or replaced by a block).
    pub mined: usize,
    /// Transactions dropped because they can no longer execute (cost above balance, gas
    /// above the block's).
    pub dropped: Vec<B256>,
    /// Transactions that became pending.
    pub promoted: Vec<ValidTx>,
}

#[derive(Debug, Clone)]
struct Entry {
    tx: ValidTx,
    pending: bool,
    /// Arrival order, for ties.
    seq: u64,
}

#[derive(Debug, Default)]
struct Sender {
    account: SenderAccount,
    txs: BTreeMap<u64, Entry>,
}

impl Sender {
    /// Marks the executable prefix pending (consecutive nonces from the account's, each
    /// affordable after the ones before it, fee cap at least the base fee) and the rest
    /// queued; returns the transactions that became pending and the change in the
    /// number pending.
    fn settle(&mut self, base_fee: u64) -> (Vec<ValidTx>, isize) {
        let mut promoted = Vec::new();
        let mut delta = 0isize;
        let mut expect = Some(self.account.nonce);
        let mut left = self.account.balance;
        for (nonce, e) in self.txs.iter_mut() {
            let pending = match expect {
                Some(n)
                    if n == *nonce && e.tx.cost <= left && e.tx.max_fee() >= base_fee as u128 =>
                {
                    left -= e.tx.cost;
                    expect = n.checked_add(1);
                    true
                }
                _ => {
                    expect = None;
                    false
                }
            };
            if pending != e.pending {
                delta += if pending { 1 } else { -1 };
                if pending {
                    promoted.push(e.tx.clone());
                }
                e.pending = pending;
            }
        }
        (promoted, delta)
    }

    fn pending(&self) -> usize {
        self.txs.values().filter(|e| e.pending).count()
    }
}

/// The transaction pool. Not synchronised: the node keeps it behind a lock.
#[derive(Debug)]
pub struct Pool {
    config: PoolConfig,
    next: NextBlock,
    senders: HashMap<Address, Sender>,
    by_hash: HashMap<B256, (Address, u64)>,
    status: PoolStatus,
    seq: u64,
}

impl Pool {
    /// An empty pool validating against `next`.
    pub fn new(config: PoolConfig, next: NextBlock) -> Self {
        Self {
            config,
            next,
            senders: HashMap::new(),
            by_hash: HashMap::new(),
            status: PoolStatus::default(),
            seq: 0,
        }
    }

    /// The limits.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// The block the pool validates for.
    pub fn next_block(&self) -> &NextBlock {
        &self.next
    }

    /// Sizes now.
    pub fn status(&self) -> PoolStatus {
        self.status
    }

    /// Whether the pool holds `hash`.
    pub fn contains(&self, hash: &B256) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// The transaction `hash`, if the pool holds it.
    pub fn get(&self, hash: &B256) -> Option<&ValidTx> {
        let (sender, nonce) = self.by_hash.get(hash)?;
        self.senders.get(sender)?.txs.get(nonce).map(|e| &e.tx)
    }

    /// Whether `hash` is pending.
    pub fn is_pending(&self, hash: &B256) -> bool {
        let Some((sender, nonce)) = self.by_hash.get(hash) else { return false };
        self.senders[sender].txs[nonce].pending
    }

    /// The nonce after `sender`'s last pending transaction, if it has one pending (what
    /// its next transaction should carry).
    pub fn pending_nonce(&self, sender: &Address) -> Option<u64> {
        let s = self.senders.get(sender)?;
        s.txs.iter().rev().find(|(_, e)| e.pending).map(|(nonce, _)| nonce + 1)
    }

    /// Every transaction, by sender then nonce, split into (pending, queued).
    pub fn content(&self) -> (BTreeMap<Address, Vec<ValidTx>>, BTreeMap<Address, Vec<ValidTx>>) {
        let (mut pending, mut queued) = (BTreeMap::new(), BTreeMap::new());
        for (address, s) in &self.senders {
            for e in s.txs.values() {
                let side: &mut BTreeMap<Address, Vec<ValidTx>> =
                    if e.pending { &mut pending } else { &mut queued };
                side.entry(*address).or_default().push(e.tx.clone());
            }
        }
        (pending, queued)
    }

    /// Every pending transaction, in no particular order (what a new peer is told of).
    pub fn pending(&self) -> Vec<ValidTx> {
        self.senders
            .values()
            .flat_map(|s| s.txs.values().filter(|e| e.pending).map(|e| e.tx.clone()))
            .collect()
    }

    /// The `limit` pending transactions that arrived first (what is re-announced in case
    /// peers dropped them).
    pub fn oldest_pending(&self, limit: usize) -> Vec<ValidTx> {
        let mut all: Vec<&Entry> =
            self.senders.values().flat_map(|s| s.txs.values().filter(|e| e.pending)).collect();
        all.sort_by_key(|e| e.seq);
        all.into_iter().take(limit).map(|e| e.tx.clone()).collect()
    }

    /// The pending transactions for a block on the head, best effective tip first, each
    /// sender's in nonce order.
    pub fn best(&self) -> BestTransactions {
        let base_fee = self.next.base_fee;
        let per_sender = self.senders.values().filter_map(|s| {
            let run: Vec<(ValidTx, u64)> =
                s.txs.values().filter(|e| e.pending).map(|e| (e.tx.clone(), e.seq)).collect();
            (!run.is_empty()).then_some(run)
        });
        BestTransactions::new(base_fee, per_sender)
    }

    /// Validates `tx` against the next block and its sender's account (read from
    /// `accounts` if the pool does not know the sender yet) and adds it.
    pub fn add(
        &mut self,
        tx: impl Into<Incoming>,
        accounts: &dyn AccountSource,
    ) -> Result<(B256, Added), PoolError> {
        self.validate_and_insert(tx, accounts, false)
    }

    /// Adds a transaction already checked with [`validate_stateless`] against this pool's
    /// [`Pool::next_block`] (outside the pool's lock: a blob transaction's proofs take
    /// milliseconds to verify); its sender's account is checked here.
    pub fn add_validated(
        &mut self,
        tx: ValidTx,
        accounts: &dyn AccountSource,
    ) -> Result<(B256, Added), PoolError> {
        self.insert(tx, accounts, false)
    }

    /// Adds a transaction of a block a reorg unwound: validated like any other, but
    /// kept before newer arrivals when the pool is full (it counts as the oldest) and
    /// past its sender's slot limit (a block's worth at most), so a reorg does not lose
    /// what was already in a block.
    pub fn add_returned(
        &mut self,
        tx: impl Into<Incoming>,
        accounts: &dyn AccountSource,
    ) -> Result<(B256, Added), PoolError> {
        self.validate_and_insert(tx, accounts, true)
    }

    fn validate_and_insert(
        &mut self,
        tx: impl Into<Incoming>,
        accounts: &dyn AccountSource,
        returned: bool,
    ) -> Result<(B256, Added), PoolError> {
        let tx = tx.into();
        // Known ones are refused before the signature is recovered again.
        if self.by_hash.contains_key(tx.tx.tx_hash()) {
            return Err(PoolError::AlreadyKnown);
        }
        let tx = validate_stateless(tx, &self.next)?;
        self.insert(tx, accounts, returned)
    }

    fn insert(
        &mut self,
        tx: ValidTx,
        accounts: &dyn AccountSource,
        returned: bool,
    ) -> Result<(B256, Added), PoolError> {
        let hash = tx.hash;
        if self.by_hash.contains_key(&hash) {
            return Err(PoolError::AlreadyKnown);
        }
        if tx.tip_cap() < self.config.min_tip {
            return Err(PoolError::Underpriced { tip: tx.tip_cap(), min: self.config.min_tip });
        }
        let sender = tx.sender;
        let s = match self.senders.entry(sender) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let account = accounts.account(sender).map_err(PoolError::State)?;
                e.insert(Sender { account, txs: BTreeMap::new() })
            }
        };
        let make_room = match Self::check_against(&self.config, s, &tx, returned) {
            Ok(make_room) => make_room,
            Err(e) => {
                if s.txs.is_empty() {
                    self.senders.remove(&sender);
                }
                return Err(e);
            }
        };
        let mut added = Added::default();
        let nonce = tx.nonce();
        if make_room {
            // The sender is at its slot limit and this one comes before its last: the
            // last makes room (an earlier nonce can unblock the rest; a later cannot).
            let last = s.txs.keys().next_back().copied();
            if let Some(e) = last.and_then(|n| self.take_entry(sender, n)) {
                added.evicted.push(e.tx.hash);
            }
        }
        added.replaced = self.take_entry(sender, nonce).map(|old| old.tx.hash);
        let s = self.senders.get_mut(&sender).expect("the sender stays while we insert");
        self.seq += 1;
        self.status.bytes += tx.size;
        self.status.queued += 1;
        // A returned transaction counts as older than anything that arrived.
        let seq = if returned { 0 } else { self.seq };
        s.txs.insert(nonce, Entry { tx, pending: false, seq });
        self.by_hash.insert(hash, (sender, nonce));
        let (promoted, delta) = s.settle(self.next.base_fee);
        self.apply_delta(delta);
        added.promoted = promoted;
        added.evicted.extend(self.enforce_limits());
        if added.evicted.contains(&hash) {
            added.promoted.retain(|t| self.by_hash.contains_key(&t.hash));
            return Err(PoolError::Full);
        }
        added.promoted.retain(|t| self.by_hash.contains_key(&t.hash));
        Ok((hash, added))
    }

    /// Checks `tx` against its sender's account and transactions; `Ok(true)` if the
    /// sender is at its slot limit and `tx` takes the place of its highest nonce.
    fn check_against(
        config: &PoolConfig,
        s: &Sender,
        tx: &ValidTx,
        returned: bool,
    ) -> Result<bool, PoolError> {
        let nonce = tx.nonce();
        if nonce < s.account.nonce {
            return Err(PoolError::NonceTooLow {
                sender: tx.sender,
                nonce,
                state: s.account.nonce,
            });
        }
        if tx.cost > s.account.balance {
            return Err(PoolError::InsufficientFunds {
                sender: tx.sender,
                have: s.account.balance,
                want: tx.cost,
            });
        }
        match s.txs.get(&nonce) {
            Some(old) => {
                let bumped = |old: u128| old.saturating_mul(100 + config.price_bump) / 100;
                if tx.max_fee() < bumped(old.tx.max_fee())
                    || tx.tip_cap() < bumped(old.tx.tip_cap())
                {
                    return Err(PoolError::ReplacementUnderpriced);
                }
            }
            None if s.txs.len() >= config.max_account_slots && !returned => {
                let highest = s.txs.keys().next_back().copied().unwrap_or_default();
                if nonce > highest {
                    return Err(PoolError::AccountLimit {
                        sender: tx.sender,
                        limit: config.max_account_slots,
                    });
                }
                return Ok(true);
            }
            None => {}
        }
        Ok(false)
    }

    fn apply_delta(&mut self, delta: isize) {
        self.status.pending = self.status.pending.checked_add_signed(delta).expect("counts agree");
        self.status.queued = self.status.queued.checked_add_signed(-delta).expect("counts agree");
    }

    /// Removes `hashes` (transactions that failed while a block was built, say); the
    /// sender's later transactions become queued until the gap is filled (and if that
    /// overfills the queue, the cheapest queued are evicted). Returns every hash removed.
    pub fn remove(&mut self, hashes: &[B256]) -> Vec<B256> {
        let mut removed = Vec::new();
        for hash in hashes {
            let Some((sender, nonce)) = self.by_hash.get(hash).copied() else { continue };
            self.remove_entry(sender, nonce);
            removed.push(*hash);
            if let Some(s) = self.senders.get_mut(&sender) {
                let (_, delta) = s.settle(self.next.base_fee);
                self.apply_delta(delta);
            }
        }
        removed.extend(self.enforce_limits());
        removed
    }

    /// Removes one entry and its counts (no re-settling).
    fn remove_entry(&mut self, sender: Address, nonce: u64) -> Option<Entry> {
        let e = self.take_entry(sender, nonce)?;
        if self.senders.get(&sender).is_some_and(|s| s.txs.is_empty()) {
            self.senders.remove(&sender);
        }
        Some(e)
    }

    /// Removes one entry and its counts, keeping its sender (even with no transaction
    /// left).
    fn take_entry(&mut self, sender: Address, nonce: u64) -> Option<Entry> {
        let e = self.senders.get_mut(&sender)?.txs.remove(&nonce)?;
        self.by_hash.remove(&e.tx.hash);
        self.status.bytes -= e.tx.size;
        if e.pending {
            self.status.pending -= 1;
        } else {
            self.status.queued -= 1;
        }
        Some(e)
    }

    /// Evicts the cheapest transactions until the pool is within its limits; returns
    /// their hashes. Only a sender's last transaction is evicted (so no nonce gap opens
    /// in what stays pending), queued before pending, lowest fee cap first, newest first
    /// among equals.
    fn enforce_limits(&mut self) -> Vec<B256> {
        let mut evicted = Vec::new();
        loop {
            let st = self.status;
            let over_queued = st.queued > self.config.max_queued;
            let over = over_queued
                || st.pending > self.config.max_pending
                || st.bytes > self.config.max_bytes;
            if !over {
                return evicted;
            }
            let victim = self
                .senders
                .iter()
                .filter_map(|(a, s)| s.txs.last_key_value().map(|(n, e)| (a, n, e)))
                .filter(|(_, _, e)| !over_queued || !e.pending)
                .min_by_key(|(_, _, e)| (e.pending, e.tx.max_fee(), std::cmp::Reverse(e.seq)))
                .map(|(a, n, _)| (*a, *n));
            let Some((sender, nonce)) = victim else { return evicted };
            if let Some(e) = self.remove_entry(sender, nonce) {
                evicted.push(e.tx.hash);
            }
        }
    }

    /// Moves the pool to a new head: every sender's account is read again from
    /// `accounts` (the new head's state), transactions whose nonce is used are removed,
    /// ones the sender can no longer pay or that no longer fit a block are dropped, and
    /// the rest are split again into pending and queued at the new base fee.
    pub fn on_new_head(
        &mut self,
        next: NextBlock,
        accounts: &dyn AccountSource,
    ) -> Result<HeadChange, PoolError> {
        self.next = next;
        let mut change = HeadChange::default();
        let senders: Vec<Address> = self.senders.keys().copied().collect();
        for sender in senders {
            let account = accounts.account(sender).map_err(PoolError::State)?;
            let s = self.senders.get_mut(&sender).expect("listed");
            s.account = account;
            let stale: Vec<u64> = s.txs.range(..account.nonce).map(|(n, _)| *n).collect();
            let unfit: Vec<u64> = s
                .txs
                .range(account.nonce..)
                .filter(|(_, e)| {
                    e.tx.cost > account.balance || e.tx.tx.gas_limit() > next.gas_limit
                })
                .map(|(n, _)| *n)
                .collect();
            change.mined += stale.len();
            for nonce in stale {
                self.remove_entry(sender, nonce);
            }
            for nonce in unfit {
                if let Some(e) = self.remove_entry(sender, nonce) {
                    change.dropped.push(e.tx.hash);
                }
            }
            if let Some(s) = self.senders.get_mut(&sender) {
                let (promoted, delta) = s.settle(next.base_fee);
                self.apply_delta(delta);
                change.promoted.extend(promoted);
            }
        }
        change.dropped.extend(self.enforce_limits());
        debug_assert_eq!(
            self.status.pending,
            self.senders.values().map(Sender::pending).sum::<usize>()
        );
        Ok(change)
    }
}
