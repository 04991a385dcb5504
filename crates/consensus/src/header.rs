//! Header rules shared by every chain (DESIGN §4), and the post-merge constants.

use crate::{clique, ConsensusError};
use alloy_consensus::{Header, EMPTY_OMMER_ROOT_HASH};
use alloy_eips::eip1559::{calc_next_block_base_fee, BaseFeeParams, INITIAL_BASE_FEE};
use alloy_primitives::{B256, B64, U256};
use tern_chainspec::{ChainSpec, Consensus};

/// How far ahead of our clock a header's timestamp may be, in seconds (Clique and
/// proof-of-work chains only; post-merge headers have no future bound).
pub const MAX_FUTURE_SECS: u64 = 15;

/// Lowest gas limit a block may have.
///
/// Spec: Yellow Paper §4.3.4 (`H_l ≥ 5000`).
pub const MIN_GAS_LIMIT: u64 = 5000;

/// A block's gas limit may differ from its parent's by less than parent / 1024.
///
/// Spec: Yellow Paper §4.3.4.
pub const GAS_LIMIT_BOUND_DIVISOR: u64 = 1024;

/// Highest gas limit a block may have: 2^63 - 1 (geth's `params.MaxGasLimit`; the
/// consensus tests' `GasLimitHigherThan2p63m1` case).
pub const MAX_GAS_LIMIT: u64 = 0x7fff_ffff_ffff_ffff;

/// Largest extraData outside Clique, in bytes.
///
/// Spec: Yellow Paper §4.3.4 (`‖H_x‖ ≤ 32`).
pub const MAX_EXTRA_DATA: usize = 32;

/// Checks `header` against its `parent` (hash `parent_hash`) under `spec`, with our clock
/// at `now` (seconds since the Unix epoch). Clique seals are checked separately by
/// [`clique::Snapshot::verify`], which needs the recent signers.
pub fn validate_header(
    spec: &ChainSpec,
    header: &Header,
    parent: &Header,
    parent_hash: B256,
    now: u64,
) -> Result<(), ConsensusError> {
    if header.parent_hash != parent_hash {
        return Err(ConsensusError::ParentHash { got: header.parent_hash, expected: parent_hash });
    }
    if header.number != parent.number + 1 {
        return Err(ConsensusError::Number { got: header.number, expected: parent.number + 1 });
    }
    if header.timestamp <= parent.timestamp {
        return Err(ConsensusError::TimestampNotAfterParent {
            got: header.timestamp,
            parent: parent.timestamp,
        });
    }
    // A pre-merge rule: after the merge the consensus layer owns time (reth and geth apply
    // it only before the merge), and fast dev chains run ahead of the wall clock.
    let post_merge = matches!(spec.consensus, Consensus::PostMerge);
    if !post_merge && header.timestamp > now.saturating_add(MAX_FUTURE_SECS) {
        return Err(ConsensusError::TimestampInFuture { got: header.timestamp, now });
    }
    if header.gas_used > header.gas_limit {
        return Err(ConsensusError::GasUsedExceedsLimit {
            used: header.gas_used,
            limit: header.gas_limit,
        });
    }
    validate_fork_fields(spec, header)?;
    let london_starts = spec.is_active("london", header.number, header.timestamp)
        && !spec.is_active("london", parent.number, parent.timestamp);
    validate_gas_limit(header.gas_limit, parent.gas_limit, london_starts)?;
    if let (Some(got), Some(params)) = (header.excess_blob_gas, spec.blob_params(header.timestamp))
    {
        // The first Cancun block's parent has no blob fields: its excess counts as 0.
        let expected = parent.next_block_excess_blob_gas(params).unwrap_or_default();
        if got != expected {
            return Err(ConsensusError::ExcessBlobGas { got, expected });
        }
    }
    let expected_base_fee = expected_base_fee(spec, header, parent);
    if header.base_fee_per_gas != expected_base_fee {
        return Err(ConsensusError::BaseFee {
            got: header.base_fee_per_gas,
            expected: expected_base_fee,
        });
    }
    match &spec.consensus {
        Consensus::Clique { period, epoch, .. } => {
            clique::validate_clique_fields(header, parent, *period, *epoch)
        }
        Consensus::PostMerge => validate_post_merge(header),
        Consensus::ProofOfWork => validate_extra_data_len(header),
    }
}

