//! The short, stable-toolchain version of the `discv4_packet` fuzz target (`fuzz/`), run
//! by `cargo test`: its seeds (the EIP-8 discovery vectors, an ENRRequest and an
//! ENRResponse carrying EIP-778's example record) mutated many times and fed to the
//! packet and message decoders. Nothing may panic; what decodes must round-trip.

#[path = "../../../fuzz/corpus.rs"]
mod corpus;
#[path = "../../../fuzz/discv4_check.rs"]
mod discv4_check;

#[test]
fn discovery_packets_never_panic_and_round_trip() {
    let (mut packets, mut messages) = (0, 0);
    let n = corpus::each_mutation("discv4_packet", |data| match discv4_check::check_input(data) {
        Some(true) => packets += 1,
        Some(false) => messages += 1,
        None => {}
    });
    // The unmutated seeds decode, and so do many mutations of the messages (a mutated
    // packet fails its hash).
    assert!(packets >= 5, "{packets} of {n} packets decoded");
    assert!(messages > n / 20, "{messages} of {n} messages decoded");
}
