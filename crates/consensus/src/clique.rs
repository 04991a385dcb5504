//! Clique proof of authority (EIP-225): seal hashing, signing and recovery, the signer
//! snapshot with its "recently signed" window, and the header rules.
//!
//! Signer voting follows EIP-225 as geth v1.13 implements it (see [`Snapshot`]);
//! [`snapshot_after`] finds the signer state after any stored block from the nearest
//! stored snapshot or checkpoint, never replaying from genesis.
//!
//! Spec: <https://eips.ethereum.org/EIPS/eip-225>

use crate::ConsensusError;
use alloy_consensus::{Header, EMPTY_OMMER_ROOT_HASH, EMPTY_ROOT_HASH};
use alloy_primitives::{keccak256, Address, Bytes, B256, B64, U256};
use secp256k1::{
    ecdsa::{RecoverableSignature, RecoveryId},
    Message, PublicKey, SecretKey, SECP256K1,
};
use std::collections::BTreeMap;

/// Bytes of vanity at the start of extraData.
pub const EXTRA_VANITY: usize = 32;
/// Bytes of the seal at the end of extraData (r ‖ s ‖ v).
pub const EXTRA_SEAL: usize = 65;
/// Difficulty of a block sealed in turn.
pub const DIFF_IN_TURN: u64 = 2;
/// Difficulty of a block sealed out of turn.
pub const DIFF_NO_TURN: u64 = 1;
/// Random delay unit for out-of-turn sealing, in milliseconds: the delay is up to
/// `(N/2 + 1) × 500 ms` (EIP-225 "wiggle").
pub const WIGGLE_MS: u64 = 500;

/// The address of a secret key: the last 20 bytes of keccak256 of its public key.
pub fn address_of(key: &SecretKey) -> Address {
    let pk = PublicKey::from_secret_key(SECP256K1, key);
    Address::from_slice(&keccak256(&pk.serialize_uncompressed()[1..])[12..])
}

/// The hash a Clique signer signs: keccak256 of the header RLP with the 65-byte seal
/// removed from extraData.
pub fn seal_hash(header: &Header) -> B256 {
    let mut unsealed = header.clone();
    let keep = header.extra_data.len().saturating_sub(EXTRA_SEAL);
    unsealed.extra_data = header.extra_data.slice(..keep);
    unsealed.hash_slow()
}

/// Writes the seal of `key` into the last 65 bytes of `header.extra_data`, which must
/// already hold 32 vanity and 65 seal bytes (an error otherwise, e.g. for a post-merge
/// header).
pub fn seal_header(header: &mut Header, key: &SecretKey) -> Result<(), ConsensusError> {
    if header.extra_data.len() < EXTRA_VANITY + EXTRA_SEAL {
        return Err(ConsensusError::ExtraData {
            len: header.extra_data.len(),
            rule: "Clique needs 32 vanity + 65 seal bytes",
        });
    }
    let digest = seal_hash(header);
    let (rec_id, sig) =
        SECP256K1.sign_ecdsa_recoverable(Message::from_digest(digest.0), key).serialize_compact();
    let mut extra = header.extra_data.to_vec();
    let start = extra.len() - EXTRA_SEAL;
    extra[start..start + 64].copy_from_slice(&sig);
    extra[start + 64] = i32::from(rec_id) as u8;
    header.extra_data = Bytes::from(extra);
    Ok(())
}

/// The address that sealed `header`.
pub fn recover_signer(header: &Header) -> Result<Address, ConsensusError> {
    let extra = &header.extra_data;
    if extra.len() < EXTRA_VANITY + EXTRA_SEAL {
        return Err(ConsensusError::ExtraData {
            len: extra.len(),
            rule: "Clique needs 32 vanity + 65 seal bytes",
        });
    }
    let seal = &extra[extra.len() - EXTRA_SEAL..];
    let invalid = |e: secp256k1::Error| ConsensusError::InvalidSeal(e.to_string());
    let rec_id = RecoveryId::try_from(i32::from(seal[64])).map_err(invalid)?;
    let sig = RecoverableSignature::from_compact(&seal[..64], rec_id).map_err(invalid)?;
    let pk = SECP256K1
        .recover_ecdsa(Message::from_digest(seal_hash(header).0), &sig)
        .map_err(invalid)?;
    Ok(Address::from_slice(&keccak256(&pk.serialize_uncompressed()[1..])[12..]))
}

