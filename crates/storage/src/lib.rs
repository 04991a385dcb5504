//! The chain store for Tern: blocks and the world state in MDBX (shared/DESIGN.md §5).
//!
//! [`ChainStore`] is the only code that knows how blocks are laid out on disk. Every
//! write is one MDBX read-write transaction (a batch of blocks, or an unwind), so a crash
//! leaves the store at a batch boundary; readers see a consistent snapshot and never
//! block the writer.

mod bench;
mod error;
mod state;
mod store;
mod tables;
pub mod testing;

pub use bench::{
    state_root_benchmark, store_benchmark, StateRootBench, StoreBenchCase, StoreBenchReport,
};
pub use error::StoreError;
pub use state::{
    Account, AccountProof, ExecutedBlock, HistoricalState, StateBlock, StateChanges, StateRead,
    StateReader, StateWriter, StorageChange, EMPTY_CODE_HASH,
};
pub use store::{ChainStore, SealedBlock, TxLocation, SCHEMA_VERSION};
pub use tables::Table;
