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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fullnodes_that_know_only_a_bootnode_find_and_dial_each_other() {
    let boot = start("boot", vec![]).await;
    let bootnode = boot.network.local_enode();
    let a = start("a", vec![bootnode]).await;
    let mut events = a.network.subscribe().await;
    let b = start("b", vec![bootnode]).await;
    let b_id = b.network.local_enode().id;
    let connected = async {
        loop {
            match events.recv().await {
                Some(NetworkEvent::PeerConnected(info)) if info.id == b_id => return,
                Some(_) => {}
                None => panic!("network events ended"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), connected)
        .await
        .expect("a finds b through the bootnode's discovery table and connects");
    let found = a.discovery.as_ref().unwrap().closest(b_id).await;
    assert_eq!(found.first().map(|n| n.id), Some(b_id), "b is in a's discovery table");
    for n in [a, b, boot] {
        n.stop().await.unwrap();
    }
}
