use alloy_primitives::B256;

/// Errors of the chain store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// MDBX refused an operation (corruption, full map, foreign or incompatible file…).
    #[error("database error: {0}")]
    Mdbx(#[from] signet_libmdbx::MdbxError),
    /// Reading a value failed.
    #[error("database read error: {0}")]
    Read(#[from] signet_libmdbx::ReadError),
    /// Opening the environment failed; names the path.
    #[error("cannot open the chain store at {path}: {error}")]
    Open {
        /// The `db` directory.
        path: String,
        /// What MDBX said.
        error: signet_libmdbx::MdbxError,
    },
    /// A file where the MDBX data file should be that is not one.
    #[error("cannot open the chain store at {path}: not an MDBX file ({size} bytes); refusing to overwrite it")]
    NotMdbx {
        /// The file.
        path: String,
        /// Its size, in bytes.
        size: u64,
    },
    /// The datadir was initialised with another genesis.
    #[error("datadir holds the chain with genesis {stored}, but the chain spec has genesis {expected}; use another --datadir")]
    GenesisMismatch {
        /// Genesis hash in the store.
        stored: B256,
        /// Genesis hash of the chain spec.
        expected: B256,
    },
    /// The store was written by an incompatible version of Tern.
    #[error(
        "chain store schema version {found} is not supported (this tern writes version \
         {expected}: version 2 added the world state, version 3 its trie, version 4 keyed blocks by number); remove the datadir's db directory \
         and sync or import the chain again"
    )]
    SchemaVersion {
        /// Found.
        found: u64,
        /// Expected.
        expected: u64,
    },
    /// [`crate::StateWriter::stage`] and [`crate::StateWriter::finish`] were not called in
    /// pairs (a bug in the caller; nothing was written).
    #[error("state writer misused: {0}")]
    Staged(&'static str),
    /// The store is not initialised (no genesis).
    #[error("chain store is not initialised; run `tern init` or start the node with --chain")]
    NotInitialised,
    /// A batch that does not extend the canonical chain.
    #[error("block {number} ({hash}) does not extend the canonical chain: {reason}")]
    NotExtending {
        /// Number of the offending block.
        number: u64,
        /// Its hash.
        hash: B256,
        /// Why.
        reason: &'static str,
    },
    /// Unwinding to a block above the best block.
    #[error("cannot unwind to block {target}: the best block is {best}")]
    UnwindAboveBest {
        /// Requested target.
        target: u64,
        /// Current best.
        best: u64,
    },
    /// The genesis allocations do not hash to the genesis header's state root.
    #[error("genesis state root {computed} differs from the genesis header's {header}")]
    GenesisState {
        /// Computed from the allocations.
        computed: B256,
        /// In the genesis header.
        header: B256,
    },
    /// State changes for a block that is not the next one.
    #[error("state changes for block {got} but the state is at block {at}")]
    StateOutOfOrder {
        /// The block the changes are for.
        got: u64,
        /// The block the state is at.
        at: u64,
    },
    /// The state of a block above the one the state is at was asked for.
    #[error("the state of block {number} is not known yet: the state is at block {head}")]
    StateAhead {
        /// The block asked for.
        number: u64,
        /// The block the state is at.
        head: u64,
    },
    /// Tries (for proofs and roots) are kept for the latest state only.
    #[error("missing trie node: proofs and roots are kept for the latest state (block {head}) only, not block {number}")]
    ProofUnavailable {
        /// The block asked for.
        number: u64,
        /// The block the state is at.
        head: u64,
    },
    /// A block hash that is not on the canonical chain (or finalized above safe).
    #[error("block {0} is not canonical (or is finalized above the safe block)")]
    NotCanonical(B256),
    /// A stored value does not decode: the store is corrupted.
    #[error("corrupted value in table {table}: {reason}")]
    Corrupted {
        /// The table.
        table: &'static str,
        /// What is wrong.
        reason: String,
    },
}
