//! Frame seal + open throughput against the keccak floor.
//!
//! RLPx framing costs two keccak passes over every byte (the sender's egress MAC and the
//! receiver's ingress MAC) plus AES-CTR both ways. `keccak_x2/*` measures just the two
//! keccak passes, with alloy's assembly keccak (what the codec uses) and the `sha3`
//! crate, so `seal_open / keccak_x2` is the codec's efficiency.
//!
//! Run: `cargo bench -p tern-ecies --bench frame`

use bytes::BytesMut;
use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use sha3::Digest;
use std::hint::black_box;
use tern_ecies::{pk2id, FrameCodec, Handshake, PublicKey, SecretKey};
use tokio_util::codec::Decoder;

fn codec_pair() -> (FrameCodec, FrameCodec) {
    let mut rng = rand::rng();
    let (ka, kb) = (SecretKey::new(&mut rng), SecretKey::new(&mut rng));
    let id_b = pk2id(&PublicKey::from_secret_key(secp256k1::SECP256K1, &kb));
    let mut a = Handshake::initiator(ka, id_b).unwrap();
    let mut b = Handshake::recipient(kb);
    b.read_auth(&a.create_auth()).unwrap();
    let (ack, sb) = b.create_ack().unwrap();
    let sa = a.read_ack(&ack).unwrap();
    (FrameCodec::new(sa), FrameCodec::new(sb).without_first_frame_limit())
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame");
    for size in [1024usize, 64 * 1024, 1024 * 1024] {
        let data: Vec<u8> = (0..size).map(|i| (i * 31) as u8).collect();
        group.throughput(Throughput::Bytes(size as u64));
        let label = format!("{}KiB", size / 1024);

        let (mut tx, mut rx) = codec_pair();
        let mut wire = BytesMut::with_capacity(size + 64);
        group.bench_with_input(BenchmarkId::new("seal_open", &label), &data, |b, data| {
            b.iter(|| {
                tx.encode_frame(data, &mut wire).unwrap();
                let frame = rx.decode(&mut wire).unwrap().unwrap();
                black_box(frame);
            })
        });
        group.bench_with_input(BenchmarkId::new("keccak_x2_asm", &label), &data, |b, data| {
            b.iter(|| {
                let mut h = alloy_primitives::Keccak256::new();
                h.update(data);
                black_box(h.finalize());
                let mut h = alloy_primitives::Keccak256::new();
                h.update(data);
                black_box(h.finalize());
            })
        });
        group.bench_with_input(BenchmarkId::new("keccak_x2_sha3", &label), &data, |b, data| {
            b.iter(|| {
                black_box(sha3::Keccak256::digest(data));
                black_box(sha3::Keccak256::digest(data));
            })
        });
    }
    group.finish();
}

#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
use group::benches;
criterion_main!(benches);
