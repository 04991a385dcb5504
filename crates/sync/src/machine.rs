//! The sync state machine: events in, actions out, no I/O.
//!
//! A *round* downloads from a base block (our head, or a fork's common ancestor) toward a
//! target: header ranges requested from several peers at once, verified strictly in
//! order (linkage, consensus rules, seals), then bodies for the verified headers (empty
//! bodies inferred from the header), then commits in large batches — or, for a fork, a
//! fork-choice decision and one reorg. Memory is bounded by the window, not the chain.

use alloy_consensus::{BlockBody, Header, TxEnvelope, EMPTY_OMMER_ROOT_HASH, EMPTY_ROOT_HASH};
use alloy_eips::eip1898::HashOrNumber;
use alloy_primitives::{Address, B256, U256};
use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    time::{Duration, Instant},
};
use tern_chainspec::{ChainSpec, Consensus};
use tern_consensus::{
    check_body, clique::recover_signers, should_switch, validate_header, ChainTip, ConsensusError,
    ErrorKind, Snapshot,
};
use tern_eth_wire::GetBlockHeaders;
use tern_execution::BlockToExecute;
use tern_network::Penalty;
use tern_p2p::PeerId;
use tern_storage::SealedBlock;
use tracing::{debug, info, warn};

/// Tuning of the sync machine.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Headers per request (the serving limit of geth and reth).
    pub header_batch: u64,
    /// Most blocks downloaded ahead of the committed head (bounds header memory).
    pub window: u64,
    /// Gas of the blocks whose bodies may be in flight or waiting to be committed: bounds
    /// body memory, whatever the block size (a transfer is 21,000 gas and ~110 bytes).
    pub body_gas_budget: u64,
    /// Most bodies per request.
    pub body_batch: usize,
    /// Blocks per commit.
    pub commit_batch: usize,
    /// Requests in flight per peer at first; a peer that keeps the verifier waiting gets
    /// more, up to [`SyncConfig::max_peer_inflight_cap`].
    pub max_peer_inflight: usize,
    /// Most requests in flight per peer (the network's own cap is 8).
    pub max_peer_inflight_cap: usize,
    /// Deepest reorg we follow, in blocks (canonical headers kept in memory).
    pub max_reorg_depth: u64,
    /// How often idle peers are asked for the blocks past our head (one range request
    /// fetches everything new, up to `header_batch`).
    pub poll_interval: Duration,
    /// Check the state root of every block, also in bulk sync (by default a large batch
    /// has its root checked once, after its last block, as reth's pipeline does; see
    /// `tern_execution::execute_and_store`).
    pub every_state_root: bool,
}

/// The wall clock the machine checks header timestamps against: the Unix time `unix`
/// (seconds) at the monotonic instant `at`. Every event carries an `Instant`, so the
/// machine knows the wall time of each event without reading a clock itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClock {
    /// A monotonic instant.
    pub at: Instant,
    /// Seconds since the Unix epoch at `at`.
    pub unix: u64,
}

impl WallClock {
    /// The system clock now.
    pub fn system() -> Self {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self { at: Instant::now(), unix }
    }

    /// The Unix time at `now`.
    pub fn unix_at(&self, now: Instant) -> u64 {
        match now.checked_duration_since(self.at) {
            Some(d) => self.unix + d.as_secs(),
            None => self.unix.saturating_sub(self.at.duration_since(now).as_secs()),
        }
    }
}

/// Longest wait before a header that was not yet valid (from the future) is asked again.
pub const MAX_FUTURE_RETRY: Duration = Duration::from_secs(5);

/// A round that verifies and stores nothing for this long starts over from the stored
/// head (logging where it stood): a liveness backstop for states no rule above foresaw.
/// Far above one request's timeout, so a slow but working peer never trips it.
pub const ROUND_STALL: Duration = Duration::from_secs(60);

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            header_batch: 1024,
            window: 16 * 1024,
            // ~70,000 transfers: ~8 MB on the wire, a few tens of MB decoded.
            body_gas_budget: 1_500_000_000,
            body_batch: 128,
            commit_batch: 4096,
            max_peer_inflight: 2,
            max_peer_inflight_cap: tern_network::MAX_INFLIGHT_PER_PEER,
            max_reorg_depth: 1024,
            poll_interval: Duration::from_secs(1),
            every_state_root: false,
        }
    }
}

/// What the machine asks its driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send GetBlockHeaders; answer with [`SyncMachine::on_headers`].
    GetHeaders {
        /// The peer.
        peer: PeerId,
        /// The machine's request id.
        id: u64,
        /// The request.
        req: GetBlockHeaders,
    },
    /// Send GetBlockBodies; answer with [`SyncMachine::on_bodies`].
    GetBodies {
        /// The peer.
        peer: PeerId,
        /// The machine's request id.
        id: u64,
        /// Block hashes.
        hashes: Vec<B256>,
    },
    /// Lower a peer's reputation.
    Penalize {
        /// The peer.
        peer: PeerId,
        /// Why.
        penalty: Penalty,
    },
    /// Execute verified blocks and append them to the store (they extend the head).
    Commit {
        /// The blocks, ascending.
        blocks: Vec<ReadyBlock>,
    },
    /// Unwind the store to `ancestor`, then execute and append `blocks` (a heavier fork).
    Reorg {
        /// The common ancestor's number.
        ancestor: u64,
        /// The new branch, ascending from ancestor + 1.
        blocks: Vec<ReadyBlock>,
    },
}

/// A verified block ready to execute and store, with the peer that served its header
/// (blamed if it does not execute to what the header says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyBlock {
    /// The block and its fee recipient; its senders are not recovered yet (empty): the
    /// driver's sender stage recovers those of a whole batch at once.
    pub block: BlockToExecute,
    /// Who served the header.
    pub peer: PeerId,
}

impl AsRef<BlockToExecute> for ReadyBlock {
    fn as_ref(&self) -> &BlockToExecute {
        &self.block
    }
}

/// Most hashes of blocks that failed execution kept to refuse them again.
const MAX_BAD_BLOCKS: usize = 1024;

/// How far we are from the best known head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStatus {
    /// At the best known head.
    InSync,
    /// At most 5 blocks behind.
    SmallGap(u64),
    /// At most 100 blocks behind.
    MediumGap(u64),
    /// More than 100 blocks behind.
    LargeGap(u64),
}

impl SyncStatus {
    fn of(gap: u64) -> Self {
        match gap {
            0 => Self::InSync,
            1..=5 => Self::SmallGap(gap),
            6..=100 => Self::MediumGap(gap),
            _ => Self::LargeGap(gap),
        }
    }
}

