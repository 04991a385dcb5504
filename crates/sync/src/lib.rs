//! Block sync for Tern (shared/DESIGN.md §7): a pure state machine
//! ([`SyncMachine`]: events in, actions out) and its driver ([`BlockSyncManager`]) that
//! talks to the network and the chain store.

mod driver;
mod import;
mod machine;
mod snapshots;

pub use driver::{BlockSyncManager, SyncHandle, SyncProgress};
pub use import::{import_blocks, ImportError, ImportStats, IMPORT_BATCH_GAS};
pub use machine::{
    Action, Failure, ReadyBlock, RecentChain, SyncConfig, SyncMachine, SyncStatus, WallClock,
    MAX_FUTURE_RETRY, ROUND_STALL,
};
pub use snapshots::CliqueSnapshots;
