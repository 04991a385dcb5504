//! The discovery service: one UDP socket, the table, bonding (endpoint proofs), answers to
//! peers' queries, ENR requests, lookups that fill the table, liveness checks, and the
//! table saved to a file.
//!
//! Endpoint proof ([discv4]): a node's FindNode or ENRRequest is answered only if it
//! answered our Ping within [`BOND_EXPIRY`]; before we ask a node, we make sure it has a
//! proof of us (we ping it, it pings us back, we answer). Unsolicited Pongs, Neighbours
//! and ENRResponses are dropped; a Neighbours reply carries at most [`BUCKET_SIZE`] nodes
//! in packets of [`MAX_NEIGHBOURS_PER_PACKET`]. Every source is held to a packet rate
//! ([`RateLimits`]).
//!
//! A node enters the table when it answers our Ping (or waits among its bucket's
//! replacements when the bucket is full); either way we then ask for its record
//! ([EIP-868]) and report it, with the fork id its record announces, to
//! [`Discv4::subscribe`]rs: the node decides whom to dial.
//!
//! [discv4]: https://github.com/ethereum/devp2p/blob/master/discv4.md#endpoint-proof
//! [EIP-868]: https://eips.ethereum.org/EIPS/eip-868

use crate::{
    decode, encode, local_record, record_fork_id, record_node_id, EnrRequest, EnrResponse,
    FindNode, Lookup, Message, Neighbours, NodeEndpoint, NodeEnr, NodeRecord, Ping, Pong,
    RateLimiter, RateLimits, Seen, Table, BUCKET_SIZE, MAX_NEIGHBOURS_PER_PACKET,
};
use alloy_eip2124::ForkId;
use alloy_primitives::{Bytes, B256, B512};
use secp256k1::SecretKey;
use std::{
    collections::HashMap,
    net::SocketAddr,
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tokio::{
    net::UdpSocket,
    sync::{broadcast, mpsc, oneshot},
};
use tracing::{debug, info, trace, warn};

/// How long an endpoint proof lasts ([discv4]: "within the last 12 hours").
///
/// [discv4]: https://github.com/ethereum/devp2p/blob/master/discv4.md#endpoint-proof
pub const BOND_EXPIRY: Duration = Duration::from_secs(12 * 3600);

/// Seconds a packet we send stays valid (its `expiration`).
const PACKET_LIFETIME: u64 = 20;

/// Endpoint proofs remembered in each direction at most: anyone can ping from many keys,
/// so the oldest are forgotten beyond this (a forgotten node just bonds again).
const MAX_PROOFS: usize = 16_384;

/// Our Pings and ENRRequests awaiting an answer at most: a Neighbours reply makes us ping
/// the nodes it names, so this bounds what a peer can make us send to others.
const MAX_IN_FLIGHT: usize = 512;

/// Nodes saved in the table file at most (every table node fits: 256 × 16 is the
/// theoretical bound, a real table holds a few hundred).
const MAX_SAVED: usize = 4_096;

/// How often the table is saved while running (it is saved at shutdown too).
const SAVE_INTERVAL: Duration = Duration::from_secs(300);

/// Keeps the newest [`MAX_PROOFS`] proofs of `map`.
fn cap_proofs(map: &mut HashMap<B512, Instant>) {
    if map.len() <= MAX_PROOFS {
        return;
    }
    let mut by_age: Vec<(Instant, B512)> = map.iter().map(|(id, t)| (*t, *id)).collect();
    by_age.sort_unstable();
    let excess = map.len() - MAX_PROOFS / 2;
    by_age.iter().take(excess).for_each(|(_, id)| {
        map.remove(id);
    });
}

/// Settings of a discovery service.
#[derive(Debug, Clone)]
pub struct Discv4Config {
    /// Our node key (the node id is its public key).
    pub key: SecretKey,
    /// The UDP address to bind (port 0: any).
    pub listen: SocketAddr,
    /// The address peers reach us at; its UDP port 0 means the bound one.
    pub advertised: NodeEndpoint,
    /// Nodes to bond with at start.
    pub bootnodes: Vec<NodeRecord>,
    /// Our chain's fork id ([EIP-2124]), put in our record's `eth` entry.
    ///
    /// [EIP-2124]: https://eips.ethereum.org/EIPS/eip-2124
    pub fork_id: Option<ForkId>,
    /// Where the table is saved (at shutdown and every 5 minutes) and loaded from at
    /// start; `None`: not kept.
    pub nodes_file: Option<PathBuf>,
    /// Packet rate limits.
    pub limits: RateLimits,
    /// How long to wait for a Pong, Neighbours or ENRResponse.
    pub request_timeout: Duration,
    /// How often a lookup for a random target runs (every 2 s while the table holds fewer
    /// than 16 nodes).
    pub lookup_interval: Duration,
    /// How often the least recently seen node of one bucket (buckets in turn) is pinged
    /// to check it is alive.
    pub revalidate_interval: Duration,
}

impl Discv4Config {
    /// Defaults for `key` on `listen`, advertising `advertised`.
    pub fn new(key: SecretKey, listen: SocketAddr, advertised: NodeEndpoint) -> Self {
        Self {
            key,
            listen,
            advertised,
            bootnodes: Vec::new(),
            fork_id: None,
            nodes_file: None,
            limits: RateLimits::default(),
            request_timeout: Duration::from_millis(800),
            lookup_interval: Duration::from_secs(20),
            revalidate_interval: Duration::from_secs(5),
        }
    }
}

/// A node that entered our table (it answered our Ping), with what its record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// Who and where.
    pub node: NodeRecord,
    /// The fork id of its record's `eth` entry; `None` if it sent no record, or one
    /// without a well-formed `eth` entry.
    pub fork_id: Option<ForkId>,
}