/// Clique rules that need only the header and its parent: extraData layout, a vote's
/// nonce (all ones or all zeros; none at checkpoints), zero mix hash, no withdrawals
/// (Shanghai on), a zero parent beacon block root (Cancun on), no ommers, difficulty 1 or
/// 2, and `timestamp ≥ parent + period`.
pub(crate) fn validate_clique_fields(
    h: &Header,
    parent: &Header,
    period: u64,
    epoch: u64,
) -> Result<(), ConsensusError> {
    let len = h.extra_data.len();
    if len < EXTRA_VANITY + EXTRA_SEAL || !(len - EXTRA_VANITY - EXTRA_SEAL).is_multiple_of(20) {
        return Err(ConsensusError::ExtraData {
            len,
            rule: "32 vanity + 20·N signers + 65 seal bytes",
        });
    }
    vote_of(h, h.number.is_multiple_of(epoch.max(1)))?;
    if h.mix_hash != B256::ZERO {
        return Err(ConsensusError::Constant { field: "mix_hash", expected: "zero" });
    }
    // Forks after London without a beacon chain: no withdrawals, a zero beacon root.
    if h.withdrawals_root.is_some_and(|r| r != EMPTY_ROOT_HASH) {
        return Err(ConsensusError::Constant {
            field: "withdrawals_root",
            expected: "the empty list's root (a Clique block has no withdrawals)",
        });
    }
    if h.parent_beacon_block_root.is_some_and(|r| r != B256::ZERO) {
        return Err(ConsensusError::Constant {
            field: "parent_beacon_block_root",
            expected: "zero (a Clique chain has no beacon chain)",
        });
    }
    if h.ommers_hash != EMPTY_OMMER_ROOT_HASH {
        return Err(ConsensusError::Constant {
            field: "ommers_hash",
            expected: "the empty list's hash",
        });
    }
    if h.difficulty != U256::from(DIFF_IN_TURN) && h.difficulty != U256::from(DIFF_NO_TURN) {
        return Err(ConsensusError::Constant { field: "difficulty", expected: "1 or 2" });
    }
    let min = parent.timestamp.saturating_add(period);
    if h.timestamp < min {
        return Err(ConsensusError::TimestampBeforePeriod { got: h.timestamp, min });
    }
    Ok(())
}

/// The nonce of a vote to add the coinbase to the signers (EIP-225 `NONCE_AUTH`).
pub const NONCE_AUTH: B64 = B64::repeat_byte(0xff);
/// The nonce of a vote to drop the coinbase from the signers, or of no vote
/// (EIP-225 `NONCE_DROP`).
pub const NONCE_DROP: B64 = B64::ZERO;

/// A signer's standing vote on `candidate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, alloy_rlp::RlpEncodable, alloy_rlp::RlpDecodable)]
pub struct Vote {
    /// Who voted (a signer).
    pub signer: Address,
    /// The block that carried the vote.
    pub block: u64,
    /// Whom the vote is about.
    pub candidate: Address,
    /// Add (`true`) or drop.
    pub authorize: bool,
}

/// The votes for one candidate: all add or all drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Add (`true`) or drop.
    pub authorize: bool,
    /// Signers voting so.
    pub votes: usize,
}

/// The signer set, who signed the recent blocks and the standing votes: what verifying
/// or sealing the next block needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The block this is the state after.
    number: u64,
    /// Authorized signers, ascending.
    signers: Vec<Address>,
    /// Checkpoint interval, in blocks.
    epoch: u64,
    /// block number → signer, for the last `limit - 1` blocks.
    recents: BTreeMap<u64, Address>,
    /// Votes since the last checkpoint, in the order cast.
    votes: Vec<Vote>,
    /// The votes per candidate.
    tally: BTreeMap<Address, Tally>,
}

impl Snapshot {
    /// A snapshot with `signers` (any order) and no recent blocks.
    pub fn new(mut signers: Vec<Address>, epoch: u64) -> Self {
        signers.sort();
        signers.dedup();
        Self {
            number: 0,
            signers,
            epoch,
            recents: BTreeMap::new(),
            votes: Vec::new(),
            tally: BTreeMap::new(),
        }
    }

