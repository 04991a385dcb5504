//! One task per peer: serves its requests, routes responses to our requests by id,
//! enforces timeouts and the in-flight cap, and sends announcements.

use crate::{
    budget::ServeBudget,
    known::BoundedSet,
    manager::ManagerMsg,
    serve::{serve_bodies, serve_headers, serve_receipts, serve_receipts_page},
    PeerRequest, PeerResponse, Penalty, RequestError, RequestKind,
};
use alloy_primitives::B256;
use futures::{SinkExt, StreamExt};
use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};
use tern_eth_wire::{
    BlockBodies, BlockHashNumber, BlockHeaders, BlockRangeUpdate, EthError, EthMessage, EthStream,
    EthVersion, GetBlockBodies, GetPooledTransactions, GetReceipts, GetReceipts70, NewBlockHashes,
    NewPooledTransactionHashes, PooledTransactions, Receipts68, Receipts69, Receipts70,
    RequestPair, Transactions,
};
use tern_p2p::{DisconnectReason, EciesStream, PeerId};
use tern_storage::ChainStore;
use tokio::{
    net::TcpStream,
    sync::{mpsc, oneshot},
};
use tracing::{debug, trace};

/// Most requests we keep in flight to one peer.
pub const MAX_INFLIGHT_PER_PEER: usize = 8;
/// How many block hashes we remember per peer as known to it.
pub const KNOWN_BLOCKS_PER_PEER: usize = 1024;
/// Most entries we accept in one NewBlockHashes; more is a bad announcement.
pub const MAX_ANNOUNCED_HASHES: usize = 256;
/// An eth/69 peer gets a BlockRangeUpdate at most once per this many blocks.
///
/// Spec: "Clients should send an update at most once per epoch (32 blocks)"
/// (<https://eips.ethereum.org/EIPS/eip-7642>).
pub const RANGE_UPDATE_INTERVAL: u64 = 32;
/// Capacity of a session's command queue.
pub(crate) const COMMAND_QUEUE: usize = 64;
/// Requests of a peer waiting for its serving budget; while this many wait, we stop
/// reading from that peer (TCP backpressure).
pub const MAX_QUEUED_PEER_REQUESTS: usize = 16;
/// How many timed-out request ids we remember per peer, so a late answer is charged once
/// (as the timeout), not again as unsolicited.
const TIMED_OUT_IDS: usize = 64;

/// Most hashes we accept in one NewPooledTransactionHashes (reth's and geth's limit);
/// more is a bad announcement.
///
/// Spec: <https://github.com/ethereum/devp2p/blob/master/caps/eth.md#newpooledtransactionhashes-0x08>
pub const MAX_ANNOUNCED_TRANSACTIONS: usize = 4096;
/// Most hashes in one GetPooledTransactions we answer (reth's and geth's 256).
pub const MAX_POOLED_TRANSACTIONS_SERVE: usize = 256;

/// Where sessions find pooled transactions to serve; empty until the node sets one.
pub(crate) type TxSourceSlot =
    std::sync::Arc<std::sync::OnceLock<std::sync::Arc<dyn crate::TransactionSource>>>;

/// Transaction gossip to send to one peer.
#[derive(Debug, Clone)]
pub enum Gossip {
    /// Whole transactions (`Transactions`).
    Transactions(Vec<alloy_consensus::TxEnvelope>),
    /// Announcements (`NewPooledTransactionHashes`): hash, type and size of each.
    Hashes(Vec<crate::GossipTx>),
}

/// A command for a session.
#[derive(Debug)]
pub(crate) enum SessionCommand {
    Request { req: PeerRequest, tx: oneshot::Sender<Result<PeerResponse, RequestError>> },
    Announce { blocks: Vec<BlockHashNumber>, latest: (u64, B256) },
    Gossip(Gossip),
    Disconnect(DisconnectReason),
}

struct Inflight {
    kind: RequestKind,
    sent: Instant,
    deadline: Instant,
    tx: oneshot::Sender<Result<PeerResponse, RequestError>>,
}

