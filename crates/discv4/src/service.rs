//! The discovery service: one UDP socket, the table, bonding (endpoint proofs), answers to
//! peers' queries, and lookups that fill the table.
//!
//! Endpoint proof ([discv4]): a node's FindNode is answered only if it answered our Ping
//! within [`BOND_EXPIRY`]; before we ask a node, we make sure it has a proof of us (we
//! ping it, it pings us back, we answer). Unsolicited Pongs and Neighbours are dropped;
//! a Neighbours reply carries at most [`BUCKET_SIZE`] nodes in packets of
//! [`MAX_NEIGHBOURS_PER_PACKET`].
//!
//! [discv4]: https://github.com/ethereum/devp2p/blob/master/discv4.md#endpoint-proof

use crate::{
    decode, encode, FindNode, Lookup, Message, Neighbours, NodeEndpoint, NodeRecord, Ping, Pong,
    Seen, Table, BUCKET_SIZE, MAX_NEIGHBOURS_PER_PACKET,
};
use alloy_primitives::{B256, B512};
use secp256k1::SecretKey;
use std::{
    collections::HashMap,
    net::SocketAddr,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tokio::{
    net::UdpSocket,
    sync::{broadcast, mpsc, oneshot},
};
use tracing::{debug, trace};

/// How long an endpoint proof lasts ([discv4]: "within the last 12 hours").
///
/// [discv4]: https://github.com/ethereum/devp2p/blob/master/discv4.md#endpoint-proof
pub const BOND_EXPIRY: Duration = Duration::from_secs(12 * 3600);

/// Seconds a packet we send stays valid (its `expiration`).
const PACKET_LIFETIME: u64 = 20;

/// Endpoint proofs remembered in each direction at most: anyone can ping from many keys,
/// so the oldest are forgotten beyond this (a forgotten node just bonds again).
const MAX_PROOFS: usize = 16_384;

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
    /// How long to wait for a Pong or Neighbours.
    pub request_timeout: Duration,
    /// How often a lookup for a random target runs (more often while the table is
    /// nearly empty).
    pub lookup_interval: Duration,
}

impl Discv4Config {
    /// Defaults for `key` on `listen`, advertising `advertised`.
    pub fn new(key: SecretKey, listen: SocketAddr, advertised: NodeEndpoint) -> Self {
        Self {
            key,
            listen,
            advertised,
            bootnodes: Vec::new(),
            request_timeout: Duration::from_millis(800),
            lookup_interval: Duration::from_secs(20),
        }
    }
}

enum Command {
    TableLen(oneshot::Sender<usize>),
    Closest(B512, oneshot::Sender<Vec<NodeRecord>>),
    Lookup(B512, oneshot::Sender<Vec<NodeRecord>>),
}

/// A running discovery service.
#[derive(Debug, Clone)]
pub struct Discv4 {
    local: NodeRecord,
    commands: mpsc::Sender<Command>,
    found: broadcast::Sender<NodeRecord>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl Discv4 {
    /// Binds the socket and starts the service (on the current runtime; it stops when
    /// every handle is dropped).
    pub async fn spawn(mut config: Discv4Config) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(config.listen).await?;
        if config.advertised.udp == 0 {
            config.advertised.udp = socket.local_addr()?.port();
        }
        let id = tern_ecies::pk2id(&secp256k1::PublicKey::from_secret_key(
            secp256k1::SECP256K1,
            &config.key,
        ));
        let local = NodeRecord { endpoint: config.advertised, id };
        let (commands, rx) = mpsc::channel(64);
        let (found, _) = broadcast::channel(1024);
        let service = Service {
            socket,
            table: Table::new(&id),
            local,
            bonded: HashMap::new(),
            proven_to: HashMap::new(),
            pings: HashMap::new(),
            asked: HashMap::new(),
            lookups: Vec::new(),
            found: found.clone(),
            config,
        };
        tokio::spawn(service.run(rx));
        Ok(Self { local, commands, found })
    }