    /// The snapshot after checkpoint block `checkpoint` (a multiple of `epoch`; the genesis
    /// is one): the signers its extraData lists, no votes, and `recents` (block number,
    /// signer) for the blocks of the window ending at it.
    pub fn from_checkpoint(
        checkpoint: &Header,
        epoch: u64,
        recents: impl IntoIterator<Item = (u64, Address)>,
    ) -> Result<Self, ConsensusError> {
        if !checkpoint.number.is_multiple_of(epoch.max(1)) {
            return Err(ConsensusError::Constant {
                field: "number",
                expected: "a multiple of the epoch (a checkpoint)",
            });
        }
        let mut snap = Self::new(checkpoint_signers(checkpoint)?, epoch);
        snap.number = checkpoint.number;
        let limit = snap.limit();
        snap.recents = recents
            .into_iter()
            .filter(|(n, _)| *n <= checkpoint.number && *n + limit > checkpoint.number)
            .collect();
        Ok(snap)
    }

    /// A snapshot from its parts (as [`crate::snapshots::encode_snapshot`] stores them);
    /// the tally is recounted from the votes.
    pub fn restore(
        number: u64,
        epoch: u64,
        signers: Vec<Address>,
        recents: BTreeMap<u64, Address>,
        votes: Vec<Vote>,
    ) -> Self {
        let mut snap = Self::new(signers, epoch);
        snap.number = number;
        snap.recents = recents;
        for v in &votes {
            snap.tally
                .entry(v.candidate)
                .or_insert(Tally { authorize: v.authorize, votes: 0 })
                .votes += 1;
        }
        snap.votes = votes;
        snap
    }

    /// The block this snapshot is the state after.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The checkpoint interval, in blocks.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Who sealed the blocks of the current window: block number → signer.
    pub fn recents(&self) -> &BTreeMap<u64, Address> {
        &self.recents
    }

    /// A snapshot after `recent` headers (ascending, contiguous; at least the last
    /// floor(N/2) before the next block), recovering their signers.
    pub fn with_recent(
        signers: Vec<Address>,
        epoch: u64,
        recent: &[Header],
    ) -> Result<Self, ConsensusError> {
        let mut snap = Self::new(signers, epoch);
        for h in recent.iter().filter(|h| h.number > 0) {
            snap.record(h.number, recover_signer(h)?);
        }
        snap.number = recent.last().map_or(0, |h| h.number);
        Ok(snap)
    }

    /// The signers, ascending.
    pub fn signers(&self) -> &[Address] {
        &self.signers
    }

    /// The standing votes, in the order cast.
    pub fn votes(&self) -> &[Vote] {
        &self.votes
    }

    /// The votes per candidate.
    pub fn tally(&self) -> &BTreeMap<Address, Tally> {
        &self.tally
    }

    /// A signer may seal one of any `limit` consecutive blocks: floor(N/2) + 1.
    pub fn limit(&self) -> u64 {
        self.signers.len() as u64 / 2 + 1
    }

    /// Whether `signer` is the in-turn signer of block `number`.
    pub fn in_turn(&self, number: u64, signer: Address) -> bool {
        let n = self.signers.len() as u64;
        n > 0 && self.signers.get((number % n) as usize) == Some(&signer)
    }

    /// The block within the window before `number` that `signer` signed, if any.
    pub fn signed_recently(&self, number: u64, signer: Address) -> Option<u64> {
        let limit = self.limit();
        self.recents
            .iter()
            .find(|(seen, s)| **s == signer && number >= limit && **seen > number - limit)
            .map(|(seen, _)| *seen)
    }

    /// Records that `signer` sealed block `number` and forgets blocks outside the window.
    pub fn record(&mut self, number: u64, signer: Address) {
        self.recents.insert(number, signer);
        let keep_from = number.saturating_sub(self.limit()) + 1;
        self.recents.retain(|n, _| *n >= keep_from);
    }

