//! Full ECIES handshakes (initiator + recipient, both sides' work) per second.
//!
//! Run: `cargo bench -p tern-ecies --bench handshake`

use criterion::{criterion_main, Criterion, Throughput};
use std::hint::black_box;
use tern_ecies::{pk2id, Handshake, PublicKey, SecretKey};

fn bench(c: &mut Criterion) {
    let mut rng = rand::rng();
    let (ka, kb) = (SecretKey::new(&mut rng), SecretKey::new(&mut rng));
    let id_b = pk2id(&PublicKey::from_secret_key(secp256k1::SECP256K1, &kb));
    let mut group = c.benchmark_group("handshake");
    group.throughput(Throughput::Elements(1));
    group.bench_function("initiator_and_recipient", |b| {
        b.iter(|| {
            let mut a = Handshake::initiator(ka, id_b).unwrap();
            let mut b = Handshake::recipient(kb);
            b.read_auth(&a.create_auth()).unwrap();
            let (ack, sb) = b.create_ack().unwrap();
            let sa = a.read_ack(&ack).unwrap();
            black_box((sa, sb));
        })
    });
    group.finish();
}

#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
use group::benches;
criterion_main!(benches);
