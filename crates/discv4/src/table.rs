//! The Kademlia node table ([discv4]: "Node Table"): 256 buckets of at most
//! [`BUCKET_SIZE`] nodes by log-distance from us, least recently seen first, each with a
//! short list of replacements. Pure bookkeeping: the service decides when to ping.
//!
//! [discv4]: https://github.com/ethereum/devp2p/blob/master/discv4.md#node-table

use crate::NodeRecord;
use alloy_primitives::{keccak256, B256, B512};
use std::collections::VecDeque;

/// Nodes per bucket, `k` ([discv4]: "The Node Discovery Protocol uses k = 16").
///
/// [discv4]: https://github.com/ethereum/devp2p/blob/master/discv4.md#node-table
pub const BUCKET_SIZE: usize = 16;

/// Buckets: one per bit of the 256-bit distance.
pub const BUCKETS: usize = 256;

/// Replacements kept per bucket (seen while the bucket was full; promoted when a node of
/// the bucket fails its revalidation). geth keeps 10.
pub const REPLACEMENTS: usize = 10;

/// The XOR distance of two node ids: `keccak256(a) ^ keccak256(b)`.
pub fn distance(a: &B512, b: &B512) -> B256 {
    keccak256(a) ^ keccak256(b)
}

/// The bucket of a node at `hash ^ ours`: 255 minus the leading zero bits of the
/// distance (the farthest half of the id space is bucket 255); `None` for ourselves.
fn bucket_index(ours: &B256, theirs: &B256) -> Option<usize> {
    let d = *ours ^ *theirs;
    let zeros = d.iter().position(|b| *b != 0).map(|i| i * 8 + d[i].leading_zeros() as usize)?;
    Some(BUCKETS - 1 - zeros)
}

/// A node in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEntry {
    /// Where it is and who it is.
    pub record: NodeRecord,
    /// keccak256 of its id (its position in the key space).
    hash: B256,
}

#[derive(Debug, Default, Clone)]
struct Bucket {
    /// Least recently seen first.
    nodes: VecDeque<TableEntry>,
    /// Newest last.
    replacements: VecDeque<TableEntry>,
}

/// What [`Table::seen`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// The node was added to its bucket.
    Added,
    /// It was in its bucket already: now the most recently seen (its endpoint updated).
    Refreshed,
    /// Its bucket is full: it waits among the replacements, and `oldest` (the bucket's
    /// least recently seen node) should be pinged; if it does not answer,
    /// [`Table::remove`] makes room.
    BucketFull {
        /// The node to revalidate.
        oldest: NodeRecord,
    },
    /// It is us.
    Local,
}

/// The table of a node with id `local`.
#[derive(Debug, Clone)]
pub struct Table {
    local: B256,
    buckets: Vec<Bucket>,
}

impl Table {
    /// An empty table for the node `local`.
    pub fn new(local: &B512) -> Self {
        Self { local: keccak256(local), buckets: vec![Bucket::default(); BUCKETS] }
    }