    /// Verifies the seal of `header` (whose other Clique fields are checked by
    /// [`crate::validate_header`]): an authorized signer, not signed recently, the
    /// difficulty of its turn, and the signer list at checkpoints. Records the signer and
    /// returns it.
    pub fn verify(&mut self, header: &Header) -> Result<Address, ConsensusError> {
        self.verify_recovered(header, recover_signer(header))
    }

    /// [`Self::verify`] with the signer already recovered (see [`recover_signers`], which
    /// recovers many on all cores).
    pub fn verify_recovered(
        &mut self,
        header: &Header,
        signer: Result<Address, ConsensusError>,
    ) -> Result<Address, ConsensusError> {
        let signer = self.check(header, signer)?;
        self.apply(header, signer);
        Ok(signer)
    }

    /// The checks of [`Self::verify_recovered`], changing nothing.
    pub fn check(
        &self,
        header: &Header,
        signer: Result<Address, ConsensusError>,
    ) -> Result<Address, ConsensusError> {
        let checkpoint = header.number.is_multiple_of(self.epoch);
        vote_of(header, checkpoint)?;
        let listed = &header.extra_data[EXTRA_VANITY.min(header.extra_data.len())
            ..header.extra_data.len().saturating_sub(EXTRA_SEAL)];
        if checkpoint {
            let expected: Vec<u8> = self.signers.iter().flat_map(|a| a.0).collect();
            if listed != expected.as_slice() {
                return Err(ConsensusError::CheckpointSigners);
            }
        } else if !listed.is_empty() {
            return Err(ConsensusError::ExtraData {
                len: header.extra_data.len(),
                rule: "no signer list outside checkpoint blocks",
            });
        }
        let signer = signer?;
        if !self.signers.contains(&signer) {
            return Err(ConsensusError::UnauthorizedSigner(signer));
        }
        if let Some(previous) = self.signed_recently(header.number, signer) {
            return Err(ConsensusError::SignedRecently { signer, previous, limit: self.limit() });
        }
        let expected =
            if self.in_turn(header.number, signer) { DIFF_IN_TURN } else { DIFF_NO_TURN };
        if header.difficulty != U256::from(expected) {
            let got = header.difficulty.saturating_to::<u64>();
            return Err(ConsensusError::WrongDifficulty { got, expected });
        }
        Ok(signer)
    }

    /// Applies `header`, sealed by `signer`, without checking it (it passed
    /// [`Self::check`] before, e.g. when it was stored): records the signer, applies its
    /// vote, clears the votes at a checkpoint.
    pub fn apply(&mut self, header: &Header, signer: Address) {
        self.number = header.number;
        self.record(header.number, signer);
        if header.number.is_multiple_of(self.epoch) {
            self.votes.clear();
            self.tally.clear();
        } else {
            let authorize = header.nonce == NONCE_AUTH;
            self.apply_vote(header.number, signer, header.beneficiary, authorize);
        }
    }

    /// Whether a vote on `candidate` would count: adding a non-signer or dropping a signer
    /// (what a validator includes of its proposals).
    pub fn valid_vote(&self, candidate: Address, authorize: bool) -> bool {
        self.signers.contains(&candidate) != authorize
    }

    /// Applies `signer`'s vote on `candidate` in block `number`, as geth v1.13 does: the
    /// signer's earlier vote on the candidate is withdrawn first; a vote that changes
    /// nothing (adding a signer, dropping a non-signer) or goes against the candidate's
    /// tally is not counted; a majority (more than half the signers) applies the change,
    /// after which the candidate's votes are cleared and, if a signer was dropped, its
    /// own votes withdrawn and the recent-signers window shortened.
    fn apply_vote(&mut self, number: u64, signer: Address, candidate: Address, authorize: bool) {
        if let Some(i) =
            self.votes.iter().position(|v| v.signer == signer && v.candidate == candidate)
        {
            let old = self.votes.remove(i);
            self.uncast(old.candidate, old.authorize);
        }
        if self.cast(candidate, authorize) {
            self.votes.push(Vote { signer, block: number, candidate, authorize });
        }
        let Some(tally) = self.tally.get(&candidate).copied() else { return };
        if tally.votes <= self.signers.len() / 2 {
            return;
        }
        if tally.authorize {
            if let Err(at) = self.signers.binary_search(&candidate) {
                self.signers.insert(at, candidate);
            }
        } else {
            self.signers.retain(|s| *s != candidate);
            // The window shrank with the signer set.
            let keep_from = (number + 1).saturating_sub(self.limit());
            self.recents.retain(|n, _| *n >= keep_from);
            let withdrawn: Vec<Vote> =
                self.votes.iter().filter(|v| v.signer == candidate).copied().collect();
            for v in withdrawn {
                self.uncast(v.candidate, v.authorize);
            }
            self.votes.retain(|v| v.signer != candidate);
        }
        self.votes.retain(|v| v.candidate != candidate);
        self.tally.remove(&candidate);
    }

