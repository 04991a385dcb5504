//! `net_`, `web3_`, `txpool_` and `admin_` methods.

use crate::{args::Args, context::RpcContext, convert, error::RpcResult};
use alloy_primitives::{keccak256, Address, Bytes, B256, U64};
use jsonrpsee::{core::RegisterMethodError, types::ErrorObjectOwned, RpcModule};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use tern_network::Direction;
use tern_txpool::ValidTx;

type Side = BTreeMap<Address, Vec<ValidTx>>;

/// Transactions by sender (checksummed) and nonce, as geth's `txpool_content` shows them.
fn by_sender(txs: Side) -> Value {
    let map: Map<String, Value> = txs
        .into_iter()
        .map(|(sender, txs)| {
            let by_nonce: Map<String, Value> = txs
                .iter()
                .map(|t| {
                    let tx = convert::transaction((*t.tx).clone(), t.sender, None);
                    (t.nonce().to_string(), serde_json::to_value(tx).expect("serializes"))
                })
                .collect();
            (sender.to_checksum(None), Value::Object(by_nonce))
        })
        .collect();
    Value::Object(map)
}

fn hex_id(id: &tern_p2p::PeerId) -> String {
    alloy_primitives::hex::encode(id)
}

/// Registers the `net_`, `web3_`, `txpool_` and `admin_` methods.
pub(crate) fn register(m: &mut RpcModule<RpcContext>) -> Result<(), RegisterMethodError> {
    m.register_method("net_version", |_, c, _| {
        Ok::<_, ErrorObjectOwned>(c.spec.network_id.to_string())
    })?;
    m.register_method("net_listening", |_, _, _| Ok::<_, ErrorObjectOwned>(true))?;
    m.register_async_method("net_peerCount", |_, c, _| async move {
        Ok::<_, ErrorObjectOwned>(U64::from(c.network.peers().await.len()))
    })?;
    m.register_method("web3_clientVersion", |_, c, _| {
        Ok::<_, ErrorObjectOwned>(c.client_id.clone())
    })?;
    m.register_method("web3_sha3", |p, _, _| -> RpcResult<B256> {
        let data: Bytes = Args::new(&p).req()?;
        Ok(keccak256(&data))
    })?;
    m.register_method("txpool_status", |_, c, _| {
        let st = c.pool.status();
        Ok::<_, ErrorObjectOwned>(
            json!({"pending": U64::from(st.pending), "queued": U64::from(st.queued)}),
        )
    })?;
    m.register_method("txpool_content", |_, c, _| {
        let (pending, queued) = c.pool.content();
        Ok::<_, ErrorObjectOwned>(
            json!({"pending": by_sender(pending), "queued": by_sender(queued)}),
        )
    })?;
    m.register_method("txpool_contentFrom", |p, c, _| -> RpcResult<Value> {
        let from: Address = Args::new(&p).req()?;
        let (mut pending, mut queued) = c.pool.content();
        pending.retain(|a, _| *a == from);
        queued.retain(|a, _| *a == from);
        let one = |side: Side| by_sender(side).as_object().and_then(|o| o.values().next().cloned());
        Ok(json!({
            "pending": one(pending).unwrap_or_else(|| json!({})),
            "queued": one(queued).unwrap_or_else(|| json!({})),
        }))
    })?;
    m.register_method("admin_nodeInfo", |_, c, _| -> RpcResult<Value> {
        let mut enode = c.network.local_enode();
        let (best, hash) = c.store.best_block()?;
        let mut info = Map::new();
        let discovery_port = match &c.discovery {
            Some(d) => {
                let local = d.local().endpoint;
                (enode.address, enode.udp_port) = (local.ip, local.udp);
                info.insert("enr".into(), json!(d.local_enr().to_base64()));
                local.udp
            }
            None => 0,
        };
        info.extend(
            json!({
                "enode": enode.to_string(),
                "id": hex_id(&enode.id),
                "name": c.client_id,
                "ip": enode.address.to_string(),
                "listenAddr": enode.tcp_addr().to_string(),
                "ports": {"discovery": discovery_port, "listener": enode.tcp_port},
                "protocols": {"eth": {
                    "network": c.spec.network_id,
                    "genesis": c.spec.genesis_hash.to_string(),
                    "head": hash.to_string(),
                    "number": best,
                }},
            })
            .as_object()
            .cloned()
            .expect("an object"),
        );
        Ok(Value::Object(info))
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
                    "source": p.source.name(),
                })
            })
            .collect();
        Ok::<_, ErrorObjectOwned>(peers)
    })?;
    Ok(())
}
