//! Fee suggestions and history: `eth_gasPrice`, `eth_maxPriorityFeePerGas`,
//! `eth_feeHistory`, `eth_blobBaseFee`, `eth_baseFee`.

use crate::{
    context::RpcContext,
    convert,
    convert::gas_used_per_tx,
    error::{RpcError, RpcResult},
    eth::effective_tip,
};
use alloy_consensus::Header;
use alloy_eips::{eip1559::BaseFeeParams, BlockNumberOrTag};
use alloy_primitives::U256;
use alloy_rpc_types_eth::FeeHistory;
use serde_json::Value;
use tern_execution::EvmForks;

/// Blocks the tip suggestion looks back over (geth's default).
const TIP_BLOCKS: u64 = 20;
/// Cheapest tips sampled per block (geth's default).
const TIP_SAMPLES_PER_BLOCK: usize = 3;
/// The percentile of the samples suggested (geth's default).
const TIP_PERCENTILE: usize = 60;
/// Tips below this are ignored (geth's default: 2 wei).
const TIP_IGNORE_BELOW: u128 = 2;
/// Suggested when the recent blocks carry no transactions: 1 gwei.
const DEFAULT_TIP: u128 = 1_000_000_000;

fn latest(ctx: &RpcContext) -> RpcResult<Header> {
    let best = ctx.best()?;
    ctx.store
        .header_by_number(best)?
        .ok_or_else(|| RpcError::Internal(format!("best block {best} has no header")))
}

/// A tip per gas that recent blocks accepted: the 60th percentile of the three cheapest
/// effective tips of each of the last 20 blocks.
pub(crate) fn suggested_tip(ctx: &RpcContext) -> RpcResult<u128> {
    let best = ctx.best()?;
    let mut samples = Vec::new();
    for n in best.saturating_sub(TIP_BLOCKS - 1)..=best {
        let Some(b) = ctx.store.block_by_number(n)? else { continue };
        let base_fee = b.block.header.base_fee_per_gas;
        let mut tips: Vec<u128> = b
            .block
            .body
            .transactions
            .iter()
            .map(|tx| effective_tip(tx, base_fee))
            .filter(|t| *t >= TIP_IGNORE_BELOW)
            .collect();
        tips.sort_unstable();
        samples.extend(tips.into_iter().take(TIP_SAMPLES_PER_BLOCK));
    }
    if samples.is_empty() {
        return Ok(DEFAULT_TIP);
    }
    samples.sort_unstable();
    Ok(samples[(samples.len() - 1) * TIP_PERCENTILE / 100])
}

/// `eth_gasPrice`: the suggested tip plus the latest base fee (the tip alone before
/// London).
pub(crate) fn gas_price(ctx: &RpcContext) -> RpcResult<U256> {
    let base = latest(ctx)?.base_fee_per_gas.unwrap_or_default();
    Ok(U256::from(suggested_tip(ctx)? + u128::from(base)))
}

/// The base fee of the block after the latest (EIP-1559), if London is active.
pub(crate) fn next_base_fee(ctx: &RpcContext) -> RpcResult<Option<U256>> {
    Ok(latest(ctx)?.next_block_base_fee(BaseFeeParams::ethereum()).map(U256::from))
}

/// `eth_blobBaseFee`: the blob gas price of the latest block (EIP-4844).
pub(crate) fn blob_base_fee(ctx: &RpcContext) -> RpcResult<U256> {
    convert::blob_gas_price(&ctx.spec, &latest(ctx)?)
        .map(U256::from)
        .ok_or_else(|| RpcError::Server("blob base fee is not available before Cancun".into()))
}

fn block_count(v: &Value) -> RpcResult<u64> {
    let bad = || RpcError::InvalidParams(format!("invalid block count {v}"));
    match v {
        Value::Number(n) => n.as_u64().ok_or_else(bad),
        Value::String(s) => {
            let digits = s.strip_prefix("0x").ok_or_else(bad)?;
            u64::from_str_radix(digits, 16).map_err(|_| bad())
        }
        _ => Err(bad()),
    }
}

