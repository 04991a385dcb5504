//! `clique_*` methods, with geth v1.13's names and answer shapes: the signer set and
//! snapshot at any block, the validator's proposals, sealing statistics.
//!
//! Registered on Clique chains only (as geth registers the API only with Clique).

use crate::{
    args::Args,
    context::RpcContext,
    error::{RpcError, RpcResult},
    eth::{heavy, light},
};
use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{hex, Address, Bytes, B256};
use jsonrpsee::{core::RegisterMethodError, RpcModule};
use serde_json::{json, Map, Value};
use tern_consensus::{
    clique::{decode_proposals, encode_proposals, recover_signer, Proposals, DIFF_IN_TURN},
    Snapshot,
};

/// Blocks `clique_status` looks back over (geth's number).
pub(crate) const STATUS_BLOCKS: u64 = 64;

/// Registers the `clique_` methods.
pub(crate) fn register(m: &mut RpcModule<RpcContext>) -> Result<(), RegisterMethodError> {
    heavy(m, "clique_getSnapshot", |a, c| {
        let (snap, hash) = snapshot_at(c, number_arg(a)?)?;
        Ok(snapshot_json(&snap, hash))
    })?;
    heavy(m, "clique_getSnapshotAtHash", |a, c| {
        let hash: B256 = a.req()?;
        let (snap, hash) = snapshot_at(c, BlockId::from(hash))?;
        Ok(snapshot_json(&snap, hash))
    })?;
    heavy(m, "clique_getSigners", |a, c| {
        Ok(snapshot_at(c, number_arg(a)?)?.0.signers().iter().map(lower).collect::<Vec<_>>())
    })?;
    heavy(m, "clique_getSignersAtHash", |a, c| {
        let hash: B256 = a.req()?;
        Ok(snapshot_at(c, BlockId::from(hash))?.0.signers().iter().map(lower).collect::<Vec<_>>())
    })?;
    light(m, "clique_getSigner", |a, c| {
        let header = match a.opt::<Value>()? {
            None => c.block(BlockId::latest())?.header,
            Some(Value::String(s)) if s.len() > 66 && s.starts_with("0x") => {
                // The RLP of a header, as geth also accepts.
                let bytes: Bytes = s
                    .parse()
                    .map_err(|e| RpcError::InvalidParams(format!("invalid header RLP: {e}")))?;
                alloy_rlp::Decodable::decode(&mut bytes.as_ref())
                    .map_err(|e| RpcError::InvalidParams(format!("invalid header RLP: {e}")))?
            }
            Some(v) => {
                let id: BlockId = serde_json::from_value(v)
                    .map_err(|e| RpcError::InvalidParams(format!("invalid argument 0: {e}")))?;
                c.block(id)?.header
            }
        };
        recover_signer(&header).map(|a| lower(&a)).map_err(|e| RpcError::Server(e.to_string()))
    })?;
    light(m, "clique_proposals", |_, c| {
        let map: Map<String, Value> =
            proposals(c)?.into_iter().map(|(a, auth)| (lower(&a), json!(auth))).collect();
        Ok(Value::Object(map))
    })?;
    light(m, "clique_propose", |a, c| {
        let candidate: Address = a.req()?;
        let authorize: bool = a.req()?;
        update_proposals(c, |p| {
            p.insert(candidate, authorize);
        })?;
        Ok(Value::Null)
    })?;
    light(m, "clique_discard", |a, c| {
        let candidate: Address = a.req()?;
        update_proposals(c, |p| {
            p.remove(&candidate);
        })?;
        Ok(Value::Null)
    })?;
    heavy(m, "clique_status", |_, c| status(c))?;
    Ok(())
}

/// Addresses as geth writes them in this API: lower-case hex.
fn lower(a: &Address) -> String {
    hex::encode_prefixed(a)
}

/// An optional block number or tag (default `latest`).
fn number_arg(a: &mut Args<'_>) -> RpcResult<BlockId> {
    Ok(BlockId::Number(a.opt::<BlockNumberOrTag>()?.unwrap_or(BlockNumberOrTag::Latest)))
}

