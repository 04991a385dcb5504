//! Assembles a Tern node from its parts: the chain store, the network and the
//! validator's sealing loop (sync joins here as it lands).

mod metrics;
mod node;
mod rpc;
pub mod testing;
mod validator;

pub use node::{Node, NodeConfig, NodeError, STOP_TIMEOUT};
pub use rpc::{rpc_module, start_rpc, RpcContext};
pub use validator::{run_validator, ValidatorError};
