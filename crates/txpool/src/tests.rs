//! Pool behaviour on signed transactions and an in-memory account map.

use super::*;
use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, TxLegacy};
use alloy_primitives::{Address, Bytes, Signature, TxKind, B256, U256};
use secp256k1::{Message, SecretKey, SECP256K1};
use std::{cell::RefCell, collections::HashMap};

const CHAIN: u64 = 1337;
const GWEI: u128 = 1_000_000_000;

fn key(i: u8) -> SecretKey {
    SecretKey::from_byte_array([i; 32]).unwrap()
}

fn address(k: &SecretKey) -> Address {
    let pk = secp256k1::PublicKey::from_secret_key(SECP256K1, k);
    Address::from_raw_public_key(&pk.serialize_uncompressed()[1..])
}

fn sign<T: SignableTransaction<Signature>>(tx: T, k: &SecretKey) -> alloy_consensus::Signed<T> {
    let hash = tx.signature_hash();
    let (id, sig) =
        SECP256K1.sign_ecdsa_recoverable(Message::from_digest(hash.0), k).serialize_compact();
    tx.into_signed(Signature::from_bytes_and_parity(&sig, i32::from(id) != 0))
}

/// A 21,000-gas transfer of 1 wei with fee cap `max_fee` and tip `tip` (gwei).
fn transfer(k: &SecretKey, nonce: u64, max_fee: u128, tip: u128) -> TxEnvelope {
    let tx = TxEip1559 {
        chain_id: CHAIN,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: max_fee * GWEI,
        max_priority_fee_per_gas: tip * GWEI,
        to: TxKind::Call(Address::repeat_byte(0x42)),
        value: U256::from(1),
        ..Default::default()
    };
    sign(tx, k).into()
}

fn next(base_fee_gwei: u64) -> NextBlock {
    NextBlock {
        head: 1,
        head_hash: B256::ZERO,
        base_fee: base_fee_gwei * GWEI as u64,
        gas_limit: 30_000_000,
        chain_id: CHAIN,
        forks: Forks {
            istanbul: true,
            berlin: true,
            london: true,
            shanghai: true,
            cancun: true,
            prague: true,
            osaka: false,
        },
        max_blobs_per_tx: 6,
    }
}

/// Accounts in memory: everyone has 1 ETH and nonce 0 unless set.
#[derive(Default)]
struct Accounts(RefCell<HashMap<Address, SenderAccount>>);

impl Accounts {
    fn set(&self, a: Address, nonce: u64, balance: U256) {
        self.0.borrow_mut().insert(a, SenderAccount { nonce, balance });
    }
}

impl AccountSource for Accounts {
    fn account(&self, a: Address) -> Result<SenderAccount, String> {
        Ok(self
            .0
            .borrow()
            .get(&a)
            .copied()
            .unwrap_or(SenderAccount { nonce: 0, balance: U256::from(10u128.pow(18)) }))
    }
}

fn pool() -> Pool {
    Pool::new(PoolConfig::default(), next(1))
}

#[test]
fn a_nonce_gap_waits_in_queued_until_filled() {
    let (mut p, acc, k) = (pool(), Accounts::default(), key(1));
    let (h2, added) = p.add(transfer(&k, 2, 10, 1), &acc).unwrap();
    assert!(added.promoted.is_empty());
    let (h1, added) = p.add(transfer(&k, 1, 10, 1), &acc).unwrap();
    assert!(added.promoted.is_empty());
    assert_eq!(p.status(), PoolStatus { pending: 0, queued: 2, bytes: p.status().bytes });
    assert!(!p.is_pending(&h1) && !p.is_pending(&h2));
    let (h0, added) = p.add(transfer(&k, 0, 10, 1), &acc).unwrap();
    let promoted: Vec<B256> = added.promoted.iter().map(|t| t.hash).collect();
    assert_eq!(promoted, vec![h0, h1, h2]);
    assert_eq!((p.status().pending, p.status().queued), (3, 0));
}

