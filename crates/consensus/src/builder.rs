//! The validator's block builder: when to seal, the block's header and its seal.
//!
//! [`Sealer::template`] gives the unsealed, empty block with the parent's state root and
//! the fields its forks add ([`set_fork_fields`]); the node fills it from the pool,
//! executes it, fills in the execution fields and seals it with [`Sealer::seal`].
//! [`Sealer::build`] seals the template as it is (right only where executing an empty
//! block changes no state: before Cancun's system calls; for tests of header rules).

use crate::{
    address_of,
    clique::{seal_header, Snapshot, DIFF_IN_TURN, DIFF_NO_TURN, WIGGLE_MS},
    expected_base_fee,
};
use alloy_consensus::{
    Block, BlockBody, Header, TxEnvelope, EMPTY_OMMER_ROOT_HASH, EMPTY_ROOT_HASH,
};
use alloy_eips::eip1559::BaseFeeParams;
use alloy_primitives::{Address, B256, U256};
use rand::Rng;
use secp256k1::SecretKey;
use tern_chainspec::ChainSpec;

/// Fills in the header fields the forks active at `header`'s timestamp add, with the
/// values a Clique block carries (there is no beacon chain): Shanghai's withdrawals root
/// of an empty list, Cancun's blob gas used (0: the block builder includes no blob
/// transactions), the excess blob gas following `parent`, a zero parent beacon block root,
/// and Prague's requests hash (of no requests; the executor replaces it with the block's).
/// Returns the body's withdrawals: an empty list from Shanghai on, none before.
pub fn set_fork_fields(
    spec: &ChainSpec,
    header: &mut Header,
    parent: &Header,
) -> Option<alloy_eips::eip4895::Withdrawals> {
    let active = |fork| spec.is_active(fork, header.number, header.timestamp);
    let shanghai = active("shanghai");
    header.withdrawals_root = shanghai.then_some(EMPTY_ROOT_HASH);
    let blob_params = active("cancun").then(|| spec.blob_params(header.timestamp)).flatten();
    header.blob_gas_used = blob_params.map(|_| 0);
    header.excess_blob_gas =
        blob_params.map(|p| parent.next_block_excess_blob_gas(p).unwrap_or_default());
    header.parent_beacon_block_root = blob_params.map(|_| B256::ZERO);
    header.requests_hash = active("prague").then_some(alloy_eips::eip7685::EMPTY_REQUESTS_HASH);
    shanghai.then(Default::default)
}

/// When this validator may seal the next block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealPlan {
    /// Block number.
    pub number: u64,
    /// The block's timestamp: parent + period (seconds).
    pub timestamp: u64,
    /// Whether it is our turn (difficulty 2).
    pub in_turn: bool,
    /// Extra wait after `timestamp` before sealing, in milliseconds: 0 in turn, a random
    /// wiggle out of turn so the in-turn signer's block usually wins.
    pub delay_ms: u64,
}

/// A Clique validator.
#[derive(Debug, Clone)]
pub struct Sealer {
    key: SecretKey,
    address: Address,
}

impl Sealer {
    /// A sealer with signing key `key`.
    pub fn new(key: SecretKey) -> Self {
        Self { address: address_of(&key), key }
    }

    /// Our signer address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// When we may seal the block after `parent`; `None` when we are not a signer or
    /// signed within the recent window.
    pub fn plan(
        &self,
        snapshot: &Snapshot,
        parent: &Header,
        period: u64,
        rng: &mut impl Rng,
    ) -> Option<SealPlan> {
        let number = parent.number + 1;
        if !snapshot.signers().contains(&self.address)
            || snapshot.signed_recently(number, self.address).is_some()
        {
            return None;
        }
        let in_turn = snapshot.in_turn(number, self.address);
        let delay_ms = if in_turn { 0 } else { rng.random_range(0..=snapshot.limit() * WIGGLE_MS) };
        Some(SealPlan { number, timestamp: parent.timestamp + period, in_turn, delay_ms })
    }

    /// Builds and seals the (empty) block after `parent` with `timestamp`, with the
    /// parent's state root.
    pub fn build(
        &self,
        spec: &ChainSpec,
        snapshot: &Snapshot,
        parent: &Header,
        parent_hash: B256,
        timestamp: u64,
    ) -> Block<TxEnvelope> {
        let mut block = self.template(spec, snapshot, parent, parent_hash, timestamp);
        self.seal(&mut block.header).expect("extra_data_for leaves room for the seal");
        block
    }

    /// Signs `header` (its extra data must have room for the seal).
    pub fn seal(&self, header: &mut Header) -> Result<(), crate::ConsensusError> {
        seal_header(header, &self.key)
    }

    /// The unsealed (empty) block after `parent` with `timestamp`: the parent's state
    /// root, the empty receipts root, no gas used.
    pub fn template(
        &self,
        spec: &ChainSpec,
        snapshot: &Snapshot,
        parent: &Header,
        parent_hash: B256,
        timestamp: u64,
    ) -> Block<TxEnvelope> {
        let number = parent.number + 1;
        let in_turn = snapshot.in_turn(number, self.address);
        let london_starts = spec.is_active("london", number, timestamp)
            && !spec.is_active("london", parent.number, parent.timestamp);
        let gas_limit = if london_starts {
            parent.gas_limit * BaseFeeParams::ethereum().elasticity_multiplier as u64
        } else {
            parent.gas_limit
        };
        let mut header = Header {
            parent_hash,
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            state_root: parent.state_root,
            transactions_root: EMPTY_ROOT_HASH,
            receipts_root: EMPTY_ROOT_HASH,
            difficulty: U256::from(if in_turn { DIFF_IN_TURN } else { DIFF_NO_TURN }),
            number,
            gas_limit,
            timestamp,
            extra_data: snapshot.extra_data_for(number),
            ..Default::default()
        };
        header.base_fee_per_gas = expected_base_fee(spec, &header, parent);
        let withdrawals = set_fork_fields(spec, &mut header, parent);
        Block { header, body: BlockBody { withdrawals, ..Default::default() } }
    }
}
