//! A whole node: chain store, network, and (with a validator key) the sealing loop.

use crate::{run_validator, ValidatorError};
use std::path::PathBuf;
use tern_chainspec::ChainSpec;
use tern_consensus::Sealer;
use tern_network::{NetworkConfig, NetworkError, NetworkHandle};
use tern_storage::{ChainStore, StoreError};
use tern_sync::{BlockSyncManager, SyncConfig, SyncHandle};
use tokio::sync::watch;
use tracing::{debug, info};

/// Everything a node is made of.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Data directory (`db/`, `known-peers.json`).
    pub datadir: PathBuf,
    /// The chain.
    pub spec: ChainSpec,
    /// Network settings (its `datadir` is set from ours).
    pub network: NetworkConfig,
    /// The Clique signing key, for validators.
    pub validator_key: Option<secp256k1::SecretKey>,
    /// Sync tuning.
    pub sync: SyncConfig,
    /// Where to serve JSON-RPC over HTTP (none: no RPC).
    pub http: Option<std::net::SocketAddr>,
    /// Where to serve Prometheus metrics (`/metrics`; none: no metrics).
    pub metrics: Option<std::net::SocketAddr>,
    /// Transaction pool limits.
    pub txpool: tern_txpool::PoolConfig,
    /// JSON-RPC limits.
    pub rpc: tern_rpc::RpcConfig,
    /// Node discovery (discv4); `None`: peers come only from bootnodes, trusted peers
    /// and known-peers.json.
    pub discovery: Option<DiscoveryConfig>,
}

/// Node discovery settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// The UDP port (`None`: the TCP port).
    pub port: Option<u16>,
    /// The address put in our discovery packets and enode (`--nat extip:IP`; `None`: the
    /// listen address).
    pub external_ip: Option<std::net::IpAddr>,
}

/// Why a node stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The store could not be opened or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The network could not start.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// The validator failed.
    #[error(transparent)]
    Validator(#[from] ValidatorError),
    /// The metrics endpoint could not start.
    #[error("cannot serve metrics on {addr} (--metrics): {error}")]
    Metrics {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        error: String,
    },
    /// A task of the node panicked (a bug): the node stops with this error.
    #[error("the {task} task panicked: {message}")]
    TaskPanicked {
        /// Which task.
        task: &'static str,
        /// The panic message.
        message: String,
    },
    /// A task of the node returned while the node was running.
    #[error("the {0} task ended unexpectedly")]
    TaskEnded(&'static str),
    /// The discovery socket could not be bound.
    #[error("cannot start node discovery on UDP {addr} (--discovery.port): {error}")]
    Discovery {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        error: std::io::Error,
    },
    /// The network task ended unexpectedly.
    #[error("the network stopped: {0}")]
    NetworkStopped(String),
    /// The JSON-RPC server could not start.
    #[error("cannot serve JSON-RPC on {addr} (--http.addr/--http.port): {error}")]
    Rpc {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        error: std::io::Error,
    },
}

/// How long [`Node::stop`] waits for the validator, sync and the network to stop before
/// abandoning them (the store is consistent at every commit, so abandoning a write loses
/// at most that batch).
pub const STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1500);

/// The result of a joined task: its own error, or its panic as [`NodeError::TaskPanicked`].
fn joined<E>(
    task: &'static str,
    result: Result<Result<(), E>, tokio::task::JoinError>,
) -> Result<(), NodeError>
where
    NodeError: From<E>,
{
    match result {
        Ok(r) => r.map_err(NodeError::from),
        Err(e) if e.is_panic() => {
            let panic = e.into_panic();
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            tracing::error!(task, %message, "task panicked");
            Err(NodeError::TaskPanicked { task, message })
        }
        // Cancelled: we aborted it.
        Err(_) => Ok(()),
    }
}

/// Waits for `task` until `deadline`; past it, aborts the task and says so.
async fn join_by<E>(
    task: &'static str,
    handle: &mut tokio::task::JoinHandle<Result<(), E>>,
    deadline: tokio::time::Instant,
) -> Result<(), NodeError>
where
    NodeError: From<E>,
{
    match tokio::time::timeout_at(deadline, &mut *handle).await {
        Ok(result) => joined(task, result),
        Err(_) => {
            tracing::warn!(task, "did not stop in time; abandoned");
            handle.abort();
            Ok(())
        }
    }
}

