//! The NetworkManager task: listener, dialer, admission, per-peer sessions, reputation.

use crate::{
    events::{Sent, Subscriber},
    peers_file::{self, KnownPeer},
    reputation::{Penalty, Reputation},
    session::{Session, SessionCommand, COMMAND_QUEUE},
    Direction, NetworkConfig, NetworkEvent, PeerInfo, PeerRequest, PeerResponse, PeerSource,
    PeerStanding, RequestError,
};
use alloy_primitives::B256;
use std::{
    collections::{HashMap, VecDeque},
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tern_chainspec::{ChainSpec, Consensus, Head};
use tern_eth_wire::{eth_protocols, status_at, BlockHashNumber, EthStream};
use tern_p2p::{DisconnectReason, Enode, P2pConfig, PeerId};
use tern_storage::ChainStore;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{mpsc, oneshot},
};
use tracing::{debug, info, warn};

/// Capacity of the manager's inbox.
const MANAGER_QUEUE: usize = 4096;
/// First redial delay; doubles per failure up to [`MAX_REDIAL_DELAY`].
pub const MIN_REDIAL_DELAY: Duration = Duration::from_secs(1);
/// Longest redial delay.
pub const MAX_REDIAL_DELAY: Duration = Duration::from_secs(300);
/// Peers the dialer keeps (bootnodes, trusted, known and discovered): discovery adds no
/// more beyond this.
const MAX_DISCOVERED_DIALS: usize = 1_024;
/// Failed dials in a row after which a discovered peer is forgotten (discovery offers it
/// again, at its current address, when it bonds anew).
const MAX_DISCOVERED_FAILURES: u32 = 3;

/// How often known peers are saved.
const SAVE_INTERVAL: Duration = Duration::from_secs(60);
/// Age at which an inbound handshake still in progress may be aborted when all handshake
/// slots are taken (an honest one completes in a few round trips).
pub const HANDSHAKE_EVICT_AGE: Duration = Duration::from_secs(2);
/// Client-id prefixes of proof-of-stake-only implementations, which treat block
/// announcements as a protocol breach: they never get NewBlockHashes.
pub const POS_ONLY_CLIENTS: [&str; 2] = ["reth/", "Geth/"];

/// Messages to the manager.
#[derive(Debug)]
pub(crate) enum ManagerMsg {
    Request {
        peer: PeerId,
        req: PeerRequest,
        tx: oneshot::Sender<Result<PeerResponse, RequestError>>,
    },
    Announce {
        blocks: Vec<BlockHashNumber>,
        latest: (u64, B256),
    },
    /// Transaction gossip for one peer (dropped if its queue is full: gossip is lossy).
    Gossip {
        peer: PeerId,
        gossip: crate::session::Gossip,
    },
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    Standing {
        peer: PeerId,
        tx: oneshot::Sender<PeerStanding>,
    },
    Subscribe(Subscriber),
    DisconnectPeer {
        peer: PeerId,
        reason: DisconnectReason,
    },
    Shutdown(oneshot::Sender<()>),
    /// A peer found by discovery: dialed when outbound slots are free.
    AddPeer(Enode),
    /// A connection finished its Hello: may it go on? (`Ok` carries its serial.)
    Admit {
        id: PeerId,
        direction: Direction,
        tx: oneshot::Sender<Result<u64, DisconnectReason>>,
    },
    /// An admitted connection finished its eth handshake; `ok` says whether it is still
    /// the one admitted for its peer (if not, it disconnects and reports nothing more).
    Established {
        info: Box<PeerInfo>,
        commands: mpsc::Sender<SessionCommand>,
        dial: Option<Enode>,
        serial: u64,
        ok: oneshot::Sender<bool>,
    },
    HandshakeFailed {
        id: PeerId,
        direction: Direction,
        serial: u64,
        reason: String,
        /// Whether it counts as a failed dial (not when the peer kept another connection).
        failed: bool,
    },
    DialFailed {
        id: PeerId,
        error: String,
    },
    Penalize {
        peer: PeerId,
        penalty: Penalty,
    },
    Reward {
        peer: PeerId,
    },
    Event(NetworkEvent),
    Closed {
        peer: PeerId,
        /// The session's connection serial (a replaced session's end changes nothing).
        serial: u64,
        reason: String,
        penalty: Option<Penalty>,
    },
}

