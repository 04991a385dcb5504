//! Finding the Clique signer state after any stored block without replaying the chain
//! from genesis: from the nearest stored snapshot or checkpoint header, replaying at most
//! the blocks after it. Snapshots are encoded for storage with [`encode_snapshot`].
//!
//! Spec: <https://eips.ethereum.org/EIPS/eip-225> ("checkpoint" blocks list the signers).

use crate::clique::{recover_signers, Snapshot, Vote};
use crate::ConsensusError;
use alloy_consensus::Header;
use alloy_primitives::{Address, B256};

/// Snapshots are stored every this many blocks when computed, so finding one replays at
/// most this many blocks past a stored one (geth stores them every 1,024 blocks too).
pub const SNAPSHOT_INTERVAL: u64 = 1024;

/// Why the signer state after a block could not be found.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A header between the block and its checkpoint is not stored.
    #[error("header {0} is not stored (needed for the signer snapshot)")]
    MissingHeader(B256),
    /// A stored header breaks the Clique rules (the store is corrupted).
    #[error("stored block {number} breaks the Clique rules: {error}")]
    Invalid {
        /// Its number.
        number: u64,
        /// The rule.
        error: ConsensusError,
    },
    /// The source failed (a storage error, a corrupt stored snapshot).
    #[error("snapshot source: {0}")]
    Source(String),
}

/// Where [`snapshot_after`] reads headers and stored snapshots and keeps new ones.
pub trait SnapshotSource {
    /// The header with this hash, if stored.
    fn header(&self, hash: B256) -> Result<Option<Header>, SnapshotError>;
    /// The stored snapshot after the block with this hash.
    fn snapshot(&self, hash: B256) -> Result<Option<Snapshot>, SnapshotError>;
    /// Keeps the snapshot after the block with this hash (`durable`: also across
    /// restarts; otherwise a cache may do).
    fn save(&self, hash: B256, snapshot: &Snapshot, durable: bool) -> Result<(), SnapshotError>;
}

/// The signer state after the stored block `hash` of a chain with checkpoint interval
/// `epoch`: the nearest stored snapshot or checkpoint at or below it, then the blocks
/// after it replayed (their seals recovered on all cores). Snapshots at multiples of
/// [`SNAPSHOT_INTERVAL`] and checkpoints met on the way are saved durably, the result
/// in the source's cache.
pub fn snapshot_after(
    src: &impl SnapshotSource,
    epoch: u64,
    hash: B256,
) -> Result<Snapshot, SnapshotError> {
    let epoch = epoch.max(1);
    // (hash, header) from `hash` down to the block after the base, newest first.
    let mut pending: Vec<(B256, Header)> = Vec::new();
    let mut at = hash;
    let mut snap = loop {
        if let Some(s) = src.snapshot(at)? {
            break s;
        }
        let header = src.header(at)?.ok_or(SnapshotError::MissingHeader(at))?;
        if header.number.is_multiple_of(epoch) {
            let s = from_checkpoint(src, epoch, &header)?;
            src.save(at, &s, true)?;
            break s;
        }
        let parent = header.parent_hash;
        pending.push((at, header));
        at = parent;
    };
    pending.reverse();
    let headers: Vec<&Header> = pending.iter().map(|(_, h)| h).collect();
    let signers = recover_signers(&headers);
    for ((hash, header), signer) in pending.iter().zip(signers) {
        let invalid = |error| SnapshotError::Invalid { number: header.number, error };
        snap.verify_recovered(header, signer).map_err(invalid)?;
        if header.number.is_multiple_of(SNAPSHOT_INTERVAL) {
            src.save(*hash, &snap, true)?;
        }
    }
    if !pending.is_empty() {
        src.save(hash, &snap, false)?;
    }
    Ok(snap)
}

/// The snapshot after a checkpoint: its signer list, and who sealed it and the blocks of
/// the window before it.
fn from_checkpoint(
    src: &impl SnapshotSource,
    epoch: u64,
    checkpoint: &Header,
) -> Result<Snapshot, SnapshotError> {
    let invalid = |error| SnapshotError::Invalid { number: checkpoint.number, error };
    let limit = crate::clique::checkpoint_signers(checkpoint).map_err(invalid)?.len() / 2 + 1;
    let mut window = Vec::with_capacity(limit);
    let mut h = checkpoint.clone();
    while h.number > 0 && window.len() < limit {
        let parent = h.parent_hash;
        window.push(h);
        h = src.header(parent)?.ok_or(SnapshotError::MissingHeader(parent))?;
    }
    let signers = recover_signers(&window);
    let mut recents = Vec::with_capacity(window.len());
    for (h, signer) in window.iter().zip(signers) {
        let number = h.number;
        recents.push((number, signer.map_err(|error| SnapshotError::Invalid { number, error })?));
    }
    Snapshot::from_checkpoint(checkpoint, epoch, recents).map_err(invalid)
}

/// What a stored snapshot holds (the tally is recounted from the votes).
#[derive(alloy_rlp::RlpEncodable, alloy_rlp::RlpDecodable)]
struct Stored {
    number: u64,
    epoch: u64,
    signers: Vec<Address>,
    recents: Vec<RecentSigner>,
    votes: Vec<Vote>,
}

#[derive(alloy_rlp::RlpEncodable, alloy_rlp::RlpDecodable)]
struct RecentSigner {
    number: u64,
    signer: Address,
}

/// The RLP of `snapshot` for storage: `[number, epoch, [signer…], [[number, signer]…],
/// [[signer, block, candidate, authorize]…]]`.
pub fn encode_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    let stored = Stored {
        number: snapshot.number(),
        epoch: snapshot.epoch(),
        signers: snapshot.signers().to_vec(),
        recents: snapshot
            .recents()
            .iter()
            .map(|(number, signer)| RecentSigner { number: *number, signer: *signer })
            .collect(),
        votes: snapshot.votes().to_vec(),
    };
    alloy_rlp::encode(&stored)
}