/// What a session needs to run.
pub(crate) struct Session {
    pub(crate) id: PeerId,
    /// The connection's serial (see the manager's `admit`).
    pub(crate) serial: u64,
    pub(crate) eth: EthStream<EciesStream<TcpStream>>,
    pub(crate) commands: mpsc::Receiver<SessionCommand>,
    pub(crate) manager: mpsc::Sender<ManagerMsg>,
    pub(crate) store: ChainStore,
    /// Whether this peer gets NewBlockHashes (PoA/PoW chain, not a PoS-only client).
    pub(crate) announce_blocks: bool,
    pub(crate) timeout_min: Duration,
    pub(crate) timeout_max: Duration,
    /// Latest block of the range we last told the peer (Status or BlockRangeUpdate).
    pub(crate) range_sent: u64,
    pub(crate) counters: std::sync::Arc<crate::Counters>,
    /// Serving budget: bytes per second and burst.
    pub(crate) serve_rate: u64,
    pub(crate) serve_burst: u64,
    /// Soft limit of an eth/70 Receipts page, in bytes.
    pub(crate) receipts_page_limit: usize,
    /// The pool's transactions, for GetPooledTransactions.
    pub(crate) transactions: TxSourceSlot,
}

struct State {
    inflight: HashMap<u64, Inflight>,
    /// Ids of our requests that timed out (their late answers are ignored).
    timed_out: BoundedSet<u64>,
    next_id: u64,
    srtt: Option<Duration>,
    known: BoundedSet<B256>,
    /// The peer's requests waiting for its serving budget.
    to_serve: VecDeque<EthMessage>,
    budget: ServeBudget,
    /// Messages to the peer not yet written: written while we keep reading, so two
    /// peers writing to each other at once never both block (each would wait for the
    /// other to read).
    outbox: VecDeque<EthMessage>,
}

impl Session {
    fn timeout(&self, srtt: Option<Duration>) -> Duration {
        srtt.map_or(self.timeout_max, |rtt| (rtt * 4).clamp(self.timeout_min, self.timeout_max))
    }

    async fn report(&self, msg: ManagerMsg) {
        let _ = self.manager.send(msg).await;
    }

    async fn penalize(&self, penalty: Penalty) {
        self.report(ManagerMsg::Penalize { peer: self.id, penalty }).await;
    }

    /// Runs until the peer disconnects, misbehaves fatally, or we are told to stop.
    pub(crate) async fn run(mut self) {
        let mut st = State {
            inflight: HashMap::new(),
            timed_out: BoundedSet::new(TIMED_OUT_IDS),
            next_id: 1,
            srtt: None,
            known: BoundedSet::new(KNOWN_BLOCKS_PER_PEER),
            to_serve: VecDeque::new(),
            budget: ServeBudget::new(self.serve_rate, self.serve_burst, Instant::now()),
            outbox: VecDeque::new(),
        };
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let (reason, penalty) = loop {
            let serve_at = st.budget.ready_at(Instant::now());
            tokio::select! {
                msg = io(&mut self.eth, &mut st.outbox, st.to_serve.len() < MAX_QUEUED_PEER_REQUESTS) => match msg {
                    Some(Ok(msg)) => {
                        if let Err(e) = self.on_message(&mut st, msg).await {
                            break (e.to_string(), None);
                        }
                    }
                    Some(Err(e)) => {
                        let penalty = breach(&e).then_some(Penalty::ProtocolBreach);
                        break (e.to_string(), penalty);
                    }
                    None => break ("connection closed".to_string(), None),
                },
                cmd = self.commands.recv() => {
                    let cmd = cmd.unwrap_or(SessionCommand::Disconnect(DisconnectReason::ClientQuitting));
                    if let SessionCommand::Disconnect(reason) = cmd {
                        let _ = self.eth.p2p_mut().disconnect(reason).await;
                        break (format!("we disconnected: {reason}"), None);
                    }
                    if let Err(e) = self.on_command(&mut st, cmd).await {
                        break (e.to_string(), None);
                    }
                }
                _ = tokio::time::sleep_until(serve_at.into()), if !st.to_serve.is_empty() && st.outbox.len() < MAX_OUTBOX_TO_SERVE => {
                    if let Err(e) = self.serve_next(&mut st).await {
                        break (e.to_string(), None);
                    }
                }
                _ = tick.tick() => self.expire(&mut st).await,
            }
        };
        for (_, req) in st.inflight.drain() {
            let _ = req.tx.send(Err(RequestError::Disconnected));
        }
        // Requests the manager queued for us after we stopped reading: the peer is gone.
        self.commands.close();
        while let Ok(cmd) = self.commands.try_recv() {
            if let SessionCommand::Request { tx, .. } = cmd {
                let _ = tx.send(Err(RequestError::Disconnected));
            }
        }
        debug!(peer = %self.id, %reason, "session ended");
        self.report(ManagerMsg::Closed { peer: self.id, serial: self.serial, reason, penalty })
            .await;
    }