/// A failed request, as the driver reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Timed out (the network already penalized it).
    Timeout,
    /// The peer is gone, or the request could not be sent.
    Gone,
}

#[derive(Debug)]
struct Peer {
    head: u64,
    head_hash: B256,
    number_known: bool,
    inflight: usize,
    /// Requests it may have in flight now (grows while the verifier waits for data).
    limit: usize,
    strikes: u32,
    /// Its chain did not link with ours in this round: not asked again until the next.
    unusable: bool,
    /// A head of its whose chain we gave up on (no common ancestor within the reorg
    /// depth): not followed again until it claims another head.
    ignored: Option<B256>,
}

impl Peer {
    /// Whether it claims a head we know the number of and have not given up on.
    fn claims_known_head(&self) -> bool {
        self.number_known && self.ignored != Some(self.head_hash)
    }

    /// Takes `number` as its head if it is higher than the one we know (or we knew none).
    fn raise_head(&mut self, number: u64, hash: B256) {
        if number > self.head || !self.number_known {
            self.head = number;
            self.head_hash = hash;
            self.number_known = true;
        }
    }

    /// Whether its claimed head may be synced from in this round.
    fn followable(&self) -> bool {
        self.claims_known_head() && !self.unusable
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Idle,
    Forward,
    FindAncestor,
    Branch,
}

#[derive(Debug)]
enum Request {
    /// One header, by the hash a peer claims as its head.
    Probe(HashOrNumber),
    /// Everything past our head, up to one range: polling at the tip.
    Poll {
        start: u64,
    },
    Headers {
        start: u64,
        count: u64,
    },
    Ancestor {
        start: u64,
    },
    Bodies {
        numbers: Vec<u64>,
    },
}

impl Request {
    /// Its kind, for logs.
    fn kind(&self) -> &'static str {
        match self {
            Self::Probe(_) => "probe",
            Self::Poll { .. } => "poll",
            Self::Headers { .. } => "headers",
            Self::Ancestor { .. } => "ancestor",
            Self::Bodies { .. } => "bodies",
        }
    }
}

#[derive(Debug)]
struct Verified {
    hash: B256,
    header: Header,
    body: Option<BlockBody<TxEnvelope>>,
    /// Who receives the fees: the Clique signer, else the header's beneficiary.
    beneficiary: Address,
    /// Who served the header.
    peer: PeerId,
    /// Its gas is counted in the body budget (its body was requested).
    gas_counted: bool,
}

/// A canonical header we keep for reorgs and Clique snapshots.
#[derive(Debug, Clone)]
struct Recent {
    hash: B256,
    header: Header,
    td: U256,
    /// Who sealed it (Clique), else its beneficiary.
    signer: Address,
}

/// The canonical headers the machine starts from: ascending, with their total difficulty,
/// ending at the stored head; on a Clique chain with the signer snapshot after the first
/// of them (`None` there: the genesis signers, right only if no vote came before).
#[derive(Debug, Clone, Default)]
pub struct RecentChain {
    /// Headers with their total difficulty, ascending.
    pub headers: Vec<(Header, U256)>,
    /// The Clique snapshot after the first header.
    pub clique: Option<Snapshot>,
}

impl From<Vec<(Header, U256)>> for RecentChain {
    fn from(headers: Vec<(Header, U256)>) -> Self {
        Self { headers, clique: None }
    }
}

/// The sync state machine. Feed it events; drain [`SyncMachine::actions`].
#[derive(Debug)]
pub struct SyncMachine {
    spec: ChainSpec,
    cfg: SyncConfig,
    /// Canonical headers up to and including our head, at most `max_reorg_depth + 1`.
    recent: VecDeque<Recent>,
    peers: HashMap<PeerId, Peer>,
    next_id: u64,
    requests: HashMap<u64, (PeerId, Request)>,
    actions: VecDeque<Action>,
    mode: Mode,
    /// Base of the round: our head (forward) or the common ancestor (branch).
    base: Option<Recent>,
    target: u64,
    next_request: u64,
    header_queue: VecDeque<(u64, u64)>,
    /// Received, not yet verified ranges, by first number: headers with their hashes.
    header_buf: BTreeMap<u64, (PeerId, Vec<(Header, B256)>)>,
    verified: VecDeque<Verified>,
    verified_tip: (u64, B256),
    snapshot: Option<Snapshot>,
    /// Clique: the snapshot after `recent.front()`.
    front_snapshot: Option<Snapshot>,
    /// The peer to ask first for the next header range (after a round started over).
    prefer: Option<PeerId>,
    /// When the round last verified or stored a block (or began).
    progress_at: Instant,
    body_queue: VecDeque<u64>,
    /// Gas of the blocks whose bodies are requested and not yet committed.
    body_gas: u64,
    last_poll: Option<Instant>,
    poll_cursor: usize,
    clock: WallClock,
    now: Instant,
    /// A header from the future stopped verification at this number: its range is asked
    /// again at the instant given, and what was verified before it is committed.
    deferred: Option<(u64, Instant)>,
    /// Blocks committed since start (for progress logs).
    pub committed: u64,
    /// Blocks that did not execute to their headers: never verified again.
    bad_blocks: HashSet<B256>,
}

fn empty_body(h: &Header) -> Option<BlockBody<TxEnvelope>> {
    let empty = h.transactions_root == EMPTY_ROOT_HASH
        && h.ommers_hash == EMPTY_OMMER_ROOT_HASH
        && h.withdrawals_root.is_none_or(|r| r == EMPTY_ROOT_HASH);
    empty.then(|| BlockBody {
        transactions: vec![],
        ommers: vec![],
        withdrawals: h.withdrawals_root.map(|_| Default::default()),
    })
}

impl SyncMachine {
    /// A machine whose store ends with `recent` canonical headers (ascending, with their
    /// total difficulty; the last one is the head; at least the genesis), checking header
    /// times against `clock`.
    pub fn new(
        spec: ChainSpec,
        cfg: SyncConfig,
        recent: impl Into<RecentChain>,
        clock: WallClock,
    ) -> Self {
        let (recent, front_snapshot) = recent_chain(&spec, recent.into(), &VecDeque::new());
        let head = recent.back().expect("at least the genesis");
        let verified_tip = (head.header.number, head.hash);
        Self {
            spec,
            cfg,
            recent,
            peers: HashMap::new(),
            next_id: 1,
            requests: HashMap::new(),
            actions: VecDeque::new(),
            mode: Mode::Idle,
            base: None,
            target: 0,
            next_request: 0,
            header_queue: VecDeque::new(),
            header_buf: BTreeMap::new(),
            verified: VecDeque::new(),
            verified_tip,
            snapshot: None,
            front_snapshot,
            prefer: None,
            progress_at: Instant::now(),
            body_queue: VecDeque::new(),
            body_gas: 0,
            last_poll: None,
            poll_cursor: 0,
            clock,
            now: clock.at,
            deferred: None,
            committed: 0,
            bad_blocks: HashSet::new(),
        }
    }