/// A started node.
#[derive(Debug)]
pub struct Node {
    /// The network.
    pub network: NetworkHandle,
    /// The chain store.
    pub store: ChainStore,
    /// Sync progress.
    pub sync: SyncHandle,
    /// The transaction pool.
    pub pool: std::sync::Arc<crate::NodePool>,
    /// The JSON-RPC address, if serving.
    pub rpc_addr: Option<std::net::SocketAddr>,
    /// Node discovery, if enabled.
    pub discovery: Option<tern_discv4::Discv4>,
    rpc: Option<jsonrpsee::server::ServerHandle>,
    shutdown: watch::Sender<bool>,
    sync_task: Option<tokio::task::JoinHandle<Result<(), StoreError>>>,
    validator: Option<tokio::task::JoinHandle<Result<(), ValidatorError>>>,
}

impl Node {
    /// Opens the store (initialising it from the genesis), starts the network and, with a
    /// validator key, the sealing loop whose blocks are announced to peers.
    pub async fn start(mut config: NodeConfig) -> Result<Self, NodeError> {
        if let Some(addr) = config.metrics {
            crate::metrics::install(addr).map_err(|error| NodeError::Metrics { addr, error })?;
            info!(url = %format!("http://{addr}/metrics"), "Prometheus metrics");
        }
        let store = ChainStore::init(&config.datadir, &config.spec)?;
        config.network.datadir = Some(config.datadir.clone());
        let network =
            tern_network::start(config.network.clone(), config.spec.clone(), store.clone()).await?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let discovery = match &config.discovery {
            None => None,
            Some(d) => Some(
                start_discovery(
                    d,
                    &config.network,
                    &config.datadir,
                    &config.spec,
                    &store,
                    &network,
                    shutdown_rx.clone(),
                )
                .await?,
            ),
        };
        let (sync_manager, sync) = BlockSyncManager::new(
            config.spec.clone(),
            config.sync.clone(),
            network.clone(),
            store.clone(),
        )
        .await?;
        let sync_task = tokio::spawn(sync_manager.run(shutdown_rx.clone()));
        let pool = crate::NodePool::new(config.spec.clone(), store.clone(), config.txpool)?;
        tokio::spawn(pool.clone().maintain(shutdown_rx.clone()));
        tokio::spawn(crate::gossip::run_gossip(
            network.clone(),
            pool.clone(),
            sync.clone(),
            shutdown_rx.clone(),
        ));
        let (rpc, rpc_addr) = match config.http {
            None => (None, None),
            Some(addr) => {
                let spec = std::sync::Arc::new(config.spec.clone());
                let events = tern_rpc::ChainEvents::spawn(store.clone())
                    .map_err(|e| NodeError::Rpc { addr, error: std::io::Error::other(e) })?;
                let limits = &config.rpc;
                let ctx = tern_rpc::RpcContext {
                    spec,
                    store: store.clone(),
                    network: network.clone(),
                    sync: sync.clone(),
                    pool: pool.clone(),
                    client_id: config.network.client_id.clone().unwrap_or_else(tern_p2p::client_id),
                    config: std::sync::Arc::new(limits.clone()),
                    events,
                    filters: std::sync::Arc::new(tern_rpc::Filters::new(
                        limits.max_filters,
                        limits.filter_timeout,
                    )),
                    discovery: discovery.clone(),
                    clique: tern_sync::CliqueSnapshots::new(&config.spec, store.clone()),
                };
                let (handle, local) = tern_rpc::start_rpc(addr, ctx)
                    .await
                    .map_err(|error| NodeError::Rpc { addr, error })?;
                info!(http = %format!("http://{local}"), ws = %format!("ws://{local}"), "JSON-RPC listening");
                (Some(handle), Some(local))
            }
        };
        let validator = match config.validator_key {
            None => None,
            Some(key) => {
                let sealer = Sealer::new(key);
                let (sealed_tx, mut sealed_rx) = watch::channel(store.best_block()?);
                let announcer = network.clone();
                tokio::spawn(async move {
                    while sealed_rx.changed().await.is_ok() {
                        let (number, hash) = *sealed_rx.borrow_and_update();
                        announcer.announce_block(number, hash).await;
                    }
                });
                let (spec, store, pool) = (config.spec.clone(), store.clone(), pool.clone());
                Some(tokio::spawn(async move {
                    run_validator(&spec, store, pool, sealer, sealed_tx, shutdown_rx).await
                }))
            }
        };
        info!(enode = %network.local_enode(), validator = validator.is_some(), "node running");
        let sync_task = Some(sync_task);
        Ok(Self {
            network,
            store,
            sync,
            pool,
            rpc_addr,
            discovery,
            rpc,
            shutdown,
            sync_task,
            validator,
        })
    }

