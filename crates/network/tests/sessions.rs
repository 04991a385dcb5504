//! 200 concurrent sessions on loopback against one node; prints memory per session.

mod common;

use common::*;
use tern_chainspec::ChainSpec;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_200_sessions() {
    const N: usize = 200;
    let spec = ChainSpec::dev();
    let mut cfg = config();
    cfg.max_inbound = N + 10;
    let (node, mut events) =
        common::node(cfg, &spec, store_with(&spec, &dev_chain(5, 0), "many")).await;
    let enode = node.local_enode();
    let before = rss_kib();
    let mut peers = Vec::with_capacity(N);
    for chunk in 0..N / 20 {
        let batch: Vec<_> = (0..20)
            .map(|_| {
                let (spec, enode) = (spec.clone(), enode);
                tokio::spawn(async move { raw_peer(&enode, &spec, &raw_config()).await })
            })
            .collect();
        for b in batch {
            peers.push(b.await.unwrap().unwrap_or_else(|e| panic!("batch {chunk}: {e}")));
        }
    }
    // Wait until the node has reported every session (events are never dropped).
    for _ in 0..N {
        common::wait_for(&mut events, |e| {
            matches!(e, tern_network::NetworkEvent::PeerConnected(_)).then_some(())
        })
        .await;
    }
    assert_eq!(node.peers().await.len(), N);
    let after = rss_kib();
    // Both ends of every session live in this process, so this is the cost of a pair.
    eprintln!(
        "{N} sessions: RSS {before} KiB -> {after} KiB, {:.1} KiB per session pair",
        (after.saturating_sub(before)) as f64 / N as f64
    );
    // Measured ~124 KiB per pair (framing buffers, the snappy encoder's table); a bound
    // four times that catches a per-session buffer gone wrong.
    const MAX_KIB_PER_PAIR: u64 = 512;
    assert!(
        after.saturating_sub(before) <= MAX_KIB_PER_PAIR * N as u64,
        "{N} session pairs grew RSS by {} KiB (bound {} KiB)",
        after.saturating_sub(before),
        MAX_KIB_PER_PAIR * N as u64
    );
    drop(peers);
}
