//! Multi-node tests over real TCP on 127.0.0.1.

mod common;

use alloy_eips::eip1898::HashOrNumber;
use alloy_rlp::Encodable;
use common::*;
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tern_chainspec::ChainSpec;
use tern_eth_wire::{BlockHeaders, EthMessage, EthVersion, GetBlockHeaders, RequestPair};
use tern_network::{
    serve_headers, NetworkEvent, PeerRequest, PeerResponse, Penalty, RequestError,
    MAX_HEADERS_SERVE, SOFT_RESPONSE_LIMIT,
};
use tern_p2p::{CapabilityMessage, DisconnectReason, EciesError, P2pError, PeerId};

fn connected(e: &NetworkEvent) -> Option<PeerId> {
    match e {
        NetworkEvent::PeerConnected(info) => Some(info.id),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_headers_and_bodies_from_two_peers_concurrently() {
    let spec = ChainSpec::dev();
    let blocks = dev_chain(1100, 0);
    let (a, _) = node(config(), &spec, store_with(&spec, &blocks, "a")).await;
    let b_store = store_with(&spec, &blocks, "b");
    let (b, _) = node(config(), &spec, b_store.clone()).await;
    let mut c_cfg = config();
    c_cfg.bootnodes = vec![a.local_enode(), b.local_enode()];
    let (c, mut events) = node(c_cfg, &spec, store_with(&spec, &[], "c")).await;
    let p1 = wait_for(&mut events, connected).await;
    let p2 = wait_for(&mut events, connected).await;
    assert_ne!(p1, p2);

    let req = |start: u64, limit, skip, reverse| GetBlockHeaders {
        start: HashOrNumber::Number(start),
        limit,
        skip,
        reverse,
    };
    // Concurrently from both peers.
    let (h1, h2) = tokio::join!(
        c.get_block_headers(p1, req(1, 100, 0, false)),
        c.get_block_headers(p2, req(101, 100, 0, false))
    );
    let (h1, h2) = (h1.unwrap(), h2.unwrap());
    assert_eq!(h1.len(), 100);
    assert_eq!(h2[0].number, 101);
    for h in h1.iter().chain(&h2) {
        assert_eq!(h, &blocks[h.number as usize - 1].header, "exactly the stored header");
    }
    // Skip/reverse, by number and by hash, match a reference computed from the store.
    let by_hash = HashOrNumber::Hash(blocks[499].header.hash_slow());
    for q in [
        req(10, 20, 3, false),
        req(900, 50, 7, true),
        req(5, 10, 0, true),
        req(1090, 50, 2, false),
        GetBlockHeaders { start: by_hash, limit: 30, skip: 4, reverse: true },
        GetBlockHeaders { start: by_hash, limit: 30, skip: 1, reverse: false },
    ] {
        let got = c.get_block_headers(p2, q).await.unwrap();
        let step = q.skip as usize + 1;
        let first = match q.start {
            HashOrNumber::Number(n) => n as usize,
            HashOrNumber::Hash(_) => 500,
        };
        let expected: Vec<u64> = (0..q.limit as usize)
            .map_while(
                |i| if q.reverse { first.checked_sub(i * step) } else { Some(first + i * step) },
            )
            .filter(|n| *n <= 1100)
            .take_while(|n| *n <= 1100)
            .map(|n| n as u64)
            .collect();
        let numbers: Vec<u64> = got.iter().map(|h| h.number).collect();
        assert_eq!(numbers, expected, "{q:?}");
        assert_eq!(serve_headers(&b_store, &q).unwrap(), got, "{q:?}: what the store says");
    }
    // A request over 1024 is capped.
    let many = c.get_block_headers(p1, req(0, 5000, 0, false)).await.unwrap();
    assert_eq!(many.len(), MAX_HEADERS_SERVE);
    // Absurd ranges are answered, not errors.
    assert!(c
        .get_block_headers(p1, req(u64::MAX - 1, 10, u64::MAX, false))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(c.get_block_headers(p1, req(3, 10, u64::MAX, false)).await.unwrap().len(), 1);

    // Bodies: exactly the stored ones; unknown hashes omitted.
    let hashes: Vec<_> = blocks[..20].iter().map(|b| b.header.hash_slow()).collect();
    let mut with_unknown = hashes.clone();
    with_unknown.insert(5, alloy_primitives::B256::repeat_byte(0xee));
    let bodies = c.get_block_bodies(p1, with_unknown).await.unwrap();
    assert_eq!(bodies, blocks[..20].iter().map(|b| b.body.clone()).collect::<Vec<_>>());
    let peers = c.peers().await;
    assert_eq!(peers.len(), 2);
    assert!(peers.iter().all(|p| p.reputation > 0), "good responses raise reputation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_stay_under_the_soft_limit_plus_one() {
    let spec = ChainSpec::dev();
    let blocks = dev_chain(30, 1000); // ~110 KB per body
    let (a, _) = node(config(), &spec, store_with(&spec, &blocks, "big")).await;
    let mut c_cfg = config();
    c_cfg.bootnodes = vec![a.local_enode()];
    let (c, mut events) = node(c_cfg, &spec, store_with(&spec, &[], "c")).await;
    let p = wait_for(&mut events, connected).await;
    let hashes: Vec<_> = blocks.iter().map(|b| b.header.hash_slow()).collect();
    let bodies = c.get_block_bodies(p, hashes).await.unwrap();
    let sizes: Vec<usize> = bodies.iter().map(|b| b.length()).collect();
    let total: usize = sizes.iter().sum();
    assert!(bodies.len() < 30, "the soft limit cut the response ({} bodies)", bodies.len());
    assert!(total - sizes.last().unwrap() < SOFT_RESPONSE_LIMIT, "at most one item past the limit");
    assert!(total >= SOFT_RESPONSE_LIMIT);
}

/// Starts a node with a small chain and returns it with its event stream.
async fn server(
    name: &str,
    tweak: impl FnOnce(&mut tern_network::NetworkConfig),
) -> (tern_network::NetworkHandle, tern_network::NetworkEvents, ChainSpec) {
    let spec = ChainSpec::dev();
    let mut cfg = config();
    tweak(&mut cfg);
    let (h, e) = node(cfg, &spec, store_with(&spec, &dev_chain(10, 1), name)).await;
    (h, e, spec)
}

async fn reputation_of(h: &tern_network::NetworkHandle, id: PeerId) -> Option<i32> {
    h.peers().await.into_iter().find(|p| p.id == id).map(|p| p.reputation)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bans_and_the_ban_survives_reconnects() {
    let (node, mut events, spec) = server("garbage", |_| {}).await;
    let cfg = raw_config();
    let mut peer = raw_peer(&node.local_enode(), &spec, &cfg).await.unwrap();
    let id = wait_for(&mut events, connected).await;
    // GetBlockHeaders (0x03) whose payload is not RLP.
    peer.p2p_mut()
        .send(CapabilityMessage { capability: 0, id: 0x03, payload: vec![0xff, 0x00].into() })
        .await
        .unwrap();
    let err = peer.next().await.unwrap().unwrap_err();
    assert!(err.to_string().contains("breach of protocol"), "{err}");
    wait_for(&mut events, |e| {
        matches!(e, NetworkEvent::PeerDisconnected { id: d, .. } if *d == id).then_some(())
    })
    .await;
    // Reconnecting within the ban: refused right after Hello.
    let err = raw_peer(&node.local_enode(), &spec, &cfg).await.unwrap_err();
    assert!(
        matches!(
            err,
            tern_eth_wire::EthError::P2p(P2pError::Disconnected(Some(
                DisconnectReason::UselessPeer
            )))
        ),
        "{err}"
    );
    assert!(node.peers().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_request_ids_end_in_a_ban() {
    let (node, mut events, spec) = server("wrongid", short_timeouts).await;
    let cfg = raw_config();
    let mut peer = raw_peer(&node.local_enode(), &spec, &cfg).await.unwrap();
    let id = wait_for(&mut events, connected).await;
    // The peer answers every request with another id.
    let script = tokio::spawn(async move {
        while let Some(Ok(msg)) = peer.next().await {
            if let EthMessage::GetBlockHeaders(r) = msg {
                let wrong = RequestPair {
                    request_id: r.request_id + 1000,
                    message: BlockHeaders::default(),
                };
                if peer.send(EthMessage::BlockHeaders(wrong)).await.is_err() {
                    break;
                }
            }
        }
        peer
    });
    let q = GetBlockHeaders { start: HashOrNumber::Number(1), limit: 1, skip: 0, reverse: false };
    for _ in 0..4 {
        let r = node.get_block_headers(id, q).await;
        assert!(
            matches!(
                r,
                Err(RequestError::Timeout(_))
                    | Err(RequestError::Disconnected)
                    | Err(RequestError::UnknownPeer)
            ),
            "{r:?}"
        );
    }
    wait_for(&mut events, |e| {
        matches!(e, NetworkEvent::PeerDisconnected { id: d, .. } if *d == id).then_some(())
    })
    .await;
    // The connection ends (messages already on the wire may still be read first).
    let mut peer = script.await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = peer.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the banned peer's connection stays open");
    let err = raw_peer(&node.local_enode(), &spec, &cfg).await.unwrap_err();
    assert!(err.to_string().contains("useless peer"), "banned: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_loses_reputation_per_timeout() {
    let (node, mut events, spec) = server("silent", short_timeouts).await;
    let peer = raw_peer(&node.local_enode(), &spec, &raw_config()).await.unwrap();
    let id = wait_for(&mut events, connected).await;
    let q = GetBlockHeaders { start: HashOrNumber::Number(1), limit: 1, skip: 0, reverse: false };
    for i in 1..=3 {
        assert!(matches!(node.get_block_headers(id, q).await, Err(RequestError::Timeout(_))));
        // The session reports the penalty before it answers with the timeout.
        assert_eq!(reputation_of(&node, id).await, Some(-Penalty::Timeout.points() * i));
    }
    drop(peer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_peer_is_never_banned() {
    let cfg = raw_config();
    let trusted =
        tern_p2p::Enode::new(tern_p2p::peer_id(&cfg.secret_key), "127.0.0.1:9".parse().unwrap());
    let (node, mut events, spec) = server("trusted", |c| c.trusted_peers = vec![trusted]).await;
    for _ in 0..3 {
        let mut peer = raw_peer(&node.local_enode(), &spec, &cfg).await.unwrap();
        let id = wait_for(&mut events, connected).await;
        assert!(node.peers().await.iter().any(|p| p.id == id && p.trusted));
        peer.p2p_mut()
            .send(CapabilityMessage { capability: 0, id: 0x03, payload: vec![0xff].into() })
            .await
            .unwrap();
        assert!(peer.next().await.unwrap().is_err());
        wait_for(&mut events, |e| matches!(e, NetworkEvent::PeerDisconnected { .. }).then_some(()))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbound_limit_refuses_the_next_peer_with_too_many_peers() {
    let (node, mut events, spec) = server("limit", |c| c.max_inbound = 2).await;
    let mut peers = Vec::new();
    for _ in 0..2 {
        peers.push(raw_peer(&node.local_enode(), &spec, &raw_config()).await.unwrap());
        wait_for(&mut events, connected).await;
    }
    let err = raw_peer(&node.local_enode(), &spec, &raw_config()).await.unwrap_err();
    assert!(
        matches!(
            err,
            tern_eth_wire::EthError::P2p(P2pError::Disconnected(Some(
                DisconnectReason::TooManyPeers
            )))
        ),
        "{err}"
    );
    // The existing sessions keep working: both get answers to their requests.
    for peer in &mut peers {
        let q =
            GetBlockHeaders { start: HashOrNumber::Number(2), limit: 3, skip: 0, reverse: false };
        peer.send(EthMessage::GetBlockHeaders(RequestPair { request_id: 7, message: q }))
            .await
            .unwrap();
        let EthMessage::BlockHeaders(r) = peer.next().await.unwrap().unwrap() else {
            panic!("headers expected")
        };
        assert_eq!((r.request_id, r.message.0.len()), (7, 3));
    }
    let _ = EciesError::Closed;
}

/// Idle sockets holding every inbound handshake slot cannot keep an honest peer out: once
/// they are older than `HANDSHAKE_EVICT_AGE`, a new connection takes the oldest one's slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_handshakes_make_room_for_an_honest_peer() {
    // Two inbound peers: 2 × 2 + 16 = 20 handshake slots.
    let (node, mut events, spec) = server("evict", |c| c.max_inbound = 2).await;
    let addr = node.local_enode().tcp_addr();
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // Every slot is taken by a connection younger than the eviction age: refused.
    let err = raw_peer(&node.local_enode(), &spec, &raw_config()).await.unwrap_err();
    assert!(err.to_string().contains("closed") || err.to_string().contains("reset"), "{err}");
    // Older than the eviction age, well within the 10 s handshake timeout: admitted.
    tokio::time::sleep(tern_network::HANDSHAKE_EVICT_AGE + Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let peer = raw_peer(&node.local_enode(), &spec, &raw_config()).await;
    assert!(peer.is_ok(), "{:?}", peer.err());
    wait_for(&mut events, connected).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcements_follow_the_policy() {
    // The announcing node told its peers block 0 in Status; block 40 is 32+ later, so
    // eth/69 peers are due a BlockRangeUpdate.
    let spec = ChainSpec::dev();
    let blocks = dev_chain(40, 0);
    let (v, mut v_events) = node(config(), &spec, store_with(&spec, &[], "val")).await;
    // Receivers: tern on eth/68, tern on eth/69, and two that present PoS-only client ids.
    let mut receivers = Vec::new();
    for (name, versions, client) in [
        ("e68", vec![EthVersion::Eth68], None),
        ("e69", vec![EthVersion::Eth69], None),
        ("reth", vec![EthVersion::Eth69], Some("reth/v1.4.0-abc/x86_64-unknown-linux-gnu")),
        ("geth", vec![EthVersion::Eth68], Some("Geth/v1.15.0-stable/linux-amd64/go1.23")),
    ] {
        let mut cfg = config();
        cfg.eth_versions = versions;
        cfg.client_id = client.map(str::to_owned);
        cfg.bootnodes = vec![v.local_enode()];
        let (h, e) = node(cfg, &spec, store_with(&spec, &[], name)).await;
        wait_for(&mut v_events, connected).await;
        receivers.push((name, h, e));
    }
    let head = &blocks[39].header;
    v.announce_block(head.number, head.hash_slow()).await;
    for (name, _h, events) in &mut receivers {
        let mut got_hashes = false;
        let mut got_range = false;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, events.recv()).await {
            match e {
                NetworkEvent::NewBlockHashes { blocks, .. } => {
                    assert_eq!(blocks[0].number, 40);
                    got_hashes = true;
                }
                NetworkEvent::BlockRange { range, .. } => {
                    assert_eq!(range.latest, 40);
                    got_range = true;
                }
                _ => {}
            }
        }
        match *name {
            "e68" => assert!(got_hashes && !got_range, "{name}"),
            "e69" => assert!(got_hashes && got_range, "{name}"),
            "reth" => assert!(
                !got_hashes && got_range,
                "{name}: only BlockRangeUpdate for PoS-only clients"
            ),
            _ => assert!(!got_hashes && !got_range, "{name}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_block_announcements_on_a_post_merge_chain() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/genesis/postmerge-dev.json"
    ))
    .unwrap();
    let spec = ChainSpec::from_json(&text).unwrap();
    let (v, mut v_events) = node(config(), &spec, store_with(&spec, &[], "pm-v")).await;
    let mut cfg = config();
    cfg.bootnodes = vec![v.local_enode()];
    let (_r, mut r_events) = node(cfg, &spec, store_with(&spec, &[], "pm-r")).await;
    wait_for(&mut v_events, connected).await;
    v.announce_block(1, alloy_primitives::B256::repeat_byte(1)).await;
    let quiet = tokio::time::timeout(Duration::from_millis(800), async {
        loop {
            if let Some(NetworkEvent::NewBlockHashes { .. }) = r_events.recv().await {
                return;
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "no NewBlockHashes on a post-merge chain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_peers_persist_and_are_redialed() {
    let spec = ChainSpec::dev();
    let (b, mut b_events) = node(config(), &spec, store_with(&spec, &[], "kp-b")).await;
    let dir = tmp_dir("kp-a");
    std::fs::create_dir_all(&dir).unwrap();
    let key = tern_p2p::generate_secret_key();
    let mut cfg = config();
    cfg.secret_key = key;
    cfg.datadir = Some(dir.clone());
    cfg.bootnodes = vec![b.local_enode()];
    let (a, _) = node(cfg.clone(), &spec, store_with(&spec, &[], "kp-a-store")).await;
    let a_id = wait_for(&mut b_events, connected).await;
    a.shutdown().await;
    wait_for(&mut b_events, |e| matches!(e, NetworkEvent::PeerDisconnected { .. }).then_some(()))
        .await;
    let saved: Vec<tern_network::KnownPeer> =
        serde_json::from_slice(&std::fs::read(dir.join("known-peers.json")).unwrap()).unwrap();
    assert!(saved.iter().any(|p| p.enode == b.local_enode().to_string()), "{saved:?}");
    // Restarted without bootnodes, it finds b from the file.
    cfg.bootnodes.clear();
    let (_a2, _) = node(cfg, &spec, store_with(&spec, &[], "kp-a-store2")).await;
    assert_eq!(wait_for(&mut b_events, connected).await, a_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_self_connections_are_refused() {
    let (node, mut events, spec) = server("dup", |_| {}).await;
    let cfg = raw_config();
    let _first = raw_peer(&node.local_enode(), &spec, &cfg).await.unwrap();
    wait_for(&mut events, connected).await;
    let err = raw_peer(&node.local_enode(), &spec, &cfg).await.unwrap_err();
    assert!(err.to_string().contains("already connected"), "{err}");
    // A node whose bootnode is itself refuses the connection as ConnectedToSelf.
    let mut self_cfg = config();
    let key = self_cfg.secret_key;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    self_cfg.listen_addr = addr;
    self_cfg.bootnodes = vec![tern_p2p::Enode::new(tern_p2p::peer_id(&key), addr)];
    let (me, _) = common::node(self_cfg, &spec, store_with(&spec, &[], "self")).await;
    // The dial to itself is made and fails; no session ever starts.
    let dialed = tokio::time::timeout(Duration::from_secs(30), async {
        while me.failed_dials() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(dialed.is_ok(), "the node never dialed itself");
    assert!(me.peers().await.is_empty());
}

/// A response that comes after its request timed out is charged once, as the timeout
/// (before, it was charged again as unsolicited).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_answer_is_charged_once_as_a_timeout() {
    let (node, mut events, spec) = server("late", short_timeouts).await;
    let mut peer = raw_peer(&node.local_enode(), &spec, &raw_config()).await.unwrap();
    let id = wait_for(&mut events, connected).await;
    let (go, late) = tokio::sync::oneshot::channel::<()>();
    let script = tokio::spawn(async move {
        let mut late = Some(late);
        let mut first = None;
        while let Some(Ok(msg)) = peer.next().await {
            let EthMessage::GetBlockHeaders(r) = msg else { continue };
            let answer = |request_id| {
                EthMessage::BlockHeaders(RequestPair {
                    request_id,
                    message: BlockHeaders::default(),
                })
            };
            match first {
                // Hold the first answer until the node has given up on it.
                None => {
                    first = Some(r.request_id);
                    let _ = late.take().unwrap().await;
                    peer.send(answer(r.request_id)).await.unwrap();
                }
                Some(_) => peer.send(answer(r.request_id)).await.unwrap(),
            }
        }
    });
    let q = GetBlockHeaders { start: HashOrNumber::Number(1), limit: 1, skip: 0, reverse: false };
    assert!(matches!(node.get_block_headers(id, q).await, Err(RequestError::Timeout(_))));
    go.send(()).unwrap();
    // The session reads in order: once the second answer is here, the late one was seen.
    node.get_block_headers(id, q).await.unwrap();
    let standing = node.standing(id).await;
    assert!(standing.connected);
    assert_eq!(
        standing.reputation,
        -Penalty::Timeout.points() + tern_network::GOOD_RESPONSE_REWARD,
        "one timeout, one good answer, nothing for the late one"
    );
    script.abort();
}

/// Limits and bans by address: a new node key does not buy a banned host a clean slate,
/// and one address cannot take every inbound slot. (Loopback is exempt by default; this
/// node is told not to exempt it, and the peers use distinct 127.0.0.x addresses.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_are_limited_and_banned_by_address_too() {
    let (node, mut events, spec) = server("per-ip", |c| {
        c.exempt_loopback = false;
        c.max_inbound_per_ip = 2;
    })
    .await;
    let (a, b): (std::net::IpAddr, std::net::IpAddr) =
        ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
    let enode = node.local_enode();
    let (k1, k2) = (raw_config(), raw_config());
    let _p1 = raw_peer_from(a, &enode, &spec, &k1).await.unwrap();
    let id1 = wait_for(&mut events, connected).await;
    let p2 = raw_peer_from(a, &enode, &spec, &k2).await.unwrap();
    let id2 = wait_for(&mut events, connected).await;
    // A third session from the same address is refused before its handshake.
    assert!(raw_peer_from(a, &enode, &spec, &raw_config()).await.is_err());
    let _p3 = raw_peer_from(b, &enode, &spec, &raw_config()).await.unwrap();
    wait_for(&mut events, connected).await;
    // Banning the first peer bans its address.
    node.penalize(id1, Penalty::ProtocolBreach).await;
    wait_standing(&node, id1, |s| s.banned).await;
    wait_for(&mut events, |e| {
        matches!(e, NetworkEvent::PeerDisconnected { id, .. } if *id == id1).then_some(())
    })
    .await;
    drop(p2);
    wait_for(&mut events, |e| {
        matches!(e, NetworkEvent::PeerDisconnected { id, .. } if *id == id2).then_some(())
    })
    .await;
    // Room from that address again, but it is banned: a fresh key is refused too.
    assert!(raw_peer_from(a, &enode, &spec, &raw_config()).await.is_err());
    // Another address is unaffected.
    raw_peer_from(b, &enode, &spec, &raw_config()).await.unwrap();
}

/// A peer flooding us with requests is served at its budget's rate, and another peer is
/// answered meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_flood_is_served_within_the_peers_budget() {
    const RATE: u64 = 1024 * 1024;
    const BURST: u64 = 256 * 1024;
    let spec = ChainSpec::dev();
    let mut cfg = config();
    cfg.serve_rate = RATE;
    cfg.serve_burst = BURST;
    let (node, mut events) =
        node(cfg, &spec, store_with(&spec, &dev_chain(300, 0), "budget")).await;
    let mut flooder = raw_peer(&node.local_enode(), &spec, &raw_config()).await.unwrap();
    wait_for(&mut events, connected).await;
    let all =
        GetBlockHeaders { start: HashOrNumber::Number(0), limit: 1024, skip: 0, reverse: false };
    const REQUESTS: u64 = 12;
    let started = std::time::Instant::now();
    for request_id in 0..REQUESTS {
        let msg = RequestPair { request_id, message: all };
        flooder.send(EthMessage::GetBlockHeaders(msg)).await.unwrap();
    }
    // An honest peer asks meanwhile and is answered.
    let mut c_cfg = config();
    c_cfg.bootnodes = vec![node.local_enode()];
    let (c, mut c_events) = common::node(c_cfg, &spec, store_with(&spec, &[], "budget-c")).await;
    let p = wait_for(&mut c_events, connected).await;
    let q = GetBlockHeaders { start: HashOrNumber::Number(1), limit: 10, skip: 0, reverse: false };
    assert_eq!(c.get_block_headers(p, q).await.unwrap().len(), 10);
    // Every answer arrives within the budget: at any moment, the bytes served are at most
    // the burst plus the rate times the time elapsed (plus the answer that overdrew it).
    let mut served = 0u64;
    let mut largest = 0u64;
    for _ in 0..REQUESTS {
        let msg = loop {
            if let EthMessage::BlockHeaders(r) = flooder.next().await.unwrap().unwrap() {
                break r;
            }
        };
        let bytes: u64 = msg.message.0.iter().map(|h| h.length() as u64).sum();
        assert_eq!(msg.message.0.len(), 301);
        largest = largest.max(bytes);
        served += bytes;
        let allowed = BURST as f64 + RATE as f64 * started.elapsed().as_secs_f64();
        assert!(
            served as f64 <= allowed + largest as f64,
            "served {served} bytes after {:?}: more than the budget allows ({allowed:.0})",
            started.elapsed()
        );
    }
    assert!(served > BURST + largest, "the flood outgrew the burst, so the rate was tested");
}

/// Reputation and bans are saved in known-peers.json and survive a restart, also for
/// inbound peers that never told us a port to dial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reputation_and_bans_survive_a_restart() {
    let spec = ChainSpec::dev();
    let datadir = tmp_dir("restart-peers");
    std::fs::create_dir_all(&datadir).unwrap();
    let mut cfg = config();
    cfg.datadir = Some(datadir.clone());
    let (node1, mut events) = node(cfg.clone(), &spec, store_with(&spec, &[], "restart-1")).await;
    let (bad, meh) = (raw_config(), raw_config());
    let _b = raw_peer(&node1.local_enode(), &spec, &bad).await.unwrap();
    let bad_id = wait_for(&mut events, connected).await;
    let _m = raw_peer(&node1.local_enode(), &spec, &meh).await.unwrap();
    let meh_id = wait_for(&mut events, connected).await;
    node1.penalize(bad_id, Penalty::ProtocolBreach).await;
    node1.penalize(meh_id, Penalty::BadBlock).await;
    wait_standing(&node1, bad_id, |s| s.banned).await;
    wait_standing(&node1, meh_id, |s| s.reputation < 0).await;
    node1.shutdown().await;
    // Same node key and datadir, a fresh process state.
    cfg.listen_addr = "127.0.0.1:0".parse().unwrap();
    let (node2, _) = node(cfg, &spec, store_with(&spec, &[], "restart-2")).await;
    let s = node2.standing(bad_id).await;
    assert!(s.banned, "{s:?}");
    let err = raw_peer(&node2.local_enode(), &spec, &bad).await.unwrap_err();
    assert!(err.to_string().contains("useless peer"), "banned after the restart: {err}");
    let s = node2.standing(meh_id).await;
    assert!(s.reputation <= -Penalty::BadBlock.points() + 5 && !s.banned, "reputation kept: {s:?}");
}

/// A subscriber that comes after a peer connected still learns of it: subscribing replays
/// the open sessions first (before, a peer that connected between `start` and `subscribe`
/// was never reported, and a test waiting for it timed out on a loaded machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_subscriber_learns_of_the_peers_already_connected() {
    let spec = ChainSpec::dev();
    let (a, _) = node(config(), &spec, store_with(&spec, &[], "late-sub-a")).await;
    let mut c_cfg = config();
    c_cfg.bootnodes = vec![a.local_enode()];
    let (c, mut early) = node(c_cfg, &spec, store_with(&spec, &[], "late-sub-c")).await;
    let peer = wait_for(&mut early, connected).await;
    assert_eq!(peer, a.local_enode().id);
    let mut late = c.subscribe().await;
    assert_eq!(wait_for(&mut late, connected).await, peer);
}

/// Receipts come from the store for executed blocks: on eth/69 without blooms, on eth/68
/// as full receipts; unknown hashes and blocks stored without execution are omitted. The
/// reference is what the executor returned, not what the serving code reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_are_served_for_executed_blocks() {
    use tern_execution::{chain, execute_and_store, BlockToExecute};
    let spec = ChainSpec::dev();
    let bytes = alloy_primitives::hex::decode(tern_chainspec::DEV_VALIDATOR_KEY).unwrap();
    let key = secp256k1::SecretKey::from_byte_array(bytes.try_into().unwrap()).unwrap();
    let mut state = chain::genesis_state(&spec);
    let genesis = (spec.genesis_hash, &spec.genesis_header);
    let blocks =
        chain::executed_chain(&spec, &[key], genesis, &mut state, 6, 3, (&key, 0)).unwrap();
    let signer = tern_consensus::address_of(&key);
    let sealed: Vec<tern_storage::SealedBlock> =
        blocks.iter().cloned().map(tern_storage::SealedBlock::seal).collect();
    let to_execute: Vec<BlockToExecute> = sealed[..4]
        .iter()
        .map(|b| BlockToExecute {
            senders: tern_consensus::recover_senders(&b.block.body.transactions).unwrap(),
            beneficiary: signer,
            block: b.clone(),
        })
        .collect();
    let store = store_with(&spec, &[], "receipts");
    let executed =
        execute_and_store(&spec, &store, &to_execute, tern_execution::StateRootCheck::EveryBlock)
            .unwrap();
    store.insert_blocks(&sealed[4..]).unwrap(); // stored without execution
    let (a, _) = node(config(), &spec, store).await;
    let hashes = vec![
        sealed[0].hash,
        sealed[1].hash,
        alloy_primitives::B256::repeat_byte(0xee),
        sealed[3].hash,
        sealed[4].hash,
    ];
    let expected: Vec<_> = [0, 1, 3].iter().map(|&i| executed[i].receipts.clone()).collect();
    assert!(expected.iter().all(|r| r.len() == 3));
    for version in [EthVersion::Eth69, EthVersion::Eth68] {
        let mut cfg = config();
        cfg.eth_versions = vec![version];
        cfg.bootnodes = vec![a.local_enode()];
        let (c, mut events) = node(cfg, &spec, store_with(&spec, &[], "receipts-c")).await;
        let peer = wait_for(&mut events, connected).await;
        let answer = c.request(peer, PeerRequest::GetReceipts(hashes.clone())).await.unwrap();
        match (version, answer) {
            (EthVersion::Eth68, PeerResponse::Receipts68(r)) => assert_eq!(r.0, expected),
            (EthVersion::Eth69, PeerResponse::Receipts69(r)) => {
                assert_eq!(r.0.len(), expected.len());
                for (got, want) in r.0.iter().flatten().zip(expected.iter().flatten()) {
                    use alloy_consensus::TxReceipt;
                    assert_eq!(got.tx_type, want.tx_type() as u8);
                    assert_eq!(got.status, want.status_or_post_state());
                    assert_eq!(got.cumulative_gas_used, want.cumulative_gas_used());
                    assert_eq!(got.logs, want.logs());
                }
            }
            (v, other) => panic!("{v:?}: {other:?}"),
        }
    }
}

/// Nodes that dial each other at the same moment (as discovery makes them: bonding runs
/// both ways) end with one connection, with no failed dial on either side. Before, each
/// side refused the other's dial as a duplicate of its own and both connections died,
/// again at every redial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_dials_leave_one_connection() {
    let spec = ChainSpec::dev();
    for round in 0..6 {
        let (a, mut a_events) =
            node(config(), &spec, store_with(&spec, &[], &format!("sim-a{round}"))).await;
        let (b, mut b_events) =
            node(config(), &spec, store_with(&spec, &[], &format!("sim-b{round}"))).await;
        tokio::join!(a.add_peer(b.local_enode()), b.add_peer(a.local_enode()));
        assert_eq!(wait_for(&mut a_events, connected).await, b.local_enode().id);
        assert_eq!(wait_for(&mut b_events, connected).await, a.local_enode().id);
        // Both connections may finish their handshakes; one is then replaced. Settled:
        // one session each way, and it answers.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (pa, pb) = (a.peers().await, b.peers().await);
            let one = pa.len() == 1 && pb.len() == 1 && pa[0].direction != pb[0].direction;
            let req = GetBlockHeaders {
                start: HashOrNumber::Number(0),
                limit: 1,
                skip: 0,
                reverse: false,
            };
            if one && a.request(b.local_enode().id, PeerRequest::GetBlockHeaders(req)).await.is_ok()
            {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "round {round}: {pa:?} {pb:?}");
            let next = async {
                tokio::select! {
                    _ = a_events.recv() => {}
                    _ = b_events.recv() => {}
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), next).await;
        }
        assert_eq!((a.failed_dials(), b.failed_dials()), (0, 0), "round {round}");
        a.shutdown().await;
        b.shutdown().await;
    }
}