    /// The actions to perform, in order.
    pub fn actions(&mut self) -> impl Iterator<Item = Action> + '_ {
        self.actions.drain(..)
    }

    /// Whether no sync round is running.
    pub fn is_idle(&self) -> bool {
        self.mode == Mode::Idle
    }

    /// Our head: number and hash.
    pub fn head(&self) -> (u64, B256) {
        let h = self.recent.back().expect("non-empty");
        (h.header.number, h.hash)
    }

    /// The best head any peer claims (chains we gave up on aside).
    pub fn best_peer_head(&self) -> u64 {
        self.peers.values().filter(|p| p.claims_known_head()).map(|p| p.head).max().unwrap_or(0)
    }

    /// How far behind we are.
    pub fn status(&self) -> SyncStatus {
        SyncStatus::of(self.best_peer_head().saturating_sub(self.head().0))
    }

    /// Why sync is not moving, if it is behind and something specific holds it: for the
    /// operator's log.
    pub fn stall_reason(&self) -> Option<String> {
        let head = self.head().0;
        if self.best_peer_head() <= head {
            return None;
        }
        if let Some((number, _)) = self.deferred {
            return Some(format!(
                "block {number} is more than {}s ahead of our clock (Clique/pre-merge rule); waiting for it to become valid",
                tern_consensus::MAX_FUTURE_SECS
            ));
        }
        if self.peers.values().all(|p| !p.followable()) {
            return Some("no connected peer's chain can be followed (forks without a common ancestor within the reorg depth, or unlinked ranges)".into());
        }
        if self.mode != Mode::Idle && self.requests.is_empty() {
            if let Some((start, _)) = self.header_queue.front() {
                return Some(format!("no usable peer serves block {start}"));
            }
        }
        None
    }

    /// Replaces our head with the store's (another writer, the local validator, moved
    /// it): the round in progress ends, while what we know of the peers (their heads,
    /// strikes, chains we gave up on) is kept. `recent` is as for [`SyncMachine::new`].
    pub fn reset_head(&mut self, recent: impl Into<RecentChain>, now: Instant) {
        let recent = recent.into();
        if recent.headers.is_empty() {
            return;
        }
        self.end_round("our head moved");
        (self.recent, self.front_snapshot) = recent_chain(&self.spec, recent, &self.recent);
        let head = self.recent.back().expect("non-empty");
        self.verified_tip = (head.header.number, head.hash);
        self.deferred = None;
        self.schedule(now);
    }

    /// Block `hash`, served by `peer`, did not execute to its header (the driver found
    /// out when storing it): the peer is penalised and the block is never verified again.
    /// The driver then tells the machine the stored head ([`SyncMachine::reset_head`]).
    pub fn bad_block(&mut self, peer: PeerId, hash: B256) {
        if self.bad_blocks.len() >= MAX_BAD_BLOCKS {
            self.bad_blocks.clear();
        }
        self.bad_blocks.insert(hash);
        self.penalize(peer, Penalty::BadBlock);
    }

    /// Points the wall clock at another reading (the system clock was adjusted).
    pub fn set_clock(&mut self, clock: WallClock) {
        self.clock = clock;
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A timed-out request counts against the peer when choosing whom to ask (the network
    /// has already lowered its reputation), so a silent peer is not asked first again.
    fn strike_on(&mut self, peer: PeerId, failure: Failure) {
        if failure == Failure::Timeout {
            if let Some(p) = self.peers.get_mut(&peer) {
                p.strikes += 1;
                p.limit = (p.limit / 2).max(1);
            }
        }
    }

    fn penalize(&mut self, peer: PeerId, penalty: Penalty) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.strikes += 1;
        }
        self.actions.push_back(Action::Penalize { peer, penalty });
    }

    // ---------------------------------------------------------------- events

    /// A peer finished the Status exchange: its head hash, and number if eth/69 said it.
    pub fn peer_connected(
        &mut self,
        peer: PeerId,
        head_hash: B256,
        head_number: Option<u64>,
        now: Instant,
    ) {
        self.peers.insert(
            peer,
            Peer {
                head: head_number.unwrap_or(0),
                head_hash,
                number_known: head_number.is_some(),
                inflight: 0,
                limit: self.cfg.max_peer_inflight.max(1),
                strikes: 0,
                unusable: false,
                ignored: None,
            },
        );
        match head_number {
            // Its head may be a heavier sibling of ours (validators that sealed the same
            // height before they met): no announcement of it will ever come.
            Some(number) => self.check_competing(peer, number, head_hash),
            // eth/68: learn the number from the header of its best hash.
            None => self.probe(peer, HashOrNumber::Hash(head_hash)),
        }
        self.schedule(now);
    }

    /// A peer is gone: its requests go to others.
    pub fn peer_disconnected(&mut self, peer: PeerId, now: Instant) {
        self.peers.remove(&peer);
        let ids: Vec<u64> =
            self.requests.iter().filter(|(_, (p, _))| *p == peer).map(|(id, _)| *id).collect();
        for id in ids {
            let (_, req) = self.requests.remove(&id).expect("listed");
            self.requeue(req);
        }
        // A fork branch only its peer could serve is abandoned with it.
        if matches!(self.mode, Mode::Branch | Mode::FindAncestor)
            && self.peers.values().all(|p| p.unusable)
        {
            self.end_round("the fork's peer left");
        }
        self.schedule(now);
    }

    /// A peer announced a block (NewBlockHashes, NewBlock, BlockRangeUpdate).
    pub fn announced(&mut self, peer: PeerId, number: u64, hash: B256, now: Instant) {
        if let Some(p) = self.peers.get_mut(&peer) {
            if number >= p.head || !p.number_known {
                p.head = number;
                p.head_hash = hash;
                p.number_known = true;
            }
        }
        self.check_competing(peer, number, hash);
        self.schedule(now);
    }

    /// A peer's block `number`/`hash` differs from ours at or below our height: on a
    /// total-difficulty chain it may be heavier (an in-turn Clique block beats an
    /// out-of-turn one at the same height), so fork choice looks at its branch.
    fn check_competing(&mut self, peer: PeerId, number: u64, hash: B256) {
        let head = self.head().0;
        let td_chain = !matches!(self.spec.consensus, Consensus::PostMerge);
        if self.mode == Mode::Idle
            && td_chain
            && number <= head
            && number + self.cfg.max_reorg_depth > head
            && self.recent_at(number).is_some_and(|r| r.hash != hash)
            && self.peers.contains_key(&peer)
        {
            debug!(%peer, number, "competing block at our height; checking fork choice");
            self.find_ancestor(peer);
        }
    }

    /// The clock moved (drives polling and retries).
    pub fn tick(&mut self, now: Instant) {
        self.now = now;
        if self.mode != Mode::Idle && now.saturating_duration_since(self.progress_at) >= ROUND_STALL
        {
            let kinds: Vec<&str> = self.requests.values().map(|(_, r)| r.kind()).collect();
            warn!(
                mode = ?self.mode,
                head = self.head().0,
                verified = self.verified_tip.0,
                target = self.target,
                next_headers = ?self.header_queue.front(),
                next_body = ?self.body_queue.front(),
                unverified_ranges = self.header_buf.len(),
                in_flight = ?kinds,
                usable_peers = self.peers.values().filter(|p| p.followable()).count(),
                "sync round made no progress for {} s; starting over from our head",
                ROUND_STALL.as_secs()
            );
            self.end_round("no progress");
        }
        self.schedule(now);
    }

    fn requeue(&mut self, req: Request) {
        match req {
            Request::Headers { start, count } => self.header_queue.push_front((start, count)),
            Request::Bodies { numbers } => {
                numbers.into_iter().rev().for_each(|n| self.body_queue.push_front(n))
            }
            Request::Ancestor { .. } => self.end_round("ancestor search lost its peer"),
            Request::Probe(_) | Request::Poll { .. } => {}
        }
    }

    fn finish_request(&mut self, peer: PeerId, id: u64) -> Option<Request> {
        let (p, req) = self.requests.remove(&id)?;
        if p != peer {
            self.requests.insert(id, (p, req));
            return None;
        }
        if let Some(peer) = self.peers.get_mut(&peer) {
            peer.inflight = peer.inflight.saturating_sub(1);
        }
        Some(req)
    }

    /// Headers answering request `id` (or its failure).
    pub fn on_headers(
        &mut self,
        peer: PeerId,
        id: u64,
        result: Result<Vec<Header>, Failure>,
        now: Instant,
    ) {
        self.now = now;
        let Some(req) = self.finish_request(peer, id) else { return };
        match (req, result) {
            (req, Err(failure)) => {
                self.strike_on(peer, failure);
                self.requeue(req)
            }
            (Request::Probe(asked), Ok(headers)) => {
                let answers = |h: &Header| match asked {
                    HashOrNumber::Hash(hash) => h.hash_slow() == hash,
                    HashOrNumber::Number(n) => h.number == n,
                };
                if headers.len() > 1 || headers.first().is_some_and(|h| !answers(h)) {
                    warn!(%peer, ?asked, "answered a one-header request with other headers");
                    self.penalize(peer, Penalty::BadBlock);
                } else if let (Some(h), Some(p)) = (headers.first(), self.peers.get_mut(&peer)) {
                    p.raise_head(h.number, h.hash_slow());
                }
            }
            (Request::Poll { start }, Ok(headers)) => self.on_poll(peer, start, headers),
            (Request::Headers { start, count }, Ok(headers)) => {
                self.on_range(peer, start, count, headers)
            }
            (Request::Ancestor { start }, Ok(headers)) => self.on_ancestor(peer, start, headers),
            (req @ Request::Bodies { .. }, Ok(_)) => self.requeue(req),
        }
        self.schedule(now);
    }

    /// Bodies answering request `id` (or its failure).
    pub fn on_bodies(
        &mut self,
        peer: PeerId,
        id: u64,
        result: Result<Vec<BlockBody<TxEnvelope>>, Failure>,
        now: Instant,
    ) {
        self.now = now;
        let Some(req) = self.finish_request(peer, id) else { return };
        match (req, result) {
            (Request::Bodies { numbers }, Ok(bodies)) => self.on_body_batch(peer, numbers, bodies),
            (req, result) => {
                if let Err(failure) = result {
                    self.strike_on(peer, failure);
                }
                self.requeue(req)
            }
        }
        self.schedule(now);
    }

    // ---------------------------------------------------------------- rounds

    fn start_round(&mut self, mode: Mode, base: Recent, target: u64) {
        debug!(?mode, base = base.header.number, target, "sync round");
        self.snapshot = self.snapshot_at(base.header.number);
        self.progress_at = self.now;
        self.verified_tip = (base.header.number, base.hash);
        self.next_request = base.header.number + 1;
        self.base = Some(base);
        self.target = target;
        self.mode = mode;
        self.header_queue.clear();
        self.header_buf.clear();
        self.verified.clear();
        self.body_queue.clear();
        self.body_gas = 0;
    }

    fn end_round(&mut self, why: &str) {
        debug!(why, "sync round ended");
        self.mode = Mode::Idle;
        self.base = None;
        self.header_queue.clear();
        self.header_buf.clear();
        self.verified.clear();
        self.body_queue.clear();
        self.body_gas = 0;
        // Requests still in flight are forgotten: late answers are ignored.
        let ids: Vec<u64> = self
            .requests
            .iter()
            .filter(|(_, (_, r))| !matches!(r, Request::Probe(_) | Request::Poll { .. }))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let (peer, _) = self.requests.remove(&id).expect("listed");
            if let Some(p) = self.peers.get_mut(&peer) {
                p.inflight = p.inflight.saturating_sub(1);
            }
        }
        self.peers.values_mut().for_each(|p| p.unusable = false);
    }

    /// The Clique snapshot after canonical block `number` (one we keep): the first recent
    /// block's, with the recent blocks up to `number` applied.
    fn snapshot_at(&self, number: u64) -> Option<Snapshot> {
        let mut snap = self.front_snapshot.clone()?;
        for r in self.recent.iter().skip(1).take_while(|r| r.header.number <= number) {
            snap.apply(&r.header, r.signer);
        }
        Some(snap)
    }

    fn recent_at(&self, number: u64) -> Option<&Recent> {
        let first = self.recent.front()?.header.number;
        self.recent.get(number.checked_sub(first)? as usize)
    }

    // ---------------------------------------------------------------- scheduling

    fn schedule(&mut self, now: Instant) {
        self.now = now;
        if self.deferred.is_some_and(|(_, at)| at <= now) {
            self.deferred = None;
        }
        if self.mode == Mode::Idle {
            let head = self.head().0;
            let best =
                self.peers.values().filter(|p| p.followable()).map(|p| p.head).max().unwrap_or(0);
            if best > head {
                let base = self.recent.back().expect("non-empty").clone();
                self.start_round(Mode::Forward, base, best);
            } else {
                self.poll(now);
                return;
            }
        }
        if self.mode == Mode::Forward {
            // Follow the best head peers claim now: it falls when a liar that announced an
            // absurd head is gone, and ranges nobody can serve any more are dropped.
            let best = self.best_peer_head();
            if best < self.target {
                let keep = best.max(self.verified_tip.0);
                self.header_queue.retain(|(start, _)| *start <= keep);
                self.next_request = self.next_request.min(keep + 1);
            }
            self.target = best;
        }
        let committed = self.head().0.max(self.base.as_ref().map_or(0, |b| b.header.number));
        while self.next_request <= self.target && self.next_request < committed + self.cfg.window {
            let count = self.cfg.header_batch.min(self.target - self.next_request + 1);
            self.header_queue.push_back((self.next_request, count));
            self.next_request += count;
        }
        self.assign_headers();
        self.assign_bodies();
        self.commit_ready();
        self.maybe_finish();
        // Every peer's chain stopped linking with this round (they reorganised under it)
        // and nothing is in flight: no peer may be asked for the round's remaining
        // headers or bodies, so it could never end. Start over from the stored head,
        // where a fork is searched properly.
        let working = self
            .requests
            .values()
            .any(|(_, r)| !matches!(r, Request::Probe(_) | Request::Poll { .. }));
        if self.mode == Mode::Forward && !working && !self.peers.values().any(Peer::followable) {
            self.end_round("no peer's chain links with this round any more");
        }
        // Peers were set aside for this round because their ranges do not link with
        // headers we verified but have not stored (a peer announced a block, then
        // reorganised away from it and no longer serves its body) or because a fork
        // branch only its own peer serves, and no usable peer can serve what the round
        // still needs: it could never end. Start over from the stored head, asking the
        // set-aside peer with the highest head first.
        if matches!(self.mode, Mode::Forward | Mode::Branch) && !working {
            if let Some(peer) = self.set_aside_for_good() {
                info!(%peer, verified = self.verified_tip.0, "no usable peer serves the rest of this round; starting over from our head");
                self.end_round("the round's verified headers are served by no one");
                self.prefer = Some(peer);
                return;
            }
        }
        // Work queued but nothing in flight: peer heads may be stale (an early empty
        // answer lowered one), so ask where they are.
        if self.mode != Mode::Idle && self.requests.is_empty() {
            self.poll(now);
        }
    }

    /// The set-aside peer with the highest head, if what the round needs next (a header
    /// range, else a body) is beyond every usable peer's head but not every set-aside
    /// one's.
    fn set_aside_for_good(&self) -> Option<PeerId> {
        let needed = match self.header_queue.front() {
            Some((start, _)) => *start,
            None => *self.body_queue.front()?,
        };
        if self.peers.values().any(|p| p.followable() && p.head >= needed) {
            return None;
        }
        self.peers
            .iter()
            .filter(|(_, p)| p.unusable && p.claims_known_head() && p.head >= needed)
            .max_by_key(|(id, p)| (p.head, **id))
            .map(|(id, _)| *id)
    }

    /// Idle peers, fewest strikes first; those whose head reaches `number`.
    fn idle_peer(&self, number: u64) -> Option<PeerId> {
        self.peers
            .iter()
            .filter(|(_, p)| p.followable() && p.inflight < p.limit && p.head >= number)
            .min_by_key(|(id, p)| (p.strikes, p.inflight, **id))
            .map(|(id, _)| *id)
    }

    fn assign_headers(&mut self) {
        while let Some(&(start, count)) = self.header_queue.front() {
            if self.deferred.is_some_and(|(number, _)| start >= number) {
                break; // not yet valid: asked again when the deferral ends
            }
            let preferred = self.prefer.take().filter(|id| {
                self.peers
                    .get(id)
                    .is_some_and(|p| p.followable() && p.inflight < p.limit && p.head >= start)
            });
            let Some(peer) = preferred.or_else(|| self.idle_peer(start)) else { break };
            self.header_queue.pop_front();
            let request = Request::Headers { start, count };
            self.ask_headers(peer, request, HashOrNumber::Number(start), count);
        }
    }

    fn assign_bodies(&mut self) {
        while let Some(&first) = self.body_queue.front() {
            let last_needed =
                self.body_queue.iter().take(self.cfg.body_batch).max().copied().unwrap_or(first);
            let Some(peer) = self.idle_peer(last_needed) else { break };
            // Within the gas budget (always at least one batch, so huge blocks still move).
            let batch: Vec<u64> =
                self.body_queue.iter().take(self.cfg.body_batch).copied().collect();
            let new_gas: u64 = batch
                .iter()
                .filter_map(|n| self.verified_at(*n))
                .filter(|v| !v.gas_counted)
                .map(|v| v.header.gas_used.max(1))
                .sum();
            // A fork branch is decided as a whole, so the budget cannot free up: no limit
            // there (the branch is bounded by the window).
            let over = self.body_gas > 0 && self.body_gas + new_gas > self.cfg.body_gas_budget;
            if over && self.mode == Mode::Forward {
                break;
            }
            self.body_queue.drain(..batch.len());
            let mut hashes = Vec::with_capacity(batch.len());
            for n in &batch {
                let Some(first_number) = self.verified.front().map(|v| v.header.number) else {
                    break;
                };
                let Some(v) =
                    n.checked_sub(first_number).and_then(|i| self.verified.get_mut(i as usize))
                else {
                    break;
                };
                if !v.gas_counted {
                    v.gas_counted = true;
                    self.body_gas += v.header.gas_used.max(1);
                }
                hashes.push(v.hash);
            }
            if hashes.len() != batch.len() {
                continue; // stale numbers from an ended round
            }
            let id = self.id();
            self.peers.get_mut(&peer).expect("idle").inflight += 1;
            self.requests.insert(id, (peer, Request::Bodies { numbers: batch }));
            self.actions.push_back(Action::GetBodies { peer, id, hashes });
        }
    }

    fn poll(&mut self, now: Instant) {
        if self.last_poll.is_some_and(|t| now.duration_since(t) < self.cfg.poll_interval) {
            return;
        }
        let mut ids: Vec<PeerId> =
            self.peers.iter().filter(|(_, p)| p.inflight == 0).map(|(id, _)| *id).collect();
        if ids.is_empty() {
            return;
        }
        ids.sort();
        self.last_poll = Some(now);
        let peer = ids[self.poll_cursor % ids.len()];
        self.poll_cursor += 1;
        // Everything new in one request: a chain that moves a block a second is followed
        // within one poll, however far it moved.
        let start = self.head().0 + 1;
        let limit = self.cfg.header_batch;
        self.ask_headers(peer, Request::Poll { start }, HashOrNumber::Number(start), limit);
    }

    /// The answer to a poll: the peer's new head, and, when idle and the headers extend
    /// ours, a round that starts with them (no second download).
    fn on_poll(&mut self, peer: PeerId, start: u64, headers: Vec<Header>) {
        let Some(last) = headers.last() else { return };
        let Some(hashes) = chain_hashes(start, self.cfg.header_batch, &headers) else {
            warn!(%peer, start, "poll answered with headers that are not the requested chain");
            self.penalize(peer, Penalty::BadBlock);
            return;
        };
        let last_number = last.number;
        if let Some(p) = self.peers.get_mut(&peer) {
            p.raise_head(last_number, *hashes.last().expect("non-empty"));
            if !p.followable() {
                return;
            }
        }
        let (head, head_hash) = self.head();
        if self.mode != Mode::Idle || start != head + 1 || headers[0].parent_hash != head_hash {
            return; // a fork or a round in progress: the schedule takes it from here
        }
        let base = self.recent.back().expect("non-empty").clone();
        self.start_round(Mode::Forward, base, last_number);
        self.next_request = last_number + 1;
        self.header_buf.insert(start, (peer, headers.into_iter().zip(hashes).collect()));
        self.verify_headers();
    }

    /// Asks `peer` for the one header at `start`.
    fn probe(&mut self, peer: PeerId, start: HashOrNumber) {
        self.ask_headers(peer, Request::Probe(start), start, 1);
    }

    /// Sends GetBlockHeaders (ascending, no skip) for `request` to `peer`.
    fn ask_headers(&mut self, peer: PeerId, request: Request, start: HashOrNumber, limit: u64) {
        let id = self.id();
        if let Some(p) = self.peers.get_mut(&peer) {
            p.inflight += 1;
        }
        self.requests.insert(id, (peer, request));
        let req = GetBlockHeaders { start, limit, skip: 0, reverse: false };
        self.actions.push_back(Action::GetHeaders { peer, id, req });
    }

    // ---------------------------------------------------------------- headers

    fn on_range(&mut self, peer: PeerId, start: u64, count: u64, headers: Vec<Header>) {
        if !matches!(self.mode, Mode::Forward | Mode::Branch) {
            return;
        }
        if headers.is_empty() {
            // It does not have these blocks (any more): its head is below `start`.
            if let Some(p) = self.peers.get_mut(&peer) {
                p.head = p.head.min(start.saturating_sub(1));
            }
            self.header_queue.push_front((start, count));
            return;
        }
        let Some(hashes) = chain_hashes(start, count, &headers) else {
            warn!(%peer, start, "headers do not form the requested chain");
            self.penalize(peer, Penalty::BadBlock);
            self.header_queue.push_front((start, count));
            return;
        };
        let got = headers.len() as u64;
        if got < count {
            self.header_queue.push_front((start + got, count - got));
        }
        // The verifier was waiting for exactly this range: the peer could keep more in
        // flight (a fast peer far away needs many requests to fill the pipe).
        let starved = start == self.verified_tip.0 + 1 && self.header_buf.is_empty();
        let more_work = !self.header_queue.is_empty() || self.next_request <= self.target;
        if starved && more_work {
            let cap = self.cfg.max_peer_inflight_cap.max(1);
            if let Some(p) = self.peers.get_mut(&peer) {
                p.limit = (p.limit + 1).min(cap);
            }
        }
        // Drop what is already verified (a range re-requested after a partial answer).
        let tip = self.verified_tip.0;
        let headers: Vec<(Header, B256)> =
            headers.into_iter().zip(hashes).filter(|(h, _)| h.number > tip).collect();
        let Some((first, _)) = headers.first() else { return };
        self.header_buf.insert(first.number, (peer, headers));
        self.verify_headers();
    }

    fn verify_headers(&mut self) {
        while let Some((peer, headers)) = self.header_buf.remove(&(self.verified_tip.0 + 1)) {
            let start = headers[0].0.number;
            let end = start + headers.len() as u64 - 1;
            if headers[0].0.parent_hash != self.verified_tip.1 {
                let at_head = self.mode == Mode::Forward && self.verified_tip.0 == self.head().0;
                if at_head {
                    info!(%peer, number = start, "peer's chain forks below our head; searching the common ancestor");
                    self.find_ancestor(peer);
                    return;
                }
                if self.mode == Mode::Branch {
                    // Only the forking peer serves a branch, from the ancestor it agreed on:
                    // a branch that does not link contradicts its own answers.
                    warn!(%peer, start, "fork branch does not link with its own ancestor");
                    self.penalize(peer, Penalty::BadBlock);
                } else {
                    debug!(%peer, start, "range does not link with the verified chain");
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.unusable = true;
                    }
                }
                self.header_queue.push_front((start, end - start + 1));
                continue;
            }
            let signers = match self.snapshot {
                Some(_) => {
                    let only: Vec<&Header> = headers.iter().map(|(h, _)| h).collect();
                    recover_signers(&only)
                }
                None => Vec::new(),
            };
            let mut parent = self.verified_parent();
            for (i, (header, hash)) in headers.into_iter().enumerate() {
                let now_unix = self.clock.unix_at(self.now);
                let checked =
                    validate_header(&self.spec, &header, &parent, self.verified_tip.1, now_unix)
                        .and_then(|()| match (&mut self.snapshot, signers.get(i)) {
                            (Some(snap), Some(signer)) => {
                                snap.verify_recovered(&header, signer.clone())
                            }
                            _ => Ok(header.beneficiary),
                        })
                        .and_then(|beneficiary| match self.bad_blocks.contains(&hash) {
                            true => Err(ConsensusError::KnownBad),
                            false => Ok(beneficiary),
                        });
                let beneficiary = match checked {
                    Ok(beneficiary) => beneficiary,
                    Err(e) => {
                        let number = header.number;
                        if e.kind() == ErrorKind::NotYetValid {
                            // Ask again once it may be valid; commit what came before it.
                            let ahead = header.timestamp.saturating_sub(now_unix);
                            let wait = Duration::from_secs(
                                ahead.saturating_sub(tern_consensus::MAX_FUTURE_SECS),
                            )
                            .clamp(Duration::from_secs(1), MAX_FUTURE_RETRY);
                            if self.deferred.is_none() {
                                warn!(%peer, number, ahead_secs = ahead, rule = %e, retry_in = ?wait, "header from the future; storing the blocks before it and waiting");
                            }
                            self.deferred = Some((number, self.now + wait));
                        } else {
                            warn!(%peer, number, error = %e, "invalid header");
                            self.penalize(peer, Penalty::BadBlock);
                        }
                        // Re-request from the failing header on (the valid prefix stays).
                        self.header_queue.push_front((number, end - number + 1));
                        // Headers buffered beyond may have been verified against this bad
                        // one by no one yet; they stay buffered.
                        return;
                    }
                };
                let body = empty_body(&header);
                if body.is_none() {
                    self.body_queue.push_back(header.number);
                }
                self.verified_tip = (header.number, hash);
                self.progress_at = self.now;
                self.verified.push_back(Verified {
                    hash,
                    header: header.clone(),
                    body,
                    beneficiary,
                    peer,
                    gas_counted: false,
                });
                parent = header;
            }
        }
    }

    fn verified_parent(&self) -> Header {
        match self.verified.back() {
            Some(v) => v.header.clone(),
            None => self.base.as_ref().expect("round has a base").header.clone(),
        }
    }

    fn verified_at(&self, number: u64) -> Option<&Verified> {
        let first = self.verified.front()?.header.number;
        self.verified.get(number.checked_sub(first)? as usize)
    }

    // ---------------------------------------------------------------- bodies

    fn on_body_batch(
        &mut self,
        peer: PeerId,
        numbers: Vec<u64>,
        bodies: Vec<BlockBody<TxEnvelope>>,
    ) {
        if self.mode == Mode::Idle {
            return;
        }
        // A peer without any of the bodies (a block it unwound, say) is asked after the
        // others next time: without this, the peer sorting first was asked again forever.
        if bodies.is_empty() && !numbers.is_empty() {
            if let Some(p) = self.peers.get_mut(&peer) {
                p.strikes += 1;
            }
        }
        let mut bad = false;
        let mut first_error = None;
        let mut rest = numbers.into_iter();
        let mut retry = Vec::new();
        for body in bodies {
            let Some(number) = rest.next() else {
                bad = true; // more bodies than asked
                break;
            };
            let Some(v) = self.verified_at(number) else { continue };
            // Senders are recovered later, on every core over a whole batch, by the
            // driver's sender stage (a bad signature then makes the block a bad block).
            match check_body(&self.spec, &v.header, &body) {
                Ok(()) => {
                    let first = self.verified.front().expect("found").header.number;
                    self.verified[(number - first) as usize].body = Some(body);
                }
                Err(e) => {
                    first_error.get_or_insert((number, e));
                    bad = true;
                    retry.push(number);
                }
            }
        }
        retry.extend(rest);
        if bad {
            // One line per response, however many bodies in it were wrong.
            match &first_error {
                Some((number, e)) => {
                    warn!(%peer, number, retried = retry.len(), error = %e, "invalid bodies")
                }
                None => warn!(%peer, "more bodies than requested"),
            }
            self.penalize(peer, Penalty::BadBlock);
        }
        for n in retry.into_iter().rev() {
            self.body_queue.push_front(n);
        }
    }

    // ---------------------------------------------------------------- commit

    fn commit_ready(&mut self) {
        if self.mode != Mode::Forward {
            return;
        }
        let ready = self.verified.iter().take_while(|v| v.body.is_some()).count();
        // Everything verified is complete and no more headers are on the way (the rest of
        // the round may be waiting for a peer that can serve it, or for a header from the
        // future to become valid): store what we have.
        let caught_up = ready == self.verified.len()
            && (self.deferred.is_some() || (self.header_buf.is_empty() && !self.headers_coming()));
        let counted_gas = |v: &Verified| if v.gas_counted { v.header.gas_used.max(1) } else { 0 };
        // Half the body budget ready: commit it so the budget frees up.
        let budget_half = self.verified.iter().take(ready).map(counted_gas).sum::<u64>()
            >= self.cfg.body_gas_budget / 2;
        if ready == 0 || (ready < self.cfg.commit_batch && !caught_up && !budget_half) {
            return;
        }
        let take = ready.min(self.cfg.commit_batch.max(1));
        let released: u64 = self.verified.iter().take(take).map(counted_gas).sum();
        self.body_gas = self.body_gas.saturating_sub(released);
        let blocks: Vec<ReadyBlock> = self.verified.drain(..take).map(into_ready).collect();
        self.push_recent(&blocks);
        self.committed += blocks.len() as u64;
        self.progress_at = self.now;
        self.actions.push_back(Action::Commit { blocks });
        if !self.verified.is_empty() || !caught_up {
            self.commit_ready();
        }
    }

    fn push_recent(&mut self, blocks: &[ReadyBlock]) {
        for b in blocks.iter().map(|b| &b.block) {
            let header = b.block.block.header.clone();
            let td = self.recent.back().expect("non-empty").td + header.difficulty;
            let hash = b.block.hash;
            self.recent.push_back(Recent { hash, header, td, signer: b.beneficiary });
            while self.recent.len() as u64 > self.cfg.max_reorg_depth + 1 {
                self.recent.pop_front();
                let front = self.recent.front().expect("non-empty");
                if let Some(snap) = &mut self.front_snapshot {
                    snap.apply(&front.header, front.signer);
                }
            }
        }
        if let Some(base) = &mut self.base {
            if self.mode == Mode::Forward {
                *base = self.recent.back().expect("non-empty").clone();
            }
        }
    }

    fn maybe_finish(&mut self) {
        let done = self.verified_tip.0 >= self.target
            && self.header_queue.is_empty()
            && self.header_buf.is_empty()
            && self.verified.iter().all(|v| v.body.is_some());
        match self.mode {
            // The rest of the round is only claimed by peers whose chain did not link with
            // ours: start over from our stored head, where a fork is searched properly.
            Mode::Forward
                if !done
                    && self.verified.is_empty()
                    && self.header_buf.is_empty()
                    && !self.headers_coming()
                    && self.header_queue.iter().all(|(start, _)| !self.can_serve(*start)) =>
            {
                self.end_round("no usable peer has the rest");
            }
            Mode::Forward if done && self.verified.is_empty() => {
                if self.best_peer_head() <= self.head().0 {
                    self.end_round("caught up");
                } else {
                    self.target = self.best_peer_head();
                }
            }
            Mode::Branch if done => self.decide_fork(),
            _ => {}
        }
    }

    /// Whether a header range request is in flight.
    fn headers_coming(&self) -> bool {
        self.requests.values().any(|(_, r)| matches!(r, Request::Headers { .. }))
    }

    /// Whether some peer we may ask claims block `number`.
    fn can_serve(&self, number: u64) -> bool {
        self.peers.values().any(|p| p.followable() && p.head >= number)
    }

    // ---------------------------------------------------------------- forks

    fn find_ancestor(&mut self, peer: PeerId) {
        let head = self.head().0;
        let first = self.recent.front().expect("non-empty").header.number;
        let start =
            head.saturating_sub(self.cfg.max_reorg_depth.min(self.cfg.header_batch) - 1).max(first);
        let target = self.peers.get(&peer).map_or(0, |p| p.head);
        self.end_round("fork detected");
        self.mode = Mode::FindAncestor;
        self.target = target;
        let request = Request::Ancestor { start };
        self.ask_headers(peer, request, HashOrNumber::Number(start), head - start + 1);
    }

    fn on_ancestor(&mut self, peer: PeerId, start: u64, headers: Vec<Header>) {
        if self.mode != Mode::FindAncestor {
            return;
        }
        let ancestor = headers
            .iter()
            .filter(|h| h.number >= start)
            .filter(|h| self.recent_at(h.number).is_some_and(|r| r.hash == h.hash_slow()))
            .map(|h| h.number)
            .max();
        let Some(ancestor) = ancestor else {
            warn!(%peer, "no common ancestor within the reorg depth; ignoring this peer's chain");
            self.end_round("no common ancestor");
            if let Some(p) = self.peers.get_mut(&peer) {
                p.ignored = Some(p.head_hash);
            }
            return;
        };
        let base = self.recent_at(ancestor).expect("matched").clone();
        let target = self.target.min(ancestor + self.cfg.window);
        info!(%peer, ancestor, target, "fetching the fork branch");
        self.start_round(Mode::Branch, base, target);
        // Only the forking peer knows this branch.
        for (id, p) in self.peers.iter_mut() {
            p.unusable = *id != peer;
        }
    }

    fn decide_fork(&mut self) {
        let base = self.base.clone().expect("branch has a base");
        let blocks: Vec<ReadyBlock> = self.verified.drain(..).map(into_ready).collect();
        let Some(tip) = blocks.last().map(|b| &b.block.block) else {
            self.end_round("empty branch");
            return;
        };
        let td =
            base.td + blocks.iter().map(|b| b.block.block.block.header.difficulty).sum::<U256>();
        let ours = self.recent.back().expect("non-empty");
        let current =
            ChainTip { number: ours.header.number, hash: ours.hash, total_difficulty: ours.td };
        let candidate =
            ChainTip { number: tip.block.header.number, hash: tip.hash, total_difficulty: td };
        if should_switch(&self.spec.consensus, &current, &candidate) {
            info!(
                ancestor = base.header.number,
                new_head = candidate.number,
                "switching to a heavier fork"
            );
            while self.recent.back().is_some_and(|r| r.header.number > base.header.number) {
                self.recent.pop_back();
            }
            self.mode = Mode::Forward;
            self.push_recent(&blocks);
            self.committed += blocks.len() as u64;
            self.progress_at = self.now;
            self.actions.push_back(Action::Reorg { ancestor: base.header.number, blocks });
            self.end_round("reorged");
        } else {
            info!(ancestor = base.header.number, "fork is not heavier; keeping our head");
            self.end_round("fork rejected");
        }
    }
}

