//! The transaction gossip task: drives [`TxGossip`]'s decisions with the network and the
//! pool — propagates newly pending transactions, tells new peers of the pool, fetches
//! announced transactions and adds what peers send, penalising what they could have
//! known was bad.

use crate::NodePool;
use alloy_consensus::{TxEnvelope, Typed2718};
use alloy_eips::Encodable2718;
use alloy_primitives::B256;
use futures::{future::BoxFuture, stream::FuturesUnordered, FutureExt, StreamExt};
use std::{collections::HashMap, sync::Arc};
use tern_network::{
    Gossip, GossipTx, NetworkEvent, NetworkHandle, PeerRequest, PeerResponse, Penalty,
    RequestError, TransactionSource, TxGossip, MAX_ANNOUNCED_TRANSACTIONS,
};
use tern_p2p::PeerId;
use tern_sync::{SyncHandle, SyncStatus};
use tern_txpool::ValidTx;
use tokio::sync::watch;
use tracing::debug;

fn of_valid(t: &ValidTx) -> GossipTx {
    GossipTx { hash: t.hash, ty: t.tx.ty(), size: t.size as u32 }
}

impl TransactionSource for NodePool {
    fn pooled_transactions(
        &self,
        hashes: &[B256],
        soft_limit: usize,
    ) -> Vec<tern_eth_wire::PooledTransaction> {
        self.with_pool(|pool| {
            let mut out = Vec::new();
            let mut bytes = 0;
            for t in hashes.iter().filter_map(|h| pool.get(h)) {
                if bytes >= soft_limit {
                    break;
                }
                if let Some(p) = tern_txpool::to_pooled(t) {
                    bytes += t.size;
                    out.push(p);
                }
            }
            out
        })
    }
}

/// Whether sync is too far behind for gossip to matter (the transactions would be
/// validated against an old state).
fn far_behind(sync: &SyncHandle) -> bool {
    matches!(sync.progress().status, SyncStatus::MediumGap(_) | SyncStatus::LargeGap(_))
}

/// How often the longest-waiting pending transactions are announced again.
pub const REANNOUNCE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

type Fetch = BoxFuture<'static, (PeerId, Result<PeerResponse, RequestError>)>;

/// Runs transaction gossip until `shutdown`.
pub(crate) async fn run_gossip(
    network: NetworkHandle,
    pool: Arc<NodePool>,
    sync: SyncHandle,
    mut shutdown: watch::Receiver<bool>,
) {
    network.serve_transactions(pool.clone());
    let mut events = network.subscribe_transactions().await;
    let mut g = TxGossip::new();
    let mut fetches: FuturesUnordered<Fetch> = FuturesUnordered::new();
    let mut reannounce = tokio::time::interval(REANNOUNCE_INTERVAL);
    reannounce.tick().await;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                None => return,
                Some(e) => on_event(&network, &pool, &sync, &mut g, e).await,
            },
            batch = pool.take_promoted() => propagate(&network, &mut g, batch).await,
            Some((peer, result)) = fetches.next(), if !fetches.is_empty() => {
                on_fetched(&network, &pool, &mut g, peer, result).await
            }
            _ = reannounce.tick() => {
                if !far_behind(&sync) {
                    let oldest: Vec<GossipTx> =
                        pool.oldest_pending(MAX_ANNOUNCED_TRANSACTIONS).iter().map(of_valid).collect();
                    for (peer, txs) in g.reannounce(&oldest) {
                        send_hashes(&network, peer, &txs).await;
                    }
                }
            }
            _ = shutdown.changed() => return,
        }
        for (peer, hashes) in g.next_fetches() {
            metrics::counter!("tern_tx_gossip_fetch_requests_total").increment(1);
            let network = network.clone();
            fetches.push(
                async move {
                    (peer, network.request(peer, PeerRequest::GetPooledTransactions(hashes)).await)
                }
                .boxed(),
            );
        }
    }
}

