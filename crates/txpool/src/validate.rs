//! Checks a transaction can make without the sender's account: signature, chain, type,
//! size, gas and fees.

use crate::PoolError;
use alloy_consensus::{transaction::SignerRecoverable, Header, Transaction, TxEnvelope, Typed2718};
use alloy_eips::{eip1559::BaseFeeParams, Encodable2718};
use alloy_primitives::{Address, B256, U256};
use std::sync::Arc;
use tern_chainspec::ChainSpec;

/// Largest transaction the pool accepts, in bytes of its EIP-2718 encoding (geth's and
/// reth's `txMaxSize`: 4 slots of 32 KiB).
pub const MAX_TX_SIZE: usize = 128 * 1024;

/// Largest contract creation code, in bytes (EIP-3860: twice EIP-170's 24,576-byte code
/// limit). Spec: <https://eips.ethereum.org/EIPS/eip-3860>
pub const MAX_INITCODE_SIZE: usize = 2 * 24_576;

/// What the pool validates against: the block the next transactions would go into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextBlock {
    /// The head's number (the next block is one above).
    pub head: u64,
    /// The head's hash.
    pub head_hash: B256,
    /// The next block's base fee in wei per gas (0 before London).
    pub base_fee: u64,
    /// The next block's gas limit.
    pub gas_limit: u64,
    /// The chain id transactions must be signed for.
    pub chain_id: u64,
    /// The forks active at the next block.
    pub forks: Forks,
}

/// The transaction-relevant forks active at a block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forks {
    /// Istanbul: calldata costs 16 gas per non-zero byte (EIP-2028), not 68.
    pub istanbul: bool,
    /// Berlin: access-list transactions (type 1, EIP-2930).
    pub berlin: bool,
    /// London: dynamic-fee transactions (type 2, EIP-1559) and the base fee.
    pub london: bool,
    /// Shanghai: initcode limit and cost (EIP-3860).
    pub shanghai: bool,
    /// Cancun: blob transactions (type 3, EIP-4844).
    pub cancun: bool,
    /// Prague: set-code transactions (type 4, EIP-7702) and the calldata floor (EIP-7623).
    pub prague: bool,
}

impl NextBlock {
    /// The block after `head` on `spec`, which would be sealed at `timestamp` (seconds).
    pub fn after(spec: &ChainSpec, head: &Header, head_hash: B256, timestamp: u64) -> Self {
        let (number, t) = (head.number + 1, timestamp.max(head.timestamp + 1));
        let on = |name| spec.is_active(name, number, t);
        let forks = Forks {
            istanbul: on("istanbul"),
            berlin: on("berlin"),
            london: on("london"),
            shanghai: on("shanghai"),
            cancun: on("cancun"),
            prague: on("prague"),
        };
        let base_fee = if !forks.london {
            0
        } else if spec.is_active("london", head.number, head.timestamp) {
            head.next_block_base_fee(BaseFeeParams::ethereum()).unwrap_or_default()
        } else {
            alloy_eips::eip1559::INITIAL_BASE_FEE
        };
        Self {
            head: head.number,
            head_hash,
            base_fee,
            gas_limit: head.gas_limit,
            chain_id: spec.chain_id,
            forks,
        }
    }
}

/// A transaction that passed the checks that need no account: with its sender, hash,
/// size and maximum cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidTx {
    /// The transaction.
    pub tx: Arc<TxEnvelope>,
    /// Its hash.
    pub hash: B256,
    /// Its recovered sender.
    pub sender: Address,
    /// Its EIP-2718 encoded size in bytes.
    pub size: usize,
    /// The most it can cost the sender: `gas_limit × max_fee + value`, in wei.
    pub cost: U256,
}

impl ValidTx {
    /// Its nonce.
    pub fn nonce(&self) -> u64 {
        self.tx.nonce()
    }
    /// Its fee cap (the gas price of legacy and access-list transactions), wei per gas.
    pub fn max_fee(&self) -> u128 {
        self.tx.max_fee_per_gas()
    }
    /// Its priority fee cap (the gas price of older types), wei per gas.
    pub fn tip_cap(&self) -> u128 {
        self.tx.priority_fee_or_price()
    }
    /// What a block producer earns per gas at `base_fee` (none if the fee cap is below it).
    pub fn effective_tip(&self, base_fee: u64) -> Option<u128> {
        self.tx.effective_tip_per_gas(base_fee)
    }
}

