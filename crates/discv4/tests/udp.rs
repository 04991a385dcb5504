//! Discovery services over real UDP on 127.0.0.1: nodes that know only a bootnode find
//! each other through it.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};
use tern_discv4::{Discv4, Discv4Config, NodeEndpoint, NodeRecord};

async fn start(seed: u8, bootnodes: Vec<NodeRecord>) -> Discv4 {
    let key = secp256k1::SecretKey::from_byte_array([seed; 32]).unwrap();
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut config =
        Discv4Config::new(key, SocketAddr::new(lo, 0), NodeEndpoint { ip: lo, udp: 0, tcp: 30303 });
    config.bootnodes = bootnodes;
    Discv4::spawn(config).await.expect("bind a UDP port")
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
    assert!(answer.nodes.iter().any(|n| n.id
        == tern_ecies::pk2id(&secp256k1::PublicKey::from_secret_key(
            secp256k1::SECP256K1,
            &c.key
        ))));
}