/// Packet counts of a service since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Discv4Stats {
    /// Packets sent.
    pub sent: u64,
    /// Packets received that decoded and were handled.
    pub received: u64,
    /// Packets dropped because they did not decode (size, hash, signature, RLP).
    pub malformed: u64,
    /// Packets dropped because they had expired.
    pub expired: u64,
    /// Packets dropped by the rate limits.
    pub rate_limited: u64,
    /// Answers nobody asked for (Pong, Neighbours, ENRResponse), and queries from nodes
    /// without an endpoint proof, dropped.
    pub unsolicited: u64,
    /// Lookups started.
    pub lookups: u64,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
    malformed: AtomicU64,
    expired: AtomicU64,
    rate_limited: AtomicU64,
    unsolicited: AtomicU64,
    lookups: AtomicU64,
}

/// Why a packet was dropped: the `reason` label of `tern_discv4_dropped_total`.
#[derive(Debug, Clone, Copy)]
enum Drop {
    Malformed,
    Expired,
    RateLimited,
    Unsolicited,
}

impl Counters {
    fn dropped(&self, why: Drop) {
        let (counter, label) = match why {
            Drop::Malformed => (&self.malformed, "malformed"),
            Drop::Expired => (&self.expired, "expired"),
            Drop::RateLimited => (&self.rate_limited, "rate_limited"),
            Drop::Unsolicited => (&self.unsolicited, "unsolicited"),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("tern_discv4_dropped_total", "reason" => label).increment(1);
    }

    fn snapshot(&self) -> Discv4Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Discv4Stats {
            sent: get(&self.sent),
            received: get(&self.received),
            malformed: get(&self.malformed),
            expired: get(&self.expired),
            rate_limited: get(&self.rate_limited),
            unsolicited: get(&self.unsolicited),
            lookups: get(&self.lookups),
        }
    }
}

