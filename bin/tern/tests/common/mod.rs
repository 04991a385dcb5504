//! Helpers of the process tests: `tern node` children, their logs, JSON-RPC and metrics.
#![allow(dead_code)] // each test binary uses its own subset

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

pub(crate) const TERN: &str = env!("CARGO_BIN_EXE_tern");

pub(crate) fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tern-proc-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A child process killed when dropped (so a failing test leaves nothing running).
pub(crate) struct Node(pub(crate) Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Node {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Node {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// Starts `tern node` with `args`; its log lines arrive on the returned channel.
pub(crate) fn node(datadir: &Path, args: &[&str]) -> (Node, mpsc::Receiver<String>) {
    let mut child = Command::new(TERN)
        .args([
            "node",
            "--datadir",
            datadir.to_str().unwrap(),
            "--addr",
            "127.0.0.1",
            "--port",
            "0",
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out: ChildStdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Node(child), rx)
}

/// Waits for a log line containing `needle`; returns it.
pub(crate) fn wait_line(rx: &mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(e) => panic!("no log line with {needle:?}: {e}"),
        }
    }
}

pub(crate) fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The enode URL a node logs at start.
pub(crate) fn enode_of(log: &mpsc::Receiver<String>) -> String {
    let line = strip_ansi(&wait_line(log, "node started"));
    line.split_whitespace().find_map(|w| w.strip_prefix("enode=")).unwrap().to_string()
}

/// A free loopback port for a listener whose bound port a node does not log (metrics):
/// below Linux's ephemeral range (32768–60999), so the outbound connections of nodes
/// already running cannot take it between this call and the node's bind. Never the same
/// port twice in one test binary.
pub(crate) fn free_port() -> String {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    let mut state = nanos ^ (u64::from(std::process::id()) << 20) | 1;
    loop {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let port = 20_000 + (state % 12_000) as u16;
        if !given.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port.to_string();
        }
    }
}

/// Starts `tern node` with `args` and JSON-RPC on a port the node picks itself (no race
/// with other processes for it); returns the child, its log and the port it logged.
pub(crate) fn node_with_rpc(
    datadir: &Path,
    args: &[&str],
) -> (Node, mpsc::Receiver<String>, String) {
    let mut all = args.to_vec();
    all.extend(["--http", "--http.port", "0"]);
    let (child, log) = node(datadir, &all);
    let line = strip_ansi(&wait_line(&log, "JSON-RPC listening"));
    let port = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http=http://"))
        .and_then(|a| a.rsplit(':').next())
        .expect("the JSON-RPC line names its address")
        .to_string();
    (child, log, port)
}

/// Sends `signal` and waits for the process to exit, at most 20 s (a hang fails the test
/// instead of stalling CI; the node itself stops within ~2 s).
pub(crate) fn stop_with(child: &mut Child, signal: &str) -> std::process::ExitStatus {
    let _ = Command::new("kill").args([signal, &child.id().to_string()]).status();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the node did not stop within 20 s of {signal}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn interrupt(child: &mut Child) {
    let status = stop_with(child, "-INT");
    assert!(status.success(), "a stopped node exits cleanly: {status}");
}

pub(crate) fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else { return String::new() };
    let _ = write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The value of the first sample whose line starts with `series`.
pub(crate) fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// A JSON-RPC call over plain HTTP; the `result`.
pub(crate) fn rpc(
    port: &str,
    method: &str,
    params: serde_json::Value,
) -> Option<serde_json::Value> {
    use std::io::{Read, Write};
    let addr = format!("127.0.0.1:{port}");
    let mut s = std::net::TcpStream::connect(&addr).ok()?;
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        .to_string();
    write!(s, "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    serde_json::from_str::<serde_json::Value>(response.split("\r\n\r\n").nth(1)?)
        .ok()?
        .get("result")
        .cloned()
}
