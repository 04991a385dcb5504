//! JSON-RPC over HTTP (jsonrpsee): the read-only `eth_`, `net_`, `web3_` and `admin_`
//! methods an operator and a client library need, in the standard JSON shapes.

use alloy_consensus::{transaction::SignerRecoverable, Header, Transaction, TxEnvelope, Typed2718};
use alloy_primitives::{B256, U256};
use jsonrpsee::{
    server::{Server, ServerHandle},
    types::ErrorObjectOwned,
    RpcModule,
};
use serde_json::{json, Value};
use std::net::SocketAddr;
use tern_chainspec::ChainSpec;
use tern_network::{Direction, NetworkHandle};
use tern_storage::{ChainStore, SealedBlock};
use tern_sync::{SyncHandle, SyncStatus};

/// What the RPC methods read.
#[derive(Debug, Clone)]
pub struct RpcContext {
    /// The chain.
    pub spec: ChainSpec,
    /// The store.
    pub store: ChainStore,
    /// The network.
    pub network: NetworkHandle,
    /// Sync progress.
    pub sync: SyncHandle,
    /// The transaction pool.
    pub pool: std::sync::Arc<crate::NodePool>,
    /// Our client id.
    pub client_id: String,
}

fn err(code: i32, msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, msg.into(), None::<()>)
}

fn internal(e: impl std::fmt::Display) -> ErrorObjectOwned {
    err(-32603, e.to_string())
}

fn qty(v: impl std::fmt::LowerHex) -> String {
    format!("{v:#x}")
}

/// A block tag or number: `latest`, `pending` (our head: no pool yet), `earliest`, or a
/// `0x`-prefixed hex number. `safe` and `finalized` are refused: neither Clique nor a
/// post-merge chain followed without a consensus client tells us about finality.
fn block_number(store: &ChainStore, tag: &str) -> Result<u64, ErrorObjectOwned> {
    match tag {
        "latest" | "pending" => Ok(store.best_block().map_err(internal)?.0),
        "earliest" => Ok(0),
        "safe" | "finalized" => Err(err(
            -39001,
            format!("{tag} block not found: this node has no notion of finality (proof of authority, or no consensus client)"),
        )),
        other => parse_quantity(other)
            .ok_or_else(|| err(-32602, format!("invalid block number or tag: {other}"))),
    }
}

