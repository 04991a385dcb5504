//! The node's pool as the RPC server sees it.

use crate::NodePool;
use alloy_primitives::{Address, B256};
use std::collections::BTreeMap;
use tern_txpool::{Incoming, PoolError, PoolStatus, ValidTx};
use tokio::sync::broadcast;

impl tern_rpc::TransactionPool for NodePool {
    fn add_transaction(&self, tx: Incoming) -> Result<B256, PoolError> {
        self.add(vec![tx]).pop().expect("one result per transaction")
    }

    fn transaction(&self, hash: &B256) -> Option<ValidTx> {
        self.get(hash).map(|(tx, _)| tx)
    }

    fn status(&self) -> PoolStatus {
        NodePool::status(self)
    }

    fn content(&self) -> (BTreeMap<Address, Vec<ValidTx>>, BTreeMap<Address, Vec<ValidTx>>) {
        NodePool::content(self)
    }

    fn pending_nonce(&self, sender: Address) -> Option<u64> {
        self.with_pool(|p| p.pending_nonce(&sender))
    }

    fn subscribe_pending(&self) -> broadcast::Receiver<B256> {
        self.subscribe_pending_hashes()
    }
}