    /// Waits until the validator, sync or the network ends: with its error, or
    /// [`NodeError::TaskPanicked`] if it panicked. (None of them ends on its own while
    /// the node runs, so any end is a failure.)
    pub async fn wait(&mut self) -> Result<(), NodeError> {
        enum Ended {
            Validator(Result<(), NodeError>),
            Sync(Result<(), NodeError>),
            Network(String),
        }
        let validator = async {
            match &mut self.validator {
                Some(v) => joined("validator", v.await),
                None => std::future::pending().await,
            }
        };
        let sync = async {
            match &mut self.sync_task {
                Some(t) => joined("sync", t.await),
                None => std::future::pending().await,
            }
        };
        let network = self.network.clone();
        let ended = tokio::select! {
            r = validator => Ended::Validator(r),
            r = sync => Ended::Sync(r),
            why = network.stopped() => Ended::Network(why),
        };
        // Whatever ended, the rest is stopped too; a joined task is not joined again.
        let _ = self.shutdown.send(true);
        match ended {
            Ended::Validator(r) => {
                self.validator = None;
                r.and(Err(NodeError::TaskEnded("validator")))
            }
            Ended::Sync(r) => {
                self.sync_task = None;
                r.and(Err(NodeError::TaskEnded("sync")))
            }
            Ended::Network(why) => Err(NodeError::NetworkStopped(why)),
        }
    }

    /// Our enode URL as others should dial it: with the discovery address (`--nat
    /// extip:`) and UDP port (`?discport=` when it differs from the TCP port).
    pub fn enode(&self) -> tern_p2p::Enode {
        let mut enode = self.network.local_enode();
        if let Some(d) = &self.discovery {
            let local = d.local().endpoint;
            (enode.address, enode.udp_port) = (local.ip, local.udp);
        }
        enode
    }

    /// Stops the validator, sync and the network (peers get Disconnect(ClientQuitting)),
    /// within about [`STOP_TIMEOUT`] whatever they are doing.
    pub async fn stop(mut self) -> Result<(), NodeError> {
        let _ = self.shutdown.send(true);
        let deadline = tokio::time::Instant::now() + STOP_TIMEOUT;
        let mut result = Ok(());
        if let Some(mut v) = self.validator.take() {
            result = result.and(join_by("validator", &mut v, deadline).await);
        }
        if let Some(mut s) = self.sync_task.take() {
            result = result.and(join_by("sync", &mut s, deadline).await);
        }
        if let Some(rpc) = self.rpc.take() {
            let _ = rpc.stop();
        }
        if let Some(d) = &self.discovery {
            // Saves the table for the next start.
            let _ = tokio::time::timeout(STOP_TIMEOUT / 3, d.shutdown()).await;
        }
        if tokio::time::timeout(STOP_TIMEOUT / 3, self.network.shutdown()).await.is_err() {
            tracing::warn!("the network did not stop in time; abandoned");
        }
        result
    }
}

/// The file the discovery table is kept in, in the data directory.
pub const DISCOVERY_NODES_FILE: &str = "discovery-nodes.txt";

/// How often the fork id of our record is checked against the head (it changes when the
/// chain passes a fork).
const FORK_ID_CHECK: std::time::Duration = std::time::Duration::from_secs(30);

/// The chain's head as a fork-id `Head`.
fn head_of(store: &ChainStore) -> Option<tern_chainspec::Head> {
    let (number, hash) = store.best_block().ok()?;
    let header = store.header(hash).ok()??;
    Some(tern_chainspec::Head { number, hash, timestamp: header.timestamp, ..Default::default() })
}