    async fn expire(&self, st: &mut State) {
        let now = Instant::now();
        let expired: Vec<u64> =
            st.inflight.iter().filter(|(_, r)| r.deadline <= now).map(|(id, _)| *id).collect();
        for id in expired {
            let req = st.inflight.remove(&id).expect("listed");
            st.timed_out.insert(id);
            debug!(peer = %self.id, kind = req.kind.name(), "request timed out");
            metrics::counter!("tern_request_timeouts_total").increment(1);
            // The penalty reaches the manager before the caller learns of the timeout, so
            // a caller that then asks for the peer's standing sees it.
            self.penalize(Penalty::Timeout).await;
            let _ = req.tx.send(Err(RequestError::Timeout(req.deadline - req.sent)));
        }
    }

    /// Queues `msg` for the peer (written by [`io`] as the peer reads).
    fn send(st: &mut State, msg: EthMessage) -> Result<(), EthError> {
        st.outbox.push_back(msg);
        Ok(())
    }

    async fn on_command(&mut self, st: &mut State, cmd: SessionCommand) -> Result<(), EthError> {
        match cmd {
            SessionCommand::Request { req, tx } => {
                if st.inflight.len() >= MAX_INFLIGHT_PER_PEER {
                    let _ = tx.send(Err(RequestError::TooManyInflight));
                    return Ok(());
                }
                let version = self.eth.version();
                if matches!(req, PeerRequest::GetReceiptsPage { .. })
                    && version != EthVersion::Eth70
                {
                    let _ = tx.send(Err(RequestError::Unsupported("paged receipts (eth/70)")));
                    return Ok(());
                }
                let request_id = st.next_id;
                st.next_id += 1;
                let kind = req.kind();
                let msg = match req {
                    PeerRequest::GetReceipts(hashes) if version == EthVersion::Eth70 => {
                        EthMessage::GetReceipts70(GetReceipts70 {
                            request_id,
                            first_block_receipt_index: 0,
                            hashes,
                        })
                    }
                    PeerRequest::GetReceiptsPage { first_index, hashes } => {
                        EthMessage::GetReceipts70(GetReceipts70 {
                            request_id,
                            first_block_receipt_index: first_index,
                            hashes,
                        })
                    }
                    PeerRequest::GetBlockHeaders(m) => {
                        EthMessage::GetBlockHeaders(RequestPair { request_id, message: m })
                    }
                    PeerRequest::GetBlockBodies(h) => EthMessage::GetBlockBodies(RequestPair {
                        request_id,
                        message: GetBlockBodies(h),
                    }),
                    PeerRequest::GetReceipts(h) => {
                        EthMessage::GetReceipts(RequestPair { request_id, message: GetReceipts(h) })
                    }
                    PeerRequest::GetPooledTransactions(h) => {
                        EthMessage::GetPooledTransactions(RequestPair {
                            request_id,
                            message: GetPooledTransactions(h),
                        })
                    }
                };
                let now = Instant::now();
                let deadline = now + self.timeout(st.srtt);
                st.inflight.insert(request_id, Inflight { kind, sent: now, deadline, tx });
                trace!(peer = %self.id, request_id, kind = kind.name(), "request sent");
                Self::send(st, msg)
            }
            SessionCommand::Announce { blocks, latest } => {
                if self.announce_blocks {
                    let fresh: Vec<BlockHashNumber> =
                        blocks.into_iter().filter(|b| st.known.insert(b.hash)).collect();
                    if !fresh.is_empty() {
                        Self::send(st, EthMessage::NewBlockHashes(NewBlockHashes(fresh)))?;
                    }
                }
                if self.eth.version().is_eth69_or_later()
                    && latest.0 >= self.range_sent + RANGE_UPDATE_INTERVAL
                {
                    self.range_sent = latest.0;
                    let update =
                        BlockRangeUpdate { earliest: 0, latest: latest.0, latest_hash: latest.1 };
                    Self::send(st, EthMessage::BlockRangeUpdate(update))?;
                }
                Ok(())
            }
            // Gossip is shed when the peer reads slower than we gossip.
            SessionCommand::Gossip(_) if st.outbox.len() >= MAX_OUTBOX_GOSSIP => {
                metrics::counter!("tern_tx_gossip_dropped_total").increment(1);
                Ok(())
            }
            SessionCommand::Gossip(Gossip::Transactions(txs)) => {
                Self::send(st, EthMessage::Transactions(Transactions(txs)))
            }
            SessionCommand::Gossip(Gossip::Hashes(announced)) => {
                let mut msg = NewPooledTransactionHashes::default();
                let mut types = Vec::with_capacity(announced.len());
                for t in announced {
                    types.push(t.ty);
                    msg.sizes.push(t.size);
                    msg.hashes.push(t.hash);
                }
                msg.types = types.into();
                Self::send(st, EthMessage::NewPooledTransactionHashes(msg))
            }
            SessionCommand::Disconnect(_) => unreachable!("handled by run"),
        }
    }