    /// Counts a vote unless it changes nothing or goes against the candidate's tally.
    fn cast(&mut self, candidate: Address, authorize: bool) -> bool {
        if !self.valid_vote(candidate, authorize) {
            return false;
        }
        match self.tally.get_mut(&candidate) {
            Some(t) if t.authorize != authorize => false,
            Some(t) => {
                t.votes += 1;
                true
            }
            None => {
                self.tally.insert(candidate, Tally { authorize, votes: 1 });
                true
            }
        }
    }

    /// Withdraws a counted vote.
    fn uncast(&mut self, candidate: Address, authorize: bool) {
        if let Some(t) = self.tally.get_mut(&candidate) {
            if t.authorize == authorize {
                if t.votes > 1 {
                    t.votes -= 1;
                } else {
                    self.tally.remove(&candidate);
                }
            }
        }
    }

    /// The extraData of block `number` before sealing: zero vanity, the signer list at
    /// checkpoints, room for the seal.
    pub fn extra_data_for(&self, number: u64) -> Bytes {
        let mut extra = vec![0u8; EXTRA_VANITY];
        if number.is_multiple_of(self.epoch) {
            self.signers.iter().for_each(|a| extra.extend_from_slice(a.as_slice()));
        }
        extra.extend_from_slice(&[0u8; EXTRA_SEAL]);
        extra.into()
    }
}

/// The signers a checkpoint header lists in its extraData (between vanity and seal).
pub fn checkpoint_signers(header: &Header) -> Result<Vec<Address>, ConsensusError> {
    let extra = &header.extra_data;
    let len = extra.len();
    if len < EXTRA_VANITY + EXTRA_SEAL || !(len - EXTRA_VANITY - EXTRA_SEAL).is_multiple_of(20) {
        return Err(ConsensusError::ExtraData {
            len,
            rule: "32 vanity + 20·N signers + 65 seal bytes",
        });
    }
    Ok(extra[EXTRA_VANITY..len - EXTRA_SEAL].chunks(20).map(Address::from_slice).collect())
}

/// The vote a header carries: `true` to add its coinbase, `false` to drop it (a zero
/// coinbase with a zero nonce is a vote on nobody, which changes nothing). A checkpoint
/// carries none: its coinbase and nonce must be zero.
fn vote_of(header: &Header, checkpoint: bool) -> Result<bool, ConsensusError> {
    if checkpoint && header.beneficiary != Address::ZERO {
        return Err(ConsensusError::Constant {
            field: "coinbase",
            expected: "zero at a checkpoint (no votes there)",
        });
    }
    match header.nonce {
        NONCE_AUTH if !checkpoint => Ok(true),
        NONCE_DROP => Ok(false),
        _ if checkpoint => {
            Err(ConsensusError::Constant { field: "nonce", expected: "zero at a checkpoint" })
        }
        _ => Err(ConsensusError::Constant {
            field: "nonce",
            expected: "0x0000000000000000 (drop vote) or 0xffffffffffffffff (add vote)",
        }),
    }
}

/// A validator's standing proposals: candidate → add (`true`) or drop. Set with
/// `clique_propose`, cleared with `clique_discard`; kept after they pass (a passed
/// proposal is no longer a valid vote, so it is simply not cast).
pub type Proposals = BTreeMap<Address, bool>;

