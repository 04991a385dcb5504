//! Shared helpers for the Rust tests that drive `tests/interop/peer.mjs`
//! (`@ethereumjs/devp2p`, pinned in `tests/interop/package.json`). Included with
//! `#[path]` by the interop tests of each crate.
#![allow(dead_code, unreachable_pub)]

use serde_json::Value;
use std::{path::PathBuf, process::Stdio, sync::Mutex, time::Duration};
use tokio::{
    io::{AsyncBufReadExt, BufReader, Lines},
    process::{Child, ChildStdout, Command},
};

/// The client id the script presents in Hello.
pub const JS_CLIENT_ID: &str = "ethereumjs-devp2p/interop-test";

/// The script's output, one JSON event per line.
pub type Events = Lines<BufReader<ChildStdout>>;

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop")
}

/// Installs the pinned npm packages once per test binary (`npm ci`).
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

/// Starts `node peer.mjs ARGS`; the child is killed when dropped.
pub fn spawn_peer(args: &[&str]) -> (Child, Events) {
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

/// The next event named `name`; other events are echoed to stderr.
pub async fn event(lines: &mut Events, name: &str) -> Value {
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

/// The next `error` or `disconnect` event (ethereumjs refused or lost the session).
pub async fn refusal(lines: &mut Events) -> Value {
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if v["event"] == "error" || v["event"] == "disconnect" {
                return v;
            }
            assert_ne!(v["event"], "status", "ethereumjs accepted a mismatched Status: {line}");
        }
        panic!("peer.mjs ended without refusing");
    };
    tokio::time::timeout(Duration::from_secs(30), read).await.expect("peer.mjs timed out")
}
