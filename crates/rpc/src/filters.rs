//! `eth_getLogs` and the polled filters (`eth_newFilter`, `eth_newBlockFilter`,
//! `eth_newPendingTransactionFilter`, `eth_getFilterChanges`, `eth_getFilterLogs`,
//! `eth_uninstallFilter`).

use crate::{
    context::RpcContext,
    convert,
    error::{RpcError, RpcResult},
};
use alloy_eips::BlockNumberOrTag;
use alloy_primitives::B256;
use alloy_rpc_types_eth::{Filter, FilterBlockOption, Log};
use serde_json::Value;
use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};
use tokio::sync::broadcast;

/// The logs matching `filter` in its block range (or block), from the stored receipts;
/// blocks whose bloom cannot match are skipped without reading their receipts.
pub(crate) fn get_logs(ctx: &RpcContext, filter: &Filter) -> RpcResult<Vec<Log>> {
    match filter.block_option {
        FilterBlockOption::AtBlockHash(hash) => {
            let Some(number) = ctx.store.block_number(hash)? else {
                return Err(RpcError::Server("unknown block".into()));
            };
            if ctx.store.canonical_hash(number)? != Some(hash) {
                return Err(RpcError::Server(format!(
                    "block {hash} is not canonical: receipts are kept for the canonical chain"
                )));
            }
            logs_in_range(ctx, filter, number, number)
        }
        FilterBlockOption::Range { from_block, to_block } => {
            let (from, to) = range(ctx, from_block, to_block)?;
            logs_in_range(ctx, filter, from, to)
        }
    }
}

/// A block range's numbers, checked as geth checks them.
fn range(
    ctx: &RpcContext,
    from: Option<BlockNumberOrTag>,
    to: Option<BlockNumberOrTag>,
) -> RpcResult<(u64, u64)> {
    let best = ctx.best()?;
    let number = |tag: Option<BlockNumberOrTag>| -> RpcResult<u64> {
        Ok(ctx.tag_number(tag.unwrap_or(BlockNumberOrTag::Latest))?.unwrap_or(best))
    };
    let (from, to) = (number(from)?, number(to)?);
    if from > to {
        return Err(RpcError::InvalidParams("invalid block range params".into()));
    }
    if to > best {
        return Err(RpcError::InvalidParams(
            "block range extends beyond current head block".into(),
        ));
    }
    Ok((from, to))
}

fn logs_in_range(ctx: &RpcContext, filter: &Filter, from: u64, to: u64) -> RpcResult<Vec<Log>> {
    let max_blocks = ctx.config.max_blocks_per_filter;
    if to - from >= max_blocks {
        return Err(RpcError::LimitExceeded(format!(
            "query exceeds max block range {max_blocks} (--rpc.max-blocks-per-filter)"
        )));
    }
    let max_logs = ctx.config.max_logs_per_response;
    let mut out = Vec::new();
    for number in from..=to {
        let Some(header) = ctx.store.header_by_number(number)? else { break };
        if !filter.matches_bloom(header.logs_bloom) {
            continue;
        }
        let Some(block) = ctx.store.block_by_number(number)? else { break };
        let logs = convert::logs(&block, &ctx.store.receipts(number)?);
        out.extend(logs.into_iter().filter(|log| {
            filter.matches_address(log.address()) && filter.matches_topics(log.topics())
        }));
        if out.len() > max_logs {
            return Err(RpcError::LimitExceeded(format!(
                "query exceeds max results {max_logs} (--rpc.max-logs-per-response); ask for a smaller block range"
            )));
        }
    }
    Ok(out)
}

/// What an installed filter reports.
#[derive(Debug)]
enum Kind {
    /// Hashes of new canonical blocks from `next` on.
    Blocks { next: u64 },
    /// Logs of new canonical blocks from `next` on.
    Logs { filter: Box<Filter>, next: u64 },
    /// Hashes of transactions that became pending.
    Pending(broadcast::Receiver<B256>),
}

#[derive(Debug)]
struct Installed {
    kind: Kind,
    last_poll: Instant,
}

/// The installed filters, over all clients (ids are unguessable: a client sees only
/// its own).
#[derive(Debug)]
pub struct Filters {
    inner: Mutex<HashMap<String, Installed>>,
    max: usize,
    timeout: Duration,
}