/// The vote a validator casts in block `number` on top of `snapshot`: one of its
/// `proposals` that would count, picked at random as geth does; none at checkpoints.
pub fn pick_vote(
    snapshot: &Snapshot,
    proposals: &Proposals,
    number: u64,
    rng: &mut impl rand::Rng,
) -> Option<(Address, bool)> {
    if number.is_multiple_of(snapshot.epoch) {
        return None;
    }
    let valid: Vec<(Address, bool)> = proposals
        .iter()
        .filter(|(a, auth)| snapshot.valid_vote(**a, **auth))
        .map(|(a, auth)| (*a, *auth))
        .collect();
    (!valid.is_empty()).then(|| valid[rng.random_range(0..valid.len())])
}

/// Writes `vote` into an unsealed header: the candidate as coinbase, the nonce of an add
/// ([`NONCE_AUTH`]) or drop ([`NONCE_DROP`]) vote.
pub fn cast_vote(header: &mut Header, (candidate, authorize): (Address, bool)) {
    header.beneficiary = candidate;
    header.nonce = if authorize { NONCE_AUTH } else { NONCE_DROP };
}

#[derive(alloy_rlp::RlpEncodable, alloy_rlp::RlpDecodable)]
struct StoredProposal {
    candidate: Address,
    authorize: bool,
}

/// The RLP of `proposals` for storage: `[[candidate, authorize]…]`.
pub fn encode_proposals(proposals: &Proposals) -> Vec<u8> {
    let list: Vec<StoredProposal> = proposals
        .iter()
        .map(|(candidate, authorize)| StoredProposal {
            candidate: *candidate,
            authorize: *authorize,
        })
        .collect();
    alloy_rlp::encode(&list)
}

/// Proposals from [`encode_proposals`]'s bytes.
pub fn decode_proposals(mut bytes: &[u8]) -> Result<Proposals, alloy_rlp::Error> {
    let list = <Vec<StoredProposal> as alloy_rlp::Decodable>::decode(&mut bytes)?;
    Ok(list.into_iter().map(|p| (p.candidate, p.authorize)).collect())
}

/// Headers below this count recover their signers on one thread.
const PARALLEL_SEALS_THRESHOLD: usize = 32;

/// Recovers the sealer of every header, splitting large batches across all cores.
pub fn recover_signers<H: std::borrow::Borrow<Header> + Sync>(
    headers: &[H],
) -> Vec<Result<Address, ConsensusError>> {
    let recover = |h: &H| recover_signer(h.borrow());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if headers.len() < PARALLEL_SEALS_THRESHOLD || threads == 1 {
        return headers.iter().map(recover).collect();
    }
    let chunk = headers.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = headers
            .chunks(chunk)
            .map(|c| s.spawn(move || c.iter().map(recover).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("seal recovery thread panicked")).collect()
    })
}

#[cfg(test)]
mod voting_tests {
    //! EIP-225's voting scenarios ("Test Cases"): signers A–F, each block sealed by one of
    //! them, optionally voting on someone; the signer set after all blocks, or the error.
    use super::*;

