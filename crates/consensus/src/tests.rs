//! Consensus rules, each broken on purpose.

use crate::{chain_gen::*, clique::*, *};
use alloy_consensus::{
    proofs::calculate_transaction_root, Block, Header, Signed, TxEip1559, TxEip4844,
    TxEip4844Variant, TxEnvelope,
};
use alloy_eips::{eip1559::INITIAL_BASE_FEE, eip4895::Withdrawal};
use alloy_primitives::{keccak256, Address, Bytes, Signature, B256, B64, U256};
use secp256k1::SecretKey;
use tern_chainspec::{ChainSpec, Consensus};

fn key(i: u64) -> SecretKey {
    SecretKey::from_byte_array(keccak256(i.to_be_bytes()).0).unwrap()
}

/// A Clique chain with `signers` (keys 1..=n), period 2, the given epoch, forks through
/// London (as geth ran Clique); key 100 is the transaction sender.
fn clique_spec(n: u64, epoch: u64) -> (ChainSpec, Vec<SecretKey>) {
    let keys: Vec<SecretKey> = (1..=n).map(key).collect();
    let addrs: Vec<Address> = keys.iter().map(address_of).collect();
    let mut g = ChainSpec::clique_dev(&addrs).genesis;
    g.config.clique.as_mut().unwrap().epoch = Some(epoch);
    (g.config.shanghai_time, g.config.cancun_time, g.config.prague_time) = (None, None, None);
    (ChainSpec::from_genesis(g).unwrap(), keys)
}

/// The built-in dev chain (Prague at genesis) with the dev key.
fn prague_spec() -> (ChainSpec, Vec<SecretKey>) {
    let dev_key = SecretKey::from_byte_array(
        alloy_primitives::hex::decode(tern_chainspec::DEV_VALIDATOR_KEY)
            .unwrap()
            .try_into()
            .unwrap(),
    )
    .unwrap();
    (ChainSpec::dev(), vec![dev_key])
}

#[test]
fn clique_blocks_after_prague_carry_no_beacon_chain_fields() {
    use ConsensusError as E;
    let (spec, keys) = prague_spec();
    let blocks = gen(&spec, &keys, 3, 2);
    verify_all(&spec, &blocks).unwrap();
    let h = &blocks[0].header;
    assert_eq!(h.withdrawals_root, Some(alloy_consensus::EMPTY_ROOT_HASH));
    assert_eq!(blocks[0].body.withdrawals.as_ref().map(|w| w.len()), Some(0));
    assert_eq!((h.blob_gas_used, h.parent_beacon_block_root), (Some(0), Some(B256::ZERO)));
    let broken = |tamper: &dyn Fn(&mut Header)| {
        let mut b = blocks[0].clone();
        tamper(&mut b.header);
        seal_header(&mut b.header, &keys[0]).unwrap();
        let mut snap = snapshot(&spec);
        check(&spec, &mut snap, &spec.genesis_header, &b).unwrap_err()
    };
    let e = broken(&|h| h.parent_beacon_block_root = Some(B256::repeat_byte(1)));
    assert!(matches!(e, E::Constant { field: "parent_beacon_block_root", .. }), "{e}");
    let e = broken(&|h| h.withdrawals_root = Some(B256::repeat_byte(1)));
    assert!(matches!(e, E::Constant { field: "withdrawals_root", .. }), "{e}");
    let e = broken(&|h| h.excess_blob_gas = Some(1));
    assert!(matches!(e, E::ExcessBlobGas { got: 1, expected: 0 }), "{e}");
    let e = broken(&|h| h.requests_hash = None);
    assert!(matches!(e, E::ForkField { field: "requests_hash", present: true, .. }), "{e}");
}

fn gen(spec: &ChainSpec, keys: &[SecretKey], n: usize, txs: usize) -> Vec<Block<TxEnvelope>> {
    generate_chain(spec, keys, (spec.genesis_hash, &spec.genesis_header), n, txs, (&key(100), 0))
}

