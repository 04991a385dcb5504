//! `tern devnet`: a local Clique network of separate `tern node` processes on loopback.

use eyre::{Context, Result};
use std::io::Write;
use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};
use tern_chainspec::ChainSpec;
use tern_p2p::Enode;

/// One node of the devnet.
struct Member {
    name: String,
    datadir: PathBuf,
    enode: Enode,
    rpc: SocketAddr,
    validator_key: Option<PathBuf>,
}

/// Lowest port a devnet listens on.
const DEVNET_PORTS_FROM: u16 = 20_000;
/// How many ports above [`DEVNET_PORTS_FROM`] are tried: they stay below Linux's default
/// ephemeral range (32768–60999), so the outbound connections of nodes started earlier
/// cannot take the port a later node was given (a node then failed to start with
/// "Address already in use").
const DEVNET_PORTS: u16 = 12_000;

/// A free loopback port below the ephemeral range (bound, read, released), never one
/// this process handed out before.
fn free_port() -> Result<u16> {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    let mut state = (clock ^ (u64::from(std::process::id()) << 32)) | 1;
    for _ in 0..1000 {
        let port = DEVNET_PORTS_FROM
            + (crate::bench_exec::next_random(&mut state) % u64::from(DEVNET_PORTS)) as u16;
        if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return Ok(port);
        }
    }
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The key in `path`, created if missing.
fn key_at(path: &Path) -> Result<tern_p2p::SecretKey> {
    Ok(tern_p2p::load_or_generate_secret_key(path)?)
}

/// `1 validator`, `2 validators`.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// How a devnet is made.
#[derive(Debug, Clone)]
pub(crate) struct DevnetOptions {
    /// Validators (signers).
    pub(crate) validators: usize,
    /// Fullnodes.
    pub(crate) fullnodes: usize,
    /// Seconds between blocks (none: the dev chain's).
    pub(crate) period: Option<u64>,
    /// Block gas limit (none: the dev chain's).
    pub(crate) gas_limit: Option<u64>,
    /// Accounts funded in the genesis besides the signers, with this many wei each.
    pub(crate) funded: Vec<(alloy_primitives::Address, alloy_primitives::U256)>,
    /// More arguments for every `tern node`.
    pub(crate) node_args: Vec<String>,
    /// Print the table of nodes.
    pub(crate) print: bool,
    /// Serve Prometheus metrics from every node (each on its own port).
    pub(crate) metrics: bool,
}

/// A node of a running devnet.
pub(crate) struct DevnetNode {
    /// `validator-0`, `fullnode-1`...
    pub(crate) name: String,
    /// Its JSON-RPC address.
    pub(crate) rpc: SocketAddr,
    /// Its metrics address, if serving.
    pub(crate) metrics: Option<SocketAddr>,
    /// Its process.
    pub(crate) child: Child,
}

/// A running devnet: its nodes' processes, stopped (SIGINT) when dropped.
pub(crate) struct Devnet {
    /// Its nodes, validators first.
    pub(crate) nodes: Vec<DevnetNode>,
}

impl Drop for Devnet {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            let _ = Command::new("kill").args(["-INT", &n.child.id().to_string()]).status();
        }
        for n in &mut self.nodes {
            let _ = n.child.wait();
        }
    }
}

/// The genesis of a devnet with `signers`, as `opts` adjusts it.
fn devnet_spec(signers: &[alloy_primitives::Address], opts: &DevnetOptions) -> Result<ChainSpec> {
    let mut genesis = ChainSpec::clique_dev(signers).genesis;
    if let Some(period) = opts.period {
        if let Some(c) = genesis.config.clique.as_mut() {
            c.period = Some(period);
        }
    }
    if let Some(gas) = opts.gas_limit {
        genesis.gas_limit = gas;
    }
    for (address, balance) in &opts.funded {
        genesis.alloc.insert(
            *address,
            alloy_genesis::GenesisAccount { balance: *balance, ..Default::default() },
        );
    }
    Ok(ChainSpec::from_genesis(genesis)?)
}

