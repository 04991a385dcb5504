//! [`TxGossip`]: the decisions of transaction gossip (DESIGN §6), without I/O: who gets
//! whole transactions and who gets hashes, which peer knows what, which announced hashes
//! to fetch from whom, and whether what arrived matches what was announced.

use crate::known::BoundedSet;
use alloy_primitives::B256;
use std::collections::{HashMap, VecDeque};
use tern_p2p::PeerId;

/// Transaction hashes remembered per peer as known to it (reth's 32,768).
pub const KNOWN_TRANSACTIONS_PER_PEER: usize = 32_768;
/// Most hashes in one GetPooledTransactions we send (the eth spec's recommended 256).
pub const MAX_FETCH_HASHES: usize = 256;
/// Most announced hashes waiting to be fetched; announcements beyond it are ignored
/// until fetches drain it.
pub const MAX_WANTED: usize = 32_768;
/// Peers remembered per announced hash, to fetch it elsewhere if the first fails.
pub const FETCH_ALTERNATIVES: usize = 8;
/// Largest `Transactions` message we broadcast, in bytes of transactions (reth's and
/// geth's 128 KiB); the rest are announced by hash.
pub const MAX_BROADCAST_BYTES: usize = 128 * 1024;

/// A pool transaction to propagate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GossipTx {
    /// Its hash.
    pub hash: B256,
    /// Its EIP-2718 type.
    pub ty: u8,
    /// Its encoded size in bytes.
    pub size: u32,
}

impl GossipTx {
    /// Whether it may be sent whole: never a blob transaction (EIP-4844), never one
    /// larger than a broadcast message.
    fn broadcastable(&self) -> bool {
        self.ty != 3 && self.size as usize <= MAX_BROADCAST_BYTES
    }
}

/// What to send one peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outgoing {
    /// Transactions to send whole, in one `Transactions` message.
    pub full: Vec<B256>,
    /// Transactions to announce by hash.
    pub hashes: Vec<GossipTx>,
}

/// How a `PooledTransactions` answer compared with our request and the announcements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchCheck {
    /// Transactions we did not ask that peer for.
    pub unrequested: usize,
    /// Transactions whose type or size differs from what was announced.
    pub mismatched: Vec<B256>,
}

#[derive(Debug)]
struct Peer {
    known: BoundedSet<B256>,
    /// The hashes of our request in flight to it.
    fetching: Option<Vec<B256>>,
}

#[derive(Debug)]
struct Wanted {
    ty: u8,
    size: u32,
    /// Peers that announced it, first announcer first.
    from: Vec<PeerId>,
    /// The peer it is being fetched from.
    requested: Option<PeerId>,
}

/// Transaction gossip state for all peers.
#[derive(Debug)]
pub struct TxGossip {
    peers: HashMap<PeerId, Peer>,
    wanted: HashMap<B256, Wanted>,
    /// Wanted hashes in announcement order (may hold hashes no longer wanted).
    order: VecDeque<B256>,
    /// Rotates which peers get whole transactions.
    round: usize,
}

impl Default for TxGossip {
    fn default() -> Self {
        Self::new()
    }
}

impl TxGossip {
    /// No peers, nothing wanted.
    pub fn new() -> Self {
        Self { peers: HashMap::new(), wanted: HashMap::new(), order: VecDeque::new(), round: 0 }
    }

    /// A session opened.
    pub fn peer_connected(&mut self, peer: PeerId) {
        self.peers.entry(peer).or_insert_with(|| Peer {
            known: BoundedSet::new(KNOWN_TRANSACTIONS_PER_PEER),
            fetching: None,
        });
    }

    /// A session closed: what it was fetching can be fetched from others.
    pub fn peer_disconnected(&mut self, peer: PeerId) {
        self.on_fetch_failed(peer);
        self.peers.remove(&peer);
    }

    /// Peers we gossip with.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Hashes announced and not yet fetched.
    pub fn wanted(&self) -> usize {
        self.wanted.len()
    }

