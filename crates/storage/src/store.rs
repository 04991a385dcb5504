//! [`ChainStore`]: typed access to the tables.

use crate::{
    tables::{corrupted, decode_b256, decode_u256, decode_u64, meta, Table},
    StoreError,
};
use alloy_consensus::{Block, BlockBody, Header, ReceiptEnvelope, TxEnvelope};
use alloy_eips::Encodable2718;
use alloy_primitives::{B256, U256};
use alloy_rlp::Decodable;
use signet_libmdbx::{
    tx::{
        aliases::{RoTxUnsync, RwTxUnsync, TxUnsync},
        Database, PtrUnsync, TransactionKind,
    },
    DatabaseFlags, Environment, Geometry, MdbxError, WriteFlags,
};
use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, Weak},
};
use tern_chainspec::ChainSpec;
use tracing::{debug, info};

/// On-disk layout version; bump when a table's encoding changes.
pub const SCHEMA_VERSION: u64 = 4;

/// Largest size the memory map may grow to, in bytes (4 TiB of address space; disk is
/// used only as the store grows).
const MAX_MAP_SIZE: usize = 4 << 40;
/// No MDBX data file is smaller than this, in bytes (its meta pages).
const MIN_MDBX_FILE: u64 = 4096;
/// Map growth step, in bytes (256 MiB).
const GROWTH_STEP: isize = 256 << 20;

/// How the store opens MDBX (the raw floor of `tern bench store` opens it the same way).
///
/// Not `WRITEMAP`: the map stays read-only and a commit writes its dirty pages with
/// `pwrite`. With `WRITEMAP` every page a transaction first touches after a durable sync
/// takes a write-protect fault through the file system, and each sync write-protects the
/// map again on every core; measured on sync with execution, that cost the committer more
/// than the copies it saves (see the README's sync benchmark).
pub(crate) fn env_builder() -> signet_libmdbx::EnvironmentBuilder {
    let mut builder = Environment::builder();
    builder.set_max_dbs(Table::ALL.len()).set_geometry(Geometry {
        size: Some(0..MAX_MAP_SIZE),
        growth_step: Some(GROWTH_STEP),
        ..Default::default()
    });
    builder
}

/// A block with its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBlock {
    /// keccak256 of the header RLP.
    pub hash: B256,
    /// The block.
    pub block: Block<TxEnvelope>,
}

impl SealedBlock {
    /// Seals `block` by hashing its header.
    pub fn seal(block: Block<TxEnvelope>) -> Self {
        Self { hash: block.header.hash_slow(), block }
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.block.header
    }
}

/// Where a canonical transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxLocation {
    /// Block number.
    pub block_number: u64,
    /// Index in the block's transaction list.
    pub index: u32,
}

/// The database handles of every table.
#[derive(Debug, Clone, Copy)]
struct Dbs([Database; Table::ALL.len()]);

impl Dbs {
    fn get(&self, t: Table) -> Database {
        self.0[Table::ALL.iter().position(|x| *x == t).expect("every table is listed")]
    }
}

/// The chain in MDBX. Cheap to clone; every method is its own transaction. Opening the
/// same datadir twice in one process yields the same environment (MDBX refuses a second
/// one), so a restarted component can simply open it again.
#[derive(Debug, Clone)]
pub struct ChainStore {
    inner: Arc<Inner>,
}