/// What every connection task needs.
pub(crate) struct Shared {
    pub(crate) p2p: P2pConfig,
    pub(crate) spec: ChainSpec,
    pub(crate) store: ChainStore,
    pub(crate) manager: mpsc::Sender<ManagerMsg>,
    pub(crate) timeout_min: Duration,
    pub(crate) timeout_max: Duration,
    pub(crate) counters: Arc<crate::Counters>,
    pub(crate) serve_rate: u64,
    pub(crate) serve_burst: u64,
    pub(crate) receipts_page_limit: usize,
    pub(crate) transactions: crate::session::TxSourceSlot,
}

struct SessionEntry {
    info: PeerInfo,
    serial: u64,
    commands: mpsc::Sender<SessionCommand>,
}

struct Dial {
    enode: Enode,
    /// How we know it; discovered peers (not configured, not saved) are forgotten after
    /// [`MAX_DISCOVERED_FAILURES`] failed dials in a row.
    source: PeerSource,
    failures: u32,
    next_at: Instant,
    busy: bool,
}

pub(crate) struct Manager {
    shared: Arc<Shared>,
    inbox: mpsc::Receiver<ManagerMsg>,
    listener: TcpListener,
    local_id: PeerId,
    max_inbound: usize,
    max_outbound: usize,
    /// Connections admitted and still in their eth handshake, with their serials (at
    /// most one per peer and direction).
    pending: HashMap<(PeerId, Direction), u64>,
    /// The serial of the next admitted connection.
    next_serial: u64,
    sessions: HashMap<PeerId, SessionEntry>,
    dials: HashMap<PeerId, Dial>,
    /// Addresses of peers we could redial (for known-peers.json).
    addresses: HashMap<PeerId, Enode>,
    reputation: Reputation,
    subscribers: Vec<Subscriber>,
    /// Inbound connections still in the RLPx and Hello handshake, oldest first, with when
    /// they arrived; dropping the sender aborts that handshake.
    inbound_pending: VecDeque<(Instant, IpAddr, oneshot::Sender<()>)>,
    peers_file: Option<PathBuf>,
    max_inbound_per_ip: usize,
    exempt_loopback: bool,
    /// Addresses of banned peers, refused until the time given (a new node key does not
    /// buy a banned host a clean slate).
    banned_ips: HashMap<IpAddr, Instant>,
    /// The remote address of connected peers, and of departed ones whose standing is
    /// worth saving (saved even when they have no address we could dial).
    seen: HashMap<PeerId, SocketAddr>,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Binds the listener and builds the manager (not yet running).
pub(crate) async fn build(
    config: NetworkConfig,
    spec: ChainSpec,
    store: ChainStore,
) -> std::io::Result<(Manager, mpsc::Sender<ManagerMsg>, SocketAddr)> {
    let listener = TcpListener::bind(config.listen_addr).await?;
    let local = listener.local_addr()?;
    let (tx, inbox) = mpsc::channel(MANAGER_QUEUE);
    let protocols = eth_protocols()
        .into_iter()
        .filter(|p| config.eth_versions.iter().any(|v| *v as u64 == p.cap.version))
        .collect();
    let mut p2p = P2pConfig::new(config.secret_key, protocols);
    p2p.port = local.port();
    if let Some(id) = &config.client_id {
        p2p.client_id = id.clone();
    }
    let local_id = tern_p2p::peer_id(&config.secret_key);
    let mut reputation = Reputation::default();
    let now = Instant::now();
    let mut dials = HashMap::new();
    let add = |dials: &mut HashMap<PeerId, Dial>, enode: Enode, source| {
        dials.entry(enode.id).or_insert(Dial {
            enode,
            source,
            failures: 0,
            next_at: now,
            busy: false,
        });
    };
    for e in &config.trusted_peers {
        reputation.trust(e.id);
        add(&mut dials, *e, PeerSource::Trusted);
    }
    config.bootnodes.iter().for_each(|e| add(&mut dials, *e, PeerSource::Bootnode));
    let peers_file = config.datadir.as_ref().map(|d| d.join("known-peers.json"));
    let mut addresses = HashMap::new();
    let mut banned_ips = HashMap::new();
    if let Some(path) = &peers_file {
        let unix = unix_now();
        for kp in peers_file::load(path) {
            let Ok(enode) = kp.enode.parse::<Enode>() else { continue };
            reputation.set_score(enode.id, kp.reputation, now);
            if let Some(until) = kp.banned_until.filter(|u| *u > unix) {
                let until = now + Duration::from_secs(until - unix);
                reputation.ban_until(enode.id, until);
                let ip = enode.address;
                let exempt = config.exempt_loopback && ip.is_loopback();
                if !exempt && !ip.is_unspecified() {
                    banned_ips.insert(ip, until);
                }
            }
            // Port 0: a peer that never told us where it listens (standing only).
            if enode.tcp_port == 0 {
                continue;
            }
            addresses.insert(enode.id, enode);
            if enode.id != local_id {
                add(&mut dials, enode, PeerSource::Saved);
            }
        }
    }
    let shared = Arc::new(Shared {
        p2p,
        spec,
        store,
        manager: tx.clone(),
        timeout_min: config.request_timeout_min,
        timeout_max: config.request_timeout_max,
        counters: Arc::default(),
        serve_rate: config.serve_rate,
        serve_burst: config.serve_burst,
        receipts_page_limit: config.receipts_page_limit,
        transactions: Arc::default(),
    });
    let manager = Manager {
        shared,
        inbox,
        listener,
        local_id,
        max_inbound: config.max_inbound,
        max_outbound: config.max_outbound,
        pending: HashMap::new(),
        next_serial: 0,
        sessions: HashMap::new(),
        dials,
        addresses,
        reputation,
        subscribers: Vec::new(),
        inbound_pending: VecDeque::new(),
        peers_file,
        max_inbound_per_ip: config.max_inbound_per_ip,
        exempt_loopback: config.exempt_loopback,
        banned_ips,
        seen: HashMap::new(),
    };
    Ok((manager, tx, local))
}

impl Manager {
    /// The served-data counters.
    pub(crate) fn counters(&self) -> Arc<crate::Counters> {
        self.shared.counters.clone()
    }