    /// `peer` sent or announced `hashes`: it knows them.
    pub fn mark_known(&mut self, peer: PeerId, hashes: impl IntoIterator<Item = B256>) {
        if let Some(p) = self.peers.get_mut(&peer) {
            hashes.into_iter().for_each(|h| {
                p.known.insert(h);
            });
        }
    }

    /// We got `hash` (from anyone): it is no longer wanted.
    pub fn received(&mut self, hash: &B256) {
        self.wanted.remove(hash);
    }

    /// `peer` announced `announced`; the ones `have` says we lack are to be fetched.
    pub fn on_announced(
        &mut self,
        peer: PeerId,
        announced: &[GossipTx],
        have: impl Fn(&B256) -> bool,
    ) {
        if !self.peers.contains_key(&peer) {
            return;
        }
        self.mark_known(peer, announced.iter().map(|t| t.hash));
        for t in announced {
            if have(&t.hash) {
                continue;
            }
            let room = self.wanted.len() < MAX_WANTED;
            match self.wanted.get_mut(&t.hash) {
                Some(w) if w.from.len() < FETCH_ALTERNATIVES && !w.from.contains(&peer) => {
                    w.from.push(peer);
                }
                Some(_) => {}
                None if room => {
                    let w = Wanted { ty: t.ty, size: t.size, from: vec![peer], requested: None };
                    self.wanted.insert(t.hash, w);
                    self.order.push_back(t.hash);
                }
                None => {}
            }
        }
    }

    /// The requests to send now: to each idle peer, up to [`MAX_FETCH_HASHES`] wanted
    /// hashes it announced that no one is fetching, oldest announcement first. One request
    /// per peer at a time.
    pub fn next_fetches(&mut self) -> Vec<(PeerId, Vec<B256>)> {
        let mut out: HashMap<PeerId, Vec<B256>> = HashMap::new();
        self.order.retain(|h| self.wanted.contains_key(h));
        for hash in &self.order {
            let w = self.wanted.get_mut(hash).expect("retained");
            if w.requested.is_some() {
                continue;
            }
            let peers = &self.peers;
            let idle = |p: &PeerId| {
                peers.get(p).is_some_and(|p| p.fetching.is_none())
                    && out.get(p).is_none_or(|v| v.len() < MAX_FETCH_HASHES)
            };
            if let Some(peer) = w.from.iter().copied().find(idle) {
                w.requested = Some(peer);
                out.entry(peer).or_default().push(*hash);
            }
        }
        for (peer, hashes) in &out {
            self.peers.get_mut(peer).expect("idle peers exist").fetching = Some(hashes.clone());
        }
        let mut out: Vec<(PeerId, Vec<B256>)> = out.into_iter().collect();
        out.sort_by_key(|(p, _)| *p);
        out
    }

    /// `peer` answered our request with `delivered`: checks it against the request and
    /// the announcements; what was asked and not delivered is fetched elsewhere.
    pub fn on_fetched(&mut self, peer: PeerId, delivered: &[GossipTx]) -> FetchCheck {
        let mut check = FetchCheck::default();
        let Some(requested) = self.peers.get_mut(&peer).and_then(|p| p.fetching.take()) else {
            check.unrequested = delivered.len();
            return check;
        };
        self.mark_known(peer, delivered.iter().map(|t| t.hash));
        for t in delivered {
            if !requested.contains(&t.hash) {
                check.unrequested += 1;
                continue;
            }
            if let Some(w) = self.wanted.remove(&t.hash) {
                if (w.ty, w.size) != (t.ty, t.size) {
                    check.mismatched.push(t.hash);
                }
            }
        }
        self.retry_elsewhere(peer, &requested);
        check
    }

    /// Our request to `peer` failed (timeout, disconnect): its hashes are fetched from
    /// other announcers.
    pub fn on_fetch_failed(&mut self, peer: PeerId) {
        if let Some(requested) = self.peers.get_mut(&peer).and_then(|p| p.fetching.take()) {
            self.retry_elsewhere(peer, &requested);
        }
    }