/// The snapshot after the block `id` names, with the block's hash.
fn snapshot_at(c: &RpcContext, id: BlockId) -> RpcResult<(Snapshot, B256)> {
    let found = c.block(id)?;
    let snapshots = c.clique.as_ref().ok_or_else(not_clique)?;
    let snap = snapshots.after(found.hash).map_err(|e| RpcError::Internal(e.to_string()))?;
    Ok((snap, found.hash))
}

fn not_clique() -> RpcError {
    RpcError::Server("this chain does not use Clique".into())
}

/// geth's snapshot object: `number`, `hash`, `signers` (address → {}), `recents`
/// (block → signer), `votes`, `tally` (candidate → {authorize, votes}).
fn snapshot_json(s: &Snapshot, hash: B256) -> Value {
    let signers: Map<String, Value> = s.signers().iter().map(|a| (lower(a), json!({}))).collect();
    let recents: Map<String, Value> =
        s.recents().iter().map(|(n, a)| (n.to_string(), json!(lower(a)))).collect();
    let votes: Vec<Value> = s
        .votes()
        .iter()
        .map(|v| {
            json!({
                "signer": lower(&v.signer),
                "block": v.block,
                "address": lower(&v.candidate),
                "authorize": v.authorize,
            })
        })
        .collect();
    let tally: Map<String, Value> = s
        .tally()
        .iter()
        .map(|(a, t)| (lower(a), json!({"authorize": t.authorize, "votes": t.votes})))
        .collect();
    json!({
        "number": s.number(),
        "hash": hash,
        "signers": signers,
        "recents": recents,
        "votes": votes,
        "tally": tally,
    })
}

fn proposals(c: &RpcContext) -> RpcResult<Proposals> {
    match c.store.clique_proposals()? {
        Some(bytes) => decode_proposals(&bytes)
            .map_err(|e| RpcError::Internal(format!("stored proposals are unreadable: {e}"))),
        None => Ok(Proposals::new()),
    }
}

/// Changes the stored proposals (what the validator votes on from its next block).
fn update_proposals(c: &RpcContext, change: impl FnOnce(&mut Proposals)) -> RpcResult<()> {
    c.clique.as_ref().ok_or_else(not_clique)?;
    c.store
        .update_clique_proposals(|stored| {
            let mut p = match stored {
                Some(bytes) => decode_proposals(bytes)?,
                None => Proposals::new(),
            };
            change(&mut p);
            Ok::<_, alloy_rlp::Error>(encode_proposals(&p))
        })?
        .map_err(|e| RpcError::Internal(format!("stored proposals are unreadable: {e}")))
}

/// geth's `clique_status`: over the [`STATUS_BLOCKS`] blocks before the head, the share
/// sealed in turn (`inturnPercent`), the blocks each current signer sealed
/// (`sealerActivity`) and how many blocks were looked at (`numBlocks`).
fn status(c: &RpcContext) -> RpcResult<Value> {
    let head = c.block(BlockId::latest())?;
    let (snap, _) = snapshot_at(c, BlockId::from(head.hash))?;
    let end = head.number;
    let start = end.saturating_sub(STATUS_BLOCKS).max(1);
    let blocks = end.saturating_sub(start);
    let mut activity: Map<String, Value> =
        snap.signers().iter().map(|a| (lower(a), json!(0u64))).collect();
    let mut in_turn = 0u64;
    for header in c.store.headers_range(start, blocks)? {
        if header.difficulty == alloy_primitives::U256::from(DIFF_IN_TURN) {
            in_turn += 1;
        }
        if let Ok(sealer) = recover_signer(&header) {
            let n = activity.get(&lower(&sealer)).and_then(Value::as_u64).unwrap_or(0);
            activity.insert(lower(&sealer), json!(n + 1));
        }
    }
    let percent = if blocks == 0 { 0.0 } else { 100.0 * in_turn as f64 / blocks as f64 };
    Ok(json!({"inturnPercent": percent, "sealerActivity": activity, "numBlocks": blocks}))
}