    /// Answers the oldest queued request of the peer from the store, and charges its
    /// size to the peer's serving budget.
    async fn serve_next(&mut self, st: &mut State) -> Result<(), EthError> {
        let Some(msg) = st.to_serve.pop_front() else { return Ok(()) };
        let (reply, bytes) = match msg {
            EthMessage::GetBlockHeaders(r) => {
                let headers = serve_headers(&self.store, &r.message).unwrap_or_default();
                self.counters.served_headers(headers.len());
                let bytes = headers.iter().map(alloy_rlp::Encodable::length).sum();
                let reply =
                    RequestPair { request_id: r.request_id, message: BlockHeaders(headers) };
                (EthMessage::BlockHeaders(reply), bytes)
            }
            EthMessage::GetBlockBodies(r) => {
                let bodies = serve_bodies(&self.store, &r.message.0).unwrap_or_default();
                self.counters.served_bodies(bodies.len());
                let bytes = bodies.iter().map(alloy_rlp::Encodable::length).sum();
                let reply = RequestPair { request_id: r.request_id, message: BlockBodies(bodies) };
                (EthMessage::BlockBodies(reply), bytes)
            }
            EthMessage::GetReceipts(r) => {
                let receipts = serve_receipts(&self.store, &r.message.0).unwrap_or_default();
                let bytes =
                    receipts.iter().flatten().map(alloy_eips::Encodable2718::encode_2718_len).sum();
                let request_id = r.request_id;
                let reply = match self.eth.version() {
                    EthVersion::Eth68 => EthMessage::Receipts68(RequestPair {
                        request_id,
                        message: Receipts68(receipts),
                    }),
                    EthVersion::Eth69 | EthVersion::Eth70 => EthMessage::Receipts69(RequestPair {
                        request_id,
                        message: Receipts69(without_bloom(receipts)),
                    }),
                };
                (reply, bytes)
            }
            EthMessage::GetReceipts70(r) => {
                let (receipts, last_block_incomplete) = serve_receipts_page(
                    &self.store,
                    r.first_block_receipt_index,
                    &r.hashes,
                    self.receipts_page_limit,
                )
                .unwrap_or_default();
                let bytes =
                    receipts.iter().flatten().map(alloy_eips::Encodable2718::encode_2718_len).sum();
                let reply = Receipts70 {
                    request_id: r.request_id,
                    last_block_incomplete,
                    receipts: without_bloom(receipts),
                };
                (EthMessage::Receipts70(reply), bytes)
            }
            EthMessage::GetPooledTransactions(r) => {
                let hashes = &r.message.0[..r.message.0.len().min(MAX_POOLED_TRANSACTIONS_SERVE)];
                let txs = self
                    .transactions
                    .get()
                    .map(|src| src.pooled_transactions(hashes, crate::SOFT_RESPONSE_LIMIT))
                    .unwrap_or_default();
                let bytes = txs.iter().map(alloy_eips::Encodable2718::encode_2718_len).sum();
                let reply =
                    RequestPair { request_id: r.request_id, message: PooledTransactions(txs) };
                (EthMessage::PooledTransactions(reply), bytes)
            }
            _ => unreachable!("only requests are queued"),
        };
        st.budget.charge(bytes, Instant::now());
        Self::send(st, reply)
    }

