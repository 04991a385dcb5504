//! discv4 against an independent implementation: `@ethereumjs/devp2p`'s DPT (driven by
//! `tests/interop/dpt.mjs`), both ways, over UDP on 127.0.0.1.

#[path = "../../../tests/interop/harness.rs"]
mod harness;

use harness::{event, spawn_script, Events};
use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};
use tern_discv4::{Discv4, Discv4Config, NodeEndpoint, NodeRecord};

async fn start(seed: u8, bootnodes: Vec<NodeRecord>) -> Discv4 {
    let key = secp256k1::SecretKey::from_byte_array([seed; 32]).unwrap();
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    // Distinct TCP ports: DPT's table also keys nodes by address and TCP port.
    let tcp = 30_000 + u16::from(seed);
    let mut config =
        Discv4Config::new(key, SocketAddr::new(lo, 0), NodeEndpoint { ip: lo, udp: 0, tcp });
    config.bootnodes = bootnodes;
    config.lookup_interval = Duration::from_secs(2);
    Discv4::spawn(config).await.unwrap()
}

fn enode(n: &NodeRecord) -> String {
    let e = n.endpoint;
    format!("enode://{}@{}:{}?discport={}", alloy_primitives::hex::encode(n.id), e.ip, e.tcp, e.udp)
}

fn hex_id(n: &Discv4) -> String {
    alloy_primitives::hex::encode(n.local().id)
}

/// Waits until DPT's table holds every one of `ids`.
async fn dpt_knows(lines: &mut Events, ids: &[String]) {
    let wait = async {
        loop {
            let table = event(lines, "table").await;
            let known: Vec<&str> =
                table["ids"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
            if ids.iter().all(|id| known.contains(&id.as_str())) {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait).await.expect("DPT's table");
}

/// Waits until `node`'s table holds every one of `ids`, asking around meanwhile.
async fn tern_knows(node: &Discv4, ids: &[alloy_primitives::B512]) {
    let wait = async {
        loop {
            let table: Vec<_> = node.nodes().await.iter().map(|n| n.id).collect();
            if ids.iter().all(|id| table.contains(id)) {
                return;
            }
            node.lookup(alloy_primitives::B512::random()).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .unwrap_or_else(|_| panic!("Tern's table lacks some of {ids:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ethereumjs_dpt_and_tern_find_each_other_and_each_others_neighbours() {
    // Tern's network: a and b (b bootstrapped from a).
    let a = start(61, vec![]).await;
    let b = start(62, vec![a.local()]).await;
    tern_knows(&a, &[b.local().id]).await;

    // DPT bootstraps from a: it bonds with a, and finds b through a's Neighbours.
    let (_dpt, mut lines) = spawn_script("dpt.mjs", &[&enode(&a.local())]);
    let listening = event(&mut lines, "listening").await;
    let dpt_id: alloy_primitives::B512 =
        format!("0x{}", listening["id"].as_str().unwrap()).parse().unwrap();
    let dpt_udp = listening["udp"].as_u64().unwrap() as u16;
    dpt_knows(&mut lines, &[hex_id(&a), hex_id(&b)]).await;
    // Tern found DPT too: a (it pinged a) and b (DPT pinged it after hearing of it).
    tern_knows(&a, &[dpt_id]).await;
    tern_knows(&b, &[dpt_id]).await;

    // The other way: c knows only DPT, and finds a and b through DPT's Neighbours.
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let dpt = NodeRecord { endpoint: NodeEndpoint { ip: lo, udp: dpt_udp, tcp: 0 }, id: dpt_id };
    let c = start(63, vec![dpt]).await;
    tern_knows(&c, &[dpt_id, a.local().id, b.local().id]).await;
}
