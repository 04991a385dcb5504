//! Assembles a Tern node from its parts: the chain store, the network and the
//! validator's sealing loop (sync joins here as it lands).

pub(crate) mod gossip;
mod metrics;
mod node;
mod pool;
mod rpc;
pub mod testing;
mod validator;

pub use gossip::REANNOUNCE_INTERVAL;
pub use node::{DiscoveryConfig, Node, NodeConfig, NodeError, DISCOVERY_NODES_FILE, STOP_TIMEOUT};
pub use pool::{NodePool, MAX_REORG_DEPTH, PROPAGATE_QUEUE};
pub use validator::{build_budget, run_validator, ValidatorError, MAX_BUILD_TIME};