struct Inner {
    env: Environment,
    dbs: Dbs,
    path: PathBuf,
    /// Called after every commit that changes the canonical chain.
    listeners: Mutex<Vec<Box<dyn Fn() + Send + Sync>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Environments open in this process, by `db` directory.
static OPEN: Mutex<Vec<(PathBuf, Weak<Inner>)>> = Mutex::new(Vec::new());

impl ChainStore {
    /// Opens (creating if needed) the MDBX environment in `<datadir>/db`.
    pub fn open(datadir: &Path) -> Result<Self, StoreError> {
        let path = datadir.join("db");
        let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|(_, w)| w.strong_count() > 0);
        if let Some(inner) = open.iter().find(|(p, _)| *p == key).and_then(|(_, w)| w.upgrade()) {
            return Ok(Self { inner });
        }
        let open_err = |error| StoreError::Open { path: path.display().to_string(), error };
        std::fs::create_dir_all(&path).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            error: signet_libmdbx::MdbxError::Other(e.raw_os_error().unwrap_or(-1)),
        })?;
        // MDBX would treat a tiny file as empty and overwrite it: refuse instead.
        let data = path.join("mdbx.dat");
        if let Ok(meta) = std::fs::metadata(&data) {
            if meta.len() > 0 && meta.len() < MIN_MDBX_FILE {
                return Err(StoreError::NotMdbx {
                    path: data.display().to_string(),
                    size: meta.len(),
                });
            }
        }
        let env = env_builder().open(&path).map_err(open_err)?;
        let txn = env.begin_rw_unsync().map_err(open_err)?;
        let mut dbs = Vec::with_capacity(Table::ALL.len());
        for t in Table::ALL {
            dbs.push(txn.create_db(Some(t.name()), DatabaseFlags::empty()).map_err(open_err)?);
        }
        txn.commit().map_err(open_err)?;
        let dbs = Dbs(dbs.try_into().expect("one per table"));
        let key = std::fs::canonicalize(&path).unwrap_or(key);
        let inner = Arc::new(Inner { env, dbs, path, listeners: Mutex::new(Vec::new()) });
        open.push((key, Arc::downgrade(&inner)));
        Ok(Self { inner })
    }

    /// Opens the store and makes sure it holds `spec`'s chain: an empty store gets the
    /// genesis block; a store of another genesis is refused, naming both hashes.
    pub fn init(datadir: &Path, spec: &ChainSpec) -> Result<Self, StoreError> {
        let store = Self::open(datadir)?;
        match store.genesis_hash()? {
            Some(stored) if stored == spec.genesis_hash => {
                store.check_schema()?;
                let (number, hash) = store.best_block()?;
                info!(path = %store.inner.path.display(), best = number, %hash, "chain store opened");
            }
            Some(stored) => {
                return Err(StoreError::GenesisMismatch { stored, expected: spec.genesis_hash })
            }
            None => store.write_genesis(spec)?,
        }
        Ok(store)
    }

    fn write_genesis(&self, spec: &ChainSpec) -> Result<(), StoreError> {
        let txn = self.inner.env.begin_rw_unsync()?;
        let genesis = SealedBlock {
            hash: spec.genesis_hash,
            block: Block { header: spec.genesis_header.clone(), body: BlockBody::default() },
        };
        let td = genesis.block.header.difficulty;
        self.put_block_rows(&txn, &genesis, td, &[])?;
        let number = genesis.block.header.number.to_be_bytes();
        txn.put(self.db(Table::HeaderNumbers), genesis.hash, number, WriteFlags::empty())?;
        self.write_genesis_state(&txn, spec)?;
        let number = genesis.block.header.number;
        txn.put(
            self.db(Table::Meta),
            meta::BEST_NUMBER,
            number.to_be_bytes(),
            WriteFlags::empty(),
        )?;
        txn.put(self.db(Table::Meta), meta::GENESIS_HASH, spec.genesis_hash, WriteFlags::empty())?;
        txn.put(
            self.db(Table::Meta),
            meta::SCHEMA_VERSION,
            SCHEMA_VERSION.to_be_bytes(),
            WriteFlags::empty(),
        )?;
        txn.commit()?;
        info!(path = %self.inner.path.display(), genesis = %spec.genesis_hash, "chain store initialised");
        Ok(())
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        let found =
            self.ro(|txn| self.get_as(txn, Table::Meta, meta::SCHEMA_VERSION, decode_u64))?;
        match found {
            Some(SCHEMA_VERSION) => Ok(()),
            Some(found) => Err(StoreError::SchemaVersion { found, expected: SCHEMA_VERSION }),
            None => Err(corrupted(Table::Meta, "schema version missing")),
        }
    }

    pub(crate) fn db(&self, t: Table) -> Database {
        self.inner.dbs.get(t)
    }

    /// Puts a row of a table keyed by block number first, whose key is usually above
    /// every key there (a growing chain): MDBX appends it to the last page without a
    /// search and fills pages fully instead of splitting them in half. A key at or below
    /// the last one (a side block, a row written again after an unwind) is put normally.
    pub(crate) fn put_append(
        &self,
        txn: &RwTxUnsync,
        t: Table,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<(), StoreError> {
        let (db, key, value) = (self.db(t), key.as_ref(), value.as_ref());
        match txn.put(db, key, value, WriteFlags::APPEND) {
            Err(MdbxError::KeyMismatch | MdbxError::KeyExist) => {
                txn.put(db, key, value, WriteFlags::empty())?
            }
            other => other?,
        }
        Ok(())
    }

    pub(crate) fn ro<T>(
        &self,
        f: impl FnOnce(&RoTxUnsync) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.inner.env.begin_ro_unsync()?;
        f(&txn)
    }

    pub(crate) fn begin_ro(&self) -> Result<RoTxUnsync, StoreError> {
        Ok(self.inner.env.begin_ro_unsync()?)
    }

    pub(crate) fn begin_rw(&self) -> Result<RwTxUnsync, StoreError> {
        Ok(self.inner.env.begin_rw_unsync()?)
    }

    pub(crate) fn get<K: TransactionKind<Access = PtrUnsync>>(
        &self,
        txn: &TxUnsync<K>,
        t: Table,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(txn.get::<Vec<u8>>(self.db(t).dbi(), key)?)
    }

    /// Reads `key` from table `t` and decodes it with `decode`.
    fn get_as<K: TransactionKind<Access = PtrUnsync>, T>(
        &self,
        txn: &TxUnsync<K>,
        t: Table,
        key: &[u8],
        decode: fn(Table, &[u8]) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        self.get(txn, t, key)?.map(|v| decode(t, &v)).transpose()
    }

    /// Calls `f` after every commit that changes the canonical chain (blocks appended or
    /// unwound), on the committing thread: `f` must only signal (wake a task), never
    /// block or write to the store.
    pub fn on_chain_change(&self, f: impl Fn() + Send + Sync + 'static) {
        self.inner.listeners.lock().unwrap_or_else(|e| e.into_inner()).push(Box::new(f));
    }

    pub(crate) fn chain_changed(&self) {
        self.inner.listeners.lock().unwrap_or_else(|e| e.into_inner()).iter().for_each(|f| f());
    }

    /// The genesis hash the store was initialised with.
    pub fn genesis_hash(&self) -> Result<Option<B256>, StoreError> {
        self.ro(|txn| self.get_as(txn, Table::Meta, meta::GENESIS_HASH, decode_b256))
    }

    /// The best (canonical head) block: number and hash.
    pub fn best_block(&self) -> Result<(u64, B256), StoreError> {
        self.ro(|txn| self.best_in(txn))
    }

    pub(crate) fn best_in<K: TransactionKind<Access = PtrUnsync>>(
        &self,
        txn: &TxUnsync<K>,
    ) -> Result<(u64, B256), StoreError> {
        let number = self
            .get(txn, Table::Meta, meta::BEST_NUMBER)?
            .ok_or(StoreError::NotInitialised)
            .and_then(|v| decode_u64(Table::Meta, &v))?;
        let hash = self
            .get(txn, Table::CanonicalHashes, &number.to_be_bytes())?
            .ok_or_else(|| {
                corrupted(Table::CanonicalHashes, format!("best block {number} missing"))
            })
            .and_then(|v| decode_b256(Table::CanonicalHashes, &v))?;
        Ok((number, hash))
    }

    /// The canonical hash at `number`.
    pub fn canonical_hash(&self, number: u64) -> Result<Option<B256>, StoreError> {
        self.ro(|txn| self.canonical_in(txn, number))
    }

    /// The number of a stored block (canonical or not).
    pub fn block_number(&self, hash: B256) -> Result<Option<u64>, StoreError> {
        self.ro(|txn| self.number_in(txn, hash))
    }

    /// A stored header by hash (canonical or not).
    pub fn header(&self, hash: B256) -> Result<Option<Header>, StoreError> {
        self.ro(|txn| self.header_in(txn, hash))
    }

    pub(crate) fn header_in<K: TransactionKind<Access = PtrUnsync>>(
        &self,
        txn: &TxUnsync<K>,
        hash: B256,
    ) -> Result<Option<Header>, StoreError> {
        self.by_hash(txn, Table::Headers, hash, decode_rlp)
    }

    /// The number of stored block `hash` (canonical or not).
    fn number_in<K: TransactionKind<Access = PtrUnsync>>(
        &self,
        txn: &TxUnsync<K>,
        hash: B256,
    ) -> Result<Option<u64>, StoreError> {
        self.get_as(txn, Table::HeaderNumbers, hash.as_slice(), decode_u64)
    }

    /// A value of a table keyed by [`block_id`], for the stored block `hash`.
    fn by_hash<K: TransactionKind<Access = PtrUnsync>, T>(
        &self,
        txn: &TxUnsync<K>,
        t: Table,
        hash: B256,
        decode: fn(Table, &[u8]) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let Some(number) = self.number_in(txn, hash)? else { return Ok(None) };
        self.get_as(txn, t, &block_id(number, hash), decode)
    }

    /// The canonical header at `number`.
    pub fn header_by_number(&self, number: u64) -> Result<Option<Header>, StoreError> {
        self.by_number(number, |txn, hash| {
            self.get_as(txn, Table::Headers, &block_id(number, hash), decode_rlp)
        })
    }

    /// Reads something of the canonical block at `number`, in one transaction.
    fn by_number<T>(
        &self,
        number: u64,
        read: impl FnOnce(&RoTxUnsync, B256) -> Result<Option<T>, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        self.ro(|txn| match self.canonical_in(txn, number)? {
            Some(hash) => read(txn, hash),
            None => Ok(None),
        })
    }

    pub(crate) fn canonical_in<K: TransactionKind<Access = PtrUnsync>>(
        &self,
        txn: &TxUnsync<K>,
        number: u64,
    ) -> Result<Option<B256>, StoreError> {
        self.get_as(txn, Table::CanonicalHashes, &number.to_be_bytes(), decode_b256)
    }

    /// A stored body by block hash.
    pub fn body(&self, hash: B256) -> Result<Option<BlockBody<TxEnvelope>>, StoreError> {
        self.ro(|txn| self.body_in(txn, hash))
    }

    fn body_in<K: TransactionKind<Access = PtrUnsync>>(
        &self,
        txn: &TxUnsync<K>,
        hash: B256,
    ) -> Result<Option<BlockBody<TxEnvelope>>, StoreError> {
        self.by_hash(txn, Table::Bodies, hash, decode_rlp)
    }

    /// The canonical body at `number`.
    pub fn body_by_number(&self, number: u64) -> Result<Option<BlockBody<TxEnvelope>>, StoreError> {
        self.by_number(number, |txn, hash| {
            self.get_as(txn, Table::Bodies, &block_id(number, hash), decode_rlp)
        })
    }

    /// A stored block by hash.
    pub fn block(&self, hash: B256) -> Result<Option<SealedBlock>, StoreError> {
        self.ro(|txn| self.block_in(txn, hash))
    }

    fn block_in<K: TransactionKind<Access = PtrUnsync>>(
        &self,
        txn: &TxUnsync<K>,
        hash: B256,
    ) -> Result<Option<SealedBlock>, StoreError> {
        // The number once: both tables are keyed by it.
        let Some(number) = self.number_in(txn, hash)? else { return Ok(None) };
        let id = block_id(number, hash);
        let Some(header) = self.get_as(txn, Table::Headers, &id, decode_rlp)? else {
            return Ok(None);
        };
        let body = self
            .get_as(txn, Table::Bodies, &id, decode_rlp)?
            .ok_or_else(|| corrupted(Table::Bodies, format!("body of {hash} missing")))?;
        Ok(Some(SealedBlock { hash, block: Block { header, body } }))
    }

    /// The canonical block at `number`.
    pub fn block_by_number(&self, number: u64) -> Result<Option<SealedBlock>, StoreError> {
        self.by_number(number, |txn, hash| self.block_in(txn, hash))
    }

    /// The stored Clique snapshot after block `hash` (opaque bytes; the consensus crate
    /// encodes them).
    pub fn clique_snapshot(&self, hash: B256) -> Result<Option<Vec<u8>>, StoreError> {
        self.ro(|txn| self.get(txn, Table::CliqueSnapshots, hash.as_slice()))
    }

    /// Stores the Clique snapshot after block `hash` (waits for a write transaction).
    pub fn put_clique_snapshot(&self, hash: B256, snapshot: &[u8]) -> Result<(), StoreError> {
        let txn = self.begin_rw()?;
        txn.put(self.db(Table::CliqueSnapshots), hash, snapshot, WriteFlags::empty())?;
        txn.commit()?;
        Ok(())
    }

    /// The validator's stored Clique proposals (opaque bytes; the consensus crate encodes
    /// them).
    pub fn clique_proposals(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.ro(|txn| self.get(txn, Table::Meta, meta::CLIQUE_PROPOSALS))
    }

    /// Replaces the stored Clique proposals with `update(stored)`, in one write
    /// transaction (concurrent updates do not lose each other's change).
    pub fn update_clique_proposals<E>(
        &self,
        update: impl FnOnce(Option<&[u8]>) -> Result<Vec<u8>, E>,
    ) -> Result<Result<(), E>, StoreError> {
        let txn = self.begin_rw()?;
        let stored = self.get(&txn, Table::Meta, meta::CLIQUE_PROPOSALS)?;
        let new = match update(stored.as_deref()) {
            Ok(new) => new,
            Err(e) => return Ok(Err(e)),
        };
        txn.put(self.db(Table::Meta), meta::CLIQUE_PROPOSALS, new, WriteFlags::empty())?;
        txn.commit()?;
        Ok(Ok(()))
    }

    /// Total difficulty of a stored block.
    pub fn total_difficulty(&self, hash: B256) -> Result<Option<U256>, StoreError> {
        self.ro(|txn| self.td_in(txn, hash))
    }

    pub(crate) fn td_in<K: TransactionKind<Access = PtrUnsync>>(
        &self,
        txn: &TxUnsync<K>,
        hash: B256,
    ) -> Result<Option<U256>, StoreError> {
        self.by_hash(txn, Table::TotalDifficulty, hash, decode_u256)
    }

    /// Up to `count` canonical headers from `start` upwards (fewer at the head).
    pub fn headers_range(&self, start: u64, count: u64) -> Result<Vec<Header>, StoreError> {
        self.ro(|txn| {
            let mut out = Vec::new();
            for number in start..start.saturating_add(count) {
                let Some(hash) = self.canonical_in(txn, number)? else { break };
                let header = self
                    .get_as(txn, Table::Headers, &block_id(number, hash), decode_rlp)?
                    .ok_or_else(|| corrupted(Table::Headers, format!("header {number} missing")))?;
                out.push(header);
            }
            Ok(out)
        })
    }

    /// A canonical transaction by hash, with its location.
    pub fn transaction(
        &self,
        tx_hash: B256,
    ) -> Result<Option<(TxEnvelope, TxLocation)>, StoreError> {
        self.ro(|txn| {
            let Some(v) = self.get(txn, Table::TxLookup, tx_hash.as_slice())? else {
                return Ok(None);
            };
            if v.len() != 12 {
                return Err(corrupted(Table::TxLookup, "expected 12 bytes"));
            }
            let loc = TxLocation {
                block_number: decode_u64(Table::TxLookup, &v[..8])?,
                index: u32::from_be_bytes(v[8..].try_into().expect("4 bytes")),
            };
            let hash = self.canonical_in(txn, loc.block_number)?.ok_or_else(|| {
                corrupted(Table::TxLookup, format!("block {} not canonical", loc.block_number))
            })?;
            let body = self
                .body_in(txn, hash)?
                .ok_or_else(|| corrupted(Table::Bodies, format!("body of {hash} missing")))?;
            let tx = body.transactions.into_iter().nth(loc.index as usize).ok_or_else(|| {
                corrupted(Table::TxLookup, format!("index {} out of range", loc.index))
            })?;
            Ok(Some((tx, loc)))
        })
    }

    /// Appends `blocks` to the canonical chain in one transaction, without executing them:
    /// the world state stays where it was ([`ChainStore::state_number`]). The batch must
    /// extend the best block (parent hash and number); nothing is written unless all of it
    /// is. Validation is the caller's job: only verified blocks belong here.
    pub fn insert_blocks(&self, blocks: &[SealedBlock]) -> Result<(), StoreError> {
        let Some(last) = blocks.last() else { return Ok(()) };
        let txn = self.inner.env.begin_rw_unsync()?;
        let best = self.best_in(&txn)?;
        let best = self.append_blocks(&txn, blocks.iter().map(|b| (b, &[][..])), best)?;
        txn.put(
            self.db(Table::Meta),
            meta::BEST_NUMBER,
            best.0.to_be_bytes(),
            WriteFlags::empty(),
        )?;
        txn.commit()?;
        self.chain_changed();
        debug!(count = blocks.len(), best = last.block.header.number, "blocks committed");
        Ok(())
    }

    /// Writes the rows of canonical block `b` keyed by its number (header, body, total
    /// difficulty `td`, canonical hash, receipts), each appended.
    fn put_block_rows(
        &self,
        txn: &RwTxUnsync,
        b: &SealedBlock,
        td: U256,
        receipts: &[ReceiptEnvelope],
    ) -> Result<(), StoreError> {
        let h = &b.block.header;
        let id = block_id(h.number, b.hash);
        self.put_append(txn, Table::Headers, id, alloy_rlp::encode(h))?;
        self.put_append(txn, Table::Bodies, id, alloy_rlp::encode(&b.block.body))?;
        self.put_append(txn, Table::TotalDifficulty, id, td.to_be_bytes::<32>())?;
        self.put_append(txn, Table::CanonicalHashes, h.number.to_be_bytes(), b.hash)?;
        for (index, receipt) in receipts.iter().enumerate() {
            let key = crate::state::block_key(h.number, &(index as u32).to_be_bytes());
            self.put_append(txn, Table::Receipts, key, receipt.encoded_2718())?;
        }
        Ok(())
    }

    /// Writes `blocks` (a chain extending `best`, number and hash) as canonical, each with
    /// its receipts; returns the new best. The rows keyed by number (headers, bodies, total
    /// difficulty, canonical hashes, receipts) are appended in order; the rows keyed by a
    /// hash (`HeaderNumbers`, `TxLookup`) are put once for the whole batch, sorted, so
    /// each B-tree page they land on is found once instead of once per random key.
    pub(crate) fn append_blocks<'a>(
        &self,
        txn: &RwTxUnsync,
        blocks: impl IntoIterator<Item = (&'a SealedBlock, &'a [ReceiptEnvelope])>,
        mut best: (u64, B256),
    ) -> Result<(u64, B256), StoreError> {
        let td =
            self.get_as(txn, Table::TotalDifficulty, &block_id(best.0, best.1), decode_u256)?;
        let mut td = td.ok_or_else(|| {
            corrupted(Table::TotalDifficulty, format!("td of {} missing", best.1))
        })?;
        let mut numbers: Vec<(B256, u64)> = Vec::new();
        let mut lookups: Vec<(B256, [u8; 12])> = Vec::new();
        for (b, receipts) in blocks {
            let h = &b.block.header;
            let not_extending =
                |reason| StoreError::NotExtending { number: h.number, hash: b.hash, reason };
            if h.parent_hash != best.1 {
                return Err(not_extending("parent is not the best block"));
            }
            if h.number != best.0 + 1 {
                return Err(not_extending("number is not best + 1"));
            }
            td += h.difficulty;
            self.put_block_rows(txn, b, td, receipts)?;
            numbers.push((b.hash, h.number));
            for (index, tx) in b.block.body.transactions.iter().enumerate() {
                let mut loc = [0u8; 12];
                loc[..8].copy_from_slice(&h.number.to_be_bytes());
                loc[8..].copy_from_slice(&(index as u32).to_be_bytes());
                lookups.push((*tx.tx_hash(), loc));
            }
            best = (h.number, b.hash);
        }
        numbers.sort_unstable_by_key(|(hash, _)| *hash);
        for (hash, number) in numbers {
            txn.put(
                self.db(Table::HeaderNumbers),
                hash,
                number.to_be_bytes(),
                WriteFlags::empty(),
            )?;
        }
        lookups.sort_unstable_by_key(|(hash, _)| *hash);
        for (hash, loc) in lookups {
            txn.put(self.db(Table::TxLookup), hash, loc, WriteFlags::empty())?;
        }
        Ok(best)
    }

    /// Unwinds the canonical chain to `target` in one transaction: canonical hashes and
    /// transaction lookups above it are removed (headers and bodies stay, reachable by
    /// hash). Returns the hashes removed from the canonical chain, highest first.
    pub fn unwind_to(&self, target: u64) -> Result<Vec<B256>, StoreError> {
        let txn = self.inner.env.begin_rw_unsync()?;
        let (best, _) = self.best_in(&txn)?;
        if target > best {
            return Err(StoreError::UnwindAboveBest { target, best });
        }
        let mut removed = Vec::with_capacity((best - target) as usize);
        let mut dirty = crate::state::Dirty::default();
        for number in (target + 1..=best).rev() {
            let hash = self.canonical_in(&txn, number)?.ok_or_else(|| {
                corrupted(Table::CanonicalHashes, format!("canonical {number} missing"))
            })?;
            if let Some(body) = self.body_in(&txn, hash)? {
                for tx in &body.transactions {
                    txn.del(self.db(Table::TxLookup), tx.tx_hash(), None)?;
                }
            }
            txn.del(self.db(Table::CanonicalHashes), number.to_be_bytes(), None)?;
            self.revert_state(&txn, &mut dirty, number)?;
            removed.push(hash);
        }
        let state = self.state_number_in(&txn)?.min(target);
        self.commit_reverted_trie(&txn, &mut dirty, state)?;
        txn.put(
            self.db(Table::Meta),
            meta::STATE_NUMBER,
            state.to_be_bytes(),
            WriteFlags::empty(),
        )?;
        txn.put(
            self.db(Table::Meta),
            meta::BEST_NUMBER,
            target.to_be_bytes(),
            WriteFlags::empty(),
        )?;
        txn.commit()?;
        self.chain_changed();
        info!(from = best, to = target, "canonical chain unwound");
        Ok(removed)
    }
}

/// The key of block `hash` at `number` in Headers, Bodies and TotalDifficulty: the
/// number first (big-endian), so blocks are stored in chain order.
pub(crate) fn block_id(number: u64, hash: B256) -> [u8; 40] {
    let mut id = [0u8; 40];
    id[..8].copy_from_slice(&number.to_be_bytes());
    id[8..].copy_from_slice(hash.as_slice());
    id
}

fn decode_rlp<T: Decodable>(table: Table, mut bytes: &[u8]) -> Result<T, StoreError> {
    T::decode(&mut bytes).map_err(|e| corrupted(table, e.to_string()))
}

#[cfg(test)]
mod tests;
