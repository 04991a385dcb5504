//! Node discovery wired to the dialer, in-process over UDP and TCP on 127.0.0.1: two
//! fullnodes that know only a third as bootnode find each other and connect.

use std::time::Duration;
use tern_network::NetworkEvent;
use tern_node::{testing::node_config, DiscoveryConfig, Node};

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("tern-discovery-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

async fn start(name: &str, bootnodes: Vec<tern_p2p::Enode>) -> Node {
    let mut config = node_config(dir(name), bootnodes, false);
    config.discovery = Some(DiscoveryConfig::default());
    Node::start(config).await.expect("node starts")
}

/// Waits (60 s at most) until the node whose `events` these are connects to `id`.
async fn connected_to(events: &mut tern_network::NetworkEvents, id: tern_p2p::PeerId) {
    let connected = async {
        loop {
            match events.recv().await {
                Some(NetworkEvent::PeerConnected(info)) if info.id == id => return,
                Some(_) => {}
                None => panic!("network events ended"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), connected).await.expect("connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fullnodes_that_know_only_a_bootnode_find_and_dial_each_other() {
    let boot = start("boot", vec![]).await;
    let bootnode = boot.network.local_enode();
    let a = start("a", vec![bootnode]).await;
    let mut events = a.network.subscribe().await;
    let b = start("b", vec![bootnode]).await;
    let b_id = b.network.local_enode().id;
    connected_to(&mut events, b_id).await;
    let found = a.discovery.as_ref().unwrap().closest(b_id).await;
    assert_eq!(found.first().map(|n| n.id), Some(b_id), "b is in a's discovery table");
    for n in [a, b, boot] {
        n.stop().await.unwrap();
    }
}

/// A node of another chain (another fork id in its record) enters the table but is never
/// dialed; a node of our chain discovered after it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_chain_is_discovered_but_never_dialed() {
    use alloy_eip2124::{ForkHash, ForkId};
    let boot = start("fboot", vec![]).await;
    let bootnode = boot.network.local_enode();
    let a = start("fa", vec![bootnode]).await;
    let a_discovery = a.discovery.clone().unwrap();
    let mut reports = a_discovery.subscribe();
    let mut events = a.network.subscribe().await;
    // The foreign node: discovery only, its "RLPx port" a listener we watch.
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    tcp.set_nonblocking(true).unwrap();
    let key = secp256k1::SecretKey::from_byte_array([0x5a; 32]).unwrap();
    let lo = std::net::IpAddr::from([127, 0, 0, 1]);
    let endpoint =
        tern_discv4::NodeEndpoint { ip: lo, udp: 0, tcp: tcp.local_addr().unwrap().port() };
    let mut config =
        tern_discv4::Discv4Config::new(key, std::net::SocketAddr::new(lo, 0), endpoint);
    let other_chain = ForkId { hash: ForkHash([0xde, 0xad, 0xbe, 0xef]), next: 0 };
    config.fork_id = Some(other_chain);
    config.bootnodes = vec![boot.discovery.as_ref().unwrap().local()];
    let foreign = tern_discv4::Discv4::spawn(config).await.unwrap();
    // a learns of it (through a lookup via the bootnode) with its fork id.
    let report = async {
        loop {
            let d = reports.recv().await.unwrap();
            if d.node.id == foreign.local().id {
                return d;
            }
        }
    };
    let seen = tokio::time::timeout(Duration::from_secs(60), report).await.expect("a finds it");
    assert_eq!(seen.fork_id, Some(other_chain));
    // A node of our chain found afterwards is dialed (reports are handled in order).
    let b = start("fb", vec![bootnode]).await;
    connected_to(&mut events, b.network.local_enode().id).await;
    assert!(tcp.accept().is_err(), "nobody dialed the node of another chain");
    assert!(a_discovery.nodes().await.iter().any(|n| n.id == foreign.local().id));
    for n in [a, b, boot] {
        n.stop().await.unwrap();
    }
}
