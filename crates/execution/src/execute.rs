//! Executing one block with revm through alloy-evm's Ethereum block executor.

use crate::{EvmForks, ExecutionError};
use alloy_consensus::{
    proofs::ordered_trie_root_with_encoder, Block, Header, ReceiptEnvelope, TxEnvelope, TxReceipt,
};
use alloy_eips::{eip7685::Requests, Encodable2718};
use alloy_evm::{
    block::BlockExecutor,
    eth::{receipt_builder::AlloyReceiptBuilder, EthBlockExecutionCtx, EthBlockExecutor},
    EthEvmFactory, Evm, EvmFactory,
};
use alloy_hardforks::EthereumHardforks;
use alloy_primitives::{Address, Bloom, B256};
use revm::{
    database::{
        states::{
            bundle_state::BundleRetention, AccountStatus, CacheState, PlainStorageChangeset,
            StateChangeset, TransitionState,
        },
        DatabaseRef, OriginalValuesKnown, State,
    },
    primitives::{KECCAK_EMPTY, U256},
    state::AccountInfo,
};
use std::{borrow::Cow, fmt::Debug};
use tern_chainspec::ChainSpec;

/// What executing a block produced.
#[derive(Debug, Clone)]
pub struct Executed {
    /// One receipt per transaction.
    pub receipts: Vec<ReceiptEnvelope>,
    /// Gas used by the whole block.
    pub gas_used: u64,
    /// EIP-7685 requests (Prague and later).
    pub requests: Requests,
    /// The state after the block, as changes to the state before it.
    pub changes: StateChangeset,
    /// Time spent computing the state root after the block (zero until a store does).
    pub state_root_time: std::time::Duration,
}

impl Executed {
    /// Writes what execution decides into the header of the block being built: gas used,
    /// receipts root, logs bloom and (where the header has one) the requests hash.
    pub fn fill_header(&self, header: &mut alloy_consensus::Header) {
        header.gas_used = self.gas_used;
        header.receipts_root = self.receipts_root();
        header.logs_bloom = self.logs_bloom();
        if header.requests_hash.is_some() {
            header.requests_hash = Some(self.requests.requests_hash());
        }
    }

    /// The receipts root: the trie of index → EIP-2718 encoded receipt.
    pub fn receipts_root(&self) -> B256 {
        ordered_trie_root_with_encoder(&self.receipts, |r, buf| r.encode_2718(buf))
    }

    /// The block's logs bloom: every receipt's, or-ed.
    pub fn logs_bloom(&self) -> Bloom {
        self.receipts.iter().fold(Bloom::ZERO, |acc, r| acc | r.bloom())
    }

    /// Checks gas used, receipts root, logs bloom and (where the header has one) requests
    /// hash against `header`. The state root is the caller's to check: it needs the state
    /// with [`Executed::changes`] applied.
    pub fn verify(&self, header: &Header) -> Result<(), ExecutionError> {
        let number = header.number;
        if self.gas_used != header.gas_used {
            return Err(ExecutionError::Mismatch {
                number,
                field: "gas_used",
                got: header.gas_used.to_string(),
                expected: self.gas_used.to_string(),
            });
        }
        let root = self.receipts_root();
        if root != header.receipts_root {
            return Err(ExecutionError::hash(number, "receipts_root", header.receipts_root, root));
        }
        let bloom = self.logs_bloom();
        if bloom != header.logs_bloom {
            return Err(ExecutionError::bloom(number, &header.logs_bloom, &bloom));
        }
        if let Some(expected) = header.requests_hash {
            let got = self.requests.requests_hash();
            if got != expected {
                return Err(ExecutionError::hash(number, "requests_hash", expected, got));
            }
        }
        Ok(())
    }
}

/// A state that can say what its root would be with some changes applied: receipts
/// before Byzantium carry the state root after each transaction.
pub trait StateRootWith {
    /// The state root of this state with `changes` applied.
    fn state_root_with(&self, changes: &StateChangeset) -> Result<B256, ExecutionError>;
}

/// revm's cached state over `DB`.
type CachedState<'d, DB> = State<revm::database::WrapDatabaseRef<&'d DB>>;

/// The EVM a block executes on, owning the state it executes on.
type BlockEvm<'d, DB> = alloy_evm::eth::EthEvm<
    CachedState<'d, DB>,
    revm::inspector::NoOpInspector,
    alloy_evm::precompiles::PrecompilesMap,