    /// Our node as others see it.
    pub fn local(&self) -> NodeRecord {
        self.local
    }

    /// Nodes as they enter the table (bonded), from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeRecord> {
        self.found.subscribe()
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Nodes in the table.
    pub async fn table_len(&self) -> usize {
        self.ask(Command::TableLen).await.unwrap_or(0)
    }

    /// The table's nodes closest to `target`.
    pub async fn closest(&self, target: B512) -> Vec<NodeRecord> {
        self.ask(|tx| Command::Closest(target, tx)).await.unwrap_or_default()
    }

    /// Runs a lookup for `target`; the closest nodes that answered.
    pub async fn lookup(&self, target: B512) -> Vec<NodeRecord> {
        self.ask(|tx| Command::Lookup(target, tx)).await.unwrap_or_default()
    }
}

/// Why we pinged a node.
#[derive(Debug, Clone, Copy)]
struct PendingPing {
    node: NodeRecord,
    deadline: Instant,
}

struct Service {
    socket: UdpSocket,
    table: Table,
    local: NodeRecord,
    config: Discv4Config,
    /// When each node last answered our Ping (its endpoint is proven to us).
    bonded: HashMap<B512, Instant>,
    /// When we last answered each node's Ping (our endpoint is proven to it).
    proven_to: HashMap<B512, Instant>,
    /// Our Pings waiting for their Pong, by ping hash.
    pings: HashMap<B256, PendingPing>,
    /// FindNodes waiting for Neighbours (or for the node to ping us first), by node.
    asked: HashMap<B512, (B512, Instant, bool)>,
    /// Lookups in progress, with whoever waits for each.
    lookups: Vec<(Lookup, Option<oneshot::Sender<Vec<NodeRecord>>>)>,
    found: broadcast::Sender<NodeRecord>,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn fresh(at: Option<&Instant>, now: Instant) -> bool {
    at.is_some_and(|t| now.duration_since(*t) < BOND_EXPIRY)
}

impl Service {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let now = Instant::now();
        for b in self.config.bootnodes.clone() {
            self.ping(b, now).await;
        }
        let mut buf = vec![0u8; 2048];
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut next_lookup = now + Duration::from_secs(1);
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
                    None => return,
                    Some(c) => self.on_command(c, Instant::now()).await,
                },
                _ = tick.tick() => {
                    let now = Instant::now();
                    self.expire(now).await;
                    if now >= next_lookup && self.lookups.is_empty() {
                        let target = B512::random();
                        self.start_lookup(target, None, now).await;
                        let sparse = self.table.len() < BUCKET_SIZE;
                        let wait = if sparse { Duration::from_secs(2) } else { self.config.lookup_interval };
                        next_lookup = now + wait;
                    }
                }
            }
        }
    }

    async fn send(&self, message: Message, to: SocketAddr) {
        let (packet, _) = encode(&message, &self.config.key);
        if let Err(e) = self.socket.send_to(&packet, to).await {
            trace!(error = %e, %to, "discovery send failed");
        }
    }

    async fn ping(&mut self, node: NodeRecord, now: Instant) {
        if self.pings.values().any(|p| p.node.id == node.id) {
            return;
        }
        let message = Message::Ping(Ping {
            version: 4,
            from: self.local.endpoint,
            to: node.endpoint,
            expiration: unix_now() + PACKET_LIFETIME,
            enr_seq: None,
        });
        let (packet, hash) = encode(&message, &self.config.key);
        let to = SocketAddr::new(node.endpoint.ip, node.endpoint.udp);
        if self.socket.send_to(&packet, to).await.is_ok() {
            self.pings
                .insert(hash, PendingPing { node, deadline: now + self.config.request_timeout });
        }
    }

    async fn on_command(&mut self, c: Command, now: Instant) {
        match c {
            Command::TableLen(tx) => {
                let _ = tx.send(self.table.len());
            }
            Command::Closest(target, tx) => {
                let _ = tx.send(self.table.closest(&target, BUCKET_SIZE));
            }
            Command::Lookup(target, tx) => self.start_lookup(target, Some(tx), now).await,
        }
    }

    async fn start_lookup(
        &mut self,
        target: B512,
        waiter: Option<oneshot::Sender<Vec<NodeRecord>>>,
        now: Instant,
    ) {
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
            self.send(message, SocketAddr::new(node.endpoint.ip, node.endpoint.udp)).await;
        } else {
            self.asked.insert(node.id, (target, deadline, false));
            self.ping(node, now).await;
        }
    }

    async fn on_packet(&mut self, packet: &[u8], from: SocketAddr, now: Instant) {
        let d = match decode(packet) {
            Ok(d) => d,
            Err(e) => {
                trace!(error = %e, %from, "discovery packet dropped");
                return;
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
            return;
        }
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
                    enr_seq: None,
                });
                self.send(pong, from).await;
                self.proven_to.insert(d.node_id, now);
                let node = sender(p.from.tcp);
                // A FindNode that waited for this proof goes out now.
                if let Some((target, _, false)) = self.asked.get(&d.node_id).copied() {
                    self.find_node(node, target, now).await;
                }
                if !fresh(self.bonded.get(&d.node_id), now) {
                    self.ping(node, now).await;
                }
            }
            Message::Pong(p) => {
                let Some(ping) = self.pings.get(&p.ping_hash).copied() else { return };
                if ping.node.id != d.node_id {
                    return;
                }
                self.pings.remove(&p.ping_hash);
                self.bonded.insert(d.node_id, now);
                let node = NodeRecord {
                    endpoint: NodeEndpoint {
                        ip: from.ip(),
                        udp: from.port(),
                        tcp: ping.node.endpoint.tcp,
                    },
                    id: d.node_id,
                };
                match self.table.seen(node) {
                    Seen::Added => {
                        let _ = self.found.send(node);
                    }
                    Seen::BucketFull { oldest } => self.ping(oldest, now).await,
                    Seen::Refreshed | Seen::Local => {}
                }
            }
            Message::FindNode(f) => {
                if !fresh(self.bonded.get(&d.node_id), now) {
                    trace!(%from, "FindNode from a node without an endpoint proof ignored");
                    return;
                }
                let nodes = self.table.closest(&f.target, BUCKET_SIZE);
                for chunk in nodes.chunks(MAX_NEIGHBOURS_PER_PACKET) {
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
                    return;
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
            Message::EnrRequest(_) | Message::EnrResponse(_) => {}
        }
    }

    /// Drops Pings and FindNodes that were not answered in time: a node that fails its
    /// revalidation leaves the table (a replacement takes its place).
    async fn expire(&mut self, now: Instant) {
        let late: Vec<B256> =
            self.pings.iter().filter(|(_, p)| p.deadline <= now).map(|(h, _)| *h).collect();
        for h in late {
            if let Some(p) = self.pings.remove(&h) {
                if let Some(replacement) = self.table.remove(&p.node.id) {
                    let _ = self.found.send(replacement);
                }
            }
        }
        let silent: Vec<B512> =
            self.asked.iter().filter(|(_, (_, d, _))| *d <= now).map(|(id, _)| *id).collect();
        for id in silent {
            self.asked.remove(&id);
            for (lookup, _) in &mut self.lookups {
                lookup.on_timeout(&id);
            }
        }
        cap_proofs(&mut self.bonded);
        cap_proofs(&mut self.proven_to);
        // A node that answered closes its query once its reply is in.
        self.asked.retain(|id, (target, _, _)| {
            self.lookups.iter().any(|(l, _)| l.target() == *target && l.is_waiting_for(id))
        });
        self.advance_lookups(now).await;
    }
}