async fn on_event(
    network: &NetworkHandle,
    pool: &Arc<NodePool>,
    sync: &SyncHandle,
    g: &mut TxGossip,
    event: NetworkEvent,
) {
    match event {
        NetworkEvent::PeerConnected(info) => {
            g.peer_connected(info.id);
            let pending: Vec<GossipTx> = pool.pending().iter().map(of_valid).collect();
            let hashes = g.announce_pool(info.id, &pending);
            for chunk in hashes.chunks(MAX_ANNOUNCED_TRANSACTIONS) {
                send_hashes(network, info.id, chunk).await;
            }
        }
        NetworkEvent::PeerDisconnected { id, .. } => g.peer_disconnected(id),
        NetworkEvent::Transactions { peer, txs } => {
            metrics::counter!("tern_tx_gossip_received_total", "how" => "broadcast")
                .increment(txs.len() as u64);
            g.mark_known(peer, txs.iter().map(|t| *t.tx_hash()));
            if far_behind(sync) {
                return;
            }
            txs.iter().for_each(|t| g.received(t.tx_hash()));
            let incoming = txs.into_iter().map(tern_txpool::Incoming::from).collect();
            add_from_peer(network, pool, peer, incoming).await;
        }
        NetworkEvent::TransactionHashes { peer, announced } => {
            metrics::counter!("tern_tx_gossip_announced_total").increment(announced.len() as u64);
            if far_behind(sync) {
                g.mark_known(peer, announced.iter().map(|t| t.hash));
                return;
            }
            g.on_announced(peer, &announced, |h| pool.contains(h));
        }
        _ => {}
    }
}

/// Adds transactions a peer sent; one penalty per message if any was invalid in a way
/// the peer could have checked.
async fn add_from_peer(
    network: &NetworkHandle,
    pool: &Arc<NodePool>,
    peer: PeerId,
    txs: Vec<tern_txpool::Incoming>,
) {
    // Validation recovers signatures and verifies blob proofs: off the gossip task.
    let adder = pool.clone();
    let Ok(results) = tokio::task::spawn_blocking(move || adder.add(txs)).await else {
        return;
    };
    let bad = results.iter().filter_map(|r| r.as_ref().err()).find(|e| e.is_bad_transaction());
    if let Some(e) = bad {
        debug!(%peer, error = %e, "peer sent an invalid transaction");
        network.penalize(peer, Penalty::BadTransaction).await;
    }
}

async fn on_fetched(
    network: &NetworkHandle,
    pool: &Arc<NodePool>,
    g: &mut TxGossip,
    peer: PeerId,
    result: Result<PeerResponse, RequestError>,
) {
    let Ok(PeerResponse::PooledTransactions(txs)) = result else {
        g.on_fetch_failed(peer);
        return;
    };
    metrics::counter!("tern_tx_gossip_received_total", "how" => "fetched")
        .increment(txs.len() as u64);
    let delivered: Vec<GossipTx> = txs
        .iter()
        .map(|t| GossipTx { hash: *t.hash(), ty: t.ty(), size: t.encode_2718_len() as u32 })
        .collect();
    let check = g.on_fetched(peer, &delivered);
    if check.unrequested > 0 || !check.mismatched.is_empty() {
        debug!(%peer, unrequested = check.unrequested, mismatched = check.mismatched.len(), "pooled transactions differ from request or announcement");
        network.penalize(peer, Penalty::BadTransaction).await;
    }
    let incoming = txs.into_iter().map(tern_txpool::Incoming::from).collect();
    add_from_peer(network, pool, peer, incoming).await;
}

async fn send_hashes(network: &NetworkHandle, peer: PeerId, txs: &[GossipTx]) {
    metrics::counter!("tern_tx_gossip_sent_total", "how" => "hash").increment(txs.len() as u64);
    network.gossip(peer, Gossip::Hashes(txs.to_vec())).await;
}

/// Newly pending transactions to the peers that lack them.
async fn propagate(network: &NetworkHandle, g: &mut TxGossip, batch: Vec<ValidTx>) {
    let infos: Vec<GossipTx> = batch.iter().map(of_valid).collect();
    let by_hash: HashMap<B256, &ValidTx> = batch.iter().map(|t| (t.hash, t)).collect();
    for (peer, out) in g.propagate(&infos) {
        if !out.full.is_empty() {
            metrics::counter!("tern_tx_gossip_sent_total", "how" => "whole")
                .increment(out.full.len() as u64);
            let txs = out.full.iter().map(|h| TxEnvelope::clone(&by_hash[h].tx)).collect();
            network.gossip(peer, Gossip::Transactions(txs)).await;
        }
        for chunk in out.hashes.chunks(MAX_ANNOUNCED_TRANSACTIONS) {
            send_hashes(network, peer, chunk).await;
        }
    }
}