>;

/// alloy-evm's Ethereum block executor on [`BlockEvm`].
type Exec<'a, 'd, DB> =
    EthBlockExecutor<'a, BlockEvm<'d, DB>, &'a EvmForks<'a>, AlloyReceiptBuilder>;

type BlockResult = alloy_evm::block::BlockExecutionResult<ReceiptEnvelope>;

/// What runs a block's transactions on a prepared executor and finishes the block.
trait RunTransactions<DB>
where
    DB: DatabaseRef + StateRootWith + Debug,
    DB::Error: Send + Sync + 'static,
{
    /// What it reports besides the block result.
    type Output;
    /// Runs the block and hands back the EVM (for the next block) with the result.
    fn run<'d>(
        self,
        executor: Exec<'_, 'd, DB>,
    ) -> Result<(Self::Output, BlockEvm<'d, DB>, BlockResult), ExecutionError>;
}

/// Accounts, storage and analysed code read by earlier blocks of a batch, as they are
/// after those blocks: handed from block to block so each does not read (and analyse)
/// them again. Valid only while every block's changes are applied to the state the
/// blocks read, in order (as [`crate::execute_and_store`] does in its one transaction).
#[derive(Debug, Default)]
pub(crate) struct ExecutionCache(CacheState);

impl ExecutionCache {
    /// Accounts plus storage slots held.
    pub(crate) fn entries(&self) -> usize {
        let slots = |a: &revm::database::states::CacheAccount| {
            a.account.as_ref().map_or(0, |a| a.storage.len())
        };
        self.0.accounts.len() + self.0.accounts.values().map(slots).sum::<usize>()
    }
}

/// After a block that changed `changed`: those accounts of `cache` marked as freshly
/// loaded with their current value (what loading them from the updated state would give;
/// the others still are), so the next block's changes are computed against the state
/// after this one. Costs the block's changes, not the cache's size.
fn settle(cache: &mut CacheState, changed: impl IntoIterator<Item = Address>) {
    for address in changed {
        if let Some(account) = cache.accounts.get_mut(&address) {
            settle_account(account);
        }
    }
}

/// `account` marked as loaded with its current value.
fn settle_account(account: &mut revm::database::states::CacheAccount) {
    account.status = match &account.account {
        None => AccountStatus::LoadedNotExisting,
        Some(a) if a.info.is_empty() => AccountStatus::LoadedEmptyEIP161,
        Some(_) => AccountStatus::Loaded,
    };
}

/// What a block changed, from the transitions of its transactions and system calls:
/// what revm's bundle would say ([`revm::database::BundleState::to_plain_state`] of a
/// bundle fresh for the block, original values known), without building the bundle and
/// its reverts (a fifth of an empty block's execution). Every account's status before the
/// block is a loaded one ([`settle`]), which is what makes the two agree; debug builds
/// check that they do.
fn block_changes(transitions: TransitionState) -> StateChangeset {
    #[cfg(debug_assertions)]
    let expected = {
        let mut bundle = revm::database::BundleState::default();
        bundle
            .apply_transitions_and_create_reverts(transitions.clone(), BundleRetention::PlainState);
        bundle.to_plain_state(OriginalValuesKnown::Yes)
    };
    let mut out = StateChangeset::default();
    for (address, t) in transitions.transitions {
        debug_assert!(t.previous_status.is_not_modified(), "{:?}", t.previous_status);
        let destroyed = t.status.was_destroyed();
        if let Some((hash, code)) = t.has_new_contract().filter(|(h, _)| *h != KECCAK_EMPTY) {
            out.contracts.push((hash, code.clone()));
        }
        // Loaded and left as it was; or never existed and destroyed: nothing to say.
        let unchanged = t.status.is_not_modified()
            || (destroyed
                && t.previous_status == AccountStatus::LoadedNotExisting
                && t.info.is_none());
        if unchanged {
            continue;
        }
        if t.info != t.previous_info {
            out.accounts.push((address, t.info.as_ref().map(AccountInfo::copy_without_code)));
        }
        let slots: Vec<(U256, U256)> = t
            .storage
            .iter()
            .filter(
                |(_, slot)| {
                    if destroyed {
                        !slot.present_value.is_zero()
                    } else {
                        slot.is_changed()
                    }
                },
            )
            .map(|(key, slot)| (*key, slot.present_value))
            .collect();
        if !slots.is_empty() || destroyed {
            out.storage.push(PlainStorageChangeset {
                address,
                wipe_storage: destroyed,
                storage: slots,
            });
        }
    }
    #[cfg(debug_assertions)]
    debug_assert_eq!(
        format!("{:?}", sorted(out.clone())),
        format!("{:?}", sorted(expected)),
        "block changes differ from revm's"
    );
    out
}