#[test]
fn refusals_name_the_rule_in_geths_words() {
    let (mut p, acc, k) = (pool(), Accounts::default(), key(1));
    acc.set(address(&k), 5, U256::from(10u128.pow(18)));
    let e = p.add(transfer(&k, 4, 10, 1), &acc).unwrap_err();
    assert!(e.to_string().starts_with("nonce too low"), "{e}");
    // 21,000 × 10 gwei + 1 wei > 1000 wei.
    let poor = key(2);
    acc.set(address(&poor), 0, U256::from(1000));
    let e = p.add(transfer(&poor, 0, 10, 1), &acc).unwrap_err();
    assert!(e.to_string().starts_with("insufficient funds for gas * price + value"), "{e}");
    let e = p.add(transfer(&k, 5, 10, 11), &acc).unwrap_err();
    assert_eq!(e.to_string(), "max priority fee per gas higher than max fee per gas");
    // Signed for another chain.
    let other = TxEip1559 { chain_id: 1, gas_limit: 21_000, ..Default::default() };
    let e = p.add(TxEnvelope::from(sign(other, &k)), &acc).unwrap_err();
    assert!(e.to_string().starts_with("invalid chain id for signer"), "{e}");
    // Intrinsic gas: 100 non-zero calldata bytes cost 1,600 more than a transfer; from
    // Prague the EIP-7623 floor (10 gas per token, 4 tokens per non-zero byte) is higher.
    let data = TxEip1559 {
        chain_id: CHAIN,
        nonce: 5,
        gas_limit: 21_000,
        max_fee_per_gas: GWEI * 10,
        input: Bytes::from(vec![1u8; 100]),
        to: TxKind::Call(Address::ZERO),
        ..Default::default()
    };
    let data: TxEnvelope = sign(data, &k).into();
    let before_prague = Forks { prague: false, ..next(1).forks };
    assert_eq!(intrinsic_gas(&data, before_prague), 22_600);
    let e = p.add(data, &acc).unwrap_err();
    assert_eq!(e, PoolError::IntrinsicGas { gas: 21_000, needed: 25_000 });
    // Pre-EIP-155 legacy transactions are refused.
    let legacy = TxLegacy { gas_limit: 21_000, gas_price: GWEI * 10, ..Default::default() };
    let e = p.add(TxEnvelope::from(sign(legacy, &k)), &acc).unwrap_err();
    assert_eq!(e, PoolError::NotReplayProtected);
    // Above the block gas limit.
    let big = TxEip1559 { chain_id: CHAIN, gas_limit: 30_000_001, ..Default::default() };
    assert_eq!(
        p.add(TxEnvelope::from(sign(big, &k)), &acc).unwrap_err().to_string(),
        "exceeds block gas limit"
    );
    assert_eq!(p.status(), PoolStatus::default());
    // A known one.
    let tx = transfer(&k, 5, 10, 1);
    p.add(tx.clone(), &acc).unwrap();
    assert_eq!(p.add(tx, &acc).unwrap_err().to_string(), "already known");
}

#[test]
fn replacement_needs_ten_percent_more_of_both_fees() {
    let (mut p, acc, k) = (pool(), Accounts::default(), key(1));
    let (first, _) = p.add(transfer(&k, 0, 100, 10), &acc).unwrap();
    // 9% more fee cap, or a higher fee cap with the same tip: refused.
    for (fee, tip) in [(109, 11), (200, 10)] {
        let e = p.add(transfer(&k, 0, fee, tip), &acc).unwrap_err();
        assert_eq!(e.to_string(), "replacement transaction underpriced");
    }
    assert!(p.contains(&first));
    let (second, added) = p.add(transfer(&k, 0, 110, 11), &acc).unwrap();
    assert_eq!(added.replaced, Some(first));
    assert!(!p.contains(&first) && p.is_pending(&second));
    assert_eq!((p.status().pending, p.status().queued), (1, 0));
}

#[test]
fn fee_cap_below_base_fee_is_queued_until_the_base_fee_falls() {
    let (mut p, acc, k) = (Pool::new(PoolConfig::default(), next(20)), Accounts::default(), key(1));
    let (h, _) = p.add(transfer(&k, 0, 10, 1), &acc).unwrap();
    assert!(!p.is_pending(&h));
    assert_eq!(p.best().count(), 0);
    let change = p.on_new_head(next(5), &acc).unwrap();
    assert_eq!(change.promoted.iter().map(|t| t.hash).collect::<Vec<_>>(), vec![h]);
    assert!(p.is_pending(&h));
}