/// A snapshot from [`encode_snapshot`]'s bytes.
pub fn decode_snapshot(mut bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
    let stored = <Stored as alloy_rlp::Decodable>::decode(&mut bytes)
        .map_err(|e| SnapshotError::Source(format!("stored snapshot: {e}")))?;
    Ok(Snapshot::restore(
        stored.number,
        stored.epoch,
        stored.signers,
        stored.recents.into_iter().map(|r| (r.number, r.signer)).collect(),
        stored.votes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clique::{seal_header, EXTRA_SEAL, EXTRA_VANITY, NONCE_AUTH};
    use crate::{address_of, Snapshot};
    use alloy_primitives::U256;
    use secp256k1::SecretKey;
    use std::{cell::RefCell, collections::HashMap};

    #[derive(Default)]
    struct Memory {
        headers: HashMap<B256, Header>,
        durable: RefCell<HashMap<B256, Vec<u8>>>,
        reads: RefCell<usize>,
    }

    impl SnapshotSource for Memory {
        fn header(&self, hash: B256) -> Result<Option<Header>, SnapshotError> {
            *self.reads.borrow_mut() += 1;
            Ok(self.headers.get(&hash).cloned())
        }
        fn snapshot(&self, hash: B256) -> Result<Option<Snapshot>, SnapshotError> {
            self.durable.borrow().get(&hash).map(|b| decode_snapshot(b)).transpose()
        }
        fn save(&self, hash: B256, s: &Snapshot, durable: bool) -> Result<(), SnapshotError> {
            if durable {
                self.durable.borrow_mut().insert(hash, encode_snapshot(s));
            }
            Ok(())
        }
    }

    fn key(i: u8) -> SecretKey {
        SecretKey::from_byte_array([i; 32]).unwrap()
    }

    /// A chain of `n` blocks (checkpoint every `epoch`) sealed in turn, first by signers 1
    /// and 2; blocks 3 and 4 (one by each) vote signer 3 in, who signs from block 5 on.
    /// With the snapshot after every block, as a replay from genesis computes it.
    fn chain(n: u64, epoch: u64) -> (Memory, Vec<B256>, Vec<Snapshot>) {
        let mut signers = vec![address_of(&key(1)), address_of(&key(2))];
        signers.sort();
        let mut extra = vec![0u8; EXTRA_VANITY];
        signers.iter().for_each(|a| extra.extend_from_slice(a.as_slice()));
        extra.extend_from_slice(&[0u8; EXTRA_SEAL]);
        let genesis = Header { extra_data: extra.into(), ..Default::default() };
        let mut mem = Memory::default();
        let mut hashes = vec![genesis.hash_slow()];
        let mut snap = Snapshot::new(signers, epoch);
        let mut snaps = vec![snap.clone()];
        mem.headers.insert(hashes[0], genesis);
        for number in 1..=n {
            // Whoever is in turn and has not signed recently seals.
            let by = (1..=3u8)
                .map(key)
                .find(|k| snap.in_turn(number, address_of(k)))
                .expect("someone is in turn");
            let mut h = Header {
                number,
                parent_hash: *hashes.last().unwrap(),
                extra_data: snap.extra_data_for(number),
                difficulty: U256::from(2),
                ..Default::default()
            };
            if (number == 3 || number == 4) && !number.is_multiple_of(epoch) {
                h.beneficiary = address_of(&key(3));
                h.nonce = NONCE_AUTH;
            }
            seal_header(&mut h, &by).unwrap();
            snap.verify(&h).unwrap();
            snaps.push(snap.clone());
            hashes.push(h.hash_slow());
            mem.headers.insert(h.hash_slow(), h);
        }
        (mem, hashes, snaps)
    }

    #[test]
    fn the_snapshot_after_any_block_matches_a_replay_from_genesis() {
        let (mem, hashes, snaps) = chain(40, 10);
        for (i, hash) in hashes.iter().enumerate() {
            let got = snapshot_after(&mem, 10, *hash).unwrap();
            assert_eq!(got, snaps[i], "after block {i}");
        }
        assert_eq!(snaps[40].signers().len(), 3, "signer 3 was voted in");
    }

    #[test]
    fn a_stored_checkpoint_ends_the_walk_back() {
        let (mem, hashes, snaps) = chain(25, 10);
        // The checkpoint at 20 is saved on the first walk; the second reads 5 headers.
        snapshot_after(&mem, 10, hashes[25]).unwrap();
        assert!(mem.durable.borrow().contains_key(&hashes[20]));
        *mem.reads.borrow_mut() = 0;
        assert_eq!(snapshot_after(&mem, 10, hashes[25]).unwrap(), snaps[25]);
        assert_eq!(*mem.reads.borrow(), 5);
    }

    #[test]
    fn a_missing_header_is_named() {
        let (mut mem, hashes, _) = chain(5, 100);
        mem.headers.remove(&hashes[2]);
        let e = snapshot_after(&mem, 100, hashes[5]).unwrap_err();
        assert!(matches!(e, SnapshotError::MissingHeader(h) if h == hashes[2]), "{e}");
    }

    #[test]
    fn snapshots_survive_encoding() {
        let (_, _, snaps) = chain(3, 100);
        // After block 3 one vote stands (signer 3 proposed by block 3's sealer).
        assert_eq!(snaps[3].votes().len(), 1);
        for s in &snaps {
            assert_eq!(&decode_snapshot(&encode_snapshot(s)).unwrap(), s);
        }
        assert!(decode_snapshot(&[0xc0]).is_err());
    }
}