/// `changes` in a canonical order (for comparing).
#[cfg(debug_assertions)]
fn sorted(mut changes: StateChangeset) -> StateChangeset {
    changes.accounts.sort_unstable_by_key(|(address, _)| *address);
    changes.storage.sort_unstable_by_key(|s| s.address);
    changes.storage.iter_mut().for_each(|s| s.storage.sort_unstable_by_key(|(slot, _)| *slot));
    changes.contracts.sort_unstable_by_key(|(hash, _)| *hash);
    changes.contracts.dedup_by_key(|(hash, _)| *hash);
    changes
}

/// One EVM and its cached state carried from block to block of a chain executed on the
/// state `DB` (each block on the state after the one before): building an EVM costs more
/// than an empty block's system calls, so it is built again only when the fork changes.
pub(crate) struct ChainEvm<'d, DB>
where
    DB: DatabaseRef + Debug,
    DB::Error: Send + Sync + 'static,
{
    /// The EVM (or, before the first block, its state); `None` after a block failed.
    carried: Option<Carried<'d, DB>>,
}

enum Carried<'d, DB>
where
    DB: DatabaseRef + Debug,
    DB::Error: Send + Sync + 'static,
{
    State(Box<CachedState<'d, DB>>),
    Evm(Box<BlockEvm<'d, DB>>),
}

impl<'d, DB> ChainEvm<'d, DB>
where
    DB: DatabaseRef + StateRootWith + Debug,
    DB::Error: Send + Sync + 'static,
{
    /// Starts on `db`, reading through `cache` (see [`ExecutionCache`]) when given.
    pub(crate) fn new(db: &'d DB, cache: Option<ExecutionCache>) -> Self {
        let builder = State::builder().with_database_ref(db).with_bundle_update();
        let state = match cache {
            Some(cache) => builder.with_cached_prestate(cache.0).build(),
            None => builder.build(),
        };
        Self { carried: Some(Carried::State(Box::new(state))) }
    }

    /// The cache after the last block executed (empty after a failed block).
    pub(crate) fn into_cache(self) -> ExecutionCache {
        match self.carried {
            Some(Carried::State(state)) => ExecutionCache(state.cache),
            Some(Carried::Evm(evm)) => ExecutionCache(evm.into_db().cache),
            None => ExecutionCache::default(),
        }
    }

    /// The EVM set up for a block with `env`, taken out until the block hands it back.
    pub(crate) fn take_evm(
        &mut self,
        env: alloy_evm::EvmEnv,
    ) -> Result<BlockEvm<'d, DB>, ExecutionError> {
        let state = match self.carried.take() {
            Some(Carried::Evm(mut evm)) if evm.cfg_env().spec == env.cfg_env.spec => {
                let ctx = evm.ctx_mut();
                ctx.block = env.block_env;
                ctx.modify_cfg(|cfg| *cfg = env.cfg_env);
                return Ok(*evm);
            }
            // A new fork: its precompiles and instruction set differ.
            Some(Carried::Evm(evm)) => evm.into_db(),
            Some(Carried::State(state)) => *state,
            None => {
                let reason = "the state was lost when a block before failed".to_string();
                return Err(ExecutionError::State(reason));
            }
        };
        Ok(EthEvmFactory::default().create_evm(state, env))
    }

    /// Executes a block with `header` and `body`, fees to `beneficiary`, letting `txs`
    /// run it, and returns what `txs` reported, the block result and the state changes.
    fn run<R: RunTransactions<DB>>(
        &mut self,
        spec: &ChainSpec,
        header: &Header,
        body: &alloy_consensus::BlockBody<TxEnvelope>,
        beneficiary: Address,
        txs: R,
    ) -> Result<(R::Output, BlockResult, StateChangeset), ExecutionError> {
        let forks = EvmForks::at(spec, header);
        let evm = self.take_evm(forks.evm_env(header, beneficiary))?;
        let ctx = EthBlockExecutionCtx {
            parent_hash: header.parent_hash,
            parent_beacon_block_root: header.parent_beacon_block_root,
            ommers: &body.ommers,
            withdrawals: body.withdrawals.as_ref().map(|w| Cow::Borrowed(w.as_slice())),
            extra_data: header.extra_data.clone(),
            tx_count_hint: Some(body.transactions.len()),
            slot_number: None,
        };
        let executor = EthBlockExecutor::new(evm, ctx, &forks, AlloyReceiptBuilder::default());
        let (out, mut evm, result) = txs.run(executor)?;
        let state = evm.db_mut();
        if forks.is_prague_active_at_timestamp(header.timestamp) {
            request_contracts_have_code(state, header.number)?;
        }
        let changes = if state.bundle_state.is_empty() {
            let transitions = state.transition_state.as_mut().map(TransitionState::take);
            let transitions = transitions.unwrap_or_default();
            let changed: Vec<Address> = transitions.transitions.keys().copied().collect();
            let changes = block_changes(transitions);
            settle(&mut state.cache, changed);
            changes
        } else {
            // Before Byzantium the transactions' transitions went into the bundle as they
            // ran (for their receipts' roots): every account the block touched is settled.
            state.merge_transitions(BundleRetention::PlainState);
            let changes = state.take_bundle().to_plain_state(OriginalValuesKnown::Yes);
            state.cache.accounts.values_mut().for_each(settle_account);
            changes
        };
        self.hand_back(evm);
        Ok((out, result, changes))
    }

    /// Keeps `evm` (taken by [`ChainEvm::take_evm`]) for the next block.
    pub(crate) fn hand_back(&mut self, evm: BlockEvm<'d, DB>) {
        self.carried = Some(Carried::Evm(Box::new(evm)));
    }

    /// Executes `block` (the child of the last block executed, or of `DB`'s state) with
    /// `senders` recovered from its transactions, fees to `beneficiary`.
    pub(crate) fn execute(
        &mut self,
        spec: &ChainSpec,
        block: &Block<TxEnvelope>,
        senders: &[Address],
        beneficiary: Address,
    ) -> Result<Executed, ExecutionError> {
        let header = &block.header;
        let number = header.number;
        let txs = &block.body.transactions;
        if txs.len() != senders.len() {
            return Err(ExecutionError::Senders { number, txs: txs.len(), senders: senders.len() });
        }
        let byzantium = EvmForks::at(spec, header).is_byzantium_active_at_block(number);
        let run = Listed { number, txs, senders, byzantium };
        let ((), result, changes) = self.run(spec, header, &block.body, beneficiary, run)?;
        Ok(Executed::new(result, changes))
    }
}

/// The contracts a Prague block calls for its EIP-7685 requests, by name.
const REQUEST_CONTRACTS: [(&str, Address); 2] = [
    ("EIP-7002 withdrawal request", alloy_eips::eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS),
    (
        "EIP-7251 consolidation request",
        alloy_eips::eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
    ),
];

/// Refuses a Prague block whose request contracts have no code once its transactions ran
/// (the execution specs' checked system call: calling an address without code would
/// return no requests instead of failing, so a chain missing a contract must not go on).
/// Read after the block's system calls, which cannot add or remove code, so a block that
/// deploys a contract itself counts as having it.
fn request_contracts_have_code<DB>(
    state: &mut CachedState<'_, DB>,
    number: u64,
) -> Result<(), ExecutionError>
where
    DB: DatabaseRef + Debug,
    DB::Error: Send + Sync + 'static,
{
    for (name, address) in REQUEST_CONTRACTS {
        let info = revm::Database::basic(state, address)
            .map_err(|e| ExecutionError::State(e.to_string()))?;
        if info.is_none_or(|info| info.code_hash == KECCAK_EMPTY) {
            let reason = format!("the {name} contract at {address} has no code");
            return Err(ExecutionError::Evm { number, reason });
        }
    }
    Ok(())
}

impl<DB> Debug for ChainEvm<'_, DB>
where
    DB: DatabaseRef + Debug,
    DB::Error: Send + Sync + 'static,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainEvm").finish_non_exhaustive()
    }
}

