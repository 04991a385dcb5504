//! A scripted hostile peer built on Tern's own RLPx and eth stack.
//!
//! [`Adversary::run`] dials a node and plays one [`Behaviour`]: a Status the node must
//! refuse, responses it must reject, floods it must survive, or frames that break the
//! RLPx session. The [`Report`] says what the adversary saw; [`Behaviour::expected`] says
//! what a correct node does, and [`Adversary::is_banned`] checks the part only the node
//! knows. `tern adversary` runs one from the command line.

mod behaviour;
mod chain;
mod verdict;

pub use behaviour::{Behaviour, Expected, UnknownBehaviour};
pub use chain::{ServedChain, MAX_HEADERS};
pub use verdict::{judge, Aftermath, Verdict};

use alloy_consensus::{Block, BlockBody, TxEnvelope};
use alloy_eips::eip1898::HashOrNumber;
use alloy_primitives::{keccak256, B256};
use alloy_rlp::Encodable;
use bytes::{BufMut, BytesMut};
use futures::{SinkExt, StreamExt};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use tern_chainspec::{ChainSpec, Head};
use tern_eth_wire::{
    eth_protocols, status_at, BlockBodies, BlockHashNumber, BlockHeaders, EthError, EthMessage,
    EthStream, EthVersion, GetBlockHeaders, LocalStatus, NewBlockHashes, PooledTransactions,
    Receipts68, Receipts69, RequestPair,
};
use tern_p2p::{
    CapabilityMessage, DisconnectReason, EciesError, EciesStream, Enode, P2pConfig, P2pError,
    PeerId, SecretKey,
};

/// An eth session over TCP.
type Eth = EthStream<EciesStream<tokio::net::TcpStream>>;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::debug;

/// Requests kept in flight by [`Behaviour::HeaderRequestFlood`] (more only queue up at
/// the node, and delay our answers to its requests behind megabytes of headers).
pub const FLOOD_INFLIGHT: usize = 4;
/// NewBlockHashes messages sent by [`Behaviour::AnnouncementFlood`].
pub const ANNOUNCEMENTS: u64 = 2_000;
/// Hashes in each flood announcement; every 100th message carries more than a node
/// accepts in one (eth.md sets no limit; Tern's is 1,024).
const HASHES_PER_ANNOUNCEMENT: u64 = 16;
/// Unrequested BlockHeaders sent by [`Behaviour::UnsolicitedResponses`].
pub const UNSOLICITED: u64 = 20;
/// How far below the head [`Behaviour::BadSeals`] forks (within any reorg depth).
pub const RESEAL_DEPTH: u64 = 8;
/// Delay between bytes of [`Behaviour::SlowHandshake`].
pub const TRICKLE_DELAY: Duration = Duration::from_millis(200);
/// Forged blocks a run remembers, to ask the node for afterwards.
pub const MAX_FORGED: usize = 16;
/// How long [`Adversary::aftermath`] waits for each step (handshake, each answer).
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a run ended, as the adversary saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The RLPx, Hello or Status handshake failed (the node's reason in the text).
    Refused(String),
    /// The node sent Disconnect.
    Disconnected(Option<DisconnectReason>),
    /// The connection ended without a Disconnect (reset, EOF, or a frame we could not
    /// read).
    Closed(String),
    /// The run's duration elapsed with the session still open.
    StillOpen,
}

/// What one adversary run saw.
#[derive(Debug, Clone)]
pub struct Report {
    /// The script played.
    pub behaviour: Behaviour,
    /// Our node id (the one the node penalises).
    pub peer_id: PeerId,
    /// How it ended.
    pub outcome: Outcome,
    /// Requests the node sent us.
    pub requests_received: u64,
    /// Messages we sent after the handshake.
    pub messages_sent: u64,
    /// Answers the node gave to our requests.
    pub responses_received: u64,
    /// Most headers in one of the node's answers.
    pub max_headers_per_response: usize,
    /// From the first connection attempt to the end.
    pub elapsed: Duration,
    /// Blocks we forged and offered (at most [`MAX_FORGED`]): the forged header's hash
    /// for header tricks, the true block's hash for body tricks.
    pub forged: Vec<B256>,
}