    /// (signer, voted on, add?, checkpoint list)
    type B = (char, Option<char>, bool, &'static [char]);

    fn key(name: char) -> SecretKey {
        SecretKey::from_byte_array([name as u8; 32]).unwrap()
    }

    fn addr(name: char) -> Address {
        address_of(&key(name))
    }

    fn run(epoch: u64, signers: &[char], blocks: &[B]) -> Result<Vec<Address>, ConsensusError> {
        let mut snap = Snapshot::new(signers.iter().map(|c| addr(*c)).collect(), epoch);
        for (i, (signer, voted, auth, checkpoint)) in blocks.iter().enumerate() {
            let number = i as u64 + 1;
            let mut listed: Vec<Address> = checkpoint.iter().map(|c| addr(*c)).collect();
            listed.sort();
            let mut extra = vec![0u8; EXTRA_VANITY];
            listed.iter().for_each(|a| extra.extend_from_slice(a.as_slice()));
            extra.extend_from_slice(&[0u8; EXTRA_SEAL]);
            let turn = snap.in_turn(number, addr(*signer));
            let mut h = Header {
                number,
                extra_data: extra.into(),
                beneficiary: voted.map(addr).unwrap_or_default(),
                nonce: if voted.is_some() && *auth { NONCE_AUTH } else { NONCE_DROP },
                difficulty: U256::from(if turn { DIFF_IN_TURN } else { DIFF_NO_TURN }),
                ..Default::default()
            };
            seal_header(&mut h, &key(*signer))?;
            snap.verify(&h)?;
        }
        Ok(snap.signers().to_vec())
    }

    fn set(names: &[char]) -> Vec<Address> {
        let mut v: Vec<Address> = names.iter().map(|c| addr(*c)).collect();
        v.sort();
        v
    }

    const N: &[char] = &[];

    /// (name, genesis signers, blocks, signers after them)
    type Case = (&'static str, &'static [char], Vec<B>, &'static [char]);

    fn b(signer: char) -> B {
        (signer, None, false, N)
    }

    fn add(signer: char, on: char) -> B {
        (signer, Some(on), true, N)
    }

    fn drop(signer: char, on: char) -> B {
        (signer, Some(on), false, N)
    }

    #[test]
    fn eip225_voting_scenarios() {
        // Three of the EIP's scenarios start alike: C and D voted on, only D finishing.
        let no_cascade = || {
            vec![
                drop('A', 'C'),
                b('B'),
                b('C'),
                drop('A', 'D'),
                drop('B', 'C'),
                b('C'),
                b('A'),
                drop('B', 'D'),
                drop('C', 'D'),
            ]
        };
        let cases: Vec<Case> = vec![
            ("single signer, no votes", &['A'], vec![b('A')], &['A']),
            (
                "single signer adds two: the second needs two votes",
                &['A'],
                vec![add('A', 'B'), b('B'), add('A', 'C')],
                &['A', 'B'],
            ),
            (
                "two signers add three: the third needs three votes",
                &['A', 'B'],
                vec![
                    add('A', 'C'),
                    add('B', 'C'),
                    add('A', 'D'),
                    add('B', 'D'),
                    b('C'),
                    add('A', 'E'),
                    add('B', 'E'),
                ],
                &['A', 'B', 'C', 'D'],
            ),
            ("single signer drops itself", &['A'], vec![drop('A', 'A')], &[]),
            (
                "two signers: one drop vote is not enough",
                &['A', 'B'],
                vec![drop('A', 'B')],
                &['A', 'B'],
            ),
            (
                "two signers: mutual consent drops",
                &['A', 'B'],
                vec![drop('A', 'B'), drop('B', 'B')],
                &['A'],
            ),
            (
                "three signers, two drop the third",
                &['A', 'B', 'C'],
                vec![drop('A', 'C'), drop('B', 'C')],
                &['A', 'B'],
            ),
            (
                "four signers: two votes do not drop",
                &['A', 'B', 'C', 'D'],
                vec![drop('A', 'C'), drop('B', 'C')],
                &['A', 'B', 'C', 'D'],
            ),
            (
                "four signers: three votes drop",
                &['A', 'B', 'C', 'D'],
                vec![drop('A', 'D'), drop('B', 'D'), drop('C', 'D')],
                &['A', 'B', 'C'],
            ),
            (
                "authorizations count once per signer per target",
                &['A', 'B'],
                vec![add('A', 'C'), b('B'), add('A', 'C'), b('B'), add('A', 'C')],
                &['A', 'B'],
            ),
            (
                "authorizing several at once",
                &['A', 'B'],
                vec![
                    add('A', 'C'),
                    b('B'),
                    add('A', 'D'),
                    b('B'),
                    b('A'),
                    add('B', 'D'),
                    b('A'),
                    add('B', 'C'),
                ],
                &['A', 'B', 'C', 'D'],
            ),
            (
                "deauthorizations count once per signer per target",
                &['A', 'B'],
                vec![drop('A', 'B'), b('B'), drop('A', 'B'), b('B'), drop('A', 'B')],
                &['A', 'B'],
            ),
            (
                "deauthorizing several at once",
                &['A', 'B', 'C', 'D'],
                vec![
                    drop('A', 'C'),
                    b('B'),
                    b('C'),
                    drop('A', 'D'),
                    b('B'),
                    b('C'),
                    b('A'),
                    drop('B', 'D'),
                    drop('C', 'D'),
                    b('A'),
                    drop('B', 'C'),
                ],
                &['A', 'B'],
            ),
            (
                "a dropped signer's drop votes are discarded",
                &['A', 'B', 'C'],
                vec![drop('C', 'B'), drop('A', 'C'), drop('B', 'C'), drop('A', 'B')],
                &['A', 'B'],
            ),
            (
                "a dropped signer's add votes are discarded",
                &['A', 'B', 'C'],
                vec![add('C', 'D'), drop('A', 'C'), drop('B', 'C'), add('A', 'D')],
                &['A', 'B'],
            ),
            (
                "no cascading: only the candidate voted on changes",
                &['A', 'B', 'C', 'D'],
                no_cascade(),
                &['A', 'B', 'C'],
            ),
            (
                "a change that reached consensus meanwhile executes on touch",
                &['A', 'B', 'C', 'D'],
                [no_cascade(), vec![b('A'), add('C', 'C')]].concat(),
                &['A', 'B'],
            ),
            (
                "... or falls out of consensus on touch",
                &['A', 'B', 'C', 'D'],
                [no_cascade(), vec![b('A'), add('B', 'C')]].concat(),
                &['A', 'B', 'C'],
            ),
            (
                "pending votes do not survive status changes",
                &['A', 'B', 'C', 'D', 'E'],
                vec![
                    add('A', 'F'),
                    add('B', 'F'),
                    add('C', 'F'),
                    drop('D', 'F'),
                    drop('E', 'F'),
                    drop('B', 'F'),
                    drop('C', 'F'),
                    add('D', 'F'),
                    add('E', 'F'),
                    drop('B', 'A'),
                    drop('C', 'A'),
                    drop('D', 'A'),
                    add('B', 'F'),
                ],
                &['B', 'C', 'D', 'E', 'F'],
            ),
        ];
        for (name, signers, blocks, want) in cases {
            assert_eq!(run(30_000, signers, &blocks).unwrap(), set(want), "{name}");
        }
        // Epoch transitions reset all votes.
        let blocks = [add('A', 'C'), b('B'), ('A', None, false, &['A', 'B'][..]), add('B', 'C')];
        assert_eq!(run(3, &['A', 'B'], &blocks).unwrap(), set(&['A', 'B']));
    }

    #[test]
    fn proposals_vote_only_where_they_count() {
        let snap = Snapshot::new(vec![addr('A'), addr('B')], 10);
        let mut rng = rand::rng();
        let mut proposals = Proposals::new();
        // Adding a signer or dropping a non-signer changes nothing: never cast.
        proposals.insert(addr('A'), true);
        proposals.insert(addr('C'), false);
        assert_eq!(pick_vote(&snap, &proposals, 1, &mut rng), None);
        proposals.insert(addr('D'), true);
        assert_eq!(pick_vote(&snap, &proposals, 1, &mut rng), Some((addr('D'), true)));
        assert_eq!(pick_vote(&snap, &proposals, 10, &mut rng), None, "no vote at a checkpoint");
        let back = decode_proposals(&encode_proposals(&proposals)).unwrap();
        assert_eq!(back, proposals);
        let mut h = Header::default();
        cast_vote(&mut h, (addr('B'), false));
        assert_eq!((h.beneficiary, h.nonce), (addr('B'), NONCE_DROP));
    }

    #[test]
    fn eip225_failures() {
        assert!(matches!(
            run(30_000, &['A'], &[b('B')]),
            Err(ConsensusError::UnauthorizedSigner(_))
        ));
        assert!(matches!(
            run(30_000, &['A', 'B'], &[b('A'), b('A')]),
            Err(ConsensusError::SignedRecently { .. })
        ));
        // Recent signers survive a checkpoint.
        let blocks = [b('A'), b('B'), ('A', None, false, &['A', 'B', 'C'][..]), b('A')];
        assert!(matches!(
            run(3, &['A', 'B', 'C'], &blocks),
            Err(ConsensusError::SignedRecently { .. })
        ));
        // A checkpoint carries no vote; a vote's nonce is all ones or all zeros.
        let vote_at_checkpoint = [b('A'), b('B'), ('A', Some('C'), true, &['A', 'B'][..])];
        assert!(matches!(
            run(3, &['A', 'B'], &vote_at_checkpoint),
            Err(ConsensusError::Constant { .. })
        ));
    }
}