/// Executes `block` on the state `db` (the state after its parent), with `senders`
/// recovered from its transactions and `beneficiary` receiving the fees (the header's
/// beneficiary; on Clique, the block's signer).
pub fn execute_block<DB>(
    spec: &ChainSpec,
    db: &DB,
    block: &Block<TxEnvelope>,
    senders: &[Address],
    beneficiary: Address,
) -> Result<Executed, ExecutionError>
where
    DB: DatabaseRef + StateRootWith + Debug,
    DB::Error: Send + Sync + 'static,
{
    ChainEvm::new(db, None).execute(spec, block, senders, beneficiary)
}

impl Executed {
    fn new(result: BlockResult, changes: StateChangeset) -> Self {
        Self {
            receipts: result.receipts,
            gas_used: result.gas_used,
            requests: result.requests,
            changes,
            state_root_time: std::time::Duration::ZERO,
        }
    }
}

fn evm_error(number: u64) -> impl Fn(alloy_evm::block::BlockExecutionError) -> ExecutionError {
    move |e| ExecutionError::Evm { number, reason: e.to_string() }
}

/// A block's own transactions, each of which must execute.
struct Listed<'a> {
    number: u64,
    txs: &'a [TxEnvelope],
    senders: &'a [Address],
    byzantium: bool,
}

