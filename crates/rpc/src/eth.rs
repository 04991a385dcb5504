//! The `eth_` namespace (and `debug_getRaw*`): blocks, transactions, receipts, state,
//! calls, logs and filters.

use crate::{
    args::Args,
    context::{or_latest, RpcContext},
    convert::{self, TxAt},
    error::{RpcError, RpcResult},
    fees, filters,
    params::{storage_key, StrictHash},
};
use alloy_consensus::{Transaction as _, TxEnvelope};
use alloy_eips::{BlockId, BlockNumberOrTag, Decodable2718, Encodable2718};
use alloy_primitives::{Address, Bytes, B256, U256, U64};
use alloy_rpc_types_eth::{
    state::StateOverride, AccessListResult, Block, EIP1186AccountProofResponse,
    EIP1186StorageProof, Filter, Log, Transaction, TransactionReceipt, TransactionRequest,
};
use jsonrpsee::{core::RegisterMethodError, types::Params, RpcModule};
use serde_json::Value;
use std::time::Instant;
use tern_execution::CallContext;
use tern_storage::{SealedBlock, StateRead};
use tern_sync::SyncStatus;

type Module = RpcModule<RpcContext>;

/// Registers a cheap method (run on the connection's task).
pub(crate) fn light<R>(
    m: &mut Module,
    name: &'static str,
    f: fn(&mut Args<'_>, &RpcContext) -> RpcResult<R>,
) -> Result<(), RegisterMethodError>
where
    R: serde::Serialize + Clone + Send + 'static,
{
    m.register_method(name, move |p, c, _| f(&mut Args::new(&p), c))?;
    Ok(())
}

/// Registers a method that may read much of the store or run the EVM (on the blocking
/// thread pool, so connections are not held up).
pub(crate) fn heavy<R>(
    m: &mut Module,
    name: &'static str,
    f: fn(&mut Args<'_>, &RpcContext) -> RpcResult<R>,
) -> Result<(), RegisterMethodError>
where
    R: serde::Serialize + Clone + Send + 'static,
{
    m.register_blocking_method(name, move |p: Params<'_>, c, _| f(&mut Args::new(&p), &c))?;
    Ok(())
}

/// A stored block by id, if it exists.
fn sealed(ctx: &RpcContext, id: BlockId) -> RpcResult<Option<SealedBlock>> {
    let Some(found) = ctx.find_block(id)? else { return Ok(None) };
    Ok(ctx.store.block(found.hash)?)
}

/// An index parameter (`0x`-quantity).
fn index(a: &mut Args<'_>) -> RpcResult<usize> {
    let i: U64 = a.req()?;
    Ok(i.saturating_to())
}

fn tx_in_block(b: &SealedBlock, i: usize) -> RpcResult<Option<Transaction>> {
    let Some(tx) = b.block.body.transactions.get(i) else { return Ok(None) };
    let at = TxAt::new(&b.block.header, b.hash, i);
    Ok(Some(convert::transaction(tx.clone(), convert::sender(tx)?, Some(at))))
}

/// A block's receipts in RPC form, if the block and its receipts are stored.
fn block_receipts(ctx: &RpcContext, b: &SealedBlock) -> RpcResult<Option<Vec<TransactionReceipt>>> {
    let number = b.block.header.number;
    if ctx.store.canonical_hash(number)? != Some(b.hash) || number > ctx.store.state_number()? {
        return Ok(None);
    }
    Ok(Some(convert::receipts(&ctx.spec, b, ctx.store.receipts(number)?)?))
}

/// A transaction request and the state of the block it runs on.
fn call_args(a: &mut Args<'_>) -> RpcResult<(TransactionRequest, BlockId, Option<StateOverride>)> {
    let request: TransactionRequest = a.req()?;
    let block = or_latest(a.opt()?);
    let overrides: Option<StateOverride> = a.opt()?;
    Ok((request, block, overrides))
}

fn run_call<T>(
    ctx: &RpcContext,
    block: BlockId,
    f: impl FnOnce(&CallContext<'_, tern_storage::HistoricalState>) -> RpcResult<T>,
) -> RpcResult<T> {
    let (found, state) = ctx.state_at(block)?;
    let call = CallContext {
        spec: &ctx.spec,
        state: &state,
        header: &found.header,
        gas_cap: ctx.config.gas_cap,
    };
    f(&call)
}

/// Decodes a raw transaction as `eth_sendRawTransaction` takes it: EIP-2718 bytes (a
/// blob transaction in its network form, with the sidecar of either version).
fn decode_raw_transaction(raw: &[u8]) -> RpcResult<tern_txpool::Incoming> {
    let mut buf = raw;
    let tx = TxEnvelope::decode_2718(&mut buf)
        .map_err(|e| RpcError::InvalidParams(format!("invalid raw transaction: {e}")))?;
    if !buf.is_empty() {
        return Err(RpcError::InvalidParams("invalid raw transaction: trailing bytes".into()));
    }
    Ok(tx.into())
}

/// Registers every `eth_` and `debug_getRaw*` method.
pub(crate) fn register(m: &mut Module) -> Result<(), RegisterMethodError> {
    light(m, "eth_chainId", |_, c| Ok(U64::from(c.spec.chain_id)))?;
    light(m, "eth_blockNumber", |_, c| Ok(U64::from(c.best()?)))?;
    light(m, "eth_accounts", |_, _| Ok(Vec::<Address>::new()))?;
    light(m, "eth_syncing", |_, c| {
        let p = c.sync.progress();
        Ok(match p.status {
            SyncStatus::InSync => Value::Bool(false),
            _ => serde_json::json!({
                "startingBlock": U64::from(p.start),
                "currentBlock": U64::from(p.head),
                "highestBlock": U64::from(p.target),
            }),
        })
    })?;

    // Blocks.
    heavy(m, "eth_getBlockByNumber", |a, c| {
        let tag: BlockNumberOrTag = a.req()?;
        let full: bool = a.opt()?.unwrap_or(false);
        sealed(c, BlockId::Number(tag))?.map(|b| convert::block(&b, full)).transpose()
    })?;
    heavy(m, "eth_getBlockByHash", |a, c| -> RpcResult<Option<Block>> {
        let hash: StrictHash = a.req()?;
        let full: bool = a.opt()?.unwrap_or(false);
        c.store.block(hash.0)?.map(|b| convert::block(&b, full)).transpose()
    })?;
    light(m, "eth_getBlockTransactionCountByNumber", |a, c| {
        let tag: BlockNumberOrTag = a.req()?;
        Ok(sealed(c, BlockId::Number(tag))?.map(|b| U64::from(b.block.body.transactions.len())))
    })?;
    light(m, "eth_getBlockTransactionCountByHash", |a, c| {
        let hash: StrictHash = a.req()?;
        Ok(c.store.body(hash.0)?.map(|b| U64::from(b.transactions.len())))
    })?;
    light(m, "eth_getUncleCountByBlockNumber", |a, c| {
        let tag: BlockNumberOrTag = a.req()?;
        Ok(sealed(c, BlockId::Number(tag))?.map(|b| U64::from(b.block.body.ommers.len())))
    })?;
    light(m, "eth_getUncleCountByBlockHash", |a, c| {
        let hash: StrictHash = a.req()?;
        Ok(c.store.body(hash.0)?.map(|b| U64::from(b.ommers.len())))
    })?;
    heavy(m, "eth_getBlockReceipts", |a, c| {
        let id: BlockId = a.req()?;
        match sealed(c, id)? {
            Some(b) => block_receipts(c, &b),
            None => Ok(None),
        }
    })?;

    // Transactions.
    light(m, "eth_getTransactionByHash", |a, c| {
        let hash: StrictHash = a.req()?;
        if let Some((tx, loc)) = c.store.transaction(hash.0)? {
            let Some(b) = c.store.block_by_number(loc.block_number)? else { return Ok(None) };
            return tx_in_block(&b, loc.index as usize).map(|t| t.or_else(|| Some(pending(&tx))));
        }
        Ok(c.pool
            .transaction(&hash.0)
            .map(|t| convert::transaction((*t.tx).clone(), t.sender, None)))
    })?;
    light(m, "eth_getTransactionByBlockHashAndIndex", |a, c| {
        let hash: StrictHash = a.req()?;
        let i = index(a)?;
        match c.store.block(hash.0)? {
            Some(b) => tx_in_block(&b, i),
            None => Ok(None),
        }
    })?;
    light(m, "eth_getTransactionByBlockNumberAndIndex", |a, c| {
        let tag: BlockNumberOrTag = a.req()?;
        let i = index(a)?;
        match sealed(c, BlockId::Number(tag))? {
            Some(b) => tx_in_block(&b, i),
            None => Ok(None),
        }
    })?;
    light(m, "eth_getTransactionReceipt", |a, c| {
        let hash: StrictHash = a.req()?;
        let Some((_, loc)) = c.store.transaction(hash.0)? else { return Ok(None) };
        let Some(b) = c.store.block_by_number(loc.block_number)? else { return Ok(None) };
        Ok(block_receipts(c, &b)?.and_then(|r| r.into_iter().nth(loc.index as usize)))
    })?;
    light(m, "eth_sendRawTransaction", |a, c| {
        let raw: Bytes = a.req()?;
        let tx = decode_raw_transaction(&raw)?;
        c.pool.add_transaction(tx).map_err(|e| RpcError::Server(e.to_string()))
    })?;

    // State.
    light(m, "eth_getBalance", |a, c| {
        let address: Address = a.req()?;
        let (_, state) = c.state_at(or_latest(a.opt()?))?;
        Ok(state.account(address)?.map(|a| a.balance).unwrap_or_default())
    })?;
    light(m, "eth_getTransactionCount", |a, c| {
        let address: Address = a.req()?;
        let id = or_latest(a.opt()?);
        let (_, state) = c.state_at(id)?;
        let nonce = state.account(address)?.map_or(0, |a| a.nonce);
        let pending = matches!(id, BlockId::Number(BlockNumberOrTag::Pending));
        let in_pool = if pending { c.pool.pending_nonce(address) } else { None };
        Ok(U64::from(nonce.max(in_pool.unwrap_or(0))))
    })?;
    light(m, "eth_getCode", |a, c| {
        let address: Address = a.req()?;
        let (_, state) = c.state_at(or_latest(a.opt()?))?;
        let Some(account) = state.account(address)? else { return Ok(Bytes::new()) };
        Ok(state.code(account.code_hash)?.unwrap_or_default())
    })?;
    light(m, "eth_getStorageAt", |a, c| {
        let address: Address = a.req()?;
        let slot: String = a.req()?;
        let slot = storage_key(&slot)?;
        let (_, state) = c.state_at(or_latest(a.opt()?))?;
        Ok(B256::from(state.storage(address, slot)?))
    })?;
    heavy(m, "eth_getProof", |a, c| {
        let address: Address = a.req()?;
        let keys: Vec<String> = a.req()?;
        let (_, state) = c.state_at(or_latest(a.opt()?))?;
        let mut slots = Vec::with_capacity(keys.len());
        for k in &keys {
            slots.push(B256::from(storage_key(k)?));
        }
        let proof = state.proof(address, &slots)?;
        let account = proof.account.unwrap_or_default();
        let storage_proof = keys
            .iter()
            .zip(proof.storage)
            .map(|(given, (slot, value, proof))| {
                // Echo the key as given: a full 32-byte hash, or a number.
                let key = if given.len() == 66 {
                    alloy_serde::storage::JsonStorageKey::Hash(slot)
                } else {
                    alloy_serde::storage::JsonStorageKey::Number(U256::from_be_bytes(slot.0))
                };
                EIP1186StorageProof { key, value, proof }
            })
            .collect();
        Ok(EIP1186AccountProofResponse {
            address,
            balance: account.balance,
            code_hash: account.code_hash,
            nonce: account.nonce,
            storage_hash: proof.storage_root,
            account_proof: proof.account_proof,
            storage_proof,
        })
    })?;

    // Calls.
    heavy(m, "eth_call", |a, c| {
        let (request, block, overrides) = call_args(a)?;
        run_call(c, block, |call| Ok(call.call(request, overrides)?.output))
    })?;
    heavy(m, "eth_estimateGas", |a, c| {
        let (request, block, overrides) = call_args(a)?;
        run_call(c, block, |call| Ok(U64::from(call.estimate_gas(request, overrides)?)))
    })?;
    heavy(m, "eth_createAccessList", |a, c| {
        let (request, block, _) = call_args(a)?;
        run_call(c, block, |call| {
            let out = call.create_access_list(request)?;
            Ok(AccessListResult {
                access_list: out.access_list,
                gas_used: U256::from(out.gas_used),
                error: out.error,
            })
        })
    })?;

    // Fees.
    light(m, "eth_gasPrice", |_, c| fees::gas_price(c))?;
    light(m, "eth_maxPriorityFeePerGas", |_, c| fees::suggested_tip(c).map(U256::from))?;
    light(m, "eth_baseFee", |_, c| fees::next_base_fee(c))?;
    light(m, "eth_blobBaseFee", |_, c| fees::blob_base_fee(c))?;
    heavy(m, "eth_feeHistory", |a, c| {
        let count: Value = a.req()?;
        let newest: BlockNumberOrTag = a.req()?;
        let percentiles: Option<Vec<f64>> = a.opt()?;
        fees::fee_history(c, count, newest, percentiles)
    })?;

    // Logs and filters.
    heavy(m, "eth_getLogs", |a, c| -> RpcResult<Vec<Log>> {
        let filter: Filter = a.req()?;
        filters::get_logs(c, &filter)
    })?;
    light(m, "eth_newFilter", |a, c| {
        let filter: Filter = a.req()?;
        c.filters.new_log_filter(filter, c.best()?, Instant::now())
    })?;
    light(m, "eth_newBlockFilter", |_, c| c.filters.new_block_filter(c.best()?, Instant::now()))?;
    light(m, "eth_newPendingTransactionFilter", |_, c| {
        c.filters.new_pending_filter(c.pool.subscribe_pending(), Instant::now())
    })?;
    heavy(m, "eth_getFilterChanges", |a, c| {
        let id: String = a.req()?;
        c.filters.changes(c, &id, Instant::now())
    })?;
    heavy(m, "eth_getFilterLogs", |a, c| {
        let id: String = a.req()?;
        let filter = c.filters.log_filter(&id, Instant::now())?;
        filters::get_logs(c, &filter)
    })?;
    light(m, "eth_uninstallFilter", |a, c| {
        let id: String = a.req()?;
        Ok(c.filters.uninstall(&id))
    })?;

    // Raw encodings.
    light(m, "debug_getRawHeader", |a, c| {
        let id: BlockId = a.req()?;
        Ok(c.find_block(id)?.map(|b| Bytes::from(alloy_rlp::encode(&b.header))))
    })?;
    light(m, "debug_getRawBlock", |a, c| {
        let id: BlockId = a.req()?;
        Ok(sealed(c, id)?.map(|b| Bytes::from(alloy_rlp::encode(&b.block))))
    })?;
    light(m, "debug_getRawReceipts", |a, c| {
        let id: BlockId = a.req()?;
        let Some(b) = c.find_block(id)? else { return Ok(None) };
        let receipts = c.store.receipts(b.number)?;
        Ok(Some(receipts.iter().map(|r| Bytes::from(r.encoded_2718())).collect::<Vec<_>>()))
    })?;
    light(m, "debug_getRawTransaction", |a, c| {
        let hash: StrictHash = a.req()?;
        if let Some((tx, _)) = c.store.transaction(hash.0)? {
            return Ok(Some(Bytes::from(tx.encoded_2718())));
        }
        Ok(c.pool.transaction(&hash.0).map(|t| Bytes::from(t.tx.encoded_2718())))
    })?;
    Ok(())
}

/// A stored transaction whose block is gone (should not happen: the lookup and the
/// block are written together); shown as pending rather than dropped.
fn pending(tx: &TxEnvelope) -> Transaction {
    let sender = convert::sender(tx).unwrap_or_default();
    convert::transaction(tx.clone(), sender, None)
}

/// Whether `tx` pays at least `tip` per gas over `base_fee`.
pub(crate) fn effective_tip(tx: &TxEnvelope, base_fee: Option<u64>) -> u128 {
    tx.effective_tip_per_gas(base_fee.unwrap_or_default()).unwrap_or_default()
}