#[test]
fn a_new_head_removes_mined_nonces_and_drops_unpayable_transactions() {
    let (mut p, acc, k) = (pool(), Accounts::default(), key(1));
    for n in 0..4 {
        p.add(transfer(&k, n, 10, 1), &acc).unwrap();
    }
    let other = key(2);
    let (poor, _) = p.add(transfer(&other, 0, 10, 1), &acc).unwrap();
    // A block used nonces 0 and 1; the other sender spent its balance.
    acc.set(address(&k), 2, U256::from(10u128.pow(18)));
    acc.set(address(&other), 0, U256::from(5));
    let change = p.on_new_head(next(1), &acc).unwrap();
    assert_eq!(change.mined, 2);
    assert_eq!(change.dropped, vec![poor]);
    assert_eq!((p.status().pending, p.status().queued), (2, 0));
    // The sender can afford only one of the two left: the second waits in queued.
    acc.set(address(&k), 2, U256::from(21_000u128 * 10 * GWEI + 1));
    p.on_new_head(next(1), &acc).unwrap();
    assert_eq!((p.status().pending, p.status().queued), (1, 1));
}

#[test]
fn per_sender_and_global_limits_evict_the_cheapest() {
    let config = PoolConfig { max_account_slots: 3, max_pending: 4, ..Default::default() };
    let (mut p, acc) = (Pool::new(config, next(1)), Accounts::default());
    let k = key(1);
    for n in 0..3 {
        p.add(transfer(&k, n, 10, 1), &acc).unwrap();
    }
    let e = p.add(transfer(&k, 3, 10, 1), &acc).unwrap_err();
    assert!(e.to_string().starts_with("account limit exceeded"), "{e}");
    // A cheap sender fills the last slot; a richer one evicts it.
    let (cheap, _) = p.add(transfer(&key(2), 0, 5, 1), &acc).unwrap();
    let (rich, added) = p.add(transfer(&key(3), 0, 50, 5), &acc).unwrap();
    assert_eq!(added.evicted, vec![cheap]);
    assert!(p.contains(&rich) && !p.contains(&cheap));
    // Something cheaper than everything is refused as the pool is full.
    assert_eq!(p.add(transfer(&key(4), 0, 2, 1), &acc).unwrap_err(), PoolError::Full);
    assert_eq!(p.status().pending, 4);
}

#[test]
fn best_orders_by_effective_tip_keeping_nonce_order() {
    let (mut p, acc) = (pool(), Accounts::default());
    let (a, b) = (key(1), key(2));
    // a: nonce 0 tips 1, nonce 1 tips 9; b: nonce 0 tips 5.
    let (a0, _) = p.add(transfer(&a, 0, 100, 1), &acc).unwrap();
    let (a1, _) = p.add(transfer(&a, 1, 100, 9), &acc).unwrap();
    let (b0, _) = p.add(transfer(&b, 0, 100, 5), &acc).unwrap();
    let order: Vec<B256> = p.best().map(|t| t.hash).collect();
    assert_eq!(order, vec![b0, a0, a1]);
    // Skipping a sender drops its later transactions from this block.
    let mut best = p.best();
    assert_eq!(best.next().unwrap().hash, b0);
    assert_eq!(best.next().unwrap().hash, a0);
    best.skip_sender();
    assert!(best.next().is_none());
}

#[test]
fn removing_a_failed_transaction_queues_its_successors() {
    let (mut p, acc, k) = (pool(), Accounts::default(), key(1));
    let hashes: Vec<B256> =
        (0..3).map(|n| p.add(transfer(&k, n, 10, 1), &acc).unwrap().0).collect();
    assert_eq!(p.remove(&hashes[..1]), vec![hashes[0]]);
    assert_eq!((p.status().pending, p.status().queued), (0, 2));
}