impl Report {
    /// Whether the node ended the session (Disconnect or closed connection) or refused it.
    pub fn ended_by_node(&self) -> bool {
        !matches!(self.outcome, Outcome::StillOpen)
    }
}

/// A hostile peer with its own key, pretending to serve a chain.
#[derive(Debug, Clone)]
pub struct Adversary {
    spec: ChainSpec,
    chain: Arc<ServedChain>,
    key: SecretKey,
    /// The one eth version offered in Hello, or every version we speak.
    version: Option<EthVersion>,
}

impl Adversary {
    /// An adversary on `spec` whose Status and answers come from `blocks` (numbers 1…).
    /// Body tricks need blocks with transactions (empty bodies are all alike).
    pub fn new(spec: ChainSpec, blocks: Vec<Block<TxEnvelope>>, key: SecretKey) -> Self {
        let chain = Arc::new(ServedChain::new(&spec, blocks));
        Self { spec, chain, key, version: None }
    }

    /// The same adversary offering only eth `version` in its Hello (by default it offers
    /// every version Tern speaks, and the highest shared one is used).
    pub fn speaking(&self, version: EthVersion) -> Self {
        Self { version: Some(version), ..self.clone() }
    }

    fn protocols(&self) -> Vec<tern_p2p::Protocol> {
        let mut all = eth_protocols();
        if let Some(v) = self.version {
            all.retain(|p| p.cap.version == v as u64);
        }
        all
    }

    /// The same chain and spec under another node key.
    pub fn with_key(&self, key: SecretKey) -> Self {
        Self { key, ..self.clone() }
    }

    /// Our node id.
    pub fn peer_id(&self) -> PeerId {
        tern_p2p::peer_id(&self.key)
    }

    /// Plays `behaviour` against `target` for at most `duration`.
    pub async fn run(&self, behaviour: Behaviour, target: &Enode, duration: Duration) -> Report {
        let started = Instant::now();
        let mut report = Report {
            behaviour,
            peer_id: self.peer_id(),
            outcome: Outcome::StillOpen,
            requests_received: 0,
            messages_sent: 0,
            responses_received: 0,
            max_headers_per_response: 0,
            elapsed: Duration::ZERO,
            forged: Vec::new(),
        };
        let deadline = tokio::time::Instant::from_std(started + duration);
        report.outcome = if behaviour == Behaviour::SlowHandshake {
            self.slow_handshake(target, deadline, &mut report).await
        } else {
            self.session(behaviour, target, deadline, &mut report).await
        };
        report.elapsed = started.elapsed();
        debug!(%behaviour, outcome = ?report.outcome, "adversary run over");
        report
    }

    /// Whether `target` refuses us now (Disconnect `UselessPeer` right after Hello, as a
    /// node does to a banned id).
    pub async fn is_banned(&self, target: &Enode) -> bool {
        let cfg = P2pConfig::new(self.key, self.protocols());
        match tern_p2p::connect(&cfg, target).await {
            Err(P2pError::Disconnected(Some(DisconnectReason::UselessPeer))) => true,
            Err(_) => false,
            Ok(p2p) => {
                let (status, filter) = self.status(&self.chain);
                let r = EthStream::handshake(p2p, &status, &filter).await;
                matches!(
                    r,
                    Err(EthError::P2p(P2pError::Disconnected(Some(DisconnectReason::UselessPeer))))
                )
            }
        }
    }

