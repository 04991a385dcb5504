//! Seal verification and body validation throughput.
//!
//! Run: `cargo bench -p tern-consensus --bench validation`

use criterion::{criterion_main, Criterion, Throughput};
use std::hint::black_box;
use tern_chainspec::{ChainSpec, DEV_VALIDATOR_KEY};
use tern_consensus::{
    chain_gen::generate_chain, clique::recover_signer, recover_senders, validate_body,
};

fn bench(c: &mut Criterion) {
    let spec = ChainSpec::dev();
    let key = secp256k1::SecretKey::from_byte_array(
        alloy_primitives::hex::decode(DEV_VALIDATOR_KEY).unwrap().try_into().unwrap(),
    )
    .unwrap();
    let sender = secp256k1::SecretKey::from_byte_array([7u8; 32]).unwrap();
    let blocks = generate_chain(
        &spec,
        &[key],
        (spec.genesis_hash, &spec.genesis_header),
        100,
        100,
        (&sender, 0),
    );

    let mut g = c.benchmark_group("consensus");
    g.throughput(Throughput::Elements(1));
    g.bench_function("clique_seal_recovery", |b| {
        b.iter(|| black_box(recover_signer(&blocks[0].header).unwrap()))
    });
    g.bench_function("body_100_txs", |b| {
        b.iter(|| black_box(validate_body(&spec, &blocks[0].header, &blocks[0].body).unwrap()))
    });
    let all: Vec<_> = blocks.iter().flat_map(|b| b.body.transactions.clone()).collect();
    g.throughput(Throughput::Elements(all.len() as u64));
    g.bench_function("recover_10k_senders_all_cores", |b| {
        b.iter(|| black_box(recover_senders(&all).unwrap()))
    });
    g.bench_function("recover_10k_senders_one_core", |b| {
        b.iter(|| {
            for chunk in all.chunks(64) {
                black_box(recover_senders(chunk).unwrap());
            }
        })
    });
    g.finish();
}

#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
use group::benches;
criterion_main!(benches);