/// Starts discv4 beside the network: UDP on the TCP listen address (or `--discovery.port`),
/// bootnodes and the saved table as first contacts, our fork id in our record. Every node
/// it bonds with whose record announces a fork id our chain accepts (EIP-2124) is offered
/// to the dialer; nodes of other chains, and nodes without a fork id, are never dialed.
async fn start_discovery(
    d: &DiscoveryConfig,
    net: &NetworkConfig,
    datadir: &std::path::Path,
    spec: &ChainSpec,
    store: &ChainStore,
    network: &NetworkHandle,
    mut shutdown: watch::Receiver<bool>,
) -> Result<tern_discv4::Discv4, NodeError> {
    use tern_discv4::{NodeEndpoint, NodeRecord};
    let local = network.local_enode();
    let listen = std::net::SocketAddr::new(net.listen_addr.ip(), d.port.unwrap_or(local.tcp_port));
    let advertised = NodeEndpoint {
        ip: d.external_ip.unwrap_or(local.address),
        udp: listen.port(),
        tcp: local.tcp_port,
    };
    let head = head_of(store).ok_or(NodeError::Store(StoreError::NotInitialised))?;
    let mut fork_id = spec.fork_id(head.number, head.timestamp);
    let mut config = tern_discv4::Discv4Config::new(net.secret_key, listen, advertised);
    config.fork_id = Some(fork_id);
    config.nodes_file = Some(datadir.join(DISCOVERY_NODES_FILE));
    config.bootnodes = net
        .bootnodes
        .iter()
        .map(|e| NodeRecord {
            endpoint: NodeEndpoint { ip: e.address, udp: e.udp_port, tcp: e.tcp_port },
            id: e.id,
        })
        .collect();
    // `--port 0` means any port: if the TCP port's number is taken for UDP, any UDP port
    // will do too (an explicit port is an error when taken).
    let any_port = d.port.is_none() && net.listen_addr.port() == 0;
    let mut spawned = tern_discv4::Discv4::spawn(config.clone()).await;
    if any_port && matches!(spawned, Err(tern_discv4::Discv4Error::Bind { .. })) {
        config.listen.set_port(0);
        config.advertised.udp = 0;
        spawned = tern_discv4::Discv4::spawn(config).await;
    }
    let discovery = spawned.map_err(|e| match e {
        tern_discv4::Discv4Error::Bind { addr, error } => NodeError::Discovery { addr, error },
        other => NodeError::Discovery { addr: listen, error: std::io::Error::other(other) },
    })?;
    info!(udp = %discovery.local().endpoint.udp, enr = %discovery.local_enr().to_base64(), "node discovery (discv4) running");
    let mut found = discovery.subscribe();
    let (network, store, spec) = (network.clone(), store.clone(), spec.clone());
    let service = discovery.clone();
    tokio::spawn(async move {
        let mut check = tokio::time::interval(FORK_ID_CHECK);
        loop {
            let found = tokio::select! {
                _ = shutdown.changed() => return service.shutdown().await,
                _ = check.tick() => {
                    if let Some(head) = head_of(&store) {
                        let now = spec.fork_id(head.number, head.timestamp);
                        if now != fork_id {
                            info!(?now, "the chain passed a fork: our node record changes");
                            fork_id = now;
                            service.set_fork_id(now).await;
                        }
                    }
                    continue;
                }
                r = found.recv() => match r {
                    Ok(n) => n,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "discovery reports fell behind");
                        continue;
                    }
                    Err(_) => return,
                },
            };
            let node = found.node;
            tracing::trace!(node = %node.id, fork_id = ?found.fork_id, "discovery report");
            let Some(head) = head_of(&store) else { continue };
            let verdict = match found.fork_id {
                None => Err("no fork id in its record"),
                Some(id) => {
                    spec.fork_filter(head).validate(id).map_err(|_| "another chain's fork id")
                }
            };
            match verdict {
                Err(why) => {
                    let reason = if found.fork_id.is_none() { "no_fork_id" } else { "fork_id" };
                    metrics::counter!("tern_discovery_not_dialed_total", "reason" => reason)
                        .increment(1);
                    debug!(node = %node.id, why, "discovered node not dialed");
                }
                Ok(()) if node.endpoint.tcp != 0 => {
                    let addr = std::net::SocketAddr::new(node.endpoint.ip, node.endpoint.tcp);
                    let mut enode = tern_p2p::Enode::new(node.id, addr);
                    enode.udp_port = node.endpoint.udp;
                    network.add_peer(enode).await;
                }
                Ok(()) => {}
            }
        }
    });
    Ok(discovery)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panicking task is an error with its message (before, it counted as a clean end
    /// and `tern node` exited 0).
    #[tokio::test]
    async fn a_panicking_task_is_an_error() {
        let task = tokio::spawn(async {
            if true {
                panic!("boom");
            }
            Ok::<(), StoreError>(())
        });
        let e = joined("sync", task.await).unwrap_err();
        assert!(
            matches!(&e, NodeError::TaskPanicked { task: "sync", message } if message == "boom"),
            "{e}"
        );
        // Its own error passes through; an aborted task is no error.
        let failed = tokio::spawn(async { Err::<(), _>(StoreError::NotInitialised) });
        assert!(matches!(joined("sync", failed.await), Err(NodeError::Store(_))));
        let aborted = tokio::spawn(std::future::pending::<Result<(), StoreError>>());
        aborted.abort();
        assert!(joined("sync", aborted.await).is_ok());
    }
}