/// Random operations keep the counts equal to the contents.
#[test]
fn counts_match_contents_under_random_operations() {
    let config =
        PoolConfig { max_account_slots: 5, max_pending: 20, max_queued: 10, ..Default::default() };
    let (mut p, acc) = (Pool::new(config, next(3)), Accounts::default());
    let keys: Vec<SecretKey> = (1..=8).map(key).collect();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    for _ in 0..600 {
        match rnd(10) {
            0 => {
                let k = &keys[rnd(8) as usize];
                let a = address(k);
                let nonce = acc.account(a).unwrap().nonce + rnd(2);
                acc.set(a, nonce, U256::from(rnd(4) as u128 * 21_000 * 10 * GWEI));
                p.on_new_head(next(rnd(6)), &acc).unwrap();
            }
            1 => {
                let (pending, _) = p.content();
                if let Some(t) = pending.values().next().and_then(|v| v.first()) {
                    p.remove(&[t.hash]);
                }
            }
            _ => {
                let k = &keys[rnd(8) as usize];
                let base = acc.account(address(k)).unwrap().nonce;
                let _ = p.add(transfer(k, base + rnd(6), 1 + rnd(10) as u128, 1), &acc);
            }
        }
        let (pending, queued) = p.content();
        let st = p.status();
        assert_eq!(st.pending, pending.values().map(Vec::len).sum::<usize>());
        assert_eq!(st.queued, queued.values().map(Vec::len).sum::<usize>());
        let bytes: usize = pending.values().chain(queued.values()).flatten().map(|t| t.size).sum();
        assert_eq!(st.bytes, bytes);
        assert!(st.pending <= 20 && st.queued <= 10);
        for txs in pending.values() {
            let a = acc.account(txs[0].sender).unwrap();
            for (i, t) in txs.iter().enumerate() {
                assert_eq!(t.nonce(), a.nonce + i as u64, "pending runs are gap-free");
            }
        }
    }
}

/// A transaction of an unwound block stays when the pool is full: the newest arrival is
/// evicted for it, and its sender's slot limit does not refuse it.
#[test]
fn returned_transactions_are_kept_before_newer_arrivals() {
    let config = PoolConfig { max_account_slots: 2, max_pending: 3, ..Default::default() };
    let (mut p, acc) = (Pool::new(config, next(1)), Accounts::default());
    let (a0, _) = p.add(transfer(&key(1), 0, 10, 1), &acc).unwrap();
    let (b0, _) = p.add(transfer(&key(2), 0, 10, 1), &acc).unwrap();
    let (b1, _) = p.add(transfer(&key(2), 1, 10, 1), &acc).unwrap();
    // A newer arrival is refused when the pool is full of equals...
    assert_eq!(p.add(transfer(&key(3), 0, 10, 1), &acc).unwrap_err(), PoolError::Full);
    // ...but a returned one stays, evicting the newest arrival (b1).
    let (c0, added) = p.add_returned(transfer(&key(3), 0, 10, 1), &acc).unwrap();
    assert_eq!(added.evicted, vec![b1]);
    assert!(p.contains(&a0) && p.contains(&b0) && p.contains(&c0));
    // Past the sender's slot limit too.
    let (_, added) = p.add_returned(transfer(&key(1), 1, 50, 5), &acc).unwrap();
    let (_, added2) = p.add_returned(transfer(&key(1), 2, 50, 5), &acc).unwrap();
    assert!(added.evicted.len() + added2.evicted.len() == 2, "{added:?} {added2:?}");
    assert_eq!(p.status().pending, 3);
}

/// A sender at its slot limit with a gap: the transaction filling the gap is taken (its
/// highest nonce makes room), so the queued ones behind the gap cannot block it forever.
#[test]
fn a_gap_filler_takes_the_place_of_the_senders_last_at_the_slot_limit() {
    let config = PoolConfig { max_account_slots: 3, ..Default::default() };
    let (mut p, acc, k) = (Pool::new(config, next(1)), Accounts::default(), key(1));
    let queued: Vec<B256> =
        (1..4).map(|n| p.add(transfer(&k, n, 10, 1), &acc).unwrap().0).collect();
    assert_eq!((p.status().pending, p.status().queued), (0, 3));
    // Past the last nonce: refused.
    let e = p.add(transfer(&k, 4, 10, 1), &acc).unwrap_err();
    assert!(matches!(e, PoolError::AccountLimit { .. }), "{e}");
    // Nonce 0 fills the gap: nonce 3 makes room, 0–2 are pending.
    let (_, added) = p.add(transfer(&k, 0, 10, 1), &acc).unwrap();
    assert_eq!(added.evicted, vec![queued[2]]);
    assert_eq!((p.status().pending, p.status().queued), (3, 0));
}

