//! Assembles a Tern node from its parts. Today: the validator's sealing loop. The network
//! manager and sync join here as they land.

mod validator;

pub use validator::{run_validator, ValidatorError};