    /// What a fresh, honest connection finds after `report`'s run: whether the node still
    /// completes a handshake, whether it refuses our key, and whether it serves any block
    /// we forged.
    pub async fn aftermath(&self, report: &Report, target: &Enode) -> Aftermath {
        let banned = report.ended_by_node() && self.is_banned(target).await;
        let probe = self.with_key(tern_p2p::generate_secret_key());
        let cfg = P2pConfig::new(probe.key, probe.protocols());
        let (status, filter) = self.status(&self.chain);
        let session = async {
            let p2p = tern_p2p::connect(&cfg, target).await.map_err(EthError::from)?;
            EthStream::handshake(p2p, &status, &filter).await
        };
        let (alive, took_forgery) = match tokio::time::timeout(PROBE_TIMEOUT, session).await {
            Ok(Ok(mut eth)) => (true, self.serves_forgery(&mut eth, report).await),
            // Unreachable, or the connection dies before the node says anything.
            Ok(Err(EthError::P2p(e @ (P2pError::Ecies(_) | P2pError::Closed)))) => {
                debug!(error = %e, "the node does not complete a handshake");
                (false, false)
            }
            // Disconnect (it is full, say) or a Status it refuses: it answered.
            Ok(Err(e)) => {
                debug!(error = %e, "aftermath session refused");
                (true, false)
            }
            Err(_) => (false, false),
        };
        Aftermath { alive, banned, took_forgery }
    }

    /// Whether the node answers for any of `report.forged` with what we forged.
    async fn serves_forgery(&self, eth: &mut Eth, report: &Report) -> bool {
        for (i, hash) in report.forged.iter().enumerate() {
            let request_id = i as u64;
            let (request, header_trick) = match report.behaviour {
                Behaviour::BadSeals | Behaviour::BrokenLinkage => {
                    let message = GetBlockHeaders {
                        start: HashOrNumber::Hash(*hash),
                        limit: 1,
                        skip: 0,
                        reverse: false,
                    };
                    (EthMessage::GetBlockHeaders(RequestPair { request_id, message }), true)
                }
                _ => {
                    let message = tern_eth_wire::GetBlockBodies(vec![*hash]);
                    (EthMessage::GetBlockBodies(RequestPair { request_id, message }), false)
                }
            };
            if eth.send(request).await.is_err() {
                return false;
            }
            let answer = tokio::time::timeout(PROBE_TIMEOUT, async {
                while let Some(Ok(msg)) = eth.next().await {
                    match msg {
                        EthMessage::BlockHeaders(r) if r.request_id == request_id => {
                            return r.message.0.first().is_some_and(|h| h.hash_slow() == *hash);
                        }
                        EthMessage::BlockBodies(r) if r.request_id == request_id => {
                            let honest =
                                self.chain.number_of(hash).and_then(|n| self.chain.body(n));
                            return r.message.0.first().is_some_and(|b| Some(b) != honest);
                        }
                        _ => {} // the node's own requests and announcements
                    }
                }
                false
            })
            .await;
            if answer.unwrap_or(false) {
                debug!(%hash, header_trick, "the node serves a forged block");
                return true;
            }
        }
        false
    }

    fn status(&self, chain: &ServedChain) -> (LocalStatus, tern_chainspec::ForkFilter) {
        let (number, hash, header) = chain.head();
        let status = status_at(&self.spec, header, hash, chain.total_difficulty());
        let head = Head { number, timestamp: header.timestamp, ..Default::default() };
        (status, self.spec.fork_filter(head))
    }