/// A blob transaction from `k` with `blobs` blobs of data and its EIP-4844 sidecar (real
/// commitments and proofs).
fn blob_tx(
    k: &SecretKey,
    blobs: usize,
) -> (TxEnvelope, alloy_eips::eip4844::BlobTransactionSidecar) {
    use alloy_eips::eip4844::builder::{SidecarBuilder, SimpleCoder};
    // Enough data for `blobs` blobs, each different (so their proofs differ too).
    let data: Vec<u8> = (0..(blobs + 1) * 100_000).map(|i| (i / 1000) as u8).collect();
    let mut sidecar: alloy_eips::eip4844::BlobTransactionSidecar =
        SidecarBuilder::<SimpleCoder>::from_slice(&data).build().unwrap();
    sidecar.blobs.truncate(blobs);
    sidecar.commitments.truncate(blobs);
    sidecar.proofs.truncate(blobs);
    let tx = alloy_consensus::TxEip4844 {
        chain_id: CHAIN,
        nonce: 0,
        gas_limit: 21_000,
        max_fee_per_gas: 10 * GWEI,
        max_priority_fee_per_gas: GWEI,
        to: Address::repeat_byte(0x42),
        blob_versioned_hashes: sidecar.versioned_hashes().collect(),
        max_fee_per_blob_gas: 3,
        ..Default::default()
    };
    let variant: alloy_consensus::TxEip4844Variant =
        alloy_consensus::TxEip4844Variant::TxEip4844(tx);
    (TxEnvelope::from(sign(variant, k)), sidecar)
}

fn with_sidecar(tx: &TxEnvelope, sidecar: alloy_eips::eip4844::BlobTransactionSidecar) -> Incoming {
    let mut incoming = Incoming::from(tx.clone());
    incoming.sidecar = Some(std::sync::Arc::new(
        alloy_eips::eip7594::BlobTransactionSidecarVariant::Eip4844(sidecar),
    ));
    incoming
}

#[test]
fn blob_transactions_need_a_verified_sidecar_of_the_right_version() {
    let (mut p, acc, k) = (pool(), Accounts::default(), key(3));
    let (tx, sidecar) = blob_tx(&k, 2);
    // Canonical form only (as in a block): no blobs to serve, refused.
    assert_eq!(p.add(tx.clone(), &acc).unwrap_err(), PoolError::BlobSidecarMissing);
    // A proof that does not verify.
    let mut bad = sidecar.clone();
    bad.proofs.swap(0, 1);
    let e = p.add(with_sidecar(&tx, bad), &acc).unwrap_err();
    assert!(matches!(e, PoolError::InvalidBlobs(_)) && e.is_bad_transaction(), "{e}");
    // A commitment that does not match the versioned hash.
    let mut wrong = sidecar.clone();
    wrong.commitments.swap(0, 1);
    assert!(matches!(p.add(with_sidecar(&tx, wrong), &acc), Err(PoolError::InvalidBlobs(_))));
    // From Osaka the sidecar must carry cell proofs.
    let mut osaka = Pool::new(
        PoolConfig::default(),
        NextBlock { forks: Forks { osaka: true, ..next(1).forks }, ..next(1) },
    );
    let e = osaka.add(with_sidecar(&tx, sidecar.clone()), &acc).unwrap_err();
    assert!(matches!(e, PoolError::BlobSidecarVersion(_)), "{e}");
    // Before Cancun there are no blob transactions at all.
    let mut london = Pool::new(
        PoolConfig::default(),
        NextBlock { forks: Forks { cancun: false, ..next(1).forks }, ..next(1) },
    );
    assert_eq!(
        london.add(with_sidecar(&tx, sidecar.clone()), &acc).unwrap_err(),
        PoolError::TypeNotSupported
    );
    // The good one: pending, its cost counting the blob gas, served with its sidecar.
    let (hash, _) = p.add(with_sidecar(&tx, sidecar.clone()), &acc).unwrap();
    let held = p.get(&hash).unwrap().clone();
    let blob_gas = 2 * alloy_eips::eip4844::DATA_GAS_PER_BLOB;
    assert_eq!(held.cost, U256::from(21_000 * 10 * GWEI) + U256::from(blob_gas * 3));
    assert!(held.size > 2 * 131_072, "the size counts the blobs: {}", held.size);
    assert!(p.is_pending(&hash));
    // Too many blobs for one transaction.
    let (many, many_sidecar) = blob_tx(&key(4), 7);
    let e = p.add(with_sidecar(&many, many_sidecar), &acc).unwrap_err();
    assert_eq!(e, PoolError::BlobCount { count: 7, max: 6 });
}
