//! [`NetworkHandle`]: how the rest of the node talks to the network.

use crate::{
    manager::{self, ManagerMsg},
    NetworkConfig, NetworkEvents, PeerInfo, PeerRequest, PeerResponse, PeerStanding, Penalty,
    RequestError,
};
use alloy_consensus::{BlockBody, Header, TxEnvelope};
use alloy_primitives::B256;
use std::net::SocketAddr;
use tern_chainspec::ChainSpec;
use tern_eth_wire::{BlockHashNumber, GetBlockHeaders};
use tern_p2p::{DisconnectReason, Enode, PeerId};
use tern_storage::ChainStore;
use tokio::sync::{mpsc, oneshot, watch};

/// Errors starting the network.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The listener could not bind.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
}

/// A cloneable handle to the running network.
#[derive(Debug, Clone)]
pub struct NetworkHandle {
    tx: mpsc::Sender<ManagerMsg>,
    local_enode: Enode,
    counters: std::sync::Arc<crate::Counters>,
    /// Why the manager task ended, once it has.
    stopped: watch::Receiver<Option<String>>,
    transactions: crate::session::TxSourceSlot,
}

/// Starts the network: binds the listener, dials bootnodes, trusted and known peers,
/// serves peers from `store`.
pub async fn start(
    config: NetworkConfig,
    spec: ChainSpec,
    store: ChainStore,
) -> Result<NetworkHandle, NetworkError> {
    let addr = config.listen_addr;
    let id = tern_p2p::peer_id(&config.secret_key);
    let (manager, tx, local) = manager::build(config, spec, store)
        .await
        .map_err(|error| NetworkError::Bind { addr, error })?;
    let counters = manager.counters();
    let transactions = manager.transaction_source();
    let task = tokio::spawn(manager.run());
    let (stopped_tx, stopped) = watch::channel(None);
    tokio::spawn(async move {
        let why = match task.await {
            Ok(()) => "shut down".to_string(),
            // A panic's JoinError says "task … panicked with message …".
            Err(e) => {
                tracing::error!(error = %e, "the network task failed");
                e.to_string()
            }
        };
        let _ = stopped_tx.send(Some(why));
    });
    let shown = if local.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], local.port()))
    } else {
        local
    };
    Ok(NetworkHandle { tx, local_enode: Enode::new(id, shown), counters, stopped, transactions })
}

impl NetworkHandle {
    /// What this node has served so far.
    pub fn served(&self) -> crate::ServedCounts {
        self.counters.snapshot()
    }

