//! Positional parameters read one by one, with geth's error wording for bad ones.

use crate::error::{RpcError, RpcResult};
use jsonrpsee::types::{params::ParamsSequence, Params};
use serde::Deserialize;

/// The parameters of one call.
pub(crate) struct Args<'a>(ParamsSequence<'a>, usize);

impl<'a> Args<'a> {
    pub(crate) fn new(p: &'a Params<'a>) -> Self {
        Self(p.sequence(), 0)
    }

    fn wrap(&self, e: jsonrpsee::types::ErrorObjectOwned) -> RpcError {
        let detail = e.data().map(|d| d.get().trim_matches('"').to_string());
        RpcError::InvalidParams(format!(
            "invalid argument {}: {}",
            self.1,
            detail.unwrap_or_else(|| e.message().to_string())
        ))
    }

    /// The next parameter, which must be there.
    pub(crate) fn req<T: Deserialize<'a> + std::fmt::Debug>(&mut self) -> RpcResult<T> {
        let r = self.0.next::<T>().map_err(|e| self.wrap(e));
        self.1 += 1;
        r
    }

    /// The next parameter, if given (and not `null`).
    pub(crate) fn opt<T: Deserialize<'a> + std::fmt::Debug>(&mut self) -> RpcResult<Option<T>> {
        let r = self.0.optional_next::<T>().map_err(|e| self.wrap(e));
        self.1 += 1;
        r
    }
}