    /// Nodes in the buckets (replacements not counted).
    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.nodes.len()).sum()
    }

    /// Whether no node is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn locate(&self, id: &B512) -> Option<(usize, B256)> {
        let hash = keccak256(id);
        Some((bucket_index(&self.local, &hash)?, hash))
    }

    /// Whether `id` is in its bucket.
    pub fn contains(&self, id: &B512) -> bool {
        self.locate(id)
            .is_some_and(|(i, _)| self.buckets[i].nodes.iter().any(|e| e.record.id == *id))
    }

    /// A node proved alive (it answered, or bonded): added, or moved to the most recently
    /// seen end of its bucket; a full bucket keeps it as a replacement.
    pub fn seen(&mut self, record: NodeRecord) -> Seen {
        let Some((i, hash)) = self.locate(&record.id) else { return Seen::Local };
        let bucket = &mut self.buckets[i];
        if let Some(at) = bucket.nodes.iter().position(|e| e.record.id == record.id) {
            bucket.nodes.remove(at);
            bucket.nodes.push_back(TableEntry { record, hash });
            return Seen::Refreshed;
        }
        if bucket.nodes.len() < BUCKET_SIZE {
            bucket.replacements.retain(|e| e.record.id != record.id);
            bucket.nodes.push_back(TableEntry { record, hash });
            return Seen::Added;
        }
        bucket.replacements.retain(|e| e.record.id != record.id);
        bucket.replacements.push_back(TableEntry { record, hash });
        if bucket.replacements.len() > REPLACEMENTS {
            bucket.replacements.pop_front();
        }
        Seen::BucketFull { oldest: bucket.nodes[0].record }
    }

    /// Removes a node that failed to answer; the newest replacement of its bucket takes
    /// its place. Returns the replacement, if any.
    pub fn remove(&mut self, id: &B512) -> Option<NodeRecord> {
        let (i, _) = self.locate(id)?;
        let bucket = &mut self.buckets[i];
        let at = bucket.nodes.iter().position(|e| e.record.id == *id)?;
        bucket.nodes.remove(at);
        let replacement = bucket.replacements.pop_back()?;
        let record = replacement.record;
        bucket.nodes.push_back(replacement);
        Some(record)
    }

    /// The `n` known nodes closest to `target`, closest first.
    pub fn closest(&self, target: &B512, n: usize) -> Vec<NodeRecord> {
        let t = keccak256(target);
        let mut all: Vec<&TableEntry> = self.buckets.iter().flat_map(|b| &b.nodes).collect();
        all.sort_by_key(|e| e.hash ^ t);
        all.into_iter().take(n).map(|e| e.record).collect()
    }

    /// The least recently seen node of the `i % 256`-th non-empty bucket (what to
    /// revalidate next; the caller cycles `i`).
    pub fn oldest(&self, i: usize) -> Option<NodeRecord> {
        let full: Vec<&Bucket> = self.buckets.iter().filter(|b| !b.nodes.is_empty()).collect();
        if full.is_empty() {
            return None;
        }
        full[i % full.len()].nodes.front().map(|e| e.record)
    }

    /// Nodes waiting among the replacements.
    pub fn replacements_len(&self) -> usize {
        self.buckets.iter().map(|b| b.replacements.len()).sum()
    }

    /// Bytes the table holds on the heap (its buckets and their entries, by capacity).
    pub fn heap_bytes(&self) -> usize {
        let entries: usize =
            self.buckets.iter().map(|b| b.nodes.capacity() + b.replacements.capacity()).sum();
        self.buckets.capacity() * std::mem::size_of::<Bucket>()
            + entries * std::mem::size_of::<TableEntry>()
    }

    /// Every node, bucket by bucket (for saving the table).
    pub fn nodes(&self) -> impl Iterator<Item = &NodeRecord> {
        self.buckets.iter().flat_map(|b| b.nodes.iter().map(|e| &e.record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeEndpoint;
    use std::net::{IpAddr, Ipv4Addr};

    fn node(i: u32) -> NodeRecord {
        let mut id = [0u8; 64];
        id[..4].copy_from_slice(&i.to_be_bytes());
        NodeRecord {
            endpoint: NodeEndpoint { ip: IpAddr::V4(Ipv4Addr::LOCALHOST), udp: 1, tcp: 1 },
            id: B512::from(id),
        }
    }

    /// Nodes that fall into bucket `bucket` of `table`, from a deterministic search.
    fn in_bucket(table: &Table, bucket: usize, count: usize) -> Vec<NodeRecord> {
        (1..)
            .map(node)
            .filter(|n| table.locate(&n.id).map(|(i, _)| i) == Some(bucket))
            .take(count)
            .collect()
    }

    #[test]
    fn buckets_follow_the_leading_zeros_of_the_distance() {
        let ours = B256::ZERO;
        let mut far = B256::ZERO;
        far[0] = 0x80;
        assert_eq!(bucket_index(&ours, &far), Some(255));
        let mut near = B256::ZERO;
        near[31] = 1;
        assert_eq!(bucket_index(&ours, &near), Some(0));
        assert_eq!(bucket_index(&ours, &ours), None);
        assert_eq!(distance(&node(1).id, &node(2).id), distance(&node(2).id, &node(1).id));
    }

    #[test]
    fn a_full_bucket_keeps_replacements_and_promotes_one_when_a_node_dies() {
        let mut t = Table::new(&node(0).id);
        assert_eq!(t.seen(node(0)), Seen::Local);
        // Half of all ids fall into bucket 255: plenty to fill it.
        let nodes = in_bucket(&t, 255, BUCKET_SIZE + 2);
        for n in &nodes[..BUCKET_SIZE] {
            assert_eq!(t.seen(*n), Seen::Added);
        }
        assert_eq!(t.seen(nodes[0]), Seen::Refreshed, "now the most recently seen");
        let extra = nodes[BUCKET_SIZE];
        assert_eq!(t.seen(extra), Seen::BucketFull { oldest: nodes[1] });
        assert!(!t.contains(&extra.id));
        assert_eq!(t.len(), BUCKET_SIZE);
        // The oldest does not answer: the replacement takes its place.
        assert_eq!(t.remove(&nodes[1].id), Some(extra));
        assert!(t.contains(&extra.id) && !t.contains(&nodes[1].id));
        assert_eq!(t.oldest(0), Some(nodes[2]));
        // Without replacements, removing just removes.
        assert_eq!(t.remove(&nodes[2].id), None);
        assert_eq!(t.len(), BUCKET_SIZE - 1);
    }

    #[test]
    fn closest_is_ordered_by_distance_to_the_target() {
        let mut t = Table::new(&node(0).id);
        for i in 1..=300 {
            t.seen(node(i));
        }
        let target = node(12_345).id;
        let got = t.closest(&target, BUCKET_SIZE);
        assert_eq!(got.len(), BUCKET_SIZE);
        let mut all: Vec<NodeRecord> = t.nodes().copied().collect();
        all.sort_by_key(|n| distance(&n.id, &target));
        assert_eq!(got, all[..BUCKET_SIZE].to_vec());
        assert!(t.len() < 300, "far buckets filled up: {}", t.len());
    }
}
