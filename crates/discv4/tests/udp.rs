//! Discovery services over real UDP on 127.0.0.1: nodes that know only a bootnode find
//! each other through it.

use alloy_eip2124::{ForkHash, ForkId};
use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};
use tern_discv4::{Discovered, Discv4, Discv4Config, NodeEndpoint, NodeRecord};

fn config(seed: u8, bootnodes: Vec<NodeRecord>) -> Discv4Config {
    let key = secp256k1::SecretKey::from_byte_array([seed; 32]).unwrap();
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut config =
        Discv4Config::new(key, SocketAddr::new(lo, 0), NodeEndpoint { ip: lo, udp: 0, tcp: 30303 });
    config.bootnodes = bootnodes;
    config
}

async fn start(seed: u8, bootnodes: Vec<NodeRecord>) -> Discv4 {
    Discv4::spawn(config(seed, bootnodes)).await.expect("bind a UDP port")
}

/// The next discovery report about `id`, within 30 s.
async fn discovered(
    found: &mut tokio::sync::broadcast::Receiver<Discovered>,
    id: alloy_primitives::B512,
) -> Discovered {
    let wait = async {
        loop {
            let d = found.recv().await.expect("service running");
            if d.node.id == id {
                return d;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait).await.expect("reported")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_that_know_only_the_bootnode_find_each_other() {
    let boot = start(1, vec![]).await;
    let nodes: Vec<Discv4> = {
        let mut v = Vec::new();
        for seed in 2..=6 {
            v.push(start(seed, vec![boot.local()]).await);
        }
        v
    };
    // Each node learns of every other (none of them was told of the others).
    for (i, n) in nodes.iter().enumerate() {
        let mut found = n.subscribe();
        let wait = async {
            loop {
                let known: usize = {
                    let mut c = 0;
                    for other in &nodes {
                        if other.local().id != n.local().id
                            && n.closest(other.local().id)
                                .await
                                .iter()
                                .any(|r| r.id == other.local().id)
                        {
                            c += 1;
                        }
                    }
                    c
                };
                if known == nodes.len() - 1 {
                    return;
                }
                // Wait for the next node to enter the table (a bond), or ask around.
                if tokio::time::timeout(Duration::from_secs(1), found.recv()).await.is_err() {
                    n.lookup(n.local().id).await;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .unwrap_or_else(|_| panic!("node {i} did not find the others"));
        assert!(n.table_len().await >= nodes.len() - 1);
    }
    // The bootnode knows everyone, and a lookup through it finds the closest.
    assert_eq!(boot.table_len().await, nodes.len());
    let target = nodes[3].local().id;
    let result = nodes[0].lookup(target).await;
    assert_eq!(result.first().map(|r| r.id), Some(target), "the target is the closest to itself");
}

/// A raw client: our own key and socket, speaking packets by hand.
struct Client {
    key: secp256k1::SecretKey,
    socket: tokio::net::UdpSocket,
}

impl Client {
    async fn new() -> Self {
        let key = secp256k1::SecretKey::from_byte_array([0x77; 32]).unwrap();
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        Self { key, socket }
    }

    fn endpoint(&self) -> NodeEndpoint {
        let a = self.socket.local_addr().unwrap();
        NodeEndpoint { ip: a.ip(), udp: a.port(), tcp: 0 }
    }

    async fn send(&self, m: tern_discv4::Message, to: &NodeRecord) {
        let (p, _) = tern_discv4::encode(&m, &self.key);
        self.socket.send_to(&p, (to.endpoint.ip, to.endpoint.udp)).await.unwrap();
    }

    async fn recv(&self) -> tern_discv4::Decoded {
        let mut buf = [0u8; 1280];
        let read = async {
            let (n, _) = self.socket.recv_from(&mut buf).await.unwrap();
            tern_discv4::decode(&buf[..n]).unwrap()
        };
        tokio::time::timeout(Duration::from_secs(30), read).await.expect("a packet")
    }
}

fn expiration() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 20
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_node_is_answered_only_after_an_endpoint_proof() {
    use tern_discv4::{FindNode, Message, Ping, Pong};
    let service = start(9, vec![]).await;
    let target = service.local();
    let c = Client::new().await;
    let find = Message::FindNode(FindNode { target: target.id, expiration: expiration() });
    // Not bonded: the FindNode is ignored, so the Ping sent after it is answered first.
    c.send(find.clone(), &target).await;
    let ping = Ping {
        version: 4,
        from: c.endpoint(),
        to: target.endpoint,
        expiration: expiration(),
        enr_seq: None,
    };
    c.send(Message::Ping(ping), &target).await;
    let first = c.recv().await;
    assert!(matches!(first.message, Message::Pong(_)), "got {:?} before the Pong", first.message);
    assert_eq!(first.node_id, target.id);
    // The service pings back for its own proof; answering it bonds us.
    let their_ping = loop {
        let d = c.recv().await;
        if matches!(d.message, Message::Ping(_)) {
            break d;
        }
    };
    let pong = Pong {
        to: target.endpoint,
        ping_hash: their_ping.hash,
        expiration: expiration(),
        enr_seq: None,
    };
    c.send(Message::Pong(pong), &target).await;
    // Once the service counts us as bonded (it adds us to its table), FindNode is answered.
    let mut found = service.subscribe();
    if service.table_len().await == 0 {
        tokio::time::timeout(Duration::from_secs(30), found.recv()).await.unwrap().unwrap();
    }
    c.send(find, &target).await;
    let answer = loop {
        let d = c.recv().await;
        if let Message::Neighbours(n) = d.message {
            break n;
        }
    };
    // The service knows only us, and never names the asker: an empty answer.
    let us =
        tern_ecies::pk2id(&secp256k1::PublicKey::from_secret_key(secp256k1::SECP256K1, &c.key));
    assert!(!answer.nodes.iter().any(|n| n.id == us), "{answer:?}");
    assert!(answer.nodes.is_empty(), "{answer:?}");
}

/// A bonded node is reported with the fork id of its record (EIP-868 ENRRequest), so the
/// node can filter other chains out before dialing; a new fork id reaches peers through
/// the sequence number in our Pongs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bonded_nodes_are_reported_with_their_records_fork_id() {
    let ours = ForkId { hash: ForkHash([1, 2, 3, 4]), next: 0 };
    let theirs = ForkId { hash: ForkHash([9, 9, 9, 9]), next: 0 };
    let mut a_config = config(21, vec![]);
    a_config.fork_id = Some(ours);
    let a = Discv4::spawn(a_config).await.unwrap();
    let mut b_config = config(22, vec![a.local()]);
    b_config.fork_id = Some(theirs);
    let mut a_found = a.subscribe();
    let b = Discv4::spawn(b_config).await.unwrap();
    let mut b_found = b.subscribe();
    assert_eq!(discovered(&mut a_found, b.local().id).await.fork_id, Some(theirs));
    assert_eq!(discovered(&mut b_found, a.local().id).await.fork_id, Some(ours));
    assert_eq!(tern_discv4::record_fork_id(&a.local_enr()), Some(ours));
    // A node without an eth entry is reported without a fork id.
    let c = Discv4::spawn(config(23, vec![a.local()])).await.unwrap();
    assert_eq!(discovered(&mut a_found, c.local().id).await.fork_id, None);
    // After a fork, a's record has the new fork id and a higher sequence number (which
    // its Pongs carry, so peers fetch it again).
    let next = ForkId { hash: ForkHash([5, 6, 7, 8]), next: 0 };
    let seq = a.local_enr().seq();
    a.set_fork_id(next).await;
    a.table_len().await; // a later command: the fork id is applied by now
    assert!(a.local_enr().seq() > seq);
    assert_eq!(tern_discv4::record_fork_id(&a.local_enr()), Some(next));
}

/// The table is saved at shutdown and, at the next start, its nodes are pinged again:
/// a restarted node knows the network without its bootnodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("tern-discv4-table-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("discovery-nodes.txt");
    let _ = std::fs::remove_file(&file);
    let boot = start(31, vec![]).await;
    let others = [start(32, vec![boot.local()]).await, start(33, vec![boot.local()]).await];
    let mut c = config(34, vec![boot.local()]);
    c.nodes_file = Some(file.clone());
    let node = Discv4::spawn(c.clone()).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut found = node.subscribe();
    while node.table_len().await < 3 {
        assert!(std::time::Instant::now() < deadline, "table: {:?}", node.nodes().await);
        let _ = tokio::time::timeout(Duration::from_secs(1), found.recv()).await;
    }
    node.shutdown().await;
    let saved = std::fs::read_to_string(&file).unwrap();
    assert_eq!(saved.lines().count(), node_count_in(&saved, &[&boot, &others[0], &others[1]]));
    // Restarted with no bootnode at all: the saved nodes answer and refill the table.
    c.bootnodes.clear();
    let again = Discv4::spawn(c).await.unwrap();
    let mut found = again.subscribe();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while again.table_len().await < 3 {
        assert!(std::time::Instant::now() < deadline, "table: {:?}", again.nodes().await);
        let _ = tokio::time::timeout(Duration::from_secs(1), found.recv()).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Lines of `saved` naming one of `nodes` (each line names one saved node).
fn node_count_in(saved: &str, nodes: &[&Discv4]) -> usize {
    let ids: Vec<String> =
        nodes.iter().map(|n| alloy_primitives::hex::encode(n.local().id)).collect();
    let n = saved.lines().filter(|l| ids.iter().any(|id| l.contains(id.as_str()))).count();
    assert_eq!(n, nodes.len(), "{saved}");
    n
}

/// Garbage is dropped and counted; a flood from one address is cut to its rate (the
/// flooder gets at most the burst of Pongs back); a Pong nobody asked for changes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_floods_and_unsolicited_answers_are_dropped_and_counted() {
    use tern_discv4::{Message, Ping, Pong};
    let service = start(41, vec![]).await;
    let target = service.local();
    let c = Client::new().await;
    let to = (target.endpoint.ip, target.endpoint.udp);
    for len in [0usize, 50, 97, 300, 1281] {
        c.socket.send_to(&vec![0xab; len], to).await.unwrap();
    }
    let pong = Pong {
        to: target.endpoint,
        ping_hash: alloy_primitives::B256::repeat_byte(7),
        expiration: expiration(),
        enr_seq: None,
    };
    c.send(Message::Pong(pong), &target).await;
    // 300 Pings at once: the per-IP bucket (burst 100) lets the first through.
    let ping = Message::Ping(Ping {
        version: 4,
        from: c.endpoint(),
        to: target.endpoint,
        expiration: expiration(),
        enr_seq: None,
    });
    let (packet, _) = tern_discv4::encode(&ping, &c.key);
    // In batches, each waited for (a burst of 300 could overflow the socket's buffer).
    let started = std::time::Instant::now();
    let deadline = started + Duration::from_secs(30);
    let mut stats = service.stats();
    for batch in 1..=6u64 {
        for _ in 0..50 {
            c.socket.send_to(&packet, to).await.unwrap();
        }
        loop {
            stats = service.stats();
            if stats.malformed + stats.unsolicited + stats.rate_limited + stats.received
                >= 6 + 50 * batch
            {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{stats:?}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    // The bucket refills at the rate while the batches go out.
    let refill = started.elapsed().as_secs_f64() * f64::from(tern_discv4::PER_IP_RATE);
    let allowed = 2 * u64::from(tern_discv4::PER_IP_RATE) + refill.ceil() as u64;
    assert!(stats.received <= allowed, "{stats:?}, {allowed} allowed");
    assert!(stats.rate_limited > 0 || allowed >= 300, "{stats:?}");
    assert_eq!(stats.malformed, 5, "{stats:?}");
    assert_eq!(stats.unsolicited, 1, "{stats:?}");
    assert_eq!(service.table_len().await, 0, "the unsolicited Pong bonded nobody");
}

/// Records requested from several nodes in the same second all arrive: an ENRRequest is
/// only `[expiration]`, so those requests are the same packet with the same hash, and
/// pairing answers by hash alone credited every answer to the last node asked (the
/// others' were dropped as unsolicited, and their fork ids never known).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_asked_of_many_nodes_at_once_all_arrive() {
    let hub = start(71, vec![]).await;
    let mut reports = hub.subscribe();
    let mut nodes = Vec::new();
    for seed in 72..78u8 {
        let mut c = config(seed, vec![hub.local()]);
        c.fork_id = Some(ForkId { hash: ForkHash([seed; 4]), next: 0 });
        nodes.push(Discv4::spawn(c).await.unwrap());
    }
    // Reports come in any order: collect them until every node's is in.
    let mut got = std::collections::HashMap::new();
    let collect = async {
        while got.len() < nodes.len() {
            let d = reports.recv().await.unwrap();
            got.insert(d.node.id, d.fork_id);
        }
    };
    tokio::time::timeout(Duration::from_secs(30), collect).await.expect("every node reported");
    for (i, n) in nodes.iter().enumerate() {
        let want = ForkId { hash: ForkHash([72 + i as u8; 4]), next: 0 };
        assert_eq!(got[&n.local().id], Some(want), "node {i}");
    }
    assert_eq!(hub.stats().unsolicited, 0, "{:?}", hub.stats());
}
