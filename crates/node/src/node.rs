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
    shutdown: watch::Sender<bool>,
    sync_task: tokio::task::JoinHandle<Result<(), StoreError>>,
    validator: Option<tokio::task::JoinHandle<Result<(), ValidatorError>>>,
}

impl Node {
    /// Opens the store (initialising it from the genesis), starts the network and, with a
    /// validator key, the sealing loop whose blocks are announced to peers.
    pub async fn start(mut config: NodeConfig) -> Result<Self, NodeError> {
        let store = ChainStore::init(&config.datadir, &config.spec)?;
        config.network.datadir = Some(config.datadir.clone());
        let network =
            tern_network::start(config.network, config.spec.clone(), store.clone()).await?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (sync_manager, sync) = BlockSyncManager::new(
            config.spec.clone(),
            config.sync.clone(),
            network.clone(),
            store.clone(),
        )
        .await?;
        let sync_task = tokio::spawn(sync_manager.run(shutdown_rx.clone()));
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
        Ok(Self { network, store, sync, shutdown, sync_task, validator })
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
        self.network.shutdown().await;
        Ok(())
    }
}