impl<DB> RunTransactions<DB> for Listed<'_>
where
    DB: DatabaseRef + StateRootWith + Debug,
    DB::Error: Send + Sync + 'static,
{
    type Output = ();

    fn run<'d>(
        self,
        mut executor: Exec<'_, 'd, DB>,
    ) -> Result<((), BlockEvm<'d, DB>, BlockResult), ExecutionError> {
        let recovered = self.txs.iter().zip(self.senders).map(|(tx, sender)| {
            alloy_consensus::transaction::Recovered::new_unchecked(tx, *sender)
        });
        let evm_error = evm_error(self.number);
        executor.apply_pre_execution_changes().map_err(&evm_error)?;
        for tx in recovered {
            executor.execute_transaction(tx).map_err(&evm_error)?;
            if self.byzantium {
                continue;
            }
            // Before Byzantium (EIP-658) a receipt holds the state root after its
            // transaction.
            let db = executor.evm_mut().db_mut();
            db.merge_transitions(BundleRetention::PlainState);
            let so_far = db.bundle_state.to_plain_state(OriginalValuesKnown::Yes);
            let root = db_root(db, &so_far)?;
            if let Some(r) =
                executor.receipts.last_mut().and_then(|r| r.as_receipt_with_bloom_mut())
            {
                r.receipt.status = alloy_consensus::Eip658Value::PostState(root);
            }
        }
        let (evm, result) = executor.finish().map_err(evm_error)?;
        Ok(((), evm, result))
    }
}

/// Where a block being built takes its transactions from (the pool's best first).
pub trait BlockCandidates {
    /// The next transaction to try, with its sender; none when there are no more.
    fn next_candidate(&mut self) -> Option<(std::sync::Arc<TxEnvelope>, Address)>;
    /// The candidate last returned was not included: skip its sender's later ones (they
    /// cannot run without it).
    fn skip_sender(&mut self);
}

/// A fixed list of candidates, tried in order (a sender's later transactions are skipped
/// once one of its fails).
#[derive(Debug, Default)]
pub struct ListedCandidates {
    txs: std::collections::VecDeque<(std::sync::Arc<TxEnvelope>, Address)>,
    skip: std::collections::HashSet<Address>,
    last: Option<Address>,
}

impl ListedCandidates {
    /// The candidates `txs` with their senders.
    pub fn new(txs: impl IntoIterator<Item = (TxEnvelope, Address)>) -> Self {
        let txs = txs.into_iter().map(|(tx, a)| (std::sync::Arc::new(tx), a)).collect();
        Self { txs, skip: Default::default(), last: None }
    }
}

impl BlockCandidates for ListedCandidates {
    fn next_candidate(&mut self) -> Option<(std::sync::Arc<TxEnvelope>, Address)> {
        loop {
            let (tx, sender) = self.txs.pop_front()?;
            if !self.skip.contains(&sender) {
                self.last = Some(sender);
                return Some((tx, sender));
            }
        }
    }

    fn skip_sender(&mut self) {
        self.skip.extend(self.last);
    }
}