/// The tips at `percentiles` of block `number`'s transactions, weighted by gas used.
fn rewards(ctx: &RpcContext, number: u64, percentiles: &[f64]) -> RpcResult<Vec<u128>> {
    let Some(b) = ctx.store.block_by_number(number)? else { return Ok(vec![]) };
    let receipts = ctx.store.receipts(number)?;
    let base_fee = b.block.header.base_fee_per_gas;
    let mut txs: Vec<(u128, u64)> = b
        .block
        .body
        .transactions
        .iter()
        .zip(gas_used_per_tx(&receipts))
        .map(|(tx, used)| (effective_tip(tx, base_fee), used))
        .collect();
    if txs.is_empty() {
        return Ok(vec![0; percentiles.len()]);
    }
    txs.sort_unstable_by_key(|(tip, _)| *tip);
    let total = b.block.header.gas_used as f64;
    let mut out = Vec::with_capacity(percentiles.len());
    let (mut i, mut cumulative) = (0, txs[0].1 as f64);
    for p in percentiles {
        let threshold = total * p / 100.0;
        while cumulative < threshold && i + 1 < txs.len() {
            i += 1;
            cumulative += txs[i].1 as f64;
        }
        out.push(txs[i].0);
    }
    Ok(out)
}

/// `eth_feeHistory`: base fees (with the next block's), gas used ratios, blob fees and
/// ratios, and tips at the given percentiles, for up to `max_fee_history` blocks ending at
/// `newest`.
pub(crate) fn fee_history(
    ctx: &RpcContext,
    count: Value,
    newest: BlockNumberOrTag,
    percentiles: Option<Vec<f64>>,
) -> RpcResult<FeeHistory> {
    let count = block_count(&count)?;
    let best = ctx.best()?;
    let newest = ctx.tag_number(newest)?.unwrap_or(best);
    if newest > best {
        return Err(RpcError::InvalidParams(format!(
            "request beyond head block: requested {newest}, head {best}"
        )));
    }
    if let Some(p) = &percentiles {
        let ordered = p.windows(2).all(|w| w[0] <= w[1]);
        if !ordered || p.iter().any(|v| !(0.0..=100.0).contains(v)) {
            return Err(RpcError::InvalidParams(
                "reward percentiles must be ascending values between 0 and 100".into(),
            ));
        }
    }
    let count = count.min(ctx.config.max_fee_history).min(newest + 1);
    let mut history = FeeHistory::default();
    if count == 0 {
        return Ok(history);
    }
    let oldest = newest + 1 - count;
    history.oldest_block = oldest;
    let mut rewards_out = Vec::new();
    let mut last = None;
    for n in oldest..=newest {
        let h = ctx
            .store
            .header_by_number(n)?
            .ok_or_else(|| RpcError::Internal(format!("canonical header {n} missing")))?;
        history.base_fee_per_gas.push(u128::from(h.base_fee_per_gas.unwrap_or_default()));
        history.gas_used_ratio.push(if h.gas_limit == 0 {
            0.0
        } else {
            h.gas_used as f64 / h.gas_limit as f64
        });
        let blob = EvmForks::at(&ctx.spec, &h).blob_params(h.timestamp);
        history.base_fee_per_blob_gas.push(convert::blob_gas_price(&ctx.spec, &h).unwrap_or(0));
        history.blob_gas_used_ratio.push(match (blob, h.blob_gas_used) {
            (Some(p), Some(used)) if p.max_blob_gas_per_block() > 0 => {
                used as f64 / p.max_blob_gas_per_block() as f64
            }
            _ => 0.0,
        });
        if let Some(p) = &percentiles {
            rewards_out.push(rewards(ctx, n, p)?);
        }
        last = Some(h);
    }
    let last = last.expect("count > 0");
    history
        .base_fee_per_gas
        .push(u128::from(last.next_block_base_fee(BaseFeeParams::ethereum()).unwrap_or_default()));
    let next_blob = EvmForks::at(&ctx.spec, &last)
        .blob_params(last.timestamp)
        .and_then(|p| Some(p.calc_blob_fee(last.next_block_excess_blob_gas(p)?)));
    history.base_fee_per_blob_gas.push(next_blob.unwrap_or(0));
    history.reward = percentiles.map(|_| rewards_out);
    Ok(history)
}