enum Command {
    Nodes(oneshot::Sender<Vec<NodeRecord>>),
    Closest(B512, oneshot::Sender<Vec<NodeRecord>>),
    Lookup(B512, oneshot::Sender<Vec<NodeRecord>>),
    SetForkId(ForkId),
    Shutdown(oneshot::Sender<()>),
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

/// A running discovery service.
#[derive(Debug, Clone)]
pub struct Discv4 {
    local: NodeRecord,
    enr: Arc<RwLock<NodeEnr>>,
    commands: mpsc::Sender<Command>,
    found: broadcast::Sender<Discovered>,
    /// The receiver made before the service started, for the first subscriber.
    first: Arc<std::sync::Mutex<Option<broadcast::Receiver<Discovered>>>>,
    counters: Arc<Counters>,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum Discv4Error {
    /// The socket could not be bound.
    #[error("cannot bind UDP {addr}: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
    /// Our record could not be built.
    #[error(transparent)]
    Record(#[from] crate::RecordError),
}

impl Discv4 {
    /// Binds the socket and starts the service (on the current runtime; it stops at
    /// [`Discv4::shutdown`] or when every handle is dropped, saving the table).
    pub async fn spawn(mut config: Discv4Config) -> Result<Self, Discv4Error> {
        let bind = |error| Discv4Error::Bind { addr: config.listen, error };
        let socket = UdpSocket::bind(config.listen).await.map_err(bind)?;
        if config.advertised.udp == 0 {
            config.advertised.udp = socket.local_addr().map_err(bind)?.port();
        }
        let id = tern_ecies::pk2id(&secp256k1::PublicKey::from_secret_key(
            secp256k1::SECP256K1,
            &config.key,
        ));
        let local = NodeRecord { endpoint: config.advertised, id };
        // The sequence number only ever grows, across restarts too: seconds since 1970.
        let e = config.advertised;
        let enr = local_record(&config.key, unix_now(), e.ip, e.tcp, e.udp, config.fork_id)?;
        let enr = Arc::new(RwLock::new(enr));
        let (commands, rx) = mpsc::channel(64);
        let (found, first) = broadcast::channel(4096);
        let first = Arc::new(std::sync::Mutex::new(Some(first)));
        let counters = Arc::new(Counters::default());
        let now = Instant::now();
        let saved = config.nodes_file.as_ref().map(|p| load_nodes(p)).unwrap_or_default();
        if !saved.is_empty() {
            info!(nodes = saved.len(), "discovery table loaded; checking its nodes");
        }
        let service = Service {
            socket,
            table: Table::new(&id),
            local,
            enr: enr.clone(),
            bonded: HashMap::new(),
            proven_to: HashMap::new(),
            pings: HashMap::new(),
            enr_requests: HashMap::new(),
            enr_waiting: HashMap::new(),
            known_seq: HashMap::new(),
            asked: HashMap::new(),
            lookups: Vec::new(),
            found: found.clone(),
            limiter: RateLimiter::new(config.limits, now),
            counters: counters.clone(),
            revalidated: 0,
            config,
        };
        tokio::spawn(service.run(rx, saved));
        Ok(Self { local, enr, commands, found, first, counters })
    }

    /// Our node as others see it.
    pub fn local(&self) -> NodeRecord {
        self.local
    }

    /// Our node record ([EIP-778]).
    ///
    /// [EIP-778]: https://eips.ethereum.org/EIPS/eip-778
    pub fn local_enr(&self) -> NodeEnr {
        self.enr.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Nodes as they bond (with their records' fork ids): the first call gets every
    /// report since the service started (none is missed between `spawn` and it), later
    /// calls the reports from then on.
    pub fn subscribe(&self) -> broadcast::Receiver<Discovered> {
        let first = self.first.lock().unwrap_or_else(|e| e.into_inner()).take();
        first.unwrap_or_else(|| self.found.subscribe())
    }

    /// Packet counts so far.
    pub fn stats(&self) -> Discv4Stats {
        self.counters.snapshot()
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Nodes in the table.
    pub async fn table_len(&self) -> usize {
        self.nodes().await.len()
    }

    /// Every node in the table.
    pub async fn nodes(&self) -> Vec<NodeRecord> {
        self.ask(Command::Nodes).await.unwrap_or_default()
    }

    /// The table's nodes closest to `target`.
    pub async fn closest(&self, target: B512) -> Vec<NodeRecord> {
        self.ask(|tx| Command::Closest(target, tx)).await.unwrap_or_default()
    }

    /// Runs a lookup for `target`; the closest nodes that answered.
    pub async fn lookup(&self, target: B512) -> Vec<NodeRecord> {
        self.ask(|tx| Command::Lookup(target, tx)).await.unwrap_or_default()
    }

    /// Announces a new fork id (our chain passed a fork): a new record, with a higher
    /// sequence number, that peers fetch when they see it in our Pings and Pongs.
    pub async fn set_fork_id(&self, fork_id: ForkId) {
        let _ = self.commands.send(Command::SetForkId(fork_id)).await;
    }

    /// Saves the table and stops the service.
    pub async fn shutdown(&self) {
        let _ = self.ask(Command::Shutdown).await;
    }
}

/// A Ping of ours waiting for its Pong.
#[derive(Debug, Clone, Copy)]
struct PendingPing {
    node: NodeRecord,
    deadline: Instant,
}

struct Service {
    socket: UdpSocket,
    table: Table,
    local: NodeRecord,
    enr: Arc<RwLock<NodeEnr>>,
    config: Discv4Config,
    /// When each node last answered our Ping (its endpoint is proven to us).
    bonded: HashMap<B512, Instant>,
    /// When we last answered each node's Ping (our endpoint is proven to it).
    proven_to: HashMap<B512, Instant>,
    /// Our Pings waiting for their Pong, by ping hash.
    pings: HashMap<B256, PendingPing>,
    /// Our ENRRequests waiting for their response, by node, with the request's hash. Not
    /// by hash alone: a request is only `[expiration]`, so requests signed in the same
    /// second are the same packet, with the same hash, whoever they go to.
    enr_requests: HashMap<B512, (B256, PendingPing)>,
    /// Table nodes whose record we want once they hold a proof of our endpoint (their
    /// Ping, answered), with until when we wait.
    enr_waiting: HashMap<B512, PendingPing>,
    /// The record sequence number of nodes whose record we have (table nodes, and
    /// others up to [`MAX_PROOFS`]).
    known_seq: HashMap<B512, u64>,
    /// FindNodes waiting for Neighbours (or for the node to ping us first), by node.
    asked: HashMap<B512, (B512, Instant, bool)>,
    /// Lookups in progress, with whoever waits for each.
    lookups: Vec<(Lookup, Option<oneshot::Sender<Vec<NodeRecord>>>)>,
    found: broadcast::Sender<Discovered>,
    limiter: RateLimiter,
    counters: Arc<Counters>,
    /// Revalidations so far (which bucket is next).
    revalidated: usize,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn fresh(at: Option<&Instant>, now: Instant) -> bool {
    at.is_some_and(|t| now.duration_since(*t) < BOND_EXPIRY)
}

fn udp_addr(node: &NodeRecord) -> SocketAddr {
    SocketAddr::new(node.endpoint.ip, node.endpoint.udp)
}

/// A table node as one line of the nodes file: its enode URL with the UDP port.
fn node_line(n: &NodeRecord) -> String {
    let addr = SocketAddr::new(n.endpoint.ip, n.endpoint.tcp);
    format!("enode://{}@{addr}?discport={}", alloy_primitives::hex::encode(n.id), n.endpoint.udp)
}

/// Parses a line written by [`node_line`].
fn parse_node_line(line: &str) -> Option<NodeRecord> {
    let rest = line.trim().strip_prefix("enode://")?;
    let (id, rest) = rest.split_once('@')?;
    let (addr, udp) = rest.split_once("?discport=")?;
    let id: B512 = id.parse().ok()?;
    let addr: SocketAddr = addr.parse().ok()?;
    Some(NodeRecord {
        endpoint: NodeEndpoint { ip: addr.ip(), udp: udp.parse().ok()?, tcp: addr.port() },
        id,
    })
}

/// The nodes saved in `path` (none if it does not exist; unreadable lines are skipped).
fn load_nodes(path: &std::path::Path) -> Vec<NodeRecord> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.lines().filter_map(parse_node_line).take(MAX_SAVED).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            warn!(path = %path.display(), error = %e, "cannot read the discovery table file");
            Vec::new()
        }
    }
}

/// Writes `nodes` to `path` (through a temporary file, so a crash leaves the old one).
fn save_nodes(path: &std::path::Path, nodes: &[NodeRecord]) -> std::io::Result<()> {
    let text: String = nodes.iter().take(MAX_SAVED).map(|n| node_line(n) + "\n").collect();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

impl Service {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>, saved: Vec<NodeRecord>) {
        let now = Instant::now();
        for b in self.config.bootnodes.clone().into_iter().chain(saved) {
            self.ping(b, now).await;
        }
        let mut buf = vec![0u8; 2048];
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut next_lookup = now + Duration::from_secs(1);
        let mut next_revalidation = now + self.config.revalidate_interval;
        let mut next_save = now + SAVE_INTERVAL;
        loop {
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((len, from)) => {
                        let packet = buf[..len].to_vec();
                        self.on_packet(&packet, from, Instant::now()).await;
                    }
                    Err(e) => debug!(error = %e, "discovery socket receive failed"),
                },
                c = commands.recv() => match c {
                    None => return self.save(),
                    Some(Command::Shutdown(tx)) => {
                        self.save();
                        let _ = tx.send(());
                        return;
                    }
                    Some(c) => self.on_command(c, Instant::now()).await,
                },
                _ = tick.tick() => {
                    let now = Instant::now();
                    self.expire(now).await;
                    if now >= next_lookup && self.lookups.is_empty() {
                        let sparse = self.table.len() < BUCKET_SIZE;
                        if sparse {
                            // Bootnodes that were not up yet (or lost our Ping) get
                            // another chance while the table is nearly empty.
                            for b in self.config.bootnodes.clone() {
                                if !self.table.contains(&b.id) {
                                    self.ping(b, now).await;
                                }
                            }
                        }
                        self.start_lookup(B512::random(), None, now).await;
                        let wait = if sparse { Duration::from_secs(2) } else { self.config.lookup_interval };
                        next_lookup = now + wait;
                    }
                    if now >= next_revalidation {
                        self.revalidate(now).await;
                        next_revalidation = now + self.config.revalidate_interval;
                    }
                    if now >= next_save {
                        self.save();
                        next_save = now + SAVE_INTERVAL;
                    }
                    metrics::gauge!("tern_discv4_table_nodes").set(self.table.len() as f64);
                }
            }
        }
    }

    fn save(&self) {
        let Some(path) = &self.config.nodes_file else { return };
        let nodes: Vec<NodeRecord> = self.table.nodes().copied().collect();
        match save_nodes(path, &nodes) {
            Ok(()) => debug!(nodes = nodes.len(), "discovery table saved"),
            Err(e) => warn!(path = %path.display(), error = %e, "cannot save the discovery table"),
        }
    }

    fn local_seq(&self) -> u64 {
        self.enr.read().unwrap_or_else(|e| e.into_inner()).seq()
    }

    /// Sends `message` to `to`; its hash, if it went out.
    async fn send(&self, message: Message, to: SocketAddr) -> Option<B256> {
        let (packet, hash) = encode(&message, &self.config.key);
        match self.socket.send_to(&packet, to).await {
            Ok(_) => {
                self.counters.sent.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("tern_discv4_packets_total", "direction" => "out", "kind" => message.name())
                    .increment(1);
                Some(hash)
            }
            Err(e) => {
                trace!(error = %e, %to, "discovery send failed");
                None
            }
        }
    }

    fn in_flight(&self) -> usize {
        self.pings.len() + self.enr_requests.len() + self.enr_waiting.len()
    }

    async fn ping(&mut self, node: NodeRecord, now: Instant) {
        if node.id == self.local.id
            || self.in_flight() >= MAX_IN_FLIGHT
            || self.pings.values().any(|p| p.node.id == node.id)
        {
            return;
        }
        let message = Message::Ping(Ping {
            version: 4,
            from: self.local.endpoint,
            to: node.endpoint,
            expiration: unix_now() + PACKET_LIFETIME,
            enr_seq: Some(self.local_seq()),
        });
        if let Some(hash) = self.send(message, udp_addr(&node)).await {
            self.pings
                .insert(hash, PendingPing { node, deadline: now + self.config.request_timeout });
        }
    }

    /// Asks a table node for its record; it is reported to subscribers when the answer
    /// comes (or without a fork id when none comes). Like FindNode, an ENRRequest is
    /// answered only by a node holding a proof of our endpoint: until it has one (it
    /// pings us), the request waits.
    async fn request_enr(&mut self, node: NodeRecord, now: Instant) {
        if self.in_flight() >= MAX_IN_FLIGHT {
            return self.report(node, None);
        }
        if self.enr_requests.contains_key(&node.id) {
            return;
        }
        if !fresh(self.proven_to.get(&node.id), now) {
            let deadline = now + 2 * self.config.request_timeout;
            self.enr_waiting.insert(node.id, PendingPing { node, deadline });
            return;
        }
        let message = Message::EnrRequest(EnrRequest { expiration: unix_now() + PACKET_LIFETIME });
        if let Some(hash) = self.send(message, udp_addr(&node)).await {
            let deadline = now + self.config.request_timeout;
            self.enr_requests.insert(node.id, (hash, PendingPing { node, deadline }));
        }
    }

    fn report(&self, node: NodeRecord, fork_id: Option<ForkId>) {
        trace!(node = %node.id, ?fork_id, "reporting a bonded node");
        let _ = self.found.send(Discovered { node, fork_id });
    }

    async fn on_command(&mut self, c: Command, now: Instant) {
        match c {
            Command::Nodes(tx) => {
                let _ = tx.send(self.table.nodes().copied().collect());
            }
            Command::Closest(target, tx) => {
                let _ = tx.send(self.table.closest(&target, BUCKET_SIZE));
            }
            Command::Lookup(target, tx) => self.start_lookup(target, Some(tx), now).await,
            Command::SetForkId(fork_id) => {
                let e = self.local.endpoint;
                let seq = self.local_seq() + 1;
                match local_record(&self.config.key, seq, e.ip, e.tcp, e.udp, Some(fork_id)) {
                    Ok(r) => *self.enr.write().unwrap_or_else(|e| e.into_inner()) = r,
                    Err(e) => warn!(error = %e, "cannot update our node record"),
                }
            }
            Command::Shutdown(_) => unreachable!("handled by run"),
        }
    }

    async fn start_lookup(
        &mut self,
        target: B512,
        waiter: Option<oneshot::Sender<Vec<NodeRecord>>>,
        now: Instant,
    ) {
        self.counters.lookups.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("tern_discv4_lookups_total").increment(1);
        let start = self.table.closest(&target, BUCKET_SIZE);
        self.lookups.push((Lookup::new(self.local.id, target, start), waiter));
        self.advance_lookups(now).await;
    }

    /// Sends the queries lookups want now; finishes the ones that are done.
    async fn advance_lookups(&mut self, now: Instant) {
        let mut queries = Vec::new();
        for (lookup, _) in &mut self.lookups {
            for node in lookup.next_queries() {
                queries.push((node, lookup.target()));
            }
        }
        for (node, target) in queries {
            self.find_node(node, target, now).await;
        }
        let (done, running): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.lookups).into_iter().partition(|(l, _)| l.is_done());
        self.lookups = running;
        for (lookup, waiter) in done {
            if let Some(w) = waiter {
                let _ = w.send(lookup.result());
            }
        }
    }