    async fn on_message(&mut self, st: &mut State, msg: EthMessage) -> Result<(), EthError> {
        let (request_id, resp) = match msg {
            // ---- their requests: answered in order, within the peer's serving budget ----
            msg @ (EthMessage::GetBlockHeaders(_)
            | EthMessage::GetBlockBodies(_)
            | EthMessage::GetReceipts(_)
            | EthMessage::GetReceipts70(_)
            | EthMessage::GetPooledTransactions(_)) => {
                st.to_serve.push_back(msg);
                return Ok(());
            }
            // ---- responses to ours ----
            EthMessage::BlockHeaders(r) => (r.request_id, PeerResponse::BlockHeaders(r.message.0)),
            EthMessage::BlockBodies(r) => (r.request_id, PeerResponse::BlockBodies(r.message.0)),
            EthMessage::Receipts68(r) => (r.request_id, PeerResponse::Receipts68(r.message)),
            EthMessage::Receipts69(r) => (r.request_id, PeerResponse::Receipts69(r.message)),
            EthMessage::Receipts70(r) => (
                r.request_id,
                PeerResponse::Receipts70 {
                    last_block_incomplete: r.last_block_incomplete,
                    receipts: Receipts69(r.receipts),
                },
            ),
            EthMessage::PooledTransactions(r) => {
                (r.request_id, PeerResponse::PooledTransactions(r.message.0))
            }
            // ---- announcements ----
            EthMessage::NewBlockHashes(m) => {
                if m.0.len() > MAX_ANNOUNCED_HASHES {
                    self.penalize(Penalty::BadAnnouncement).await;
                    return Ok(());
                }
                m.0.iter().for_each(|b| {
                    st.known.insert(b.hash);
                });
                self.report(ManagerMsg::Event(crate::NetworkEvent::NewBlockHashes {
                    peer: self.id,
                    blocks: m.0,
                }))
                .await;
                return Ok(());
            }
            EthMessage::NewBlock(b) => {
                st.known.insert(b.block.header.hash_slow());
                self.report(ManagerMsg::Event(crate::NetworkEvent::NewBlock {
                    peer: self.id,
                    block: b,
                }))
                .await;
                return Ok(());
            }
            EthMessage::BlockRangeUpdate(range) => {
                self.report(ManagerMsg::Event(crate::NetworkEvent::BlockRange {
                    peer: self.id,
                    range,
                }))
                .await;
                return Ok(());
            }
            EthMessage::Transactions(m) => {
                // Blob transactions are announced, never broadcast whole (EIP-4844).
                if m.0.iter().any(|t| t.is_eip4844()) {
                    self.penalize(Penalty::BadTransaction).await;
                    return Ok(());
                }
                let event = crate::NetworkEvent::Transactions { peer: self.id, txs: m.0 };
                self.report(ManagerMsg::Event(event)).await;
                return Ok(());
            }
            EthMessage::NewPooledTransactionHashes(m) => {
                if !m.is_valid() || m.hashes.len() > MAX_ANNOUNCED_TRANSACTIONS {
                    self.penalize(Penalty::BadAnnouncement).await;
                    return Ok(());
                }
                let announced = m
                    .hashes
                    .iter()
                    .zip(m.types.iter())
                    .zip(&m.sizes)
                    .map(|((hash, ty), size)| crate::GossipTx { hash: *hash, ty: *ty, size: *size })
                    .collect();
                let event = crate::NetworkEvent::TransactionHashes { peer: self.id, announced };
                self.report(ManagerMsg::Event(event)).await;
                return Ok(());
            }
            EthMessage::Status(_) => unreachable!("EthStream rejects a second Status"),
        };
        let Some(req) = st.inflight.remove(&request_id) else {
            if st.timed_out.remove(&request_id) {
                // Already charged as a timeout when it expired.
                debug!(peer = %self.id, request_id, "late response ignored");
                return Ok(());
            }
            debug!(peer = %self.id, request_id, "unsolicited response");
            self.penalize(Penalty::UnsolicitedResponse).await;
            return Ok(());
        };
        if req.kind != resp.kind() {
            let _ = req
                .tx
                .send(Err(RequestError::BadResponse("response type differs from the request's")));
            self.penalize(Penalty::UnsolicitedResponse).await;
            return Ok(());
        }
        let rtt = req.sent.elapsed();
        st.srtt = Some(st.srtt.map_or(rtt, |s| (s * 7 + rtt) / 8));
        if let PeerResponse::BlockHeaders(h) = &resp {
            h.iter().for_each(|h| {
                st.known.insert(h.hash_slow());
            });
        }
        // Reward first: whoever reads the peer's standing after the answer sees it.
        self.report(ManagerMsg::Reward { peer: self.id }).await;
        let _ = req.tx.send(Ok(resp));
        Ok(())
    }
}

