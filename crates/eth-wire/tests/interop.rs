//! eth/68 Status exchange with an independent implementation, `@ethereumjs/devp2p`
//! (driven by `tests/interop/peer.mjs`), in both directions, on the built-in `dev` chain.

#[path = "../../../tests/interop/harness.rs"]
mod harness;

use futures::StreamExt;
use harness::{event, refusal, spawn_peer, JS_CLIENT_ID};
use tern_chainspec::{ChainSpec, Head};
use tern_eth_wire::{eth_protocols, genesis_status, EthError, EthStream, EthVersion, Status};
use tern_p2p::{generate_secret_key, peer_id, DisconnectReason, Enode, P2pConfig};
use tokio::net::TcpListener;

/// Writes the dev genesis as geth-style JSON for the script; returns (path, hash).
fn dev_genesis_file(name: &str) -> (std::path::PathBuf, String) {
    let spec = ChainSpec::dev();
    let path =
        std::env::temp_dir().join(format!("tern-interop-{}-{name}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_string(&spec.genesis).unwrap()).unwrap();
    (path, spec.genesis_hash.to_string())
}

fn filter(spec: &ChainSpec) -> tern_chainspec::ForkFilter {
    spec.fork_filter(Head { timestamp: spec.genesis_header.timestamp, ..Default::default() })
}

fn check_remote_status(status: &Status, spec: &ChainSpec) {
    let Status::Eth68(s) = status else { panic!("ethereumjs speaks eth/68") };
    assert_eq!((s.genesis, s.network_id), (spec.genesis_hash, spec.network_id));
    assert_eq!(s.fork_id, genesis_status(spec).fork_id);
}

fn check_js_status(v: &serde_json::Value, spec: &ChainSpec) {
    assert_eq!(v["networkId"], spec.network_id);
    assert_eq!(v["genesisHash"].as_str().unwrap(), spec.genesis_hash.to_string());
    let fork = genesis_status(spec).fork_id;
    assert_eq!(v["forkHash"].as_str().unwrap(), format!("0x{}", hex::encode(fork.hash.0)));
    assert_eq!(v["forkNext"], fork.next);
}

#[tokio::test]
async fn ethereumjs_dials_tern_and_exchanges_status() {
    let spec = ChainSpec::dev();
    let (genesis, hash) = dev_genesis_file("dial");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cfg = P2pConfig::new(generate_secret_key(), eth_protocols());
    let enode = Enode::new(peer_id(&cfg.secret_key), listener.local_addr().unwrap());
    let (mut child, mut lines) = spawn_peer(&[
        "dial",
        &enode.to_string(),
        "--genesis",
        genesis.to_str().unwrap(),
        "--genesis-hash",
        &hash,
    ]);
    let (tcp, _) = listener.accept().await.unwrap();
    let p2p = tern_p2p::accept(&cfg, tcp).await.unwrap();
    assert_eq!(p2p.remote_hello().client_id, JS_CLIENT_ID);
    let mut eth = EthStream::handshake(p2p, &genesis_status(&spec), &filter(&spec)).await.unwrap();
    assert_eq!(eth.version(), EthVersion::Eth68);
    check_remote_status(eth.remote_status(), &spec);
    let session = tokio::spawn(async move { while eth.next().await.is_some() {} });

    check_js_status(&event(&mut lines, "status").await, &spec);
    assert!(child.wait().await.unwrap().success());
    session.abort();
}

#[tokio::test]
async fn tern_dials_ethereumjs_and_exchanges_status() {
    let spec = ChainSpec::dev();
    let (genesis, hash) = dev_genesis_file("listen");
    let (mut child, mut lines) =
        spawn_peer(&["listen", "--genesis", genesis.to_str().unwrap(), "--genesis-hash", &hash]);
    let enode: Enode =
        event(&mut lines, "listening").await["enode"].as_str().unwrap().parse().unwrap();
    let cfg = P2pConfig::new(generate_secret_key(), eth_protocols());
    let p2p = tern_p2p::connect(&cfg, &enode).await.unwrap();
    let mut eth = EthStream::handshake(p2p, &genesis_status(&spec), &filter(&spec)).await.unwrap();
    check_remote_status(eth.remote_status(), &spec);
    let session = tokio::spawn(async move { while eth.next().await.is_some() {} });

    check_js_status(&event(&mut lines, "status").await, &spec);
    assert!(child.wait().await.unwrap().success());
    session.abort();
}

#[tokio::test]
async fn mismatched_genesis_ends_in_disconnect() {
    let spec = ChainSpec::dev();
    let (genesis, _) = dev_genesis_file("mismatch");
    // ethereumjs believes in another genesis hash for the same file.
    let wrong = format!("0x{}", "11".repeat(32));
    let (mut child, mut lines) =
        spawn_peer(&["listen", "--genesis", genesis.to_str().unwrap(), "--genesis-hash", &wrong]);
    let enode: Enode =
        event(&mut lines, "listening").await["enode"].as_str().unwrap().parse().unwrap();
    let cfg = P2pConfig::new(generate_secret_key(), eth_protocols());
    let p2p = tern_p2p::connect(&cfg, &enode).await.unwrap();
    let err = EthStream::handshake(p2p, &genesis_status(&spec), &filter(&spec)).await.unwrap_err();
    assert!(matches!(err, EthError::GenesisMismatch { .. }), "{err}");
    assert_eq!(err.disconnect_reason(), Some(DisconnectReason::SubprotocolSpecific));
    refusal(&mut lines).await;
    assert!(!child.wait().await.unwrap().success());
}
