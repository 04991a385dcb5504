//! An iterative lookup ([discv4]: "Recursive Lookup"): ask the `α` closest nodes not yet
//! asked for the target's neighbours, merge what they answer, and stop when the `k`
//! closest seen have all answered (or failed). Pure decisions: the service sends the
//! FindNode packets and reports answers and timeouts.
//!
//! [discv4]: https://github.com/ethereum/devp2p/blob/master/discv4.md#recursive-lookup

use crate::{distance, NodeRecord, BUCKET_SIZE};
use alloy_primitives::{B256, B512};
use std::collections::BTreeMap;

/// Queries in flight at once, `α` (discv4: "such as 3").
pub const ALPHA: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    NotAsked,
    Asked,
    Answered,
    Failed,
}

/// One lookup for `target`.
#[derive(Debug, Clone)]
pub struct Lookup {
    target: B512,
    local: B512,
    /// Candidates by distance to the target.
    seen: BTreeMap<B256, (NodeRecord, State)>,
}

impl Lookup {
    /// A lookup for `target` by node `local` (never asked, never a result), starting from
    /// the closest nodes its table knows.
    pub fn new(local: B512, target: B512, start: impl IntoIterator<Item = NodeRecord>) -> Self {
        let mut l = Self { target, local, seen: BTreeMap::new() };
        l.add(start);
        l
    }

    /// The target.
    pub fn target(&self) -> B512 {
        self.target
    }

    fn add(&mut self, nodes: impl IntoIterator<Item = NodeRecord>) {
        for n in nodes {
            if n.id != self.local {
                self.seen.entry(distance(&n.id, &self.target)).or_insert((n, State::NotAsked));
            }
        }
    }

    /// The `k` closest candidates not known to have failed, closest first.
    fn closest(&self) -> impl Iterator<Item = &(NodeRecord, State)> {
        self.seen.values().filter(|(_, s)| *s != State::Failed).take(BUCKET_SIZE)
    }

    /// Nodes to ask now: among the `k` closest, those not asked yet, keeping at most `α`
    /// queries in flight. Marks them asked.
    pub fn next_queries(&mut self) -> Vec<NodeRecord> {
        let in_flight = self.seen.values().filter(|(_, s)| *s == State::Asked).count();
        let free = ALPHA.saturating_sub(in_flight);
        let pick: Vec<B256> = self
            .seen
            .iter()
            .filter(|(_, (_, s))| *s != State::Failed)
            .take(BUCKET_SIZE)
            .filter(|(_, (_, s))| *s == State::NotAsked)
            .map(|(d, _)| *d)
            .take(free)
            .collect();
        pick.into_iter()
            .map(|d| {
                let entry = self.seen.get_mut(&d).expect("picked from the map");
                entry.1 = State::Asked;
                entry.0
            })
            .collect()
    }

    fn mark(&mut self, from: &B512, state: State) -> bool {
        let d = distance(from, &self.target);
        match self.seen.get_mut(&d) {
            Some(entry) if entry.1 == State::Asked => {
                entry.1 = state;
                true
            }
            _ => false,
        }
    }

    /// `from` answered with `nodes`. Answers from nodes not asked are ignored (false).
    pub fn on_answer(&mut self, from: &B512, nodes: impl IntoIterator<Item = NodeRecord>) -> bool {
        if !self.mark(from, State::Answered) {
            return false;
        }
        self.add(nodes);
        true
    }

    /// More nodes from `from`, which answered already (a reply split over packets).
    pub fn on_more(&mut self, from: &B512, nodes: impl IntoIterator<Item = NodeRecord>) {
        let d = distance(from, &self.target);
        if self.seen.get(&d).is_some_and(|(_, s)| *s == State::Answered) {
            self.add(nodes);
        }
    }

    /// Whether `node` was asked and has not answered or failed yet.
    pub fn is_waiting_for(&self, node: &B512) -> bool {
        self.seen.get(&distance(node, &self.target)).is_some_and(|(_, s)| *s == State::Asked)
    }

    /// `node` did not answer in time: out of the result.
    pub fn on_timeout(&mut self, node: &B512) {
        self.mark(node, State::Failed);
    }

    /// Whether the `k` closest candidates have all answered (nothing left to ask, nothing
    /// in flight).
    pub fn is_done(&self) -> bool {
        self.closest().all(|(_, s)| *s == State::Answered)
    }

    /// The closest nodes that answered, closest first (the lookup's result).
    pub fn result(&self) -> Vec<NodeRecord> {
        self.closest().filter(|(_, s)| *s == State::Answered).map(|(n, _)| *n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NodeEndpoint, Table};
    use std::{
        collections::HashMap,
        net::{IpAddr, Ipv4Addr},
    };

    fn node(i: u32) -> NodeRecord {
        let mut id = [0u8; 64];
        id[60..].copy_from_slice(&i.to_be_bytes());
        NodeRecord {
            endpoint: NodeEndpoint { ip: IpAddr::V4(Ipv4Addr::LOCALHOST), udp: 1, tcp: 1 },
            id: B512::from(id),
        }
    }

    /// A network of `n` nodes where each has met every other once: its table keeps what
    /// Kademlia keeps (all of its neighbourhood, 16 per far bucket).
    fn network(n: u32) -> HashMap<B512, Table> {
        (0..n)
            .map(|i| {
                let mut t = Table::new(&node(i).id);
                (0..n).for_each(|j| {
                    t.seen(node(j));
                });
                (node(i).id, t)
            })
            .collect()
    }

    #[test]
    fn a_lookup_converges_on_the_true_closest_nodes_despite_silent_ones() {
        let n = 400;
        let net = network(n);
        let silent = |id: &B512| node(3).id == *id || node(5).id == *id;
        let me = node(0);
        let target = node(1_000_000).id;
        // We start knowing only two nodes, as a node with one bootnode does.
        let start = [node(17), node(250)];
        let mut lookup = Lookup::new(me.id, target, start);
        let mut rounds = 0;
        while !lookup.is_done() {
            rounds += 1;
            assert!(rounds < 200, "the lookup does not end");
            let asked = lookup.next_queries();
            assert!(asked.len() <= ALPHA);
            assert!(!asked.is_empty(), "nothing to ask but not done");
            for q in asked {
                if silent(&q.id) {
                    lookup.on_timeout(&q.id);
                } else {
                    let answer = net[&q.id].closest(&target, BUCKET_SIZE);
                    assert!(lookup.on_answer(&q.id, answer));
                }
            }
        }
        let got = lookup.result();
        assert_eq!(got.len(), BUCKET_SIZE);
        // The true closest answering nodes of the whole network.
        let mut all: Vec<NodeRecord> = (1..n).map(node).filter(|x| !silent(&x.id)).collect();
        all.sort_by_key(|x| distance(&x.id, &target));
        assert_eq!(got, all[..BUCKET_SIZE].to_vec(), "the network's 16 closest, in order");
        assert!(!got.iter().any(|g| g.id == me.id || silent(&g.id)));
        // Answers from nodes never asked change nothing.
        assert!(!lookup.on_answer(&node(999).id, [node(1)]));
    }
}