/// Most messages waiting in a session's outbox before transaction gossip for the peer is
/// dropped.
pub const MAX_OUTBOX_GOSSIP: usize = 64;
/// Most messages waiting in a session's outbox before we stop serving the peer's queued
/// requests (they wait, and past [`MAX_QUEUED_PEER_REQUESTS`] we stop reading from it).
pub const MAX_OUTBOX_TO_SERVE: usize = 16;

/// Writes what `outbox` holds as far as the peer takes it and, if `read`, waits for the
/// peer's next message meanwhile (without `read`, only writes, and stays pending).
fn io<'a>(
    eth: &'a mut EthStream<EciesStream<TcpStream>>,
    outbox: &'a mut VecDeque<EthMessage>,
    read: bool,
) -> impl std::future::Future<Output = Option<Result<EthMessage, EthError>>> + 'a {
    use std::task::Poll;
    std::future::poll_fn(move |cx| {
        while !outbox.is_empty() {
            match eth.poll_ready_unpin(cx) {
                Poll::Ready(Ok(())) => {
                    let msg = outbox.pop_front().expect("not empty");
                    if let Err(e) = eth.start_send_unpin(msg) {
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                Poll::Pending => break,
            }
        }
        if let Poll::Ready(Err(e)) = eth.poll_flush_unpin(cx) {
            return Poll::Ready(Some(Err(e)));
        }
        if read {
            eth.poll_next_unpin(cx)
        } else {
            Poll::Pending
        }
    })
}

/// Whether a session error is the peer's protocol breach (as opposed to I/O or a
/// Disconnect it sent).
fn breach(e: &EthError) -> bool {
    match e {
        EthError::P2p(tern_p2p::P2pError::Ecies(tern_p2p::EciesError::Io(_))) => false,
        // A frame whose MAC fails is garbage on an authenticated connection.
        EthError::P2p(tern_p2p::P2pError::Ecies(_)) => true,
        EthError::P2p(p) => p.disconnect_reason() == Some(DisconnectReason::ProtocolBreach),
        other => other.disconnect_reason() == Some(DisconnectReason::ProtocolBreach),
    }
}

/// Stored receipts per block in eth/69's form.
fn without_bloom(
    blocks: Vec<Vec<alloy_consensus::ReceiptEnvelope>>,
) -> Vec<Vec<tern_eth_wire::Receipt69>> {
    blocks.into_iter().map(|b| b.iter().map(receipt69).collect()).collect()
}

/// A stored receipt in eth/69's form (no bloom: the receiver computes it).
fn receipt69(r: &alloy_consensus::ReceiptEnvelope) -> tern_eth_wire::Receipt69 {
    use alloy_consensus::TxReceipt;
    tern_eth_wire::Receipt69 {
        tx_type: r.tx_type() as u8,
        status: r.status_or_post_state(),
        cumulative_gas_used: r.cumulative_gas_used(),
        logs: r.logs().to_vec(),
    }
}