/// Starts a devnet under `dir`.
pub(crate) fn launch(dir: &Path, opts: &DevnetOptions) -> Result<Devnet> {
    let (validators, fullnodes) = (opts.validators, opts.fullnodes);
    if validators == 0 {
        eyre::bail!("--validators must be at least 1");
    }
    std::fs::create_dir_all(dir)
        .wrap_err_with(|| format!("cannot create --dir {}", dir.display()))?;
    let mut members = Vec::new();
    let mut signers = Vec::new();
    for (kind, count) in [("validator", validators), ("fullnode", fullnodes)] {
        for i in 0..count {
            let name = format!("{kind}-{i}");
            let datadir = dir.join(&name);
            let node_key = key_at(&datadir.join("nodekey"))?;
            let validator_key = (kind == "validator").then(|| datadir.join("validator.key"));
            if let Some(path) = &validator_key {
                signers.push(tern_consensus::address_of(&key_at(path)?));
            }
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            let rpc = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            members.push(Member {
                name,
                datadir,
                enode: Enode::new(tern_p2p::peer_id(&node_key), addr),
                rpc,
                validator_key,
            });
        }
    }
    let genesis_path = dir.join("genesis.json");
    let spec = devnet_spec(&signers, opts)?;
    std::fs::write(&genesis_path, serde_json::to_string_pretty(&spec.genesis)?)?;
    let reread = ChainSpec::from_file(&genesis_path)?;
    eyre::ensure!(reread.genesis_hash == spec.genesis_hash, "genesis.json does not round-trip");

    let exe = std::env::current_exe()?;
    // Discovery does the rest: fullnodes know only the first node. Validators also know
    // each other, as proof-of-authority signers are configured: a signer cut off from the
    // others (they may all meet through the first) stalls the chain.
    let first = members[0].enode.to_string();
    let validator_enodes: Vec<String> =
        members.iter().filter(|m| m.validator_key.is_some()).map(|m| m.enode.to_string()).collect();
    let mut devnet = Devnet { nodes: Vec::new() };
    if opts.print {
        println!(
            "devnet: {}, {}, genesis {} ({})",
            plural(validators, "validator"),
            plural(fullnodes, "fullnode"),
            spec.genesis_hash,
            genesis_path.display()
        );
        println!("{:<12} {:<20} {:<24} enode", "node", "rpc", "log");
    }
    for m in &members {
        let log_path = dir.join(format!("{}.log", m.name));
        let log = std::fs::File::create(&log_path)?;
        let known: Vec<&String> = match m.validator_key {
            Some(_) => validator_enodes.iter().chain([&first]).collect(),
            None => vec![&first],
        };
        let mut bootnodes: Vec<&String> = Vec::new();
        for e in known {
            if *e != m.enode.to_string() && !bootnodes.contains(&e) {
                bootnodes.push(e);
            }
        }
        let mut cmd = Command::new(&exe);
        cmd.args(["node", "--datadir"])
            .arg(&m.datadir)
            .args(["--chain"])
            .arg(&genesis_path)
            .args(["--addr", "127.0.0.1", "--port", &m.enode.tcp_port.to_string()])
            .args(["--http", "--http.port", &m.rpc.port().to_string()])
            .env("NO_COLOR", "1")
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its stdin is a pipe we hold: when we die, however we die, it closes and the
            // node stops.
            .arg("--stop-on-stdin-close")
            .stdin(Stdio::piped());
        if !bootnodes.is_empty() {
            cmd.args([
                "--bootnodes",
                &bootnodes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","),
            ]);
        }
        if let Some(key) = &m.validator_key {
            cmd.args(["--enable-consensus", "--validator-key"]).arg(key);
        }
        cmd.args(&opts.node_args);
        let metrics = match opts.metrics {
            true => Some(SocketAddr::from(([127, 0, 0, 1], free_port()?))),
            false => None,
        };
        if let Some(addr) = metrics {
            cmd.args(["--metrics", &addr.to_string()]);
        }
        let child = cmd.spawn()?;
        devnet.nodes.push(DevnetNode { name: m.name.clone(), rpc: m.rpc, metrics, child });
        if !opts.print {
            continue;
        }
        println!(
            "{:<12} {:<20} {:<24} {}",
            m.name,
            format!("http://{}", m.rpc),
            log_path.display(),
            m.enode
        );
    }
    Ok(devnet)
}

/// Wei in one ether.
const ETHER: u128 = 1_000_000_000_000_000_000;

/// The first `count` accounts of the test mnemonic with their keys.
pub(crate) fn test_accounts(count: u32) -> Vec<(alloy_primitives::Address, tern_p2p::SecretKey)> {
    (0..count)
        .map(|i| {
            let key = crate::mnemonic::account_key(crate::mnemonic::TEST_MNEMONIC, i);
            (tern_consensus::address_of(&key), key)
        })
        .collect()
}

/// Starts the devnet under `dir` (blocks every `period` seconds, `accounts` test-mnemonic
/// accounts funded) and runs until Ctrl-C (or a node exits).
pub(crate) fn run(
    dir: &Path,
    validators: usize,
    fullnodes: usize,
    period: u64,
    accounts: u32,
) -> Result<()> {
    eyre::ensure!(period >= 1, "--period must be at least 1 second");
    let funded = test_accounts(accounts);
    let balance = alloy_primitives::U256::from(10_000 * ETHER);
    let opts = DevnetOptions {
        validators,
        fullnodes,
        period: Some(period),
        gas_limit: None,
        funded: funded.iter().map(|(a, _)| (*a, balance)).collect(),
        node_args: vec![],
        print: true,
        metrics: false,
    };
    let mut devnet = launch(dir, &opts)?;
    if !funded.is_empty() {
        println!(
            "\n{} accounts funded with 10000 ETH each, from the mnemonic \"{}\".\n\
             INSECURE: these keys are public; never use them outside development.",
            funded.len(),
            crate::mnemonic::TEST_MNEMONIC
        );
        for (i, (address, key)) in funded.iter().take(3).enumerate() {
            println!(
                "  ({i}) {} key 0x{}",
                address.to_checksum(None),
                hex::encode(key.secret_bytes())
            );
        }
        if funded.len() > 3 {
            println!("  … and {} more (m/44'/60'/0'/0/i)", funded.len() - 3);
        }
    }
    println!("Ctrl-C stops the devnet.");
    let (tx, rx) = std::sync::mpsc::channel();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::spawn(move || {
        rt.block_on(async {
            let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            else {
                return;
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        });
        let _ = tx.send(());
    });
    // Stop on Ctrl-C, or when a node exits by itself.
    loop {
        if rx.recv_timeout(std::time::Duration::from_millis(500)).is_ok() {
            break;
        }
        if let Some((name, status)) = devnet
            .nodes
            .iter_mut()
            .find_map(|n| n.child.try_wait().ok().flatten().map(|s| (n.name.clone(), s)))
        {
            eprintln!("{name} exited ({status}); stopping the devnet (see its log)");
            break;
        }
    }
    drop(devnet);
    // Stdout may be gone (a closed pipe); stopping quietly is fine then.
    let _ = writeln!(std::io::stdout(), "devnet stopped");
    Ok(())
}