    fn retry_elsewhere(&mut self, peer: PeerId, requested: &[B256]) {
        for hash in requested {
            let Some(w) = self.wanted.get_mut(hash) else { continue };
            w.requested = None;
            w.from.retain(|p| *p != peer);
            if w.from.is_empty() {
                self.wanted.remove(hash);
            }
        }
    }

    /// Newly pending transactions to propagate: whole to about √peers (blob and oversized
    /// ones excepted, at most [`MAX_BROADCAST_BYTES`] each), announced to the rest, never
    /// to a peer known to have them.
    pub fn propagate(&mut self, txs: &[GossipTx]) -> Vec<(PeerId, Outgoing)> {
        let mut peers: Vec<PeerId> = self.peers.keys().copied().collect();
        peers.sort();
        let n = peers.len();
        if n == 0 || txs.is_empty() {
            return vec![];
        }
        let full_peers = (n as f64).sqrt().ceil() as usize;
        self.round = self.round.wrapping_add(1);
        let mut out = Vec::new();
        for (i, id) in peers.iter().enumerate() {
            let full = (i + n - self.round % n) % n < full_peers;
            let peer = self.peers.get_mut(id).expect("listed");
            let mut o = Outgoing::default();
            let mut bytes = 0;
            for t in txs {
                if !peer.known.insert(t.hash) {
                    continue;
                }
                if full && t.broadcastable() && bytes + t.size as usize <= MAX_BROADCAST_BYTES {
                    bytes += t.size as usize;
                    o.full.push(t.hash);
                } else {
                    o.hashes.push(*t);
                }
            }
            if !o.full.is_empty() || !o.hashes.is_empty() {
                out.push((*id, o));
            }
        }
        out
    }

    /// Pending transactions that have waited long (a peer's pool may have refused them
    /// when full, or dropped them): announced by hash to every peer again, whatever it
    /// is thought to know; a peer that has them ignores the announcement.
    pub fn reannounce(&mut self, txs: &[GossipTx]) -> Vec<(PeerId, Vec<GossipTx>)> {
        let mut peers: Vec<PeerId> = self.peers.keys().copied().collect();
        peers.sort();
        if txs.is_empty() {
            return vec![];
        }
        for p in self.peers.values_mut() {
            txs.iter().for_each(|t| {
                p.known.insert(t.hash);
            });
        }
        peers.into_iter().map(|p| (p, txs.to_vec())).collect()
    }

