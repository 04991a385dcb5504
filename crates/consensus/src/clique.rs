//! Clique proof of authority (EIP-225): seal hashing, signing and recovery, the signer
//! snapshot with its "recently signed" window, and the header rules.
//!
//! Signer voting is not supported: blocks must carry no vote (zero coinbase and nonce),
//! and the signer set is the genesis one, repeated at every checkpoint.
//!
//! Spec: <https://eips.ethereum.org/EIPS/eip-225>

use crate::ConsensusError;
use alloy_consensus::{Header, EMPTY_OMMER_ROOT_HASH};
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

/// Clique rules that need only the header and its parent: extraData layout, no votes,
/// zero mix hash, no ommers, difficulty 1 or 2, and `timestamp ≥ parent + period`.
pub(crate) fn validate_clique_fields(
    h: &Header,
    parent: &Header,
    period: u64,
) -> Result<(), ConsensusError> {
    let len = h.extra_data.len();
    if len < EXTRA_VANITY + EXTRA_SEAL || !(len - EXTRA_VANITY - EXTRA_SEAL).is_multiple_of(20) {
        return Err(ConsensusError::ExtraData {
            len,
            rule: "32 vanity + 20·N signers + 65 seal bytes",
        });
    }
    if h.beneficiary != Address::ZERO {
        return Err(ConsensusError::Constant {
            field: "coinbase",
            expected: "zero (signer votes are not supported)",
        });
    }
    if h.nonce != B64::ZERO {
        return Err(ConsensusError::Constant {
            field: "nonce",
            expected: "zero (signer votes are not supported)",
        });
    }
    if h.mix_hash != B256::ZERO {
        return Err(ConsensusError::Constant { field: "mix_hash", expected: "zero" });
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

/// The signer set and who signed the recent blocks: what verifying or sealing the next
/// block needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Authorized signers, ascending.
    signers: Vec<Address>,
    /// Checkpoint interval, in blocks.
    epoch: u64,
    /// block number → signer, for the last `limit - 1` blocks.
    recents: BTreeMap<u64, Address>,
}

impl Snapshot {
    /// A snapshot with `signers` (any order) and no recent blocks.
    pub fn new(mut signers: Vec<Address>, epoch: u64) -> Self {
        signers.sort();
        signers.dedup();
        Self { signers, epoch, recents: BTreeMap::new() }
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
        Ok(snap)
    }

    /// The signers, ascending.
    pub fn signers(&self) -> &[Address] {
        &self.signers
    }

    /// A signer may seal one of any `limit` consecutive blocks: floor(N/2) + 1.
    pub fn limit(&self) -> u64 {
        self.signers.len() as u64 / 2 + 1
    }

    /// Whether `signer` is the in-turn signer of block `number`.
    pub fn in_turn(&self, number: u64, signer: Address) -> bool {
        self.signers.get((number % self.signers.len() as u64) as usize) == Some(&signer)
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
        let checkpoint = header.number.is_multiple_of(self.epoch);
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
        self.record(header.number, signer);
        Ok(signer)
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
