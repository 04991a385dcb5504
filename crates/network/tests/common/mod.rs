//! Helpers for the network tests: stores with chains, nodes, scripted peers.
#![allow(dead_code, unreachable_pub, missing_docs)]

use alloy_consensus::{Block, TxEnvelope};
use std::{
    path::PathBuf,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};
use tern_chainspec::{ChainSpec, Head, DEV_VALIDATOR_KEY};
use tern_consensus::chain_gen::generate_chain;
use tern_eth_wire::{genesis_status, EthStream, LocalStatus};
use tern_network::{start, NetworkConfig, NetworkEvent, NetworkHandle};
use tern_p2p::{generate_secret_key, EciesStream, Enode, P2pConfig};
use tern_storage::{ChainStore, SealedBlock};
use tokio::net::TcpStream;

static DIRS: AtomicU32 = AtomicU32::new(0);

pub fn tmp_dir(name: &str) -> PathBuf {
    let n = DIRS.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("tern-net-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub fn dev_key() -> secp256k1::SecretKey {
    let bytes = hex::decode(DEV_VALIDATOR_KEY).unwrap();
    secp256k1::SecretKey::from_byte_array(bytes.try_into().unwrap()).unwrap()
}

/// `n` dev-chain blocks with `txs` transfers each.
pub fn dev_chain(n: usize, txs: usize) -> Vec<Block<TxEnvelope>> {
    let spec = ChainSpec::dev();
    let sender = secp256k1::SecretKey::from_byte_array([9u8; 32]).unwrap();
    generate_chain(
        &spec,
        &[dev_key()],
        (spec.genesis_hash, &spec.genesis_header),
        n,
        txs,
        (&sender, 0),
    )
}

/// A store on `spec` holding `blocks`.
pub fn store_with(spec: &ChainSpec, blocks: &[Block<TxEnvelope>], name: &str) -> ChainStore {
    let store = ChainStore::init(&tmp_dir(name), spec).unwrap();
    let sealed: Vec<SealedBlock> = blocks.iter().cloned().map(SealedBlock::seal).collect();
    for chunk in sealed.chunks(500) {
        store.insert_blocks(chunk).unwrap();
    }
    store
}

/// A node config on loopback with the production request timeouts (2–20 s): answers of
/// megabytes take more than a second on a loaded machine, and only the tests about
/// timeouts should see one ([`short_timeouts`]).
pub fn config() -> NetworkConfig {
    let mut c = NetworkConfig::new(generate_secret_key());
    c.listen_addr = "127.0.0.1:0".parse().unwrap();
    c
}

/// Request timeouts of 300–500 ms, for tests that wait for a timeout to happen.
pub fn short_timeouts(c: &mut NetworkConfig) {
    c.request_timeout_min = Duration::from_millis(300);
    c.request_timeout_max = Duration::from_millis(500);
}

/// A running node and its event stream.
pub async fn node(
    config: NetworkConfig,
    spec: &ChainSpec,
    store: ChainStore,
) -> (NetworkHandle, tern_network::NetworkEvents) {
    let handle = start(config, spec.clone(), store).await.unwrap();
    let events = handle.subscribe().await;
    (handle, events)
}

/// The next event that `f` accepts, within 10 s.
pub async fn wait_for<T>(
    events: &mut tern_network::NetworkEvents,
    mut f: impl FnMut(&NetworkEvent) -> Option<T>,
) -> T {
    let fut = async {
        loop {
            let e = events.recv().await.expect("network stopped");
            if let Some(t) = f(&e) {
                return t;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), fut).await.expect("event did not arrive")
}

pub type RawPeer = EthStream<EciesStream<TcpStream>>;

/// A scripted peer built from tern's own stack: connects to `enode`, exchanges Status.
pub async fn raw_peer(
    enode: &Enode,
    spec: &ChainSpec,
    p2p: &P2pConfig,
) -> Result<RawPeer, tern_eth_wire::EthError> {
    let stream = tern_p2p::connect(p2p, enode).await?;
    let status: LocalStatus = genesis_status(spec);
    let filter =
        spec.fork_filter(Head { timestamp: spec.genesis_header.timestamp, ..Default::default() });
    EthStream::handshake(stream, &status, &filter).await
}

pub fn raw_config() -> P2pConfig {
    P2pConfig::new(generate_secret_key(), tern_eth_wire::eth_protocols())
}

/// [`raw_peer`] from the source address `ip` (any of 127.0.0.0/8 on loopback).
pub async fn raw_peer_from(
    ip: std::net::IpAddr,
    enode: &Enode,
    spec: &ChainSpec,
    p2p: &P2pConfig,
) -> Result<RawPeer, tern_eth_wire::EthError> {
    let io = |e: std::io::Error| tern_p2p::P2pError::from(tern_p2p::EciesError::Io(e));
    let socket = tokio::net::TcpSocket::new_v4().map_err(io)?;
    socket.bind(std::net::SocketAddr::new(ip, 0)).map_err(io)?;
    let tcp = socket.connect(enode.tcp_addr()).await.map_err(io)?;
    let ecies = EciesStream::connect(tcp, p2p.secret_key, enode.id)
        .await
        .map_err(tern_p2p::P2pError::from)?;
    let stream =
        tern_p2p::P2pStream::handshake(ecies, enode.id, &p2p.hello(), &p2p.protocols).await?;
    let status: LocalStatus = genesis_status(spec);
    let filter =
        spec.fork_filter(Head { timestamp: spec.genesis_header.timestamp, ..Default::default() });
    EthStream::handshake(stream, &status, &filter).await
}

/// The standing of `peer` once `f` accepts it, polled through the handle (the manager
/// answers in order, so each poll sees every penalty sent before it).
pub async fn wait_standing(
    node: &NetworkHandle,
    peer: tern_p2p::PeerId,
    f: impl Fn(&tern_network::PeerStanding) -> bool,
) -> tern_network::PeerStanding {
    let fut = async {
        loop {
            let s = node.standing(peer).await;
            if f(&s) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), fut).await.expect("standing not reached")
}
