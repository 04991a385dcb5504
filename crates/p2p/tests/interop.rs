//! Interoperability with an independent implementation: `@ethereumjs/devp2p` (pinned in
//! `tests/interop/package.json`), driven by `tests/interop/peer.mjs`.
//!
//! Needs Node.js and npm; the npm packages are installed on first use (`npm ci`).

use futures::StreamExt;
use serde_json::Value;
use std::{path::PathBuf, process::Stdio, sync::Mutex, time::Duration};
use tern_p2p::{
    accept, connect, generate_secret_key, peer_id, Capability, Enode, P2pConfig, Protocol,
};
use tokio::{
    io::{AsyncBufReadExt, BufReader, Lines},
    net::TcpListener,
    process::{Child, ChildStdout, Command},
};

const JS_CLIENT_ID: &str = "ethereumjs-devp2p/interop-test";

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop")
}

/// Installs the pinned npm packages once per test binary.
fn ensure_npm_packages() {
    static INSTALLED: Mutex<bool> = Mutex::new(false);
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if *installed || interop_dir().join("node_modules/@ethereumjs/devp2p").exists() {
        *installed = true;
        return;
    }
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(interop_dir())
        .status()
        .expect("npm is needed for the interop tests (install Node.js and npm)");
    assert!(status.success(), "npm ci failed in tests/interop");
    *installed = true;
}

fn config() -> P2pConfig {
    P2pConfig::new(
        generate_secret_key(),
        vec![
            Protocol::new(Capability::new("eth", 68), 17),
            Protocol::new(Capability::new("eth", 69), 18),
        ],
    )
}

fn spawn_peer(args: &[&str]) -> (Child, Lines<BufReader<ChildStdout>>) {
    ensure_npm_packages();
    let mut child = Command::new("node")
        .arg("peer.mjs")
        .args(args)
        .current_dir(interop_dir())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node is needed for the interop tests");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// The next JSON event the script prints whose `event` is `name`.
async fn event(lines: &mut Lines<BufReader<ChildStdout>>, name: &str) -> Value {
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if v["event"] == name {
                return v;
            }
            eprintln!("peer.mjs: {line}");
        }
        panic!("peer.mjs ended without a {name} event");
    };
    tokio::time::timeout(Duration::from_secs(30), read).await.expect("peer.mjs timed out")
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