/// How a block was filled from [`BlockCandidates`].
#[derive(Debug)]
pub struct Built {
    /// The included transactions' senders, in block order.
    pub senders: Vec<Address>,
    /// Candidates the EVM refused (nonce, funds, fee below the base fee...), with why:
    /// they should leave the pool.
    pub failed: Vec<(B256, String)>,
    /// Whether filling stopped at the deadline.
    pub timed_out: bool,
    /// The execution.
    pub executed: Executed,
}

/// Fills candidates into the block with `header` (its gas limit, base fee, timestamp...
/// and an empty body) on the state `db` until the block is full, the candidates run out
/// or `deadline` passes. Returns the included transactions, in block order, and how.
pub fn execute_candidates<DB>(
    spec: &ChainSpec,
    db: &DB,
    header: &Header,
    candidates: &mut dyn BlockCandidates,
    beneficiary: Address,
    deadline: std::time::Instant,
) -> Result<(Vec<TxEnvelope>, Built), ExecutionError>
where
    DB: DatabaseRef + StateRootWith + Debug,
    DB::Error: Send + Sync + 'static,
{
    let number = header.number;
    if !EvmForks::at(spec, header).is_byzantium_active_at_block(number) {
        let reason = "building blocks before Byzantium is not supported".to_string();
        return Err(ExecutionError::Evm { number, reason });
    }
    let body = alloy_consensus::BlockBody::default();
    let run = Candidates { number, gas_limit: header.gas_limit, candidates, deadline };
    let (filled, result, changes) =
        ChainEvm::new(db, None).run(spec, header, &body, beneficiary, run)?;
    let (transactions, senders, failed, timed_out) = filled;
    let executed = Executed::new(result, changes);
    Ok((transactions, Built { senders, failed, timed_out, executed }))
}

/// Smallest gas a transaction can use: with less left, a block is full.
const MIN_TX_GAS: u64 = 21_000;

struct Candidates<'c> {
    number: u64,
    gas_limit: u64,
    candidates: &'c mut dyn BlockCandidates,
    deadline: std::time::Instant,
}

type Filled = (Vec<TxEnvelope>, Vec<Address>, Vec<(B256, String)>, bool);

impl<DB> RunTransactions<DB> for Candidates<'_>
where
    DB: DatabaseRef + StateRootWith + Debug,
    DB::Error: Send + Sync + 'static,
{
    type Output = Filled;

    fn run<'d>(
        self,
        mut executor: Exec<'_, 'd, DB>,
    ) -> Result<(Filled, BlockEvm<'d, DB>, BlockResult), ExecutionError> {
        let evm_error = evm_error(self.number);
        executor.apply_pre_execution_changes().map_err(&evm_error)?;
        let (mut txs, mut senders, mut failed) = (Vec::new(), Vec::new(), Vec::new());
        let mut timed_out = false;
        loop {
            let used = executor.receipts.last().map_or(0, |r| r.cumulative_gas_used());
            let left = self.gas_limit.saturating_sub(used);
            if left < MIN_TX_GAS {
                break;
            }
            if std::time::Instant::now() >= self.deadline {
                timed_out = true;
                break;
            }
            let Some((tx, sender)) = self.candidates.next_candidate() else { break };
            if alloy_consensus::Transaction::gas_limit(&*tx) > left {
                self.candidates.skip_sender();
                continue;
            }
            let recovered = alloy_consensus::transaction::Recovered::new_unchecked(&*tx, sender);
            match executor.execute_transaction(recovered) {
                Ok(_) => {
                    txs.push(TxEnvelope::clone(&tx));
                    senders.push(sender);
                }
                // The transaction cannot be in a block on this state; the block goes on.
                Err(e) if e.as_validation().is_some() => {
                    failed.push((*tx.tx_hash(), e.to_string()));
                    self.candidates.skip_sender();
                }
                Err(e) => return Err(evm_error(e)),
            }
        }
        let (evm, result) = executor.finish().map_err(evm_error)?;
        Ok(((txs, senders, failed, timed_out), evm, result))
    }
}

/// The root of the state under `state` (the block's base) with `changes` applied.
fn db_root<DB: DatabaseRef + StateRootWith>(
    state: &State<revm::database::WrapDatabaseRef<&DB>>,
    changes: &StateChangeset,
) -> Result<B256, ExecutionError> {
    state.database.0.state_root_with(changes)
}
