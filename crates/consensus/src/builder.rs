//! The validator's block builder: when to seal, the block's header and its seal.
//!
//! Blocks carry no transactions yet (the pool comes later). [`Sealer::template`] gives
//! the unsealed block with the parent's state root; the node executes it, fills in the
//! execution fields and seals it with [`Sealer::seal`]. [`Sealer::build`] seals the
//! template as it is (right when executing an empty block changes no state).

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
        Block { header, body: BlockBody::default() }
    }
}