    /// What a newly connected `peer` is told of the pool: every pending transaction it
    /// does not know, by hash.
    pub fn announce_pool(&mut self, peer: PeerId, txs: &[GossipTx]) -> Vec<GossipTx> {
        let Some(p) = self.peers.get_mut(&peer) else { return vec![] };
        txs.iter().filter(|t| p.known.insert(t.hash)).copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(i: u8) -> PeerId {
        PeerId::repeat_byte(i)
    }

    fn tx(i: u8, ty: u8) -> GossipTx {
        GossipTx { hash: B256::repeat_byte(i), ty, size: 100 + i as u32 }
    }

    #[test]
    fn whole_to_square_root_of_peers_hashes_to_the_rest_never_twice() {
        let mut g = TxGossip::new();
        (1..=9).for_each(|i| g.peer_connected(peer(i)));
        let txs = [tx(1, 2), tx(2, 3)];
        let out = g.propagate(&txs);
        assert_eq!(out.len(), 9);
        let full: Vec<&Outgoing> =
            out.iter().map(|(_, o)| o).filter(|o| !o.full.is_empty()).collect();
        assert_eq!(full.len(), 3, "√9 peers get whole transactions");
        for o in &full {
            // The blob transaction is only announced, even to them.
            assert_eq!(o.full, vec![tx(1, 2).hash]);
            assert_eq!(o.hashes, vec![tx(2, 3)]);
        }
        // Known now to every peer: nothing is sent again.
        assert!(g.propagate(&txs).is_empty());
        // A peer that announced a transaction to us is not told of it.
        g.on_announced(peer(1), &[tx(7, 2)], |_| true);
        let out = g.propagate(&[tx(7, 2)]);
        assert_eq!(out.len(), 8);
        assert!(out.iter().all(|(p, _)| *p != peer(1)));
    }

    #[test]
    fn a_broadcast_stays_under_its_size_limit() {
        let mut g = TxGossip::new();
        g.peer_connected(peer(1));
        let big: Vec<GossipTx> = (0..40u8)
            .map(|i| GossipTx { hash: B256::repeat_byte(i), ty: 2, size: 10_000 })
            .collect();
        let (_, o) = g.propagate(&big).pop().unwrap();
        assert_eq!(o.full.len(), MAX_BROADCAST_BYTES / 10_000);
        assert_eq!(o.full.len() + o.hashes.len(), 40);
    }

    #[test]
    fn fetches_one_request_per_peer_and_retry_elsewhere() {
        let mut g = TxGossip::new();
        g.peer_connected(peer(1));
        g.peer_connected(peer(2));
        let many: Vec<GossipTx> = (0..300u64)
            .map(|i| GossipTx { hash: B256::left_padding_from(&i.to_be_bytes()), ty: 2, size: 1 })
            .collect();
        // We already have the first.
        let first = many[0].hash;
        g.on_announced(peer(1), &many, |h| *h == first);
        assert_eq!(g.wanted(), many.len() - 1);
        let fetches = g.next_fetches();
        assert_eq!(fetches.len(), 1);
        assert_eq!(fetches[0].1.len(), MAX_FETCH_HASHES);
        // One request at a time: nothing more until it answers.
        assert!(g.next_fetches().is_empty());
        // Peer 2 announces some of them; peer 1's request fails: they go to peer 2.
        g.on_announced(peer(2), &many[1..11], |_| false);
        g.on_fetch_failed(peer(1));
        let fetches = g.next_fetches();
        let to2: Vec<_> = fetches.iter().filter(|(p, _)| *p == peer(2)).collect();
        assert_eq!(to2[0].1.len(), 10);
        // Peer 1 is asked for the rest it announced, not again for what it failed to
        // deliver (only it announced those: they are forgotten).
        let rest = many.len() - 1 - MAX_FETCH_HASHES;
        assert!(fetches.iter().any(|(p, h)| *p == peer(1) && h.len() == rest));
        assert_eq!(g.wanted(), 10 + rest);
    }

    #[test]
    fn answers_are_checked_against_request_and_announcement() {
        let mut g = TxGossip::new();
        g.peer_connected(peer(1));
        g.on_announced(peer(1), &[tx(1, 2), tx(2, 2)], |_| false);
        let fetches = g.next_fetches();
        assert_eq!(fetches[0].1, vec![tx(1, 2).hash, tx(2, 2).hash]);
        // tx 2 arrives with another size; tx 9 was never asked for.
        let wrong = GossipTx { size: 999, ..tx(2, 2) };
        let check = g.on_fetched(peer(1), &[tx(1, 2), wrong, tx(9, 2)]);
        assert_eq!(check, FetchCheck { unrequested: 1, mismatched: vec![tx(2, 2).hash] });
        assert_eq!(g.wanted(), 0);
        // An answer with no request outstanding is all unrequested.
        assert_eq!(g.on_fetched(peer(1), &[tx(3, 2)]).unrequested, 1);
    }

    #[test]
    fn a_disconnect_hands_fetches_to_other_announcers() {
        let mut g = TxGossip::new();
        g.peer_connected(peer(1));
        g.peer_connected(peer(2));
        g.on_announced(peer(1), &[tx(1, 2)], |_| false);
        g.on_announced(peer(2), &[tx(1, 2)], |_| false);
        assert_eq!(g.next_fetches()[0].0, peer(1));
        g.peer_disconnected(peer(1));
        assert_eq!(g.next_fetches(), vec![(peer(2), vec![tx(1, 2).hash])]);
        // Announced only by a peer that left: forgotten.
        g.on_fetch_failed(peer(2));
        assert_eq!(g.wanted(), 0);
    }
}