/// A JSON-RPC quantity: `0x` then hex digits without leading zeros (`0x0` for zero).
fn parse_quantity(s: &str) -> Option<u64> {
    let digits = s.strip_prefix("0x")?;
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// A raw transaction as `eth_sendRawTransaction` takes it: EIP-2718 bytes (a blob
/// transaction in its network form, with the sidecar).
fn decode_raw_transaction(raw: &[u8]) -> Result<TxEnvelope, ErrorObjectOwned> {
    use alloy_eips::Decodable2718;
    let mut buf = raw;
    let tx = tern_eth_wire::PooledTransaction::decode_2718(&mut buf)
        .map_err(|e| err(-32602, format!("invalid raw transaction: {e}")))?;
    if !buf.is_empty() {
        return Err(err(-32602, "invalid raw transaction: trailing bytes"));
    }
    tern_txpool::from_pooled(tx).map_err(|e| err(-32000, e.to_string()))
}

fn tx_json(tx: &TxEnvelope, block: Option<(&B256, u64, usize)>) -> Value {
    let sig = tx.signature();
    let mut v = json!({
        "hash": tx.tx_hash().to_string(),
        "type": qty(tx.ty()),
        "nonce": qty(tx.nonce()),
        "gas": qty(tx.gas_limit()),
        "value": qty(tx.value()),
        "input": tx.input().to_string(),
        "to": tx.to().map(|a| format!("{a:#x}")),
        "r": qty(sig.r()),
        "s": qty(sig.s()),
        "blockHash": block.map(|b| b.0.to_string()),
        "blockNumber": block.map(|b| qty(b.1)),
        "transactionIndex": block.map(|b| qty(b.2)),
        "from": tx.recover_signer().map(|a| format!("{a:#x}")).ok(),
    });
    let o = v.as_object_mut().expect("object");
    if let Some(id) = tx.chain_id() {
        o.insert("chainId".into(), json!(qty(id)));
    }
    match tx {
        TxEnvelope::Legacy(_) => {
            let v_value = match tx.chain_id() {
                Some(id) => 35 + 2 * id + u64::from(sig.v()),
                None => 27 + u64::from(sig.v()),
            };
            o.insert("v".into(), json!(qty(v_value)));
            o.insert("gasPrice".into(), json!(qty(tx.gas_price().unwrap_or_default())));
        }
        _ => {
            o.insert("v".into(), json!(qty(u8::from(sig.v()))));
            o.insert("yParity".into(), json!(qty(u8::from(sig.v()))));
            if let Some(p) = tx.gas_price() {
                o.insert("gasPrice".into(), json!(qty(p)));
            } else {
                o.insert("maxFeePerGas".into(), json!(qty(tx.max_fee_per_gas())));
                o.insert(
                    "maxPriorityFeePerGas".into(),
                    json!(qty(tx.max_priority_fee_per_gas().unwrap_or_default())),
                );
                o.insert("gasPrice".into(), json!(qty(tx.max_fee_per_gas())));
            }
            let list: Vec<Value> = tx
                .access_list()
                .map(|l| {
                    l.iter()
                        .map(|i| {
                            json!({
                                "address": format!("{:#x}", i.address),
                                "storageKeys": i.storage_keys.iter().map(ToString::to_string).collect::<Vec<_>>(),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            o.insert("accessList".into(), json!(list));
            if let Some(hashes) = tx.blob_versioned_hashes() {
                o.insert(
                    "blobVersionedHashes".into(),
                    json!(hashes.iter().map(ToString::to_string).collect::<Vec<_>>()),
                );
                o.insert(
                    "maxFeePerBlobGas".into(),
                    json!(qty(tx.max_fee_per_blob_gas().unwrap_or_default())),
                );
            }
        }
    }
    v
}

fn header_json(
    h: &Header,
    hash: &B256,
    td: Option<U256>,
    size: usize,
) -> serde_json::Map<String, Value> {
    let mut m = json!({
        "number": qty(h.number),
        "hash": hash.to_string(),
        "parentHash": h.parent_hash.to_string(),
        "nonce": h.nonce.to_string(),
        "sha3Uncles": h.ommers_hash.to_string(),
        "logsBloom": h.logs_bloom.to_string(),
        "transactionsRoot": h.transactions_root.to_string(),
        "stateRoot": h.state_root.to_string(),
        "receiptsRoot": h.receipts_root.to_string(),
        "miner": format!("{:#x}", h.beneficiary),
        "difficulty": qty(h.difficulty),
        "extraData": h.extra_data.to_string(),
        "size": qty(size),
        "gasLimit": qty(h.gas_limit),
        "gasUsed": qty(h.gas_used),
        "timestamp": qty(h.timestamp),
        "mixHash": h.mix_hash.to_string(),
        "uncles": [],
    });
    let o = m.as_object_mut().expect("object");
    if let Some(td) = td {
        o.insert("totalDifficulty".into(), json!(qty(td)));
    }
    if let Some(f) = h.base_fee_per_gas {
        o.insert("baseFeePerGas".into(), json!(qty(f)));
    }
    if let Some(r) = h.withdrawals_root {
        o.insert("withdrawalsRoot".into(), json!(r.to_string()));
    }
    if let Some(g) = h.blob_gas_used {
        o.insert("blobGasUsed".into(), json!(qty(g)));
    }
    if let Some(g) = h.excess_blob_gas {
        o.insert("excessBlobGas".into(), json!(qty(g)));
    }
    if let Some(r) = h.parent_beacon_block_root {
        o.insert("parentBeaconBlockRoot".into(), json!(r.to_string()));
    }
    if let Some(r) = h.requests_hash {
        o.insert("requestsHash".into(), json!(r.to_string()));
    }
    o.clone()
}

fn block_json(ctx: &RpcContext, b: &SealedBlock, full: bool) -> Result<Value, ErrorObjectOwned> {
    let td = ctx.store.total_difficulty(b.hash).map_err(internal)?;
    let size = alloy_rlp::Encodable::length(&b.block);
    let mut m = header_json(&b.block.header, &b.hash, td, size);
    let txs: Vec<Value> = b
        .block
        .body
        .transactions
        .iter()
        .enumerate()
        .map(|(i, tx)| {
            if full {
                tx_json(tx, Some((&b.hash, b.block.header.number, i)))
            } else {
                json!(tx.tx_hash().to_string())
            }
        })
        .collect();
    m.insert("transactions".into(), json!(txs));
    if let Some(w) = &b.block.body.withdrawals {
        let list: Vec<Value> = w
            .iter()
            .map(|w| {
                json!({"index": qty(w.index), "validatorIndex": qty(w.validator_index), "address": format!("{:#x}", w.address), "amount": qty(w.amount)})
            })
            .collect();
        m.insert("withdrawals".into(), json!(list));
    }
    Ok(Value::Object(m))
}

/// The RPC module with every method.
pub fn rpc_module(
    ctx: RpcContext,
) -> Result<RpcModule<RpcContext>, jsonrpsee::core::RegisterMethodError> {
    let mut m = RpcModule::new(ctx);
    m.register_method("eth_chainId", |_, c, _| Ok::<_, ErrorObjectOwned>(qty(c.spec.chain_id)))?;
    m.register_method("eth_blockNumber", |_, c, _| {
        Ok::<_, ErrorObjectOwned>(qty(c.store.best_block().map_err(internal)?.0))
    })?;
    m.register_method("eth_getBlockByNumber", |p, c, _| {
        let (tag, full): (String, bool) = p.parse()?;
        let n = block_number(&c.store, &tag)?;
        match c.store.block_by_number(n).map_err(internal)? {
            Some(b) => block_json(c, &b, full),
            None => Ok(Value::Null),
        }
    })?;
    m.register_method("eth_getBlockByHash", |p, c, _| {
        let (hash, full): (B256, bool) = p.parse()?;
        match c.store.block(hash).map_err(internal)? {
            Some(b) => block_json(c, &b, full),
            None => Ok(Value::Null),
        }
    })?;
    m.register_method("eth_getBlockTransactionCountByNumber", |p, c, _| {
        let (tag,): (String,) = p.parse()?;
        let n = block_number(&c.store, &tag)?;
        Ok::<_, ErrorObjectOwned>(
            c.store
                .body_by_number(n)
                .map_err(internal)?
                .map(|b| json!(qty(b.transactions.len())))
                .unwrap_or(Value::Null),
        )
    })?;
    m.register_method("eth_getTransactionByHash", |p, c, _| {
        let (hash,): (B256,) = p.parse()?;
        let Some((tx, loc)) = c.store.transaction(hash).map_err(internal)? else {
            // A pending one: in the pool, in no block yet.
            return Ok(c.pool.get(&hash).map_or(Value::Null, |(t, _)| tx_json(&t.tx, None)));
        };
        let block_hash =
            c.store.canonical_hash(loc.block_number).map_err(internal)?.unwrap_or_default();
        Ok::<_, ErrorObjectOwned>(tx_json(
            &tx,
            Some((&block_hash, loc.block_number, loc.index as usize)),
        ))
    })?;
    m.register_method("eth_sendRawTransaction", |p, c, _| {
        let (raw,): (alloy_primitives::Bytes,) = p.parse()?;
        let tx = decode_raw_transaction(&raw)?;
        match c.pool.add(vec![tx]).pop().expect("one result per transaction") {
            Ok(hash) => Ok::<_, ErrorObjectOwned>(hash.to_string()),
            Err(e) => Err(err(-32000, e.to_string())),
        }
    })?;
    m.register_method("txpool_status", |_, c, _| {
        let st = c.pool.status();
        Ok::<_, ErrorObjectOwned>(json!({"pending": qty(st.pending), "queued": qty(st.queued)}))
    })?;
    m.register_method("txpool_content", |_, c, _| {
        let (pending, queued) = c.pool.content();
        let side = |txs: std::collections::BTreeMap<
            alloy_primitives::Address,
            Vec<tern_txpool::ValidTx>,
        >| {
            let map: serde_json::Map<String, Value> = txs
                .into_iter()
                .map(|(sender, txs)| {
                    let by_nonce: serde_json::Map<String, Value> =
                        txs.iter().map(|t| (t.nonce().to_string(), tx_json(&t.tx, None))).collect();
                    (sender.to_checksum(None), Value::Object(by_nonce))
                })
                .collect();
            Value::Object(map)
        };
        Ok::<_, ErrorObjectOwned>(json!({"pending": side(pending), "queued": side(queued)}))
    })?;
    m.register_method("eth_syncing", |_, c, _| {
        let p = c.sync.progress();
        Ok::<_, ErrorObjectOwned>(match p.status {
            SyncStatus::InSync => json!(false),
            _ => json!({"startingBlock": qty(p.start), "currentBlock": qty(p.head), "highestBlock": qty(p.target)}),
        })
    })?;
    m.register_method("net_version", |_, c, _| {
        Ok::<_, ErrorObjectOwned>(c.spec.network_id.to_string())
    })?;
    m.register_method("web3_clientVersion", |_, c, _| {
        Ok::<_, ErrorObjectOwned>(c.client_id.clone())
    })?;
    m.register_async_method("net_peerCount", |_, c, _| async move {
        Ok::<_, ErrorObjectOwned>(qty(c.network.peers().await.len()))
    })?;
    m.register_method("admin_nodeInfo", |_, c, _| {
        let enode = c.network.local_enode();
        let (best, hash) = c.store.best_block().map_err(internal)?;
        Ok::<_, ErrorObjectOwned>(json!({
            "enode": enode.to_string(),
            "id": hex_id(&enode.id),
            "name": c.client_id,
            "ip": enode.address.to_string(),
            "listenAddr": enode.tcp_addr().to_string(),
            "ports": {"discovery": 0, "listener": enode.tcp_port},
            "protocols": {"eth": {
                "network": c.spec.network_id,
                "genesis": c.spec.genesis_hash.to_string(),
                "head": hash.to_string(),
                "number": best,
            }},
        }))
    })?;
    m.register_async_method("admin_peers", |_, c, _| async move {
        let peers: Vec<Value> = c
            .network
            .peers()
            .await
            .into_iter()
            .map(|p| {
                json!({
                    "id": hex_id(&p.id),
                    "name": p.client_id,
                    "caps": [format!("eth/{}", p.version as u8)],
                    "network": {"remoteAddress": p.addr.to_string(), "inbound": p.direction == Direction::Inbound, "trusted": p.trusted},
                    "protocols": {"eth": {"version": p.version as u8, "head": p.status.head_hash().to_string()}},
                    "reputation": p.reputation,
                })
            })
            .collect();
        Ok::<_, ErrorObjectOwned>(peers)
    })?;
    Ok(m)
}

fn hex_id(id: &tern_p2p::PeerId) -> String {
    alloy_primitives::hex::encode(id)
}

/// Starts the HTTP JSON-RPC server on `addr`.
pub async fn start_rpc(
    addr: SocketAddr,
    ctx: RpcContext,
) -> std::io::Result<(ServerHandle, SocketAddr)> {
    let server = Server::builder().build(addr).await?;
    let local = server.local_addr()?;
    let module = rpc_module(ctx).map_err(std::io::Error::other)?;
    Ok((server.start(module), local))
}

#[cfg(test)]
mod tests {
    use super::parse_quantity;

    #[test]
    fn quantities_need_the_prefix_and_no_leading_zeros() {
        assert_eq!(parse_quantity("0x0"), Some(0));
        assert_eq!(parse_quantity("0x1a"), Some(26));
        assert_eq!(parse_quantity("0xffffffffffffffff"), Some(u64::MAX));
        for bad in ["26", "1a", "0x", "0x01", "0x1g", "0x10000000000000000", "", "latest1"] {
            assert_eq!(parse_quantity(bad), None, "{bad}");
        }
    }
}