fn snapshot(spec: &ChainSpec) -> Snapshot {
    let Consensus::Clique { signers, epoch, .. } = &spec.consensus else { panic!() };
    Snapshot::new(signers.clone(), *epoch)
}

const NOW: u64 = u64::MAX / 2;

/// Header rules, seal and body of `block` on `parent`.
fn check(
    spec: &ChainSpec,
    snap: &mut Snapshot,
    parent: &Header,
    block: &Block<TxEnvelope>,
) -> Result<(), ConsensusError> {
    validate_header(spec, &block.header, parent, parent.hash_slow(), NOW)?;
    snap.verify(&block.header)?;
    validate_body(spec, &block.header, &block.body).map(|_| ())
}

fn verify_all(spec: &ChainSpec, blocks: &[Block<TxEnvelope>]) -> Result<(), ConsensusError> {
    let mut snap = snapshot(spec);
    let mut parent = spec.genesis_header.clone();
    for b in blocks {
        check(spec, &mut snap, &parent, b)?;
        parent = b.header.clone();
    }
    Ok(())
}

#[test]
fn senders_of_many_blocks_recover_on_every_core_and_name_a_bad_signature() {
    let (spec, keys) = clique_spec(1, 30_000);
    // 40 blocks × 5 transactions: more than one thread's share.
    let mut blocks = gen(&spec, &keys, 40, 5);
    let bad_sig = TxEnvelope::Eip1559(Signed::new_unhashed(
        TxEip1559 { chain_id: spec.chain_id, gas_limit: 21_000, ..Default::default() },
        Signature::new(U256::from(1), U256::MAX, false),
    ));
    blocks[17].body.transactions[3] = bad_sig;
    let bodies: Vec<&[TxEnvelope]> = blocks.iter().map(|b| &b.body.transactions[..]).collect();
    let recovered = recover_senders_of_blocks(&bodies);
    assert_eq!(recovered.len(), 40);
    for (i, r) in recovered.iter().enumerate() {
        if i == 17 {
            assert!(matches!(r, Err(ConsensusError::TransactionSignature { index: 3 })), "{r:?}");
        } else {
            assert_eq!(
                r.as_ref().unwrap(),
                &recover_senders(&blocks[i].body.transactions).unwrap()
            );
            assert_eq!(r.as_ref().unwrap(), &vec![address_of(&key(100)); 5]);
        }
    }
    // A body's other rules are checked without recovering anything.
    check_body(&spec, &blocks[16].header, &blocks[16].body).unwrap();
    assert!(recover_senders_of_blocks(&[]).is_empty());
}

#[test]
fn generated_chain_verifies_and_senders_recover() {
    let (spec, keys) = clique_spec(1, 30_000);
    let blocks = gen(&spec, &keys, 5, 3);
    verify_all(&spec, &blocks).unwrap();
    let senders = validate_body(&spec, &blocks[2].header, &blocks[2].body).unwrap();
    assert_eq!(senders, vec![address_of(&key(100)); 3]);
    // The built-in dev chain (Prague) with its published key works the same way.
    let (dev, dev_key) = prague_spec();
    verify_all(&dev, &gen(&dev, &dev_key, 3, 1)).unwrap();
}

/// Applies `tamper` to block 2 of a fresh 1-signer chain (re-sealing when `reseal`) and
/// returns the first error of the full check.
fn tampered(tamper: impl Fn(&mut Block<TxEnvelope>), reseal: bool) -> ConsensusError {
    let (spec, keys) = clique_spec(1, 30_000);
    let mut blocks = gen(&spec, &keys, 2, 2);
    tamper(&mut blocks[1]);
    if reseal {
        seal_header(&mut blocks[1].header, &keys[0]).unwrap();
    }
    let mut snap = snapshot(&spec);
    check(&spec, &mut snap, &spec.genesis_header, &blocks[0]).unwrap();
    check(&spec, &mut snap, &blocks[0].header, &blocks[1]).unwrap_err()
}