    async fn session(
        &self,
        behaviour: Behaviour,
        target: &Enode,
        deadline: tokio::time::Instant,
        report: &mut Report,
    ) -> Outcome {
        let resealed;
        let chain: &ServedChain = if behaviour == Behaviour::BadSeals {
            let evil = SecretKey::from_byte_array([0xee; 32]).expect("key");
            let from = self.chain.head().0.saturating_sub(RESEAL_DEPTH).max(1);
            resealed = self.chain.resealed(&evil, from);
            let forged = (from..=resealed.head().0).filter_map(|n| resealed.hash(n));
            report.forged.extend(forged.take(MAX_FORGED));
            &resealed
        } else {
            &self.chain
        };
        let (mut status, filter) = self.status(chain);
        match behaviour {
            Behaviour::WrongGenesis => status.genesis = keccak256(status.genesis),
            Behaviour::WrongNetworkId => status.network_id = status.network_id.wrapping_add(1),
            Behaviour::WrongForkId => {
                status.fork_id.hash = alloy_eips::eip2124::ForkHash([0xde, 0xad, 0xbe, 0xef]);
                status.fork_id.next = 0;
            }
            _ => {}
        }
        let cfg = P2pConfig::new(self.key, self.protocols());
        if behaviour.expected() == Expected::Refused {
            return self.bad_status(&cfg, target, &status, deadline, report).await;
        }
        let handshake = async {
            let p2p = tern_p2p::connect(&cfg, target).await.map_err(EthError::from)?;
            EthStream::handshake(p2p, &status, &filter).await
        };
        let mut eth = match tokio::time::timeout_at(deadline, handshake).await {
            Ok(Ok(eth)) => eth,
            Ok(Err(e)) => return Outcome::Refused(e.to_string()),
            Err(_) => return Outcome::Refused("handshake outlasted the run".into()),
        };
        let mut script = Script { behaviour, chain, report, inflight: 0, sent: 0 };
        if let Err(e) = script.open(&mut eth, &status).await {
            return outcome_of(e);
        }
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return Outcome::StillOpen,
                msg = eth.next() => match msg {
                    None => return Outcome::Closed("connection closed".into()),
                    Some(Err(e)) => return outcome_of(e),
                    Some(Ok(msg)) => {
                        if let Err(e) = script.on_message(&mut eth, msg).await {
                            return outcome_of(e);
                        }
                    }
                },
                _ = tick.tick(), if script.ticking() => {
                    if let Err(e) = script.on_tick(&mut eth).await {
                        return outcome_of(e);
                    }
                }
            }
        }
    }

    /// Sends `status` (which the node must refuse) and reads until the node ends the
    /// session. Our own check of the node's Status is skipped: it is the node's check of
    /// ours that is under test.
    async fn bad_status(
        &self,
        cfg: &P2pConfig,
        target: &Enode,
        status: &LocalStatus,
        deadline: tokio::time::Instant,
        report: &mut Report,
    ) -> Outcome {
        let mut p2p = match tern_p2p::connect(cfg, target).await {
            Ok(p2p) => p2p,
            Err(e) => return Outcome::Refused(e.to_string()),
        };
        let Some(version) =
            p2p.shared_capabilities().first().and_then(|c| EthVersion::from_u64(c.cap.version))
        else {
            return Outcome::Refused("no shared eth version".into());
        };
        let msg = EthMessage::Status(status.to_status(version));
        let status = CapabilityMessage { capability: 0, id: msg.id(), payload: msg.payload() };
        if let Err(e) = p2p.send(status).await {
            return Outcome::Closed(e.to_string());
        }
        report.messages_sent += 1;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return Outcome::StillOpen,
                msg = p2p.next() => match msg {
                    Some(Ok(_)) => continue, // their Status
                    Some(Err(P2pError::Disconnected(reason))) => return Outcome::Disconnected(reason),
                    Some(Err(e)) => return Outcome::Closed(e.to_string()),
                    None => return Outcome::Closed("connection closed".into()),
                },
            }
        }
    }

    /// Sends a valid auth one byte per [`TRICKLE_DELAY`] until the node closes the socket.
    async fn slow_handshake(
        &self,
        target: &Enode,
        deadline: tokio::time::Instant,
        report: &mut Report,
    ) -> Outcome {
        let mut tcp = match tokio::net::TcpStream::connect(target.tcp_addr()).await {
            Ok(t) => t,
            Err(e) => return Outcome::Refused(e.to_string()),
        };
        let auth = match tern_ecies::Handshake::initiator(self.key, target.id) {
            Ok(mut hs) => hs.create_auth(),
            Err(e) => return Outcome::Refused(e.to_string()),
        };
        let mut buf = [0u8; 64];
        for byte in auth {
            if tcp.write_all(&[byte]).await.is_err() {
                return Outcome::Closed("write failed".into());
            }
            report.messages_sent += 1;
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return Outcome::StillOpen,
                _ = tokio::time::sleep(TRICKLE_DELAY) => {}
                r = tcp.read(&mut buf) => match r {
                    Ok(0) | Err(_) => return Outcome::Closed("closed during the handshake".into()),
                    Ok(_) => return Outcome::Closed("answered a partial auth".into()),
                },
            }
        }
        Outcome::StillOpen
    }
}