/// Gas limit within parent ± parent/1024 (exclusive) and at least [`MIN_GAS_LIMIT`]. At
/// the London fork block the parent's limit is doubled first (EIP-1559 elasticity).
pub fn validate_gas_limit(
    gas_limit: u64,
    parent_gas_limit: u64,
    london_starts: bool,
) -> Result<(), ConsensusError> {
    let parent = if london_starts {
        parent_gas_limit.saturating_mul(BaseFeeParams::ethereum().elasticity_multiplier as u64)
    } else {
        parent_gas_limit
    };
    if gas_limit > MAX_GAS_LIMIT {
        return Err(ConsensusError::GasLimitTooHigh { got: gas_limit, max: MAX_GAS_LIMIT });
    }
    let bound = parent / GAS_LIMIT_BOUND_DIVISOR;
    // |gas_limit - parent| < bound
    let min = (parent - bound.min(parent)).saturating_add(1).max(MIN_GAS_LIMIT);
    let max = parent.saturating_add(bound).saturating_sub(1);
    if gas_limit < min || gas_limit > max {
        return Err(ConsensusError::GasLimit { got: gas_limit, parent, min, max });
    }
    Ok(())
}

/// The EIP-1559 base fee `header` must carry: none before London, 1 gwei at the fork
/// block, then alloy-eips' calculation from the parent.
pub fn expected_base_fee(spec: &ChainSpec, header: &Header, parent: &Header) -> Option<u64> {
    if !spec.is_active("london", header.number, header.timestamp) {
        return None;
    }
    match parent.base_fee_per_gas {
        Some(parent_fee) if spec.is_active("london", parent.number, parent.timestamp) => {
            Some(calc_next_block_base_fee(
                parent.gas_used,
                parent.gas_limit,
                parent_fee,
                BaseFeeParams::ethereum(),
            ))
        }
        _ => Some(INITIAL_BASE_FEE),
    }
}

/// Fields present exactly when their fork is active.
fn validate_fork_fields(spec: &ChainSpec, h: &Header) -> Result<(), ConsensusError> {
    let active = |fork| spec.is_active(fork, h.number, h.timestamp);
    let check = |field, present: bool, fork| {
        if present == active(fork) {
            Ok(())
        } else {
            Err(ConsensusError::ForkField { field, present: active(fork), fork })
        }
    };
    check("base_fee_per_gas", h.base_fee_per_gas.is_some(), "london")?;
    check("withdrawals_root", h.withdrawals_root.is_some(), "shanghai")?;
    check("blob_gas_used", h.blob_gas_used.is_some(), "cancun")?;
    check("excess_blob_gas", h.excess_blob_gas.is_some(), "cancun")?;
    check("parent_beacon_block_root", h.parent_beacon_block_root.is_some(), "cancun")?;
    check("requests_hash", h.requests_hash.is_some(), "prague")?;
    Ok(())
}

fn validate_extra_data_len(h: &Header) -> Result<(), ConsensusError> {
    if h.extra_data.len() > MAX_EXTRA_DATA {
        return Err(ConsensusError::ExtraData {
            len: h.extra_data.len(),
            rule: "at most 32 bytes",
        });
    }
    Ok(())
}

/// Proof of stake: difficulty 0, nonce 0, no ommers, extraData ≤ 32 bytes.
///
/// Spec: <https://eips.ethereum.org/EIPS/eip-3675#block-structure>
fn validate_post_merge(h: &Header) -> Result<(), ConsensusError> {
    if h.difficulty != U256::ZERO {
        return Err(ConsensusError::Constant {
            field: "difficulty",
            expected: "0 after the merge",
        });
    }
    if h.nonce != B64::ZERO {
        return Err(ConsensusError::Constant { field: "nonce", expected: "0 after the merge" });
    }
    if h.ommers_hash != EMPTY_OMMER_ROOT_HASH {
        return Err(ConsensusError::Constant {
            field: "ommers_hash",
            expected: "the empty list's hash",
        });
    }
    validate_extra_data_len(h)
}