    /// Where sessions look for pooled transactions to serve.
    pub(crate) fn transaction_source(&self) -> crate::session::TxSourceSlot {
        self.shared.transactions.clone()
    }
}

impl Manager {
    fn count(&self, direction: Direction) -> usize {
        self.pending.keys().filter(|(_, d)| *d == direction).count()
            + self.sessions.values().filter(|s| s.info.direction == direction).count()
    }

    fn emit(&mut self, event: NetworkEvent) {
        self.subscribers.retain(|s| {
            if !s.wants(&event) {
                return true;
            }
            match s.send(event.clone()) {
                Sent::Delivered => true,
                Sent::Dropped => {
                    metrics::counter!("tern_announcements_dropped_total").increment(1);
                    debug!("network event subscriber is lagging; announcement dropped");
                    true
                }
                Sent::Closed => false,
            }
        });
    }

    /// Runs until shut down.
    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let mut last_save = Instant::now();
        loop {
            tokio::select! {
                msg = self.inbox.recv() => {
                    let Some(msg) = msg else { break };
                    if let ManagerMsg::Shutdown(done) = msg {
                        self.shutdown();
                        let _ = done.send(());
                        return;
                    }
                    self.on_message(msg);
                }
                accepted = self.listener.accept() => match accepted {
                    Ok((tcp, addr)) => self.on_inbound(tcp, addr),
                    Err(e) => warn!(error = %e, "accept failed"),
                },
                _ = tick.tick() => {
                    self.dial_due();
                    if last_save.elapsed() >= SAVE_INTERVAL {
                        self.save_known_peers();
                        last_save = Instant::now();
                    }
                }
            }
        }
    }

    /// Whether per-IP limits and IP bans apply to `ip`.
    fn ip_limited(&self, ip: IpAddr) -> bool {
        !(self.exempt_loopback && ip.is_loopback())
    }

    /// Whether `ip` belongs to a banned peer whose ban has not run out.
    fn ip_banned(&mut self, ip: IpAddr, now: Instant) -> bool {
        self.banned_ips.retain(|_, until| *until > now);
        self.ip_limited(ip) && self.banned_ips.contains_key(&ip)
    }

    /// Inbound sessions and handshakes in progress from `ip`.
    fn inbound_from(&self, ip: IpAddr) -> usize {
        self.inbound_pending.iter().filter(|(_, a, _)| *a == ip).count()
            + self
                .sessions
                .values()
                .filter(|s| s.info.direction == Direction::Inbound && s.info.addr.ip() == ip)
                .count()
    }

