//! A whole node: chain store, network, and (with a validator key) the sealing loop.

use crate::{run_validator, ValidatorError};
use std::path::PathBuf;
use tern_chainspec::ChainSpec;
use tern_consensus::Sealer;
use tern_network::{NetworkConfig, NetworkError, NetworkHandle};
use tern_storage::{ChainStore, StoreError};
use tern_sync::{BlockSyncManager, SyncConfig, SyncHandle};
use tokio::sync::watch;
use tracing::info;

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
    /// The JSON-RPC server could not start.
    #[error("cannot serve JSON-RPC on {addr} (--http.addr/--http.port): {error}")]
    Rpc {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        error: std::io::Error,
    },
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
    /// The JSON-RPC address, if serving.
    pub rpc_addr: Option<std::net::SocketAddr>,
    rpc: Option<jsonrpsee::server::ServerHandle>,
    shutdown: watch::Sender<bool>,
    sync_task: tokio::task::JoinHandle<Result<(), StoreError>>,
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
        let (sync_manager, sync) = BlockSyncManager::new(
            config.spec.clone(),
            config.sync.clone(),
            network.clone(),
            store.clone(),
        )
        .await?;
        let sync_task = tokio::spawn(sync_manager.run(shutdown_rx.clone()));
        let (rpc, rpc_addr) = match config.http {
            None => (None, None),
            Some(addr) => {
                let ctx = crate::RpcContext {
                    spec: config.spec.clone(),
                    store: store.clone(),
                    network: network.clone(),
                    sync: sync.clone(),
                    client_id: config.network.client_id.clone().unwrap_or_else(tern_p2p::client_id),
                };
                let (handle, local) = crate::start_rpc(addr, ctx)
                    .await
                    .map_err(|error| NodeError::Rpc { addr, error })?;
                info!(url = %format!("http://{local}"), "JSON-RPC listening");
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
                let (spec, store) = (config.spec.clone(), store.clone());
                Some(tokio::spawn(async move {
                    run_validator(&spec, store, sealer, sealed_tx, shutdown_rx).await
                }))
            }
        };
        info!(enode = %network.local_enode(), validator = validator.is_some(), "node running");
        Ok(Self { network, store, sync, rpc_addr, rpc, shutdown, sync_task, validator })
    }

    /// Waits until the validator or sync fails.
    pub async fn wait(&mut self) -> Result<(), NodeError> {
        let validator = async {
            match &mut self.validator {
                Some(v) => v.await.unwrap_or(Ok(())).map_err(NodeError::from),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = validator => r,
            r = &mut self.sync_task => r.unwrap_or(Ok(())).map_err(NodeError::from),
        }
    }

    /// Stops the validator and the network (peers get Disconnect(ClientQuitting)).
    pub async fn stop(mut self) -> Result<(), NodeError> {
        let _ = self.shutdown.send(true);
        if let Some(v) = self.validator.take() {
            v.await.unwrap_or(Ok(()))?;
        }
        self.sync_task.await.unwrap_or(Ok(()))?;
        if let Some(rpc) = self.rpc.take() {
            let _ = rpc.stop();
        }
        self.network.shutdown().await;
        Ok(())
    }
}