/// The hashes of `headers` if they are the chain asked for: at most `limit`, numbered
/// from `start` on, each the child of the one before.
fn chain_hashes(start: u64, limit: u64, headers: &[Header]) -> Option<Vec<B256>> {
    let hashes: Vec<B256> = headers.iter().map(Header::hash_slow).collect();
    let shaped = headers.len() as u64 <= limit
        && headers.iter().enumerate().all(|(i, h)| h.number == start + i as u64)
        && headers.iter().skip(1).zip(&hashes).all(|(h, parent)| h.parent_hash == *parent);
    shaped.then_some(hashes)
}

/// The recent headers as the machine keeps them (signers recovered on a Clique chain,
/// except those of headers in `known`, the recent headers the machine had: a validator's
/// driver resets the head after every block it seals, and recovering ~1,000 seals each
/// time cost ~35 ms of CPU per block) and the Clique snapshot after the first.
fn recent_chain(
    spec: &ChainSpec,
    chain: RecentChain,
    known: &VecDeque<Recent>,
) -> (VecDeque<Recent>, Option<Snapshot>) {
    let clique = match &spec.consensus {
        Consensus::Clique { signers, epoch, .. } => Some((signers, *epoch)),
        _ => None,
    };
    let hashes: Vec<B256> = chain.headers.iter().map(|(h, _)| h.hash_slow()).collect();
    let signers: Vec<Option<Address>> = match clique {
        Some(_) => {
            let known: HashMap<B256, Address> = known.iter().map(|r| (r.hash, r.signer)).collect();
            let unknown: Vec<&Header> = chain
                .headers
                .iter()
                .zip(&hashes)
                .filter(|(_, hash)| !known.contains_key(*hash))
                .map(|((h, _), _)| h)
                .collect();
            let mut recovered = recover_signers(&unknown).into_iter().map(Result::ok);
            hashes
                .iter()
                .map(|hash| match known.get(hash) {
                    Some(signer) => Some(*signer),
                    None => recovered.next().flatten(),
                })
                .collect()
        }
        None => vec![None; chain.headers.len()],
    };
    let front_snapshot = clique.map(|(genesis_signers, epoch)| {
        chain.clique.unwrap_or_else(|| {
            let front: Vec<Header> = chain.headers.iter().take(1).map(|(h, _)| h.clone()).collect();
            Snapshot::with_recent(genesis_signers.clone(), epoch, &front)
                .unwrap_or_else(|_| Snapshot::new(genesis_signers.clone(), epoch))
        })
    });
    let recent = chain
        .headers
        .into_iter()
        .zip(signers)
        .zip(hashes)
        .map(|(((header, td), signer), hash)| Recent {
            hash,
            signer: signer.unwrap_or(header.beneficiary),
            header,
            td,
        })
        .collect();
    (recent, front_snapshot)
}

fn into_ready(v: Verified) -> ReadyBlock {
    let block = SealedBlock {
        hash: v.hash,
        block: alloy_consensus::Block { header: v.header, body: v.body.expect("ready") },
    };
    ReadyBlock {
        block: BlockToExecute { block, senders: Vec::new(), beneficiary: v.beneficiary },
        peer: v.peer,
    }
}