impl Filters {
    /// At most `max` filters; one not polled for `timeout` is removed.
    pub fn new(max: usize, timeout: Duration) -> Self {
        Self { inner: Mutex::new(HashMap::new()), max, timeout }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Installed>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn install(&self, kind: Kind, now: Instant) -> RpcResult<String> {
        let mut filters = self.lock();
        filters.retain(|_, f| now.duration_since(f.last_poll) < self.timeout);
        if filters.len() >= self.max {
            return Err(RpcError::LimitExceeded(format!(
                "too many filters installed ({}); uninstall some or let them expire",
                self.max
            )));
        }
        // As geth's: `0x` and 32 random hex digits (a client cannot guess another's).
        let id = format!("0x{:032x}", rand::random::<u128>());
        filters.insert(id.clone(), Installed { kind, last_poll: now });
        Ok(id)
    }

    /// Removes a filter; whether it existed.
    pub fn uninstall(&self, id: &str) -> bool {
        self.lock().remove(id).is_some()
    }

    /// Installs a block filter: hashes of blocks after `best`.
    pub(crate) fn new_block_filter(&self, best: u64, now: Instant) -> RpcResult<String> {
        self.install(Kind::Blocks { next: best + 1 }, now)
    }

    /// Installs a log filter: logs of blocks after `best`.
    pub(crate) fn new_log_filter(
        &self,
        filter: Filter,
        best: u64,
        now: Instant,
    ) -> RpcResult<String> {
        self.install(Kind::Logs { filter: Box::new(filter), next: best + 1 }, now)
    }

    /// Installs a pending-transaction filter.
    pub(crate) fn new_pending_filter(
        &self,
        rx: broadcast::Receiver<B256>,
        now: Instant,
    ) -> RpcResult<String> {
        self.install(Kind::Pending(rx), now)
    }

    /// The filter criteria of a log filter (`eth_getFilterLogs`).
    pub(crate) fn log_filter(&self, id: &str, now: Instant) -> RpcResult<Filter> {
        let mut filters = self.lock();
        let f = filters.get_mut(id).ok_or_else(not_found)?;
        f.last_poll = now;
        match &f.kind {
            Kind::Logs { filter, .. } => Ok((**filter).clone()),
            _ => Err(not_found()),
        }
    }

    /// What happened since the last poll (`eth_getFilterChanges`).
    pub(crate) fn changes(&self, ctx: &RpcContext, id: &str, now: Instant) -> RpcResult<Value> {
        let best = ctx.best()?;
        // Decide what to read under the lock, read without it.
        let (from, filter) = {
            let mut filters = self.lock();
            let f = filters.get_mut(id).ok_or_else(not_found)?;
            f.last_poll = now;
            match &mut f.kind {
                Kind::Pending(rx) => {
                    let mut hashes = Vec::new();
                    loop {
                        match rx.try_recv() {
                            Ok(h) => hashes.push(h),
                            Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                            Err(_) => break,
                        }
                    }
                    return Ok(serde_json::to_value(hashes).expect("hashes serialize"));
                }
                Kind::Blocks { next } => (std::mem::replace(next, best + 1), None),
                Kind::Logs { filter, next } => {
                    let from = *next;
                    // A poll reads at most the allowed range; the rest waits for the next.
                    let to = best.min(from.saturating_add(ctx.config.max_blocks_per_filter - 1));
                    *next = to + 1;
                    (from, Some(((**filter).clone(), to)))
                }
            }
        };
        match filter {
            None => {
                let mut hashes = Vec::new();
                for n in from..=best {
                    hashes.extend(ctx.store.canonical_hash(n)?);
                }
                Ok(serde_json::to_value(hashes).expect("hashes serialize"))
            }
            Some((_, to)) if from > to => Ok(Value::Array(vec![])),
            Some((filter, to)) => {
                let logs = logs_in_range(ctx, &filter, from, to)?;
                Ok(serde_json::to_value(logs).expect("logs serialize"))
            }
        }
    }
}

fn not_found() -> RpcError {
    RpcError::Server("filter not found".into())
}