/// The gas a transaction pays before it runs: 21,000, 32,000 more to create a contract,
/// its calldata (EIP-2028), access list (EIP-2930), initcode words (EIP-3860) and
/// authorizations (EIP-7702); from Prague at least the calldata floor (EIP-7623).
pub fn intrinsic_gas(tx: &TxEnvelope, forks: Forks) -> u64 {
    let input = tx.input();
    let zeros = input.iter().filter(|b| **b == 0).count() as u64;
    let nonzeros = input.len() as u64 - zeros;
    let nonzero_cost = if forks.istanbul { 16 } else { 68 };
    let mut gas = 21_000 + zeros * 4 + nonzeros * nonzero_cost;
    if tx.is_create() {
        gas += 32_000;
        if forks.shanghai {
            gas += 2 * (input.len() as u64).div_ceil(32);
        }
    }
    if let Some(list) = tx.access_list() {
        gas += list.0.iter().map(|i| 2_400 + 1_900 * i.storage_keys.len() as u64).sum::<u64>();
    }
    gas += 25_000 * tx.authorization_count().unwrap_or_default();
    if forks.prague {
        let floor = 21_000 + 10 * (zeros + 4 * nonzeros);
        gas = gas.max(floor);
    }
    gas
}

/// Checks `tx` against the rules of `next` that need no account state, and recovers its
/// sender.
pub fn validate_stateless(tx: TxEnvelope, next: &NextBlock) -> Result<ValidTx, PoolError> {
    let f = next.forks;
    let allowed = match tx.ty() {
        0 => true,
        1 => f.berlin,
        2 => f.london,
        3 => return Err(PoolError::BlobsNotSupported),
        4 => f.prague,
        _ => false,
    };
    if !allowed {
        return Err(PoolError::TypeNotSupported);
    }
    let size = tx.encode_2718_len();
    if size > MAX_TX_SIZE {
        return Err(PoolError::Oversized { size, limit: MAX_TX_SIZE });
    }
    match tx.chain_id() {
        None => return Err(PoolError::NotReplayProtected),
        Some(have) if have != next.chain_id => {
            return Err(PoolError::WrongChainId { have, want: next.chain_id })
        }
        Some(_) => {}
    }
    if f.shanghai && tx.is_create() && tx.input().len() > MAX_INITCODE_SIZE {
        return Err(PoolError::InitcodeTooLarge {
            size: tx.input().len(),
            limit: MAX_INITCODE_SIZE,
        });
    }
    if tx.gas_limit() > next.gas_limit {
        return Err(PoolError::GasLimit);
    }
    let needed = intrinsic_gas(&tx, f);
    if tx.gas_limit() < needed {
        return Err(PoolError::IntrinsicGas { gas: tx.gas_limit(), needed });
    }
    if tx.max_priority_fee_per_gas().is_some_and(|tip| tip > tx.max_fee_per_gas()) {
        return Err(PoolError::TipAboveFeeCap);
    }
    let sender = tx.recover_signer().map_err(|_| PoolError::InvalidSender)?;
    let cost = U256::from(tx.gas_limit()) * U256::from(tx.max_fee_per_gas()) + tx.value();
    let hash = *tx.tx_hash();
    Ok(ValidTx { tx: Arc::new(tx), hash, sender, size, cost })
}

/// A transaction in its network form (as `eth_sendRawTransaction` and
/// `PooledTransactions` carry it) as the pool keeps it; blob transactions are refused.
pub fn from_pooled(
    tx: alloy_consensus::transaction::PooledTransaction,
) -> Result<TxEnvelope, PoolError> {
    use alloy_consensus::transaction::PooledTransaction as P;
    Ok(match tx {
        P::Legacy(t) => TxEnvelope::Legacy(t),
        P::Eip2930(t) => TxEnvelope::Eip2930(t),
        P::Eip1559(t) => TxEnvelope::Eip1559(t),
        P::Eip7702(t) => TxEnvelope::Eip7702(t),
        P::Eip4844(_) => return Err(PoolError::BlobsNotSupported),
    })
}

/// A pool transaction in its network form, for `PooledTransactions` (the pool holds no
/// blob transactions, so every one converts).
pub fn to_pooled(tx: &TxEnvelope) -> Option<alloy_consensus::transaction::PooledTransaction> {
    use alloy_consensus::transaction::PooledTransaction as P;
    Some(match tx {
        TxEnvelope::Legacy(t) => P::Legacy(t.clone()),
        TxEnvelope::Eip2930(t) => P::Eip2930(t.clone()),
        TxEnvelope::Eip1559(t) => P::Eip1559(t.clone()),
        TxEnvelope::Eip7702(t) => P::Eip7702(t.clone()),
        TxEnvelope::Eip4844(_) => return None,
    })
}