    fn on_inbound(&mut self, tcp: TcpStream, addr: SocketAddr) {
        // Bound the handshakes in progress: a connection flood costs us sockets, not memory.
        self.inbound_pending.retain(|(_, _, evict)| !evict.is_closed());
        let ip = addr.ip();
        if self.ip_banned(ip, Instant::now()) {
            metrics::counter!("tern_inbound_refused_total", "reason" => "banned_ip").increment(1);
            debug!(%addr, "connection from a banned address refused");
            return;
        }
        if self.ip_limited(ip) && self.inbound_from(ip) >= self.max_inbound_per_ip {
            metrics::counter!("tern_inbound_refused_total", "reason" => "per_ip_limit")
                .increment(1);
            debug!(%addr, "too many inbound connections from this address; refused");
            return;
        }
        if self.inbound_pending.len() >= 2 * self.max_inbound + 16 {
            // An honest handshake takes a few round trips: one still going after
            // `HANDSHAKE_EVICT_AGE` is silent or trickling, and makes room for this one.
            match self.inbound_pending.front() {
                Some((since, _, _)) if since.elapsed() >= HANDSHAKE_EVICT_AGE => {
                    self.inbound_pending.pop_front();
                    metrics::counter!("tern_inbound_handshakes_evicted_total").increment(1);
                    debug!(%addr, "inbound handshakes full; aborted the oldest to admit this one");
                }
                _ => {
                    debug!(%addr, "too many inbound handshakes in progress; dropping connection");
                    return;
                }
            }
        }
        let (evict_tx, evict_rx) = oneshot::channel();
        self.inbound_pending.push_back((Instant::now(), ip, evict_tx));
        let shared = self.shared.clone();
        tokio::spawn(async move { connection(&shared, Conn::Inbound(tcp, addr, evict_rx)).await });
    }