    /// Asks `node` for `target`'s neighbours, once it has a proof of our endpoint (until
    /// then we ping it and wait for its ping).
    async fn find_node(&mut self, node: NodeRecord, target: B512, now: Instant) {
        let deadline = now + 2 * self.config.request_timeout;
        if fresh(self.proven_to.get(&node.id), now) {
            self.asked.insert(node.id, (target, deadline, true));
            let message =
                Message::FindNode(FindNode { target, expiration: unix_now() + PACKET_LIFETIME });
            self.send(message, udp_addr(&node)).await;
        } else {
            self.asked.insert(node.id, (target, deadline, false));
            self.ping(node, now).await;
        }
    }

    async fn on_packet(&mut self, packet: &[u8], from: SocketAddr, now: Instant) {
        if !self.limiter.allow(from, now) {
            return self.counters.dropped(Drop::RateLimited);
        }
        let d = match decode(packet) {
            Ok(d) => d,
            Err(e) => {
                trace!(error = %e, %from, "discovery packet dropped");
                return self.counters.dropped(Drop::Malformed);
            }
        };
        let expiration = match &d.message {
            Message::Ping(p) => p.expiration,
            Message::Pong(p) => p.expiration,
            Message::FindNode(f) => f.expiration,
            Message::Neighbours(n) => n.expiration,
            Message::EnrRequest(r) => r.expiration,
            Message::EnrResponse(_) => u64::MAX,
        };
        if expiration < unix_now() {
            trace!(%from, kind = d.message.name(), "expired discovery packet dropped");
            return self.counters.dropped(Drop::Expired);
        }
        if d.node_id == self.local.id {
            return self.counters.dropped(Drop::Unsolicited);
        }
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("tern_discv4_packets_total", "direction" => "in", "kind" => d.message.name())
            .increment(1);
        let sender = |tcp: u16| NodeRecord {
            endpoint: NodeEndpoint { ip: from.ip(), udp: from.port(), tcp },
            id: d.node_id,
        };
        match d.message {
            Message::Ping(p) => {
                let pong = Message::Pong(Pong {
                    to: NodeEndpoint { ip: from.ip(), udp: from.port(), tcp: p.from.tcp },
                    ping_hash: d.hash,
                    expiration: unix_now() + PACKET_LIFETIME,
                    enr_seq: Some(self.local_seq()),
                });
                self.send(pong, from).await;
                self.proven_to.insert(d.node_id, now);
                let node = sender(p.from.tcp);
                // A FindNode or ENRRequest that waited for this proof goes out now.
                if let Some((target, _, false)) = self.asked.get(&d.node_id).copied() {
                    self.find_node(node, target, now).await;
                }
                if let Some(waiting) = self.enr_waiting.remove(&d.node_id) {
                    self.request_enr(waiting.node, now).await;
                }
                if !fresh(self.bonded.get(&d.node_id), now) {
                    self.ping(node, now).await;
                }
            }
            Message::Pong(p) => {
                let Some(ping) = self.pings.get(&p.ping_hash).copied() else {
                    return self.counters.dropped(Drop::Unsolicited);
                };
                if ping.node.id != d.node_id {
                    return self.counters.dropped(Drop::Unsolicited);
                }
                self.pings.remove(&p.ping_hash);
                self.bonded.insert(d.node_id, now);
                let node = sender(ping.node.endpoint.tcp);
                match self.table.seen(node) {
                    Seen::Added => self.request_enr(node, now).await,
                    Seen::Refreshed => {
                        // A newer record (a new fork id, a new address) is fetched again.
                        let known = self.known_seq.get(&node.id).copied();
                        if p.enr_seq.is_some_and(|seq| known.is_none_or(|k| seq > k)) {
                            self.request_enr(node, now).await;
                        }
                    }
                    Seen::BucketFull { oldest } => {
                        self.ping(oldest, now).await;
                        // No room in the table, but a live node all the same: the dialer
                        // hears of it once.
                        if !self.known_seq.contains_key(&node.id) {
                            self.request_enr(node, now).await;
                        }
                    }
                    Seen::Local => {}
                }
            }
            Message::FindNode(f) => {
                if !fresh(self.bonded.get(&d.node_id), now) {
                    trace!(%from, "FindNode from a node without an endpoint proof ignored");
                    return self.counters.dropped(Drop::Unsolicited);
                }
                // Never the asker itself (it knows where it is).
                let mut nodes = self.table.closest(&f.target, BUCKET_SIZE + 1);
                nodes.retain(|n| n.id != d.node_id);
                nodes.truncate(BUCKET_SIZE);
                // An empty table still answers (one empty packet): the asker's lookup
                // moves on instead of waiting out its timeout.
                let empty = [Vec::new()];
                let chunks: Vec<&[NodeRecord]> = match nodes.is_empty() {
                    true => empty.iter().map(Vec::as_slice).collect(),
                    false => nodes.chunks(MAX_NEIGHBOURS_PER_PACKET).collect(),
                };
                for chunk in chunks {
                    let message = Message::Neighbours(Neighbours {
                        nodes: chunk.to_vec(),
                        expiration: unix_now() + PACKET_LIFETIME,
                    });
                    self.send(message, from).await;
                }
            }
            Message::Neighbours(n) => {
                let Some((target, _, true)) = self.asked.get(&d.node_id).copied() else {
                    trace!(%from, "unsolicited Neighbours dropped");
                    return self.counters.dropped(Drop::Unsolicited);
                };
                let nodes: Vec<NodeRecord> = n.nodes.into_iter().take(BUCKET_SIZE).collect();
                for (lookup, _) in &mut self.lookups {
                    if lookup.target() == target {
                        if lookup.is_waiting_for(&d.node_id) {
                            lookup.on_answer(&d.node_id, nodes.clone());
                        } else {
                            lookup.on_more(&d.node_id, nodes.clone());
                        }
                    }
                }
                for node in nodes {
                    if node.id != self.local.id && !self.table.contains(&node.id) {
                        self.ping(node, now).await;
                    }
                }
                self.advance_lookups(now).await;
            }
            Message::EnrRequest(_) => {
                if !fresh(self.bonded.get(&d.node_id), now) {
                    return self.counters.dropped(Drop::Unsolicited);
                }
                let enr = Bytes::from(alloy_rlp::encode(
                    &*self.enr.read().unwrap_or_else(|e| e.into_inner()),
                ));
                let response = Message::EnrResponse(EnrResponse { request_hash: d.hash, enr });
                self.send(response, from).await;
            }
            Message::EnrResponse(r) => {
                let Some((hash, req)) = self.enr_requests.get(&d.node_id).copied() else {
                    return self.counters.dropped(Drop::Unsolicited);
                };
                if hash != r.request_hash {
                    return self.counters.dropped(Drop::Unsolicited);
                }
                self.enr_requests.remove(&d.node_id);
                let record = <NodeEnr as alloy_rlp::Decodable>::decode(&mut &r.enr[..])
                    .ok()
                    .filter(|rec| rec.verify() && record_node_id(rec) == d.node_id);
                let Some(record) = record else {
                    debug!(%from, "a node sent a record that is not its own or not valid");
                    self.counters.dropped(Drop::Malformed);
                    return self.report(req.node, None);
                };
                if self.known_seq.len() >= MAX_PROOFS {
                    self.known_seq.retain(|id, _| self.table.contains(id));
                }
                self.known_seq.insert(d.node_id, record.seq());
                self.report(req.node, record_fork_id(&record));
            }
        }
    }

