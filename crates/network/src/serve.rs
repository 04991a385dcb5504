//! Answering requests from the chain store, within limits.

use alloy_consensus::{BlockBody, Header, ReceiptEnvelope, TxEnvelope};
use alloy_eips::eip1898::HashOrNumber;
use alloy_primitives::B256;
use alloy_rlp::Encodable;
use tern_eth_wire::GetBlockHeaders;
use tern_storage::{ChainStore, StoreError};

/// Most headers in one BlockHeaders response.
///
/// Spec: implementation-defined; geth and reth serve at most 1024.
pub const MAX_HEADERS_SERVE: usize = 1024;
/// Most bodies in one BlockBodies response.
pub const MAX_BODIES_SERVE: usize = 1024;
/// Most blocks' receipts in one Receipts response.
pub const MAX_RECEIPTS_SERVE: usize = 1024;
/// Soft limit of a response, in bytes: we stop adding items once it is reached, so a
/// response is at most this plus one item.
///
/// Spec: "The recommended soft limit for BlockHeaders responses is 2 MiB"
/// (<https://github.com/ethereum/devp2p/blob/master/caps/eth.md#blockheaders-0x04>).
pub const SOFT_RESPONSE_LIMIT: usize = 2 * 1024 * 1024;

/// The headers a GetBlockHeaders asks for, as far as we have them: from `start` (by hash
/// or number), `skip` blocks apart, ascending or (`reverse`) descending, at most
/// `min(limit, 1024)` and about 2 MiB. Absurd ranges simply yield fewer headers.
pub fn serve_headers(store: &ChainStore, req: &GetBlockHeaders) -> Result<Vec<Header>, StoreError> {
    let limit = (req.limit.min(MAX_HEADERS_SERVE as u64)) as usize;
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let first = match req.start {
        HashOrNumber::Number(n) => store.header_by_number(n)?,
        HashOrNumber::Hash(h) => store.header(h)?,
    };
    let Some(first) = first else { return Ok(out) };
    let step = req.skip.saturating_add(1);
    let first_hash = first.hash_slow();
    // A non-canonical start is served alone, except backwards along its own parents.
    let canonical = store.canonical_hash(first.number)? == Some(first_hash);
    let mut size = first.length();
    let mut number = first.number;
    out.push(first);
    while out.len() < limit && size < SOFT_RESPONSE_LIMIT {
        let next = if req.reverse {
            let Some(n) = number.checked_sub(step) else { break };
            if canonical {
                store.header_by_number(n)?
            } else {
                ancestor(store, out.last().expect("non-empty"), step)?
            }
        } else {
            if !canonical {
                break;
            }
            let Some(n) = number.checked_add(step) else { break };
            store.header_by_number(n)?
        };
        let Some(h) = next else { break };
        number = h.number;
        size += h.length();
        out.push(h);
    }
    Ok(out)
}

/// The ancestor `depth` blocks above `header`, following parent hashes.
fn ancestor(store: &ChainStore, header: &Header, depth: u64) -> Result<Option<Header>, StoreError> {
    let mut h = header.clone();
    for _ in 0..depth {
        match store.header(h.parent_hash)? {
            Some(p) => h = p,
            None => return Ok(None),
        }
    }
    Ok(Some(h))
}

/// The bodies of `hashes` we have, in order, unknown ones omitted, at most 1024 and about
/// 2 MiB.
pub fn serve_bodies(
    store: &ChainStore,
    hashes: &[B256],
) -> Result<Vec<BlockBody<TxEnvelope>>, StoreError> {
    let mut out = Vec::new();
    let mut size = 0;
    for hash in hashes.iter().take(MAX_BODIES_SERVE) {
        if size >= SOFT_RESPONSE_LIMIT {
            break;
        }
        if let Some(body) = store.body(*hash)? {
            size += body.length();
            out.push(body);
        }
    }
    Ok(out)
}

/// The receipts of the blocks `hashes` names, in order, for canonical blocks the state has
/// reached (blocks stored without execution have none to give, and are omitted like
/// unknown ones); at most [`MAX_RECEIPTS_SERVE`] blocks and about 2 MiB.
pub fn serve_receipts(
    store: &ChainStore,
    hashes: &[B256],
) -> Result<Vec<Vec<ReceiptEnvelope>>, StoreError> {
    let mut out = Vec::new();
    let mut size = 0;
    for hash in hashes.iter().take(MAX_RECEIPTS_SERVE) {
        if size >= SOFT_RESPONSE_LIMIT {
            break;
        }
        let Some(receipts) = executed_receipts(store, *hash)? else { continue };
        size += receipts.iter().map(alloy_eips::Encodable2718::encode_2718_len).sum::<usize>();
        out.push(receipts);
    }
    Ok(out)
}

/// The receipts of canonical, executed block `hash` (none if it is neither).
fn executed_receipts(
    store: &ChainStore,
    hash: B256,
) -> Result<Option<Vec<ReceiptEnvelope>>, StoreError> {
    let Some(number) = store.block_number(hash)? else { return Ok(None) };
    if number > store.state_number()? || store.canonical_hash(number)? != Some(hash) {
        return Ok(None);
    }
    store.receipts(number).map(Some)
}

/// An eth/70 receipts page: the receipts of the blocks `hashes` names as
/// [`serve_receipts`] finds them, the first block's from receipt `first_index` on, until
/// `limit` bytes; a block that does not fit whole is cut (at least one receipt is always
/// served, so paging progresses) and the flag says the last list is incomplete.
///
/// Spec: <https://eips.ethereum.org/EIPS/eip-7975>
pub fn serve_receipts_page(
    store: &ChainStore,
    first_index: u64,
    hashes: &[B256],
    limit: usize,
) -> Result<(Vec<Vec<ReceiptEnvelope>>, bool), StoreError> {
    let mut out = Vec::new();
    let mut size = 0;
    for (i, hash) in hashes.iter().take(MAX_RECEIPTS_SERVE).enumerate() {
        let Some(receipts) = executed_receipts(store, *hash)? else { continue };
        let skip = if i == 0 { usize::try_from(first_index).unwrap_or(usize::MAX) } else { 0 };
        let mut list = Vec::new();
        for r in receipts.iter().skip(skip) {
            let len = alloy_eips::Encodable2718::encode_2718_len(r);
            if size + len > limit && size > 0 {
                // Cut here; a block none of whose receipts fit is left to the next page.
                let cut = !list.is_empty();
                if cut {
                    out.push(list);
                }
                return Ok((out, cut));
            }
            size += len;
            list.push(r.clone());
        }
        out.push(list);
        if size >= limit {
            break;
        }
    }
    Ok((out, false))
}
