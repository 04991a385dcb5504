//! The errors RPC methods answer with, and their JSON-RPC codes (geth's where it has one).

use alloy_primitives::Bytes;
use jsonrpsee::types::ErrorObjectOwned;
use tern_execution::CallError;
use tern_storage::StoreError;

/// Invalid method parameters ([JSON-RPC 2.0](https://www.jsonrpc.org/specification#error_object)).
pub const INVALID_PARAMS: i32 = -32602;
/// An internal error ([JSON-RPC 2.0](https://www.jsonrpc.org/specification#error_object)).
pub const INTERNAL_ERROR: i32 = -32603;
/// geth's generic server error (the code of "header not found", pool refusals, …).
pub const SERVER_ERROR: i32 = -32000;
/// A request beyond a configured limit (EIP-1474's "limit exceeded").
pub const LIMIT_EXCEEDED: i32 = -32005;
/// geth's code for a reverted call; the revert data goes in `data`.
pub const EXECUTION_REVERTED: i32 = 3;
/// geth's code for an unknown block tag (`safe`/`finalized` not known yet).
pub const UNKNOWN_BLOCK: i32 = -39001;

/// Why an RPC method failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The parameters are malformed.
    #[error("{0}")]
    InvalidParams(String),
    /// A block the request names does not exist.
    #[error("header not found")]
    HeaderNotFound,
    /// A block tag with no block behind it yet (`safe`, `finalized`).
    #[error("{0}")]
    UnknownBlock(String),
    /// The request asks for more than the node's limits allow.
    #[error("{0}")]
    LimitExceeded(String),
    /// The call reverted.
    #[error("{message}")]
    Reverted {
        /// geth's message: `execution reverted` and the decoded reason.
        message: String,
        /// The revert data.
        data: Bytes,
    },
    /// The request could not be served (execution refused it, the pool refused a
    /// transaction, state not kept…).
    #[error("{0}")]
    Server(String),
    /// The node failed (a store error).
    #[error("{0}")]
    Internal(String),
}

impl RpcError {
    /// The JSON-RPC error code.
    pub fn code(&self) -> i32 {
        match self {
            Self::InvalidParams(_) => INVALID_PARAMS,
            Self::HeaderNotFound | Self::Server(_) => SERVER_ERROR,
            Self::UnknownBlock(_) => UNKNOWN_BLOCK,
            Self::LimitExceeded(_) => LIMIT_EXCEEDED,
            Self::Reverted { .. } => EXECUTION_REVERTED,
            Self::Internal(_) => INTERNAL_ERROR,
        }
    }
}

impl From<RpcError> for ErrorObjectOwned {
    fn from(e: RpcError) -> Self {
        let code = e.code();
        match e {
            RpcError::Reverted { message, data } => {
                ErrorObjectOwned::owned(code, message, Some(data))
            }
            other => ErrorObjectOwned::owned(code, other.to_string(), None::<()>),
        }
    }
}

impl From<StoreError> for RpcError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ProofUnavailable { .. } | StoreError::StateAhead { .. } => {
                Self::Server(e.to_string())
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<CallError> for RpcError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Reverted { ref output } => {
                Self::Reverted { message: e.to_string(), data: output.clone() }
            }
            CallError::InvalidRequest(m) => Self::InvalidParams(m),
            CallError::State(m) => Self::Internal(m),
            other => Self::Server(other.to_string()),
        }
    }
}

/// What every method returns.
pub type RpcResult<T> = Result<T, RpcError>;