    /// Pings the least recently seen node of the next non-empty bucket: if it does not
    /// answer, [`Self::expire`] removes it and a replacement takes its place.
    async fn revalidate(&mut self, now: Instant) {
        self.revalidated = self.revalidated.wrapping_add(1);
        if let Some(node) = self.table.oldest(self.revalidated) {
            self.ping(node, now).await;
        }
    }

    /// Drops Pings, ENRRequests and FindNodes that were not answered in time: a node that
    /// fails its revalidation leaves the table (a replacement takes its place).
    async fn expire(&mut self, now: Instant) {
        let late: Vec<B256> =
            self.pings.iter().filter(|(_, p)| p.deadline <= now).map(|(h, _)| *h).collect();
        for h in late {
            let Some(p) = self.pings.remove(&h) else { continue };
            if !self.table.contains(&p.node.id) {
                continue;
            }
            debug!(node = %p.node.id, "table node did not answer; removed");
            self.known_seq.remove(&p.node.id);
            if let Some(replacement) = self.table.remove(&p.node.id) {
                self.request_enr(replacement, now).await;
            }
        }
        let silent: Vec<B512> = self
            .enr_requests
            .iter()
            .filter(|(_, (_, p))| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in silent {
            if let Some((_, p)) = self.enr_requests.remove(&id) {
                self.report(p.node, None);
            }
        }
        let unproven: Vec<B512> =
            self.enr_waiting.iter().filter(|(_, p)| p.deadline <= now).map(|(id, _)| *id).collect();
        for id in unproven {
            if let Some(p) = self.enr_waiting.remove(&id) {
                self.report(p.node, None);
            }
        }
        let silent: Vec<B512> =
            self.asked.iter().filter(|(_, (_, d, _))| *d <= now).map(|(id, _)| *id).collect();
        for id in silent {
            self.asked.remove(&id);
            for (lookup, _) in &mut self.lookups {
                if lookup.is_waiting_for(&id) {
                    lookup.on_timeout(&id);
                }
            }
        }
        cap_proofs(&mut self.bonded);
        cap_proofs(&mut self.proven_to);
        // A query stays open until its deadline even once answered: a reply of more than
        // 12 nodes comes in two packets, and the second must not count as unsolicited.
        self.advance_lookups(now).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_node_survives_its_file_line() {
        let node = NodeRecord {
            endpoint: NodeEndpoint { ip: "10.1.2.3".parse().unwrap(), udp: 30301, tcp: 30303 },
            id: B512::repeat_byte(0xab),
        };
        let line = node_line(&node);
        assert!(line.ends_with("@10.1.2.3:30303?discport=30301"), "{line}");
        assert_eq!(parse_node_line(&line), Some(node));
        let v6 = NodeRecord {
            endpoint: NodeEndpoint { ip: "::1".parse().unwrap(), udp: 1, tcp: 2 },
            ..node
        };
        assert_eq!(parse_node_line(&node_line(&v6)), Some(v6));
        assert_eq!(parse_node_line("enode://zz@1.2.3.4:1?discport=1"), None);
        assert_eq!(parse_node_line("garbage"), None);
    }
}
