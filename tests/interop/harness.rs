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
    let modules = ["@ethereumjs/devp2p", "ethers", "solc", "viem"];
    if *installed || modules.iter().all(|m| interop_dir().join("node_modules").join(m).exists()) {
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
    spawn_script("peer.mjs", args)
}

/// Starts `node SCRIPT ARGS` in `tests/interop`; the child is killed when dropped.
pub fn spawn_script(script: &str, args: &[&str]) -> (Child, Events) {
    ensure_npm_packages();
    let mut child = Command::new("node")
        .arg(script)
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

/// Creates `tests/interop/.venv` with the pinned Python packages (`requirements.txt`)
/// once per test binary.
fn ensure_python_venv() -> PathBuf {
    static INSTALLED: Mutex<bool> = Mutex::new(false);
    let python = interop_dir().join(".venv/bin/python");
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if *installed || python.exists() {
        *installed = true;
        return python;
    }
    let run = |cmd: &mut std::process::Command| {
        let status = cmd.current_dir(interop_dir()).status().expect("python3 is needed");
        assert!(status.success(), "{cmd:?} failed");
    };
    run(std::process::Command::new("python3").args(["-m", "venv", ".venv"]));
    run(std::process::Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "-q",
        "-r",
        "requirements.txt",
    ]));
    *installed = true;
    python
}

/// Runs a script to its end with `program` and returns the JSON events it printed (one
/// per line); panics if it fails, showing what it printed.
fn run_script(program: &std::path::Path, args: &[&str]) -> Vec<Value> {
    let out = std::process::Command::new(program)
        .args(args)
        .current_dir(interop_dir())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{stdout}\n{}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// `node SCRIPT ARGS` in tests/interop (pinned npm packages installed first).
pub fn run_node_script(args: &[&str]) -> Vec<Value> {
    ensure_npm_packages();
    run_script(std::path::Path::new("node"), args)
}

/// `python SCRIPT ARGS` in tests/interop's virtualenv (pinned packages installed first).
pub fn run_python_script(args: &[&str]) -> Vec<Value> {
    run_script(&ensure_python_venv(), args)
}
