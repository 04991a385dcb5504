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
use revm::database::{
    states::{bundle_state::BundleRetention, AccountStatus, CacheState, StateChangeset},
    DatabaseRef, OriginalValuesKnown, State,
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

/// alloy-evm's Ethereum block executor on revm's cached state over `DB`.
type Exec<'a, 'd, DB> = EthBlockExecutor<
    'a,
    alloy_evm::eth::EthEvm<
        &'a mut State<revm::database::WrapDatabaseRef<&'d DB>>,
        revm::inspector::NoOpInspector,
        alloy_evm::precompiles::PrecompilesMap,
    >,
    &'a EvmForks<'a>,
    AlloyReceiptBuilder,
>;

type BlockResult = alloy_evm::block::BlockExecutionResult<ReceiptEnvelope>;

/// What runs a block's transactions on a prepared executor and finishes the block.
trait RunTransactions<DB>
where
    DB: DatabaseRef + StateRootWith + Debug,
    DB::Error: Send + Sync + 'static,
{
    /// What it reports besides the block result.
    type Output;
    fn run(self, executor: Exec<'_, '_, DB>)
        -> Result<(Self::Output, BlockResult), ExecutionError>;
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

    /// After a block that changed `changed`: those accounts marked as freshly loaded with
    /// their current value (what loading them from the updated state would give; the
    /// others still are), so the next block's changes are computed against the state
    /// after this one. Costs the block's changes, not the cache's size.
    fn settle(&mut self, changed: impl IntoIterator<Item = Address>) {
        for address in changed {
            let Some(account) = self.0.accounts.get_mut(&address) else { continue };
            account.status = match &account.account {
                None => AccountStatus::LoadedNotExisting,
                Some(a) if a.info.is_empty() => AccountStatus::LoadedEmptyEIP161,
                Some(_) => AccountStatus::Loaded,
            };
        }
    }
}

/// Sets up the block executor for the block with `header` and `body` on the state `db`
/// (through `cache`, when given, which is left holding the state after the block), fees
/// to `beneficiary`, lets `txs` run it, and returns what `txs` reported, the block result
/// and the state changes.
fn with_executor<DB, R>(
    spec: &ChainSpec,
    db: &DB,
    header: &Header,
    body: &alloy_consensus::BlockBody<TxEnvelope>,
    beneficiary: Address,
    txs: R,
    mut cache: Option<&mut ExecutionCache>,
) -> Result<(R::Output, BlockResult, StateChangeset), ExecutionError>
where
    DB: DatabaseRef + StateRootWith + Debug,
    DB::Error: Send + Sync + 'static,
    R: RunTransactions<DB>,
{
    let forks = EvmForks::at(spec, header);
    let env = forks.evm_env(header, beneficiary);
    let builder = State::builder().with_database_ref(db).with_bundle_update();
    let mut state = match cache.as_deref_mut() {
        Some(cache) => builder.with_cached_prestate(std::mem::take(&mut cache.0)).build(),
        None => builder.build(),
    };
    let (out, result) = {
        let evm = EthEvmFactory::default().create_evm(&mut state, env);
        let ctx = EthBlockExecutionCtx {
            parent_hash: header.parent_hash,
            parent_beacon_block_root: header.parent_beacon_block_root,
            ommers: &body.ommers,
            withdrawals: body.withdrawals.as_ref().map(|w| Cow::Borrowed(w.as_slice())),
            extra_data: header.extra_data.clone(),
            tx_count_hint: Some(body.transactions.len()),
            slot_number: None,
        };
        txs.run(EthBlockExecutor::new(evm, ctx, &forks, AlloyReceiptBuilder::default()))?
    };
    state.merge_transitions(BundleRetention::PlainState);
    let bundle = state.take_bundle();
    let changes = bundle.to_plain_state(OriginalValuesKnown::Yes);
    if let Some(cache) = cache {
        cache.0 = std::mem::take(&mut state.cache);
        cache.settle(bundle.state.keys().copied());
    }
    Ok((out, result, changes))
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
    execute_block_cached(spec, db, block, senders, beneficiary, None)
}

/// [`execute_block`] reading through `cache` (see [`ExecutionCache`]) when given.
pub(crate) fn execute_block_cached<DB>(
    spec: &ChainSpec,
    db: &DB,
    block: &Block<TxEnvelope>,
    senders: &[Address],
    beneficiary: Address,
    cache: Option<&mut ExecutionCache>,
) -> Result<Executed, ExecutionError>
where
    DB: DatabaseRef + StateRootWith + Debug,
    DB::Error: Send + Sync + 'static,
{
    let header = &block.header;
    let number = header.number;
    let txs = &block.body.transactions;
    if txs.len() != senders.len() {
        return Err(ExecutionError::Senders { number, txs: txs.len(), senders: senders.len() });
    }
    let byzantium = EvmForks::at(spec, header).is_byzantium_active_at_block(number);
    let run = Listed { number, txs, senders, byzantium };
    let ((), result, changes) =
        with_executor(spec, db, header, &block.body, beneficiary, run, cache)?;
    Ok(Executed::new(result, changes))
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

    fn run(self, mut executor: Exec<'_, '_, DB>) -> Result<((), BlockResult), ExecutionError> {
        let recovered = self.txs.iter().zip(self.senders).map(|(tx, sender)| {
            alloy_consensus::transaction::Recovered::new_unchecked(tx, *sender)
        });
        let evm_error = evm_error(self.number);
        if self.byzantium {
            return Ok(((), executor.execute_block(recovered).map_err(evm_error)?));
        }
        // Before Byzantium (EIP-658) a receipt holds the state root after its transaction.
        executor.apply_pre_execution_changes().map_err(&evm_error)?;
        for tx in recovered {
            executor.execute_transaction(tx).map_err(&evm_error)?;
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
        Ok(((), executor.apply_post_execution_changes().map_err(evm_error)?))
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
    let (filled, result, changes) = with_executor(spec, db, header, &body, beneficiary, run, None)?;
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

    fn run(self, mut executor: Exec<'_, '_, DB>) -> Result<(Filled, BlockResult), ExecutionError> {
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
        let result = executor.apply_post_execution_changes().map_err(evm_error)?;
        Ok(((txs, senders, failed, timed_out), result))
    }
}

/// The root of the state under `state` (the block's base) with `changes` applied.
fn db_root<DB: DatabaseRef + StateRootWith>(
    state: &State<revm::database::WrapDatabaseRef<&DB>>,
    changes: &StateChangeset,
) -> Result<B256, ExecutionError> {
    state.database.0.state_root_with(changes)
}