/// The per-session state of a script.
struct Script<'a> {
    behaviour: Behaviour,
    chain: &'a ServedChain,
    report: &'a mut Report,
    /// Our requests awaiting an answer (request flood).
    inflight: usize,
    /// Flood messages sent so far.
    sent: u64,
}

impl Script<'_> {
    /// What the script does right after the handshake.
    async fn open(&mut self, eth: &mut Eth, status: &LocalStatus) -> Result<(), EthError> {
        match self.behaviour {
            Behaviour::StatusTwice => {
                self.send(eth, EthMessage::Status(status.to_status(eth.version()))).await?;
            }
            Behaviour::OversizedFrame => {
                // eth BlockHeaders (offset + 4) whose snappy header announces 32 MiB.
                let offset = eth.p2p().shared_capabilities()[0].offset;
                let mut frame = BytesMut::new();
                (offset + 4).encode(&mut frame);
                frame.put_slice(&[0x80, 0x80, 0x80, 0x10]);
                frame.put_slice(&[0u8; 64]);
                eth.p2p_mut().get_mut().send(frame.freeze()).await.map_err(P2pError::from)?;
                self.report.messages_sent += 1;
            }
            Behaviour::BadMac => {
                let tcp = eth.p2p_mut().get_mut().get_mut();
                tcp.write_all(&[0x5a; 64])
                    .await
                    .map_err(|e| P2pError::from(EciesError::from(e)))?;
                self.report.messages_sent += 1;
            }
            Behaviour::AnnouncementFlood => {
                for i in 0..ANNOUNCEMENTS {
                    let count = if i % 100 == 99 { 1025 } else { HASHES_PER_ANNOUNCEMENT };
                    let blocks = (0..count)
                        .map(|j| BlockHashNumber {
                            hash: keccak256((i * 10_000 + j).to_be_bytes()),
                            number: if j % 2 == 0 { u64::MAX - i } else { i * 1_000_000 },
                        })
                        .collect();
                    self.send(eth, EthMessage::NewBlockHashes(NewBlockHashes(blocks))).await?;
                }
            }
            Behaviour::HeaderRequestFlood => {
                while self.inflight < FLOOD_INFLIGHT {
                    self.flood_request(eth).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn ticking(&self) -> bool {
        self.behaviour == Behaviour::UnsolicitedResponses && self.sent < UNSOLICITED
    }

    async fn on_tick(&mut self, eth: &mut Eth) -> Result<(), EthError> {
        let request_id = u64::MAX - self.sent;
        self.sent += 1;
        let msg = RequestPair { request_id, message: BlockHeaders::default() };
        self.send(eth, EthMessage::BlockHeaders(msg)).await
    }

    async fn flood_request(&mut self, eth: &mut Eth) -> Result<(), EthError> {
        let n = self.sent;
        self.sent += 1;
        self.inflight += 1;
        let start = if n % 3 == 2 { HashOrNumber::Hash(self.chain.head().1) } else { n.into() };
        let message = GetBlockHeaders {
            start,
            limit: u64::MAX - n,
            skip: if n.is_multiple_of(2) { 0 } else { n },
            reverse: n % 3 == 2,
        };
        self.send(eth, EthMessage::GetBlockHeaders(RequestPair { request_id: n, message })).await
    }

    async fn send(&mut self, eth: &mut Eth, msg: EthMessage) -> Result<(), EthError> {
        self.report.messages_sent += 1;
        eth.send(msg).await
    }

    async fn on_message(&mut self, eth: &mut Eth, msg: EthMessage) -> Result<(), EthError> {
        let b = self.behaviour;
        let answer_id =
            |id: u64| if b == Behaviour::WrongRequestIds { id.wrapping_add(1000) } else { id };
        let reply = match msg {
            EthMessage::GetBlockHeaders(r) => {
                self.report.requests_received += 1;
                let mut headers = self.chain.headers(&r.message);
                if b == Behaviour::BrokenLinkage {
                    if let Some(last) = headers.last_mut() {
                        last.parent_hash = B256::repeat_byte(0xbd);
                        self.forged(last.hash_slow());
                    }
                }
                let message = BlockHeaders(headers);
                EthMessage::BlockHeaders(RequestPair {
                    request_id: answer_id(r.request_id),
                    message,
                })
            }
            EthMessage::GetBlockBodies(r) => {
                self.report.requests_received += 1;
                let bodies = r.message.0.iter().filter_map(|h| self.body_for(h)).collect();
                let message = BlockBodies(bodies);
                EthMessage::BlockBodies(RequestPair {
                    request_id: answer_id(r.request_id),
                    message,
                })
            }
            EthMessage::GetReceipts(r) => {
                self.report.requests_received += 1;
                let request_id = answer_id(r.request_id);
                match eth.version() {
                    EthVersion::Eth68 => EthMessage::Receipts68(RequestPair {
                        request_id,
                        message: Receipts68::default(),
                    }),
                    EthVersion::Eth69 | EthVersion::Eth70 => EthMessage::Receipts69(RequestPair {
                        request_id,
                        message: Receipts69::default(),
                    }),
                }
            }
            EthMessage::GetReceipts70(r) => {
                self.report.requests_received += 1;
                let request_id = answer_id(r.request_id);
                EthMessage::Receipts70(tern_eth_wire::Receipts70 {
                    request_id,
                    ..Default::default()
                })
            }
            EthMessage::GetPooledTransactions(r) => {
                self.report.requests_received += 1;
                let message = PooledTransactions::default();
                let request_id = answer_id(r.request_id);
                EthMessage::PooledTransactions(RequestPair { request_id, message })
            }
            EthMessage::BlockHeaders(r) if b == Behaviour::HeaderRequestFlood => {
                self.report.responses_received += 1;
                let n = r.message.0.len();
                self.report.max_headers_per_response = self.report.max_headers_per_response.max(n);
                self.inflight = self.inflight.saturating_sub(1);
                return self.flood_request(eth).await;
            }
            _ => return Ok(()),
        };
        if b == Behaviour::Silent {
            return Ok(());
        }
        self.send(eth, reply).await
    }

    /// Remembers a block we forged (up to [`MAX_FORGED`]).
    fn forged(&mut self, hash: B256) {
        let forged = &mut self.report.forged;
        if forged.len() < MAX_FORGED && !forged.contains(&hash) {
            forged.push(hash);
        }
    }

    /// The body this script serves for block `hash`, if it serves one.
    fn body_for(&mut self, hash: &B256) -> Option<BlockBody<TxEnvelope>> {
        let n = self.chain.number_of(hash)?;
        let body = self.served_body(n)?;
        if Some(&body) != self.chain.body(n) {
            self.forged(*hash);
        }
        Some(body)
    }

    fn served_body(&self, n: u64) -> Option<BlockBody<TxEnvelope>> {
        match self.behaviour {
            Behaviour::MismatchedBodies => {
                let mut body = self.chain.body(n)?.clone();
                if body.transactions.is_empty() {
                    body.ommers.push(self.chain.head().2.clone());
                } else {
                    body.transactions.clear();
                }
                Some(body)
            }
            Behaviour::BodiesForOtherBlocks => {
                let other = if n == self.chain.head().0 { n.checked_sub(1)? } else { n + 1 };
                self.chain.body(other).cloned()
            }
            _ => self.chain.body(n).cloned(),
        }
    }
}

fn outcome_of(e: EthError) -> Outcome {
    match e {
        EthError::P2p(P2pError::Disconnected(reason)) => Outcome::Disconnected(reason),
        other => Outcome::Closed(other.to_string()),
    }
}
