//! Checks a transaction can make without the sender's account: signature, chain, type,
//! size, gas and fees.

use crate::PoolError;
use alloy_consensus::{
    transaction::{PooledTransaction, SignerRecoverable},
    Header, Signed, Transaction, TxEip4844, TxEip4844Variant, TxEip4844WithSidecar, TxEnvelope,
    Typed2718,
};
use alloy_eips::{
    eip1559::BaseFeeParams, eip4844::env_settings::EnvKzgSettings,
    eip7594::BlobTransactionSidecarVariant, Encodable2718,
};
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
    /// The most blobs one transaction may carry in the next block (0 before Cancun).
    pub max_blobs_per_tx: u64,
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
    /// Osaka: blob sidecars carry cell proofs (EIP-7594).
    pub osaka: bool,
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
            osaka: on("osaka"),
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
            max_blobs_per_tx: spec.blob_params(t).map_or(0, |p| p.max_blobs_per_tx),
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
    /// The most it can cost the sender: `gas_limit × max_fee + value` (and the blob gas
    /// at its blob fee cap), in wei.
    pub cost: U256,
    /// A blob transaction's blobs, commitments and proofs (what peers fetch with it).
    pub sidecar: Option<Arc<BlobTransactionSidecarVariant>>,
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

/// A transaction as it reaches the pool: the transaction and, for a blob transaction, its
/// sidecar (from its network form).
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// The transaction (a blob transaction without its sidecar).
    pub tx: TxEnvelope,
    /// The blobs, commitments and proofs of a blob transaction.
    pub sidecar: Option<Arc<BlobTransactionSidecarVariant>>,
}

impl From<TxEnvelope> for Incoming {
    /// A transaction as blocks carry it (a blob transaction so has no sidecar).
    fn from(tx: TxEnvelope) -> Self {
        match tx {
            TxEnvelope::Eip4844(signed) => {
                let (variant, signature, hash) = signed.into_parts();
                let (tx, sidecar) = match variant {
                    TxEip4844Variant::TxEip4844(tx) => (tx, None),
                    TxEip4844Variant::TxEip4844WithSidecar(w) => (w.tx, Some(Arc::new(w.sidecar))),
                };
                Self { tx: blob_envelope(tx, signature, hash), sidecar }
            }
            other => Self { tx: other, sidecar: None },
        }
    }
}

impl From<PooledTransaction> for Incoming {
    /// A transaction in its network form (`eth_sendRawTransaction`, `PooledTransactions`).
    fn from(tx: PooledTransaction) -> Self {
        use PooledTransaction as P;
        let tx = match tx {
            P::Legacy(t) => TxEnvelope::Legacy(t),
            P::Eip2930(t) => TxEnvelope::Eip2930(t),
            P::Eip1559(t) => TxEnvelope::Eip1559(t),
            P::Eip7702(t) => TxEnvelope::Eip7702(t),
            P::Eip4844(signed) => {
                let (w, signature, hash) = signed.into_parts();
                let tx = blob_envelope(w.tx, signature, hash);
                let sidecar = BlobTransactionSidecarVariant::Eip7594(w.sidecar);
                return Self { tx, sidecar: Some(Arc::new(sidecar)) };
            }
        };
        Self { tx, sidecar: None }
    }
}

fn blob_envelope(tx: TxEip4844, signature: alloy_primitives::Signature, hash: B256) -> TxEnvelope {
    TxEnvelope::Eip4844(Signed::new_unchecked(TxEip4844Variant::TxEip4844(tx), signature, hash))
}

/// Checks a blob transaction's sidecar: there is one, of the version the next block
/// needs, with 1 to `max_blobs_per_tx` blobs whose commitments match the versioned hashes
/// and whose proofs verify (EIP-4844; cell proofs, EIP-7594, from Osaka).
fn check_blobs(
    tx: &TxEnvelope,
    sidecar: Option<&BlobTransactionSidecarVariant>,
    next: &NextBlock,
) -> Result<(), PoolError> {
    let hashes = tx.blob_versioned_hashes().unwrap_or_default();
    let max = next.max_blobs_per_tx;
    if hashes.is_empty() || hashes.len() as u64 > max {
        return Err(PoolError::BlobCount { count: hashes.len(), max });
    }
    let sidecar = sidecar.ok_or(PoolError::BlobSidecarMissing)?;
    match (next.forks.osaka, sidecar) {
        (true, BlobTransactionSidecarVariant::Eip4844(_)) => {
            return Err(PoolError::BlobSidecarVersion("cell proofs (EIP-7594)"))
        }
        (false, BlobTransactionSidecarVariant::Eip7594(_)) => {
            return Err(PoolError::BlobSidecarVersion("blob proofs (EIP-4844)"))
        }
        _ => {}
    }
    sidecar
        .validate(hashes, EnvKzgSettings::Default.get())
        .map_err(|e| PoolError::InvalidBlobs(e.to_string()))
}

/// Checks `tx` against the rules of `next` that need no account state (a blob
/// transaction's sidecar included), and recovers its sender.
pub fn validate_stateless(tx: impl Into<Incoming>, next: &NextBlock) -> Result<ValidTx, PoolError> {
    let Incoming { tx, sidecar } = tx.into();
    let f = next.forks;
    let allowed = match tx.ty() {
        0 => true,
        1 => f.berlin,
        2 => f.london,
        3 => f.cancun,
        4 => f.prague,
        _ => false,
    };
    if !allowed {
        return Err(PoolError::TypeNotSupported);
    }
    // The size limit is the transaction's; blobs are bounded by their count.
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
    // The costly check last: a bad signature or fee is refused without touching blobs.
    if tx.is_eip4844() {
        check_blobs(&tx, sidecar.as_deref(), next)?;
    }
    let blob_cost = U256::from(tx.blob_gas_used().unwrap_or_default())
        * U256::from(tx.max_fee_per_blob_gas().unwrap_or_default());
    let cost =
        U256::from(tx.gas_limit()) * U256::from(tx.max_fee_per_gas()) + tx.value() + blob_cost;
    let hash = *tx.tx_hash();
    let size = size + sidecar.as_ref().map_or(0, |s| alloy_rlp::Encodable::length(&**s));
    Ok(ValidTx { tx: Arc::new(tx), hash, sender, size, cost, sidecar })
}

/// A pool transaction in its network form, for `PooledTransactions`: a blob transaction
/// with its sidecar. `None` for a blob transaction with a pre-Osaka sidecar (blob
/// proofs): the eth wire types carry cell proofs only, so those are not gossiped.
pub fn to_pooled(t: &ValidTx) -> Option<PooledTransaction> {
    use PooledTransaction as P;
    Some(match &*t.tx {
        TxEnvelope::Legacy(s) => P::Legacy(s.clone()),
        TxEnvelope::Eip2930(s) => P::Eip2930(s.clone()),
        TxEnvelope::Eip1559(s) => P::Eip1559(s.clone()),
        TxEnvelope::Eip7702(s) => P::Eip7702(s.clone()),
        TxEnvelope::Eip4844(s) => {
            let tx = s.tx().tx().clone();
            let BlobTransactionSidecarVariant::Eip7594(sidecar) = &**t.sidecar.as_ref()? else {
                return None;
            };
            let with = TxEip4844WithSidecar { tx, sidecar: sidecar.clone() };
            P::Eip4844(Signed::new_unchecked(with, *s.signature(), *s.hash()))
        }
    })
}
