//! Interoperability with an independent implementation: `@ethereumjs/devp2p` (pinned in
//! `tests/interop/package.json`), driven by `tests/interop/peer.mjs`.
//!
//! Needs Node.js and npm; the npm packages are installed on first use (`npm ci`).

#[path = "../../../tests/interop/harness.rs"]
mod harness;

use futures::StreamExt;
use harness::{event, spawn_peer, JS_CLIENT_ID};
use tern_p2p::{
    accept, connect, generate_secret_key, peer_id, Capability, Enode, P2pConfig, Protocol,
};
use tokio::net::TcpListener;

fn config() -> P2pConfig {
    P2pConfig::new(
        generate_secret_key(),
        vec![
            Protocol::new(Capability::new("eth", 68), 17),
            Protocol::new(Capability::new("eth", 69), 18),
        ],
    )
}

#[tokio::test]
async fn ethereumjs_dials_tern() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = config();
    cfg.port = listener.local_addr().unwrap().port();
    let enode = Enode::new(peer_id(&cfg.secret_key), listener.local_addr().unwrap());
    let (mut child, mut lines) = spawn_peer(&["dial", &enode.to_string()]);

    let (tcp, _) = listener.accept().await.unwrap();
    let mut stream = accept(&cfg, tcp).await.unwrap();
    assert_eq!(stream.remote_hello().client_id, JS_CLIENT_ID);
    assert_eq!(stream.shared_capabilities()[0].cap, Capability::new("eth", 68));
    let session = tokio::spawn(async move { while stream.next().await.is_some() {} });

    let hello = event(&mut lines, "hello").await;
    assert_eq!(hello["clientId"].as_str().unwrap(), cfg.client_id);
    assert_eq!(hello["id"].as_str().unwrap(), hex::encode(enode.id));
    assert_eq!(hello["protocolVersion"], 5);
    assert!(child.wait().await.unwrap().success());
    session.abort();
}

#[tokio::test]
async fn tern_dials_ethereumjs() {
    let (mut child, mut lines) = spawn_peer(&["listen"]);
    let listening = event(&mut lines, "listening").await;
    let enode: Enode = listening["enode"].as_str().unwrap().parse().unwrap();
    let cfg = config();

    let mut stream = connect(&cfg, &enode).await.unwrap();
    assert_eq!(stream.remote_hello().client_id, JS_CLIENT_ID);
    assert_eq!(stream.remote_hello().id, enode.id);
    assert_eq!(stream.shared_capabilities()[0].cap, Capability::new("eth", 68));
    let session = tokio::spawn(async move { while stream.next().await.is_some() {} });

    let hello = event(&mut lines, "hello").await;
    assert_eq!(hello["clientId"].as_str().unwrap(), cfg.client_id);
    assert_eq!(hello["id"].as_str().unwrap(), hex::encode(peer_id(&cfg.secret_key)));
    assert!(child.wait().await.unwrap().success());
    session.abort();
}