#[test]
fn every_tampered_header_field_is_rejected_by_name() {
    use ConsensusError as E;
    let e = tampered(|b| b.header.parent_hash = B256::repeat_byte(1), true);
    assert!(matches!(e, E::ParentHash { .. }), "{e}");
    let e = tampered(|b| b.header.number += 1, true);
    assert!(matches!(e, E::Number { .. }), "{e}");
    let e = tampered(|b| b.header.timestamp -= 2, true);
    assert!(matches!(e, E::TimestampNotAfterParent { .. }), "{e}");
    let e = tampered(|b| b.header.timestamp -= 1, true);
    assert!(matches!(e, E::TimestampBeforePeriod { .. }), "{e}");
    let e = tampered(|b| b.header.timestamp = NOW + 16, true);
    assert!(matches!(e, E::TimestampInFuture { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::NotYetValid);
    let e = tampered(|b| b.header.gas_used = b.header.gas_limit + 1, true);
    assert!(matches!(e, E::GasUsedExceedsLimit { .. }), "{e}");
    let e = tampered(|b| b.header.gas_limit += b.header.gas_limit / 1024, true);
    assert!(matches!(e, E::GasLimit { .. }), "{e}");
    let e =
        tampered(|b| b.header.base_fee_per_gas = b.header.base_fee_per_gas.map(|f| f + 1), true);
    assert!(matches!(e, E::BaseFee { .. }), "{e}");
    let e = tampered(|b| b.header.base_fee_per_gas = None, true);
    assert!(matches!(e, E::ForkField { field: "base_fee_per_gas", present: true, .. }), "{e}");
    let e = tampered(|b| b.header.withdrawals_root = Some(B256::ZERO), true);
    assert!(matches!(e, E::ForkField { field: "withdrawals_root", present: false, .. }), "{e}");
    // A vote's nonce is all ones (add) or all zeros (drop).
    let e = tampered(|b| b.header.nonce = B64::repeat_byte(0x01), true);
    assert!(matches!(e, E::Constant { field: "nonce", .. }), "{e}");
    let e = tampered(|b| b.header.mix_hash = B256::repeat_byte(1), true);
    assert!(matches!(e, E::Constant { field: "mix_hash", .. }), "{e}");
    let e = tampered(|b| b.header.ommers_hash = B256::repeat_byte(1), true);
    assert!(matches!(e, E::Constant { field: "ommers_hash", .. }), "{e}");
    let e = tampered(|b| b.header.difficulty = U256::from(3), true);
    assert!(matches!(e, E::Constant { field: "difficulty", .. }), "{e}");
    let e = tampered(|b| b.header.difficulty = U256::from(DIFF_NO_TURN), true);
    assert!(matches!(e, E::WrongDifficulty { got: 1, expected: 2 }), "{e}");
    let e = tampered(|b| b.header.extra_data = Bytes::from(vec![0u8; 96]), false);
    assert!(matches!(e, E::ExtraData { len: 96, .. }), "{e}");
    // Fields no rule reads are covered by the seal: changing one changes the signer.
    for field in 0..5 {
        let e = tampered(
            |b| match field {
                0 => b.header.state_root = B256::repeat_byte(9),
                1 => b.header.receipts_root = B256::repeat_byte(9),
                2 => b.header.logs_bloom = alloy_primitives::Bloom::repeat_byte(1),
                3 => {
                    b.header.extra_data = {
                        let mut e = b.header.extra_data.to_vec();
                        e[0] ^= 1; // vanity
                        e.into()
                    }
                }
                _ => {
                    b.header.extra_data = {
                        let mut e = b.header.extra_data.to_vec();
                        let last = e.len() - 2;
                        e[last] ^= 1; // a byte of the seal
                        e.into()
                    }
                }
            },
            false,
        );
        assert!(matches!(e, E::UnauthorizedSigner(_) | E::InvalidSeal(_)), "field {field}: {e}");
        assert_eq!(e.kind(), ErrorKind::BadHeader);
    }
}

#[test]
fn every_tampered_body_part_is_rejected_by_name() {
    use ConsensusError as E;
    let (spec, keys) = clique_spec(1, 30_000);
    let blocks = gen(&spec, &keys, 1, 3);
    let header = &blocks[0].header;
    let body = |f: &dyn Fn(&mut alloy_consensus::BlockBody<TxEnvelope>)| {
        let mut b = blocks[0].body.clone();
        f(&mut b);
        b
    };
    // A transaction dropped, or swapped for another.
    let e = validate_body(
        &spec,
        header,
        &body(&|b| {
            b.transactions.pop();
        }),
    )
    .unwrap_err();
    assert!(matches!(e, E::TransactionsRoot { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::BadBody);
    let e = validate_body(&spec, header, &body(&|b| b.ommers.push(Header::default()))).unwrap_err();
    assert!(matches!(e, E::OmmersHash { .. }), "{e}");
    let e = validate_body(
        &spec,
        header,
        &body(&|b| b.withdrawals = Some(vec![Withdrawal::default()].into())),
    )
    .unwrap_err();
    assert!(matches!(e, E::Withdrawals(_)), "{e}");

    // Rules inside a body that matches its header (root recomputed): wrong chain id,
    // invalid signature, a blob transaction before Cancun, too much gas.
    let with_txs = |txs: Vec<TxEnvelope>| {
        let mut h = header.clone();
        h.transactions_root = calculate_transaction_root(&txs);
        (h, alloy_consensus::BlockBody { transactions: txs, ommers: vec![], withdrawals: None })
    };
    let tx = |chain_id: u64, gas_limit: u64| {
        TxEnvelope::Eip1559(sign_tx(
            TxEip1559 { chain_id, gas_limit, max_fee_per_gas: 10, ..Default::default() },
            &key(100),
        ))
    };
    let (h, b) = with_txs(vec![tx(spec.chain_id, 21_000), tx(5, 21_000)]);
    assert!(matches!(
        validate_body(&spec, &h, &b),
        Err(E::TransactionChainId { index: 1, got: 5, .. })
    ));
    let (h, b) = with_txs(vec![tx(spec.chain_id, h_limit(header) + 1)]);
    assert!(matches!(validate_body(&spec, &h, &b), Err(E::TransactionGas { index: 0, .. })));
    let bad_sig = TxEnvelope::Eip1559(Signed::new_unhashed(
        TxEip1559 { chain_id: spec.chain_id, gas_limit: 21_000, ..Default::default() },
        Signature::new(U256::from(1), U256::MAX, false),
    ));
    let (h, b) = with_txs(vec![tx(spec.chain_id, 21_000), bad_sig]);
    assert!(matches!(validate_body(&spec, &h, &b), Err(E::TransactionSignature { index: 1 })));
    let blob = TxEnvelope::Eip4844(sign_tx(
        TxEip4844Variant::TxEip4844(TxEip4844 {
            chain_id: spec.chain_id,
            gas_limit: 21_000,
            blob_versioned_hashes: vec![B256::repeat_byte(1)],
            ..Default::default()
        }),
        &key(100),
    ));
    let (h, b) = with_txs(vec![blob]);
    assert!(matches!(
        validate_body(&spec, &h, &b),
        Err(E::TransactionType { ty: 3, fork: "cancun", .. })
    ));
}

fn h_limit(h: &Header) -> u64 {
    h.gas_limit
}

#[test]
fn non_signer_and_recent_signer_are_rejected() {
    let (spec, keys) = clique_spec(3, 30_000);
    let snap = snapshot(&spec);
    let genesis = &spec.genesis_header;
    // Block 1 from an outsider.
    let outsider = Sealer::new(key(50));
    let b1 = outsider.build(&spec, &snap, genesis, spec.genesis_hash, genesis.timestamp + 2);
    let e = check(&spec, &mut snap.clone(), genesis, &b1).unwrap_err();
    assert!(matches!(e, ConsensusError::UnauthorizedSigner(a) if a == outsider.address()), "{e}");

    // Block 1 in turn, then block 2 by the same signer: signed too recently (limit 2 of 3).
    let in_turn_1 = keys.iter().find(|k| snap.in_turn(1, address_of(k))).unwrap();
    let sealer = Sealer::new(*in_turn_1);
    let mut s = snap.clone();
    let b1 = sealer.build(&spec, &s, genesis, spec.genesis_hash, genesis.timestamp + 2);
    check(&spec, &mut s, genesis, &b1).unwrap();
    let b2 = sealer.build(&spec, &s, &b1.header, b1.header.hash_slow(), b1.header.timestamp + 2);
    let e = check(&spec, &mut s.clone(), &b1.header, &b2).unwrap_err();
    assert!(matches!(e, ConsensusError::SignedRecently { previous: 1, limit: 2, .. }), "{e}");
    // The sealer itself knows it must wait.
    assert_eq!(sealer.plan(&s, &b1.header, 2, &mut rand::rng()), None);
}

#[test]
fn in_turn_and_out_of_turn_difficulty_with_three_signers() {
    let (spec, keys) = clique_spec(3, 30_000);
    let snap = snapshot(&spec);
    let g = &spec.genesis_header;
    for k in &keys {
        let sealer = Sealer::new(*k);
        let in_turn = snap.in_turn(1, sealer.address());
        let block = sealer.build(&spec, &snap, g, spec.genesis_hash, g.timestamp + 2);
        assert_eq!(block.header.difficulty, U256::from(if in_turn { 2 } else { 1 }));
        check(&spec, &mut snap.clone(), g, &block).unwrap();
        // The other difficulty, correctly sealed, is wrong for this signer.
        let mut flipped = block.clone();
        flipped.header.difficulty = U256::from(if in_turn { 1 } else { 2 });
        seal_header(&mut flipped.header, k).unwrap();
        let e = check(&spec, &mut snap.clone(), g, &flipped).unwrap_err();
        assert!(matches!(e, ConsensusError::WrongDifficulty { .. }), "{e}");
    }
}

#[test]
fn checkpoint_blocks_list_the_signers() {
    let (spec, keys) = clique_spec(2, 4);
    let blocks = gen(&spec, &keys, 9, 0);
    verify_all(&spec, &blocks).unwrap();
    assert_eq!(
        blocks[3].header.extra_data.len(),
        EXTRA_VANITY + 40 + EXTRA_SEAL,
        "block 4 is a checkpoint"
    );
    let mut bad = blocks.clone();
    let signer = keys.iter().find(|k| snapshot(&spec).in_turn(4, address_of(k))).unwrap();
    let mut extra = bad[3].header.extra_data.to_vec();
    extra[EXTRA_VANITY] ^= 1;
    bad[3].header.extra_data = extra.into();
    seal_header(&mut bad[3].header, signer).unwrap();
    assert!(matches!(verify_all(&spec, &bad[..4]), Err(ConsensusError::CheckpointSigners)));
}

#[test]
fn gas_limit_and_base_fee_boundaries() {
    let parent = 30_000_000u64;
    let bound = parent / GAS_LIMIT_BOUND_DIVISOR;
    validate_gas_limit(parent + bound - 1, parent, false).unwrap();
    validate_gas_limit(parent - bound + 1, parent, false).unwrap();
    assert!(validate_gas_limit(parent + bound, parent, false).is_err());
    assert!(validate_gas_limit(parent - bound, parent, false).is_err());
    assert!(validate_gas_limit(MIN_GAS_LIMIT - 1, MIN_GAS_LIMIT, false).is_err());
    validate_gas_limit(MIN_GAS_LIMIT, MIN_GAS_LIMIT + 1, false).unwrap();
    // At the London block the parent's limit counts double.
    validate_gas_limit(2 * parent, parent, true).unwrap();
    assert!(validate_gas_limit(parent, parent, true).is_err());

    // Base fee: 1 gwei at the London block; unchanged at the gas target; +12.5% when full.
    let mut g = ChainSpec::dev().genesis;
    g.config.london_block = Some(1);
    g.config.arrow_glacier_block = None;
    g.config.gray_glacier_block = None;
    let spec = ChainSpec::from_genesis(g).unwrap();
    let pre = Header { number: 0, gas_limit: parent, ..Default::default() };
    let first = Header { number: 1, ..Default::default() };
    assert_eq!(expected_base_fee(&spec, &first, &pre), Some(INITIAL_BASE_FEE));
    assert_eq!(expected_base_fee(&spec, &pre, &pre), None, "no base fee before London");
    let at_target = Header {
        number: 1,
        gas_limit: parent,
        gas_used: parent / 2,
        base_fee_per_gas: Some(INITIAL_BASE_FEE),
        ..Default::default()
    };
    let next = Header { number: 2, ..Default::default() };
    assert_eq!(expected_base_fee(&spec, &next, &at_target), Some(INITIAL_BASE_FEE));
    let full = Header { gas_used: parent, ..at_target.clone() };
    assert_eq!(
        expected_base_fee(&spec, &next, &full),
        Some(INITIAL_BASE_FEE + INITIAL_BASE_FEE / 8)
    );
    let empty = Header { gas_used: 0, ..at_target };
    assert_eq!(
        expected_base_fee(&spec, &next, &empty),
        Some(INITIAL_BASE_FEE - INITIAL_BASE_FEE / 8)
    );
}

#[test]
fn fork_gated_fields_on_a_post_merge_chain() {
    // A post-merge chain whose Shanghai starts 10 s after genesis.
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/genesis/postmerge-dev.json"
    ))
    .unwrap();
    let mut g: alloy_genesis::Genesis = serde_json::from_str(&text).unwrap();
    let t0 = g.timestamp;
    g.config.shanghai_time = Some(t0 + 10);
    g.config.cancun_time = None;
    g.config.prague_time = None;
    g.config.osaka_time = None;
    let spec = ChainSpec::from_genesis(g).unwrap();
    let parent = spec.genesis_header.clone();
    let base = Header {
        parent_hash: spec.genesis_hash,
        number: 1,
        gas_limit: parent.gas_limit,
        base_fee_per_gas: expected_base_fee(
            &spec,
            &Header { number: 1, timestamp: t0 + 1, ..Default::default() },
            &parent,
        ),
        ..Default::default()
    };
    let before = Header { timestamp: t0 + 1, ..base.clone() };
    validate_header(&spec, &before, &parent, spec.genesis_hash, NOW).unwrap();
    let e = validate_header(
        &spec,
        &Header { withdrawals_root: Some(B256::ZERO), ..before },
        &parent,
        spec.genesis_hash,
        NOW,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            ConsensusError::ForkField {
                field: "withdrawals_root",
                present: false,
                fork: "shanghai"
            }
        ),
        "{e}"
    );
    let after = Header { timestamp: t0 + 10, ..base };
    let e = validate_header(&spec, &after, &parent, spec.genesis_hash, NOW).unwrap_err();
    assert!(
        matches!(e, ConsensusError::ForkField { field: "withdrawals_root", present: true, .. }),
        "{e}"
    );
    validate_header(
        &spec,
        &Header { withdrawals_root: Some(B256::ZERO), ..after.clone() },
        &parent,
        spec.genesis_hash,
        NOW,
    )
    .unwrap();
    // Post-merge constants.
    let e = validate_header(
        &spec,
        &Header { withdrawals_root: Some(B256::ZERO), difficulty: U256::from(1), ..after },
        &parent,
        spec.genesis_hash,
        NOW,
    )
    .unwrap_err();
    assert!(matches!(e, ConsensusError::Constant { field: "difficulty", .. }), "{e}");
}

/// Three validators in one process seal in rotation; then one is absent and the other
/// two keep the chain going out of turn.
#[test]
fn three_validators_rotate_and_survive_an_absence() {
    let (spec, keys) = clique_spec(3, 30_000);
    let sealers: Vec<Sealer> = keys.iter().map(|k| Sealer::new(*k)).collect();
    let mut rng = rand::rng();
    for absent in [None, Some(2usize)] {
        let mut snap = snapshot(&spec); // every validator's view is the same chain
        let mut parent = spec.genesis_header.clone();
        let mut out_of_turn = 0;
        for _ in 0..30 {
            // Every present validator plans; the earliest (timestamp, delay) seals. An
            // out-of-turn wiggle can be 0 ms: then both seal at once and fork choice keeps
            // the heavier, in-turn block, so a tie goes to the in-turn validator.
            let (winner, plan) = sealers
                .iter()
                .enumerate()
                .filter(|(i, _)| Some(*i) != absent)
                .filter_map(|(i, s)| s.plan(&snap, &parent, 2, &mut rng).map(|p| (i, p)))
                .min_by_key(|(_, p)| (p.timestamp, p.delay_ms, !p.in_turn))
                .expect("some validator can seal");
            let block =
                sealers[winner].build(&spec, &snap, &parent, parent.hash_slow(), plan.timestamp);
            // Every validator verifies it (the snapshots are identical, so one check).
            check(&spec, &mut snap, &parent, &block).unwrap();
            assert_eq!(block.header.difficulty, U256::from(if plan.in_turn { 2 } else { 1 }));
            out_of_turn += usize::from(!plan.in_turn);
            parent = block.header;
        }
        assert_eq!(parent.number, 30);
        match absent {
            None => assert_eq!(out_of_turn, 0, "all in turn when everyone is present"),
            // At least the absent validator's 10 turns go out of turn; more follow, since a
            // signer that sealed out of turn must then sit out its own next turn.
            Some(_) => assert!((10..30).contains(&out_of_turn), "{out_of_turn} out of turn"),
        }
    }
}

#[test]
fn chain_files_round_trip() {
    let (spec, keys) = clique_spec(1, 30_000);
    let blocks = gen(&spec, &keys, 10, 4);
    let path = std::env::temp_dir().join(format!("tern-chain-{}.rlp", std::process::id()));
    write_chain_file(&path, &blocks).unwrap();
    assert_eq!(read_chain_file(&path).unwrap(), blocks);
    std::fs::write(&path, [0xc1]).unwrap();
    assert!(read_chain_file(&path).is_err());
    let _ = std::fs::remove_file(&path);
}

#[test]
fn fork_choice_by_total_difficulty_or_length() {
    let tip = |number, td: u64| ChainTip {
        number,
        hash: B256::with_last_byte(number as u8),
        total_difficulty: U256::from(td),
    };
    let clique = ChainSpec::dev().consensus;
    assert!(should_switch(&clique, &tip(10, 20), &tip(9, 21)), "higher td wins though shorter");
    assert!(!should_switch(&clique, &tip(10, 20), &tip(11, 20)), "ties keep the current head");
    assert!(should_switch(&Consensus::PostMerge, &tip(10, 0), &tip(11, 0)));
    assert!(!should_switch(&Consensus::PostMerge, &tip(10, 0), &tip(10, 0)));
}

#[test]
fn sealing_a_header_without_room_for_a_seal_is_an_error() {
    let mut header = Header { extra_data: Bytes::from(vec![0u8; 32]), ..Default::default() };
    let e = seal_header(&mut header, &key(1)).unwrap_err();
    assert!(matches!(e, ConsensusError::ExtraData { len: 32, .. }), "{e}");
    assert_eq!(header.extra_data.len(), 32, "left as it was");
}

#[test]
fn post_merge_headers_have_no_future_bound_but_clique_keeps_it() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/genesis/postmerge-dev.json"
    ))
    .unwrap();
    let spec = ChainSpec::from_json(&text).unwrap();
    let parent = spec.genesis_header.clone();
    let mut header = Header {
        parent_hash: spec.genesis_hash,
        number: 1,
        timestamp: NOW + 3600, // an hour ahead of our clock
        gas_limit: parent.gas_limit,
        ..parent.clone()
    };
    header.base_fee_per_gas = expected_base_fee(&spec, &header, &parent);
    validate_header(&spec, &header, &parent, spec.genesis_hash, NOW).unwrap();
    // The same hour ahead on a Clique chain is not yet valid.
    let e = tampered(|b| b.header.timestamp = NOW + 3600, true);
    assert_eq!(e.kind(), ErrorKind::NotYetValid);
}