    fn dial_due(&mut self) {
        let now = Instant::now();
        let mut outbound = self.count(Direction::Outbound);
        let due: Vec<PeerId> = self
            .dials
            .iter()
            .filter(|(id, d)| {
                !d.busy
                    && d.next_at <= now
                    && !self.sessions.contains_key(*id)
                    && !self.is_pending(id)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let trusted = self.reputation.is_trusted(&id);
            let ip = self.dials[&id].enode.tcp_addr().ip();
            if (outbound >= self.max_outbound && !trusted)
                || self.reputation.is_banned(&id, now)
                || (!trusted && self.ip_banned(ip, now))
            {
                continue;
            }
            outbound += 1;
            let dial = self.dials.get_mut(&id).expect("listed");
            dial.busy = true;
            let enode = dial.enode;
            let shared = self.shared.clone();
            debug!(peer = %enode, "dialing");
            tokio::spawn(async move { connection(&shared, Conn::Outbound(enode)).await });
        }
    }

    fn schedule_redial(&mut self, id: &PeerId, failed: bool) {
        let Some(d) = self.dials.get_mut(id) else { return };
        d.busy = false;
        d.failures = if failed { d.failures + 1 } else { 0 };
        if d.source == PeerSource::Discovery && d.failures >= MAX_DISCOVERED_FAILURES {
            debug!(peer = %d.enode, "discovered peer unreachable; forgotten");
            self.dials.remove(id);
            return;
        }
        let delay = MIN_REDIAL_DELAY.saturating_mul(1 << d.failures.min(16)).min(MAX_REDIAL_DELAY);
        d.next_at = Instant::now() + if failed { delay } else { MIN_REDIAL_DELAY };
    }

    fn is_pending(&self, id: &PeerId) -> bool {
        [Direction::Inbound, Direction::Outbound]
            .iter()
            .any(|d| self.pending.contains_key(&(*id, *d)))
    }

    /// Admits a connection that finished its Hello, or says why not; `Ok` carries the
    /// connection's serial.
    ///
    /// One connection per peer and direction. Two nodes that find each other at the same
    /// moment (discovery bonds both ways) dial each other at once: both connections are
    /// admitted, and when the second finishes its eth handshake [`Self::established`]
    /// keeps the one dialed by the node with the smaller id, on both sides alike.
    /// Refusing the second as a duplicate instead made each side refuse the other's dial
    /// and lose both, again at every redial.
    fn admit(&mut self, id: PeerId, direction: Direction) -> Result<u64, DisconnectReason> {
        let now = Instant::now();
        if id == self.local_id {
            return Err(DisconnectReason::ConnectedToSelf);
        }
        if self.reputation.is_banned(&id, now) {
            return Err(DisconnectReason::UselessPeer);
        }
        if self.pending.contains_key(&(id, direction))
            || self.sessions.get(&id).is_some_and(|s| s.info.direction == direction)
        {
            return Err(DisconnectReason::AlreadyConnected);
        }
        let (count, max) = match direction {
            Direction::Inbound => (self.count(Direction::Inbound), self.max_inbound),
            Direction::Outbound => (self.count(Direction::Outbound), self.max_outbound),
        };
        if count >= max && !self.reputation.is_trusted(&id) {
            return Err(DisconnectReason::TooManyPeers);
        }
        let serial = self.next_serial;
        self.next_serial += 1;
        self.pending.insert((id, direction), serial);
        Ok(serial)
    }

    /// Whether a connection dialed by `dialer` beats one dialed by the other side.
    fn dialed_by_smaller(&self, direction: Direction, peer: &PeerId) -> bool {
        (direction == Direction::Outbound) == (self.local_id < *peer)
    }

    /// A connection finished its eth handshake: it becomes the peer's session, unless a
    /// session in the other direction wins the tie-break. Returns whether it was kept.
    fn established(
        &mut self,
        info: PeerInfo,
        commands: mpsc::Sender<SessionCommand>,
        dial: Option<Enode>,
        serial: u64,
    ) -> bool {
        let (id, direction) = (info.id, info.direction);
        if self.pending.get(&(id, direction)) != Some(&serial) {
            return false;
        }
        self.pending.remove(&(id, direction));
        if let Some(old) = self.sessions.get(&id) {
            if !self.dialed_by_smaller(direction, &id) {
                debug!(peer = %id, ?direction, "simultaneous dial: keeping the other connection");
                if direction == Direction::Outbound {
                    self.schedule_redial(&id, false);
                }
                return false;
            }
            debug!(peer = %id, ?direction, "simultaneous dial: replacing the other connection");
            let _ = old
                .commands
                .try_send(SessionCommand::Disconnect(DisconnectReason::AlreadyConnected));
            let old = self.sessions.remove(&id).expect("present");
            peers_gauge(&old.info).decrement(1.0);
            if old.info.direction == Direction::Outbound {
                self.schedule_redial(&id, false);
            }
            self.emit(NetworkEvent::PeerDisconnected {
                id,
                reason: "replaced by a simultaneous connection".into(),
            });
        }
        info!(
            peer = %id,
            client = %info.client_id,
            version = ?info.version,
            ?direction,
            peers = self.sessions.len() + 1,
            "peer connected"
        );
        if let Some(enode) = dial {
            self.addresses.insert(id, enode);
        }
        self.seen.insert(id, info.addr);
        peers_gauge(&info).increment(1.0);
        let mut info = info;
        info.trusted = self.reputation.is_trusted(&id);
        info.source = match direction {
            Direction::Inbound => PeerSource::Inbound,
            Direction::Outbound => self.dials.get(&id).map_or(PeerSource::Saved, |d| d.source),
        };
        self.sessions.insert(id, SessionEntry { info: info.clone(), serial, commands });
        self.emit(NetworkEvent::PeerConnected(Box::new(info)));
        true
    }

    fn penalize(&mut self, peer: PeerId, penalty: Penalty) {
        let now = Instant::now();
        let banned = self.reputation.penalize(peer, penalty, now);
        metrics::counter!("tern_reputation_changes_total", "reason" => penalty.name()).increment(1);
        debug!(%peer, penalty = penalty.name(), score = self.reputation.score(peer, now), "peer penalized");
        if banned {
            warn!(%peer, penalty = penalty.name(), "peer banned");
            metrics::counter!("tern_bans_total", "reason" => penalty.name()).increment(1);
            if let Some(s) = self.sessions.get(&peer) {
                let ip = s.info.addr.ip();
                if let Some(until) = self.reputation.banned_until(&peer) {
                    if self.ip_limited(ip) {
                        self.banned_ips.insert(ip, until);
                    }
                }
                let reason = match penalty {
                    Penalty::Timeout => DisconnectReason::UselessPeer,
                    _ => DisconnectReason::ProtocolBreach,
                };
                let _ = s.commands.try_send(SessionCommand::Disconnect(reason));
            }
        }
    }

    fn on_message(&mut self, msg: ManagerMsg) {
        match msg {
            ManagerMsg::Request { peer, req, tx } => match self.sessions.get(&peer) {
                None => {
                    let _ = tx.send(Err(RequestError::UnknownPeer));
                }
                Some(s) => {
                    if let Err(e) = s.commands.try_send(SessionCommand::Request { req, tx }) {
                        // A closed channel means the session is ending and its `Closed`
                        // report is still on the way: the peer is gone, not busy.
                        let err = match &e {
                            mpsc::error::TrySendError::Full(_) => RequestError::TooManyInflight,
                            mpsc::error::TrySendError::Closed(_) => RequestError::Disconnected,
                        };
                        let tx = match e.into_inner() {
                            SessionCommand::Request { tx, .. } => tx,
                            _ => unreachable!("sent a request"),
                        };
                        let _ = tx.send(Err(err));
                    }
                }
            },
            ManagerMsg::Announce { blocks, latest } => {
                for s in self.sessions.values() {
                    let _ = s
                        .commands
                        .try_send(SessionCommand::Announce { blocks: blocks.clone(), latest });
                }
            }
            ManagerMsg::Gossip { peer, gossip } => {
                if let Some(s) = self.sessions.get(&peer) {
                    if s.commands.try_send(SessionCommand::Gossip(gossip)).is_err() {
                        metrics::counter!("tern_tx_gossip_dropped_total").increment(1);
                    }
                }
            }
            ManagerMsg::AddPeer(enode) => {
                if enode.id == self.local_id {
                    return;
                }
                let room = self.dials.len() < MAX_DISCOVERED_DIALS;
                match self.dials.get_mut(&enode.id) {
                    // Discovery has just heard from it there: a newer address than ours.
                    Some(d) if d.enode != enode && !d.busy => {
                        debug!(peer = %enode, "dial address updated by discovery");
                        d.enode = enode;
                        d.failures = 0;
                        d.next_at = Instant::now();
                    }
                    Some(_) => return,
                    None if room => {
                        let dial = Dial {
                            enode,
                            source: PeerSource::Discovery,
                            failures: 0,
                            next_at: Instant::now(),
                            busy: false,
                        };
                        self.dials.insert(enode.id, dial);
                    }
                    None => return,
                }
                self.dial_due();
            }
            ManagerMsg::Peers(tx) => {
                let now = Instant::now();
                let mut out = Vec::with_capacity(self.sessions.len());
                for s in self.sessions.values() {
                    let mut info = s.info.clone();
                    info.reputation = self.reputation.score(info.id, now);
                    out.push(info);
                }
                let _ = tx.send(out);
            }
            ManagerMsg::Standing { peer, tx } => {
                let now = Instant::now();
                let _ = tx.send(PeerStanding {
                    reputation: self.reputation.score(peer, now),
                    banned: self.reputation.is_banned(&peer, now),
                    connected: self.sessions.contains_key(&peer),
                    penalties: self.reputation.penalties(&peer),
                });
            }
            ManagerMsg::Subscribe(sub) => {
                // The sessions open now come first, so a subscriber never misses a peer
                // that connected before it subscribed.
                for s in self.sessions.values() {
                    let _ = sub.send(NetworkEvent::PeerConnected(Box::new(s.info.clone())));
                }
                self.subscribers.push(sub);
            }
            ManagerMsg::DisconnectPeer { peer, reason } => {
                if let Some(s) = self.sessions.get(&peer) {
                    let _ = s.commands.try_send(SessionCommand::Disconnect(reason));
                }
            }
            ManagerMsg::Shutdown(_) => unreachable!("handled by run"),
            ManagerMsg::Admit { id, direction, tx } => {
                let result = self.admit(id, direction);
                if let Err(reason) = result {
                    debug!(peer = %id, %reason, ?direction, "connection refused");
                    if direction == Direction::Outbound {
                        let failed = reason != DisconnectReason::AlreadyConnected;
                        self.schedule_redial(&id, failed);
                    }
                }
                let _ = tx.send(result);
            }
            ManagerMsg::Established { info, commands, dial, serial, ok } => {
                let id = info.id;
                let kept = self.established(*info, commands, dial, serial);
                if ok.send(kept).is_err() && kept {
                    // The connection task is gone: nothing will report its end.
                    if let Some(s) = self.sessions.remove(&id) {
                        peers_gauge(&s.info).decrement(1.0);
                    }
                    self.emit(NetworkEvent::PeerDisconnected { id, reason: "ended".into() });
                }
            }
            ManagerMsg::HandshakeFailed { id, direction, serial, reason, failed } => {
                debug!(peer = %id, %reason, "eth handshake failed");
                if self.pending.get(&(id, direction)) == Some(&serial) {
                    self.pending.remove(&(id, direction));
                    if direction == Direction::Outbound {
                        self.schedule_redial(&id, failed);
                    }
                }
            }
            ManagerMsg::DialFailed { id, error } => {
                debug!(peer = %id, %error, "dial failed");
                self.schedule_redial(&id, true);
            }
            ManagerMsg::Penalize { peer, penalty } => self.penalize(peer, penalty),
            ManagerMsg::Reward { peer } => self.reputation.reward(peer, Instant::now()),
            ManagerMsg::Event(e) => self.emit(e),
            ManagerMsg::Closed { peer, serial, reason, penalty } => {
                if let Some(p) = penalty {
                    self.penalize(peer, p);
                }
                if self.sessions.get(&peer).is_none_or(|s| s.serial != serial) {
                    debug!(%peer, %reason, "a replaced connection ended");
                    return;
                }
                if let Some(s) = self.sessions.remove(&peer) {
                    peers_gauge(&s.info).decrement(1.0);
                }
                metrics::counter!("tern_disconnects_total", "reason" => disconnect_label(&reason))
                    .increment(1);
                // Only peers with a standing worth saving keep their address here, so
                // peers that come and go with fresh keys do not grow this map.
                let now = Instant::now();
                if self.reputation.score(peer, now) == 0 && !self.reputation.is_banned(&peer, now) {
                    self.seen.remove(&peer);
                }
                info!(%peer, %reason, peers = self.sessions.len(), "peer disconnected");
                self.schedule_redial(&peer, false);
                self.emit(NetworkEvent::PeerDisconnected { id: peer, reason });
            }
        }
    }

    fn save_known_peers(&mut self) {
        let Some(path) = self.peers_file.clone() else { return };
        let now = Instant::now();
        let unix = unix_now();
        // Every peer we dial (bootnodes, trusted, loaded) plus those we learned addresses
        // of from their sessions.
        let mut known: HashMap<PeerId, Enode> =
            self.dials.iter().map(|(id, d)| (*id, d.enode)).collect();
        known.extend(self.addresses.iter().map(|(id, e)| (*id, *e)));
        // Peers we cannot dial keep their standing (a banned inbound peer stays banned
        // across a restart): saved with port 0.
        for (id, addr) in &self.seen {
            let notable = self.reputation.score(*id, now) != 0
                || self.reputation.banned_until(id).is_some_and(|u| u > now);
            if notable && !known.contains_key(id) {
                known.insert(*id, Enode::new(*id, SocketAddr::new(addr.ip(), 0)));
            }
        }
        let peers: Vec<KnownPeer> = known
            .into_iter()
            .map(|(id, enode)| KnownPeer {
                enode: enode.to_string(),
                reputation: self.reputation.score(id, now),
                banned_until: self
                    .reputation
                    .banned_until(&id)
                    .filter(|u| *u > now)
                    .map(|u| unix + (u - now).as_secs()),
            })
            .collect();
        if let Err(e) = peers_file::save(&path, &peers) {
            warn!(path = %path.display(), error = %e, "cannot save known peers");
        }
    }

    fn shutdown(&mut self) {
        // Never wait on a session here: one stuck writing to a peer must not hold up the
        // shutdown (a full queue means it is busy; it ends with the process).
        for s in self.sessions.values() {
            let _ =
                s.commands.try_send(SessionCommand::Disconnect(DisconnectReason::ClientQuitting));
        }
        self.save_known_peers();
        info!("network stopped");
    }
}

/// Client names the `client` label of `tern_peers` may take; any other Hello client id
/// counts as `other` (a label value never comes from a peer).
pub const CLIENT_LABELS: [&str; 7] =
    ["tern", "reth", "Geth", "erigon", "nethermind", "besu", "other"];

/// The fixed label for a Hello client id (`reth/v1.0/…` → `reth`), by its name part,
/// case-insensitively.
pub fn client_label(client_id: &str) -> &'static str {
    let name = client_id.split('/').next().unwrap_or_default();
    CLIENT_LABELS.iter().find(|l| l.eq_ignore_ascii_case(name)).copied().unwrap_or("other")
}