    /// Outbound dials that failed so far (each ended before a session began).
    pub fn failed_dials(&self) -> u64 {
        self.counters.failed_dials.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Serves `GetPooledTransactions` from `source` from now on (until then, peers get
    /// empty answers). Returns false if a source was already set.
    pub fn serve_transactions(&self, source: std::sync::Arc<dyn crate::TransactionSource>) -> bool {
        self.transactions.set(source).is_ok()
    }

    /// Sends transaction gossip to `peer` (dropped if its session is busy).
    pub async fn gossip(&self, peer: PeerId, gossip: crate::Gossip) {
        let _ = self.tx.send(ManagerMsg::Gossip { peer, gossip }).await;
    }

    /// Our enode URL (loopback when listening on all interfaces).
    pub fn local_enode(&self) -> Enode {
        self.local_enode
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> ManagerMsg) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Sends `req` to `peer` and waits for its response.
    pub async fn request(
        &self,
        peer: PeerId,
        req: PeerRequest,
    ) -> Result<PeerResponse, RequestError> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(ManagerMsg::Request { peer, req, tx }).await.is_err() {
            return Err(RequestError::Stopped);
        }
        // The reply is dropped unanswered only when the session holding it ended.
        rx.await.unwrap_or(Err(RequestError::Disconnected))
    }

    /// Every receipt of block `hash` (which has `tx_count` transactions) from an eth/70
    /// `peer`, page by page (EIP-7975): each page must continue the list, and the whole
    /// must hold exactly one receipt per transaction (a partial list cannot be checked
    /// against the header; the caller checks the receipts root of the whole).
    pub async fn get_block_receipts_paged(
        &self,
        peer: PeerId,
        hash: B256,
        tx_count: usize,
    ) -> Result<Vec<tern_eth_wire::Receipt69>, RequestError> {
        let mut got = Vec::with_capacity(tx_count);
        loop {
            let req =
                PeerRequest::GetReceiptsPage { first_index: got.len() as u64, hashes: vec![hash] };
            let PeerResponse::Receipts70 { last_block_incomplete, receipts } =
                self.request(peer, req).await?
            else {
                return Err(RequestError::BadResponse("not an eth/70 Receipts"));
            };
            let mut lists = receipts.0;
            if lists.len() != 1 {
                return Err(RequestError::BadResponse("not one receipt list for one block"));
            }
            let page = lists.pop().expect("one list");
            if page.is_empty() && last_block_incomplete {
                return Err(RequestError::BadResponse("an incomplete page without receipts"));
            }
            got.extend(page);
            if got.len() > tx_count {
                return Err(RequestError::BadResponse("more receipts than transactions"));
            }
            if !last_block_incomplete {
                break;
            }
        }
        if got.len() != tx_count {
            return Err(RequestError::BadResponse("fewer receipts than transactions"));
        }
        Ok(got)
    }

    /// GetBlockHeaders to `peer`.
    pub async fn get_block_headers(
        &self,
        peer: PeerId,
        req: GetBlockHeaders,
    ) -> Result<Vec<Header>, RequestError> {
        match self.request(peer, PeerRequest::GetBlockHeaders(req)).await? {
            PeerResponse::BlockHeaders(h) => Ok(h),
            _ => Err(RequestError::BadResponse("not BlockHeaders")),
        }
    }

    /// GetBlockBodies to `peer`.
    pub async fn get_block_bodies(
        &self,
        peer: PeerId,
        hashes: Vec<B256>,
    ) -> Result<Vec<BlockBody<TxEnvelope>>, RequestError> {
        match self.request(peer, PeerRequest::GetBlockBodies(hashes)).await? {
            PeerResponse::BlockBodies(b) => Ok(b),
            _ => Err(RequestError::BadResponse("not BlockBodies")),
        }
    }

    /// Announces a new best block: NewBlockHashes to the peers that do not know it (PoA
    /// and PoW chains only, never to PoS-only clients), BlockRangeUpdate to eth/69 peers
    /// at most every 32 blocks.
    pub async fn announce_block(&self, number: u64, hash: B256) {
        let blocks = vec![BlockHashNumber { hash, number }];
        let _ = self.tx.send(ManagerMsg::Announce { blocks, latest: (number, hash) }).await;
    }

    /// A peer to dial when an outbound slot is free (found by discovery); ignored if it
    /// is known already or the dialer holds its maximum.
    pub async fn add_peer(&self, enode: Enode) {
        let _ = self.tx.send(ManagerMsg::AddPeer(enode)).await;
    }

    /// The connected peers.
    pub async fn peers(&self) -> Vec<PeerInfo> {
        self.ask(ManagerMsg::Peers).await.unwrap_or_default()
    }

    /// What we think of `peer`, connected or not (an unknown peer has the default
    /// reputation, 0).
    pub async fn standing(&self, peer: PeerId) -> PeerStanding {
        self.ask(|tx| ManagerMsg::Standing { peer, tx }).await.unwrap_or_default()
    }

    /// Lowers `peer`'s reputation (sync reports bad data this way).
    pub async fn penalize(&self, peer: PeerId, penalty: Penalty) {
        let _ = self.tx.send(ManagerMsg::Penalize { peer, penalty }).await;
    }

    /// Disconnects `peer` with `reason`.
    pub async fn disconnect(&self, peer: PeerId, reason: DisconnectReason) {
        let _ = self.tx.send(ManagerMsg::DisconnectPeer { peer, reason }).await;
    }

    /// A stream of network events. It starts with a `PeerConnected` for every session
    /// open at the time of the call, so no peer is missed; peer connections and
    /// disconnections are never dropped; a subscriber that leaves [`crate::MAX_ANNOUNCEMENT_BACKLOG`] announcements
    /// unread misses newer announcements until it catches up.
    pub async fn subscribe(&self) -> NetworkEvents {
        let (sub, events) = crate::events::subscription(false);
        let _ = self.tx.send(ManagerMsg::Subscribe(sub)).await;
        events
    }

    /// Subscribes to peer events and transaction gossip (`Transactions`,
    /// `NewPooledTransactionHashes`), on the same terms as [`Self::subscribe`].
    pub async fn subscribe_transactions(&self) -> NetworkEvents {
        let (sub, events) = crate::events::subscription(true);
        let _ = self.tx.send(ManagerMsg::Subscribe(sub)).await;
        events
    }

    /// Waits until the network task has ended, and says why (shut down, or a panic).
    pub async fn stopped(&self) -> String {
        let mut rx = self.stopped.clone();
        let why = match rx.wait_for(Option::is_some).await {
            Ok(why) => why.clone().unwrap_or_default(),
            Err(_) => "the network task is gone".into(),
        };
        why
    }

    /// Disconnects every peer (ClientQuitting), saves known peers, stops.
    pub async fn shutdown(&self) {
        let _ = self.ask(ManagerMsg::Shutdown).await;
    }
}