/// `tern_peers{direction, client}`, the client from [`client_label`].
fn peers_gauge(info: &PeerInfo) -> metrics::Gauge {
    let client = client_label(&info.client_id);
    let direction = match info.direction {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    };
    metrics::gauge!("tern_peers", "direction" => direction, "client" => client)
}

/// A short, bounded label for why a session ended.
fn disconnect_label(reason: &str) -> &'static str {
    const KNOWN: [(&str, &str); 8] = [
        ("we disconnected", "local"),
        ("breach of protocol", "protocol_breach"),
        ("too many peers", "too_many_peers"),
        ("client quitting", "client_quitting"),
        ("ping timeout", "ping_timeout"),
        ("useless peer", "useless_peer"),
        ("MAC", "bad_mac"),
        ("connection closed", "closed"),
    ];
    KNOWN.iter().find(|(k, _)| reason.contains(k)).map_or("other", |(_, v)| v)
}

enum Conn {
    /// An accepted socket; the handshake is aborted if the receiver fires or its sender is
    /// dropped (the manager evicting it).
    Inbound(TcpStream, SocketAddr, oneshot::Receiver<()>),
    Outbound(Enode),
}

/// One connection from TCP to the end of its session.
async fn connection(shared: &Shared, conn: Conn) {
    let (p2p, direction, addr, dial) = match conn {
        Conn::Inbound(tcp, addr, evict) => {
            let accepted = tokio::select! {
                accepted = tern_p2p::accept(&shared.p2p, tcp) => accepted,
                _ = evict => return debug!(%addr, "inbound handshake aborted to make room"),
            };
            match accepted {
                Ok(p2p) => (p2p, Direction::Inbound, addr, None),
                Err(e) => return debug!(%addr, error = %e, "inbound handshake failed"),
            }
        }
        Conn::Outbound(enode) => match tern_p2p::connect(&shared.p2p, &enode).await {
            Ok(p2p) => (p2p, Direction::Outbound, enode.tcp_addr(), Some(enode)),
            Err(e) => {
                shared.counters.dial_failed();
                let _ = shared
                    .manager
                    .send(ManagerMsg::DialFailed { id: enode.id, error: e.to_string() })
                    .await;
                return;
            }
        },
    };
    let hello = p2p.remote_hello().clone();
    let id = hello.id;
    let (tx, rx) = oneshot::channel();
    if shared.manager.send(ManagerMsg::Admit { id, direction, tx }).await.is_err() {
        return;
    }
    let mut p2p = p2p;
    let serial = match rx.await {
        Ok(Ok(serial)) => serial,
        Ok(Err(reason)) => {
            // A dial that meets a connection already there did not fail.
            if direction == Direction::Outbound && reason != DisconnectReason::AlreadyConnected {
                shared.counters.dial_failed();
            }
            let _ = p2p.disconnect(reason).await;
            return;
        }
        Err(_) => return,
    };
    let handshake = async {
        let store = &shared.store;
        let local = |e: tern_storage::StoreError| (e.to_string(), true);
        let (number, hash) = store.best_block().map_err(local)?;
        let best = store
            .header(hash)
            .map_err(local)?
            .ok_or_else(|| ("best header missing".to_string(), true))?;
        let td = store.total_difficulty(hash).map_err(local)?.unwrap_or_default();
        let status = status_at(&shared.spec, &best, hash, td);
        let head = Head { number, hash, timestamp: best.timestamp, ..Default::default() };
        let filter = shared.spec.fork_filter(head);
        EthStream::handshake(p2p, &status, &filter).await.map(|eth| (eth, number)).map_err(|e| {
            // The peer kept another connection to us (a simultaneous dial).
            let kept_other = matches!(
                e,
                tern_eth_wire::EthError::P2p(tern_p2p::P2pError::Disconnected(Some(
                    DisconnectReason::AlreadyConnected
                )))
            );
            (e.to_string(), !kept_other)
        })
    };
    let (eth, our_best) = match handshake.await {
        Ok(ok) => ok,
        Err((reason, failed)) => {
            if direction == Direction::Outbound && failed {
                shared.counters.dial_failed();
            }
            let failed = ManagerMsg::HandshakeFailed { id, direction, serial, reason, failed };
            let _ = shared.manager.send(failed).await;
            return;
        }
    };
    let post_merge = matches!(shared.spec.consensus, Consensus::PostMerge);
    let pos_only = POS_ONLY_CLIENTS.iter().any(|p| hello.client_id.starts_with(p));
    let (commands_tx, commands) = mpsc::channel(COMMAND_QUEUE);
    let info = PeerInfo {
        id,
        client_id: hello.client_id.clone(),
        version: eth.version(),
        status: eth.remote_status().clone(),
        direction,
        addr,
        reputation: 0,
        trusted: false,
        source: PeerSource::Inbound,
    };
    let dial = dial.or_else(|| {
        (hello.port != 0).then(|| Enode::new(id, SocketAddr::new(addr.ip(), hello.port)))
    });
    let (ok, still_admitted) = oneshot::channel();
    let established =
        ManagerMsg::Established { info: Box::new(info), commands: commands_tx, dial, serial, ok };
    if shared.manager.send(established).await.is_err() {
        return;
    }
    if !still_admitted.await.unwrap_or(false) {
        let mut eth = eth;
        let _ = eth.p2p_mut().disconnect(DisconnectReason::AlreadyConnected).await;
        return;
    }
    Session {
        id,
        serial,
        eth,
        commands,
        manager: shared.manager.clone(),
        store: shared.store.clone(),
        announce_blocks: !post_merge && !pos_only,
        timeout_min: shared.timeout_min,
        timeout_max: shared.timeout_max,
        range_sent: our_best,
        counters: shared.counters.clone(),
        serve_rate: shared.serve_rate,
        serve_burst: shared.serve_burst,
        receipts_page_limit: shared.receipts_page_limit,
        transactions: shared.transactions.clone(),
    }
    .run()
    .await;
}
