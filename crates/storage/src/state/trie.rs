//! The state trie kept incrementally (DESIGN §5): hashed leaves and stored branch nodes.
//!
//! Leaves live in `HashedAccounts` (keccak(address) → account with its storage root) and
//! `HashedStorage` (keccak(address) ‖ keccak(slot) → value). Branch nodes live in
//! `AccountTrie` (path → node) and `StorageTrie` (keccak(address) ‖ path → node), as
//! alloy-trie's `HashBuilder` reports them: a node is stored when one of its children is
//! a stored node or a branch with a hash, so the bottom branches (all children leaves)
//! are rebuilt from their few leaves instead.
//!
//! A root after a change is computed by feeding the `HashBuilder`, in key order, a
//! covering of the whole key space: the stored hash of every branch child no changed key
//! lies under, and the leaves of every region a changed key lies under. Only the nodes on
//! the changed paths are read and rebuilt.
//!
//! A path is stored one nibble per byte, so byte order is trie order (a node sorts
//! before its descendants).

use crate::{
    store::ChainStore,
    tables::{corrupted, Table},
    StoreError,
};
use alloy_primitives::B256;
use alloy_trie::{BranchNodeCompact, HashBuilder, Nibbles, TrieMask, EMPTY_ROOT_HASH};
use signet_libmdbx::{
    tx::aliases::{RwCursorUnsync, RwTxUnsync},
    WriteFlags,
};

/// The changed keys of one trie, sorted: answers "does a changed key lie under this
/// path?". The walk asks in increasing path order, so the answer comes from a cursor
/// that only moves forward (amortised O(1); a path out of order moves it back).
#[derive(Debug, Default)]
pub(crate) struct PrefixSet {
    keys: Vec<Nibbles>,
    index: usize,
}

impl PrefixSet {
    /// The set of `keys` (hashed keys, 32 bytes each).
    pub(crate) fn new(keys: impl IntoIterator<Item = B256>) -> Self {
        let mut keys: Vec<Nibbles> = keys.into_iter().map(|k| Nibbles::unpack(k)).collect();
        keys.sort_unstable();
        keys.dedup();
        Self { keys, index: 0 }
    }

    /// Whether a changed key starts with `path`.
    pub(crate) fn contains_prefix(&mut self, path: &Nibbles) -> bool {
        while self.index > 0 && self.keys[self.index - 1] >= *path {
            self.index -= 1;
        }
        while self.keys.get(self.index).is_some_and(|k| k < path) {
            self.index += 1;
        }
        self.keys.get(self.index).is_some_and(|k| k.starts_with(path))
    }
}

/// Which trie: the accounts', or one account's storage.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TrieKind {
    /// The account trie.
    Accounts,
    /// The storage trie of the account with this hashed address.
    Storage(B256),
}

impl TrieKind {
    fn nodes(self) -> Table {
        match self {
            Self::Accounts => Table::AccountTrie,
            Self::Storage(_) => Table::StorageTrie,
        }
    }

    fn leaves(self) -> Table {
        match self {
            Self::Accounts => Table::HashedAccounts,
            Self::Storage(_) => Table::HashedStorage,
        }
    }

    /// The key prefix of this trie's rows (empty for accounts).
    fn prefix(&self) -> &[u8] {
        match self {
            Self::Accounts => &[],
            Self::Storage(address) => address.as_slice(),
        }
    }

    fn node_key(&self, path: &Nibbles) -> Vec<u8> {
        let mut key = self.prefix().to_vec();
        key.extend(path.iter());
        key
    }

    /// The first leaf key a key under `path` can have.
    fn leaf_seek(&self, path: &Nibbles) -> Vec<u8> {
        let mut bytes = [0u8; 32];
        for (i, nibble) in path.iter().enumerate() {
            bytes[i / 2] |= if i % 2 == 0 { nibble << 4 } else { nibble };
        }
        [self.prefix(), &bytes].concat()
    }
}

/// Encodes a branch node: state, tree and hash masks (u16 BE each), then one 32-byte
/// hash per bit of the hash mask.
pub(crate) fn encode_node(node: &BranchNodeCompact) -> Vec<u8> {
    let mut out = Vec::with_capacity(6 + 32 * node.hashes.len());
    for mask in [node.state_mask, node.tree_mask, node.hash_mask] {
        out.extend_from_slice(&mask.get().to_be_bytes());
    }
    for hash in node.hashes.iter() {
        out.extend_from_slice(hash.as_slice());
    }
    out
}

fn decode_node(table: Table, bytes: &[u8]) -> Result<BranchNodeCompact, StoreError> {
    let mask = |i: usize| TrieMask::new(u16::from_be_bytes([bytes[i], bytes[i + 1]]));
    if bytes.len() < 6 || !(bytes.len() - 6).is_multiple_of(32) {
        return Err(corrupted(table, format!("branch node of {} bytes", bytes.len())));
    }
    let (state, tree, hash) = (mask(0), mask(2), mask(4));
    let hashes: Vec<B256> = bytes[6..].chunks_exact(32).map(B256::from_slice).collect();
    let consistent = tree.is_subset_of(state)
        && hash.is_subset_of(state)
        && hash.count_ones() as usize == hashes.len();
    if !consistent {
        return Err(corrupted(table, "branch node masks disagree"));
    }
    Ok(BranchNodeCompact::new(state, tree, hash, hashes, None))
}

/// What the walk needs from the store: cursors over one trie's nodes and leaves.
struct Walk<'a> {
    kind: TrieKind,
    changed: &'a mut PrefixSet,
    nodes: RwCursorUnsync<'a>,
    leaves: RwCursorUnsync<'a>,
    builder: HashBuilder,
    /// Stored nodes on changed paths: rewritten if the builder reports them, else deleted.
    visited: Vec<Nibbles>,
}

impl Walk<'_> {
    /// Feeds the builder every leaf under `under`, from key `from` on, below `before`
    /// (if given).
    fn leaves(
        &mut self,
        under: &Nibbles,
        from: &Nibbles,
        before: Option<&Nibbles>,
    ) -> Result<(), StoreError> {
        let prefix_len = self.kind.prefix().len();
        let start = self.kind.leaf_seek(from);
        let mut next = self.leaves.set_range::<Vec<u8>, Vec<u8>>(&start)?;
        while let Some((k, v)) = next {
            if !k.starts_with(self.kind.prefix()) || k.len() != prefix_len + 32 {
                break;
            }
            let key = Nibbles::unpack(&k[prefix_len..]);
            if !key.starts_with(under) || before.is_some_and(|b| key >= *b) {
                break;
            }
            self.builder.add_leaf(key, &v);
            next = self.leaves.next::<Vec<u8>, Vec<u8>>()?;
        }
        Ok(())
    }

    /// Feeds the builder the leaves of a run of children that began at `start` and ends
    /// before `end`.
    fn flush(
        &mut self,
        under: &Nibbles,
        start: Option<Nibbles>,
        end: &Nibbles,
    ) -> Result<(), StoreError> {
        match start {
            Some(start) => self.leaves(under, &start, Some(end)),
            None => Ok(()),
        }
    }

    /// The topmost stored node under `path` (one must exist: a tree mask says so).
    fn stored_under(&mut self, path: &Nibbles) -> Result<(Nibbles, BranchNodeCompact), StoreError> {
        let table = self.kind.nodes();
        let prefix_len = self.kind.prefix().len();
        let found = self.nodes.set_range::<Vec<u8>, Vec<u8>>(&self.kind.node_key(path))?;
        let Some((k, v)) = found.filter(|(k, _)| k.starts_with(self.kind.prefix())) else {
            return Err(corrupted(table, "a tree mask points at a missing node"));
        };
        let nibbles = &k[prefix_len..];
        if nibbles.iter().any(|n| *n > 0xf) {
            return Err(corrupted(table, "a path byte above 0xf"));
        }
        let node_path = Nibbles::from_nibbles_unchecked(nibbles);
        if !node_path.starts_with(path) {
            return Err(corrupted(table, "a tree mask points at a missing node"));
        }
        Ok((node_path, decode_node(table, &v)?))
    }

    /// Feeds the builder the region of keys under `path`; `stored` says whether a
    /// stored node lies under it.
    fn cover(&mut self, path: Nibbles, stored: bool) -> Result<(), StoreError> {
        if !stored {
            return self.leaves(&path, &path, None);
        }
        let (node_path, node) = self.stored_under(&path)?;
        self.visited.push(node_path);
        // Keys under `path` but beside the node's extension can only be new ones.
        if node_path != path {
            self.leaves(&path, &path, Some(&node_path))?;
        }
        let mut hashes = node.hashes.iter();
        // Children fed from the leaf table are read in runs: one seek for each run of
        // neighbours, not one per child.
        let mut run: Option<Nibbles> = None;
        for nibble in 0..16u8 {
            let mut child = node_path;
            child.push(nibble);
            let exists = node.state_mask.is_bit_set(nibble);
            let in_db = node.tree_mask.is_bit_set(nibble);
            let hash = if node.hash_mask.is_bit_set(nibble) { hashes.next() } else { None };
            let changed = self.changed.contains_prefix(&child);
            match (exists, hash) {
                (true, Some(hash)) if !changed => {
                    self.flush(&node_path, run.take(), &child)?;
                    self.builder.add_branch(child, *hash, in_db);
                }
                (true, _) if in_db => {
                    self.flush(&node_path, run.take(), &child)?;
                    self.cover(child, true)?;
                }
                (true, _) => {
                    run.get_or_insert(child);
                }
                (false, _) if changed => {
                    run.get_or_insert(child);
                }
                (false, _) => {}
            }
        }
        if let Some(start) = run {
            self.leaves(&node_path, &start, None)?;
        }
        if node_path != path {
            if let Some(after) = node_path.next_without_prefix() {
                self.leaves(&path, &after, None)?;
            }
        }
        Ok(())
    }
}

/// Recomputes the root of trie `kind` after the keys in `changed` were written to its
/// leaf table (whose values are the trie's leaf values), and stores the branch nodes that
/// changed.
pub(crate) fn update_trie(
    store: &ChainStore,
    txn: &RwTxUnsync,
    kind: TrieKind,
    changed: &mut PrefixSet,
) -> Result<B256, StoreError> {
    let nodes_db = store.db(kind.nodes());
    let mut walk = Walk {
        kind,
        changed,
        nodes: txn.cursor(nodes_db)?,
        leaves: txn.cursor(store.db(kind.leaves()))?,
        builder: HashBuilder::default().with_updates(true),
        visited: Vec::new(),
    };
    let any_node = walk
        .nodes
        .set_range::<Vec<u8>, Vec<u8>>(kind.prefix())?
        .is_some_and(|(k, _)| k.starts_with(kind.prefix()));
    walk.cover(Nibbles::default(), any_node)?;
    let root = walk.builder.root();
    let visited = std::mem::take(&mut walk.visited);
    let (_, updates) = walk.builder.split();
    drop((walk.nodes, walk.leaves));
    for path in visited {
        if !updates.contains_key(&path) {
            txn.del(nodes_db, kind.node_key(&path), None)?;
        }
    }
    for (path, node) in &updates {
        txn.put(nodes_db, kind.node_key(path), encode_node(node), WriteFlags::empty())?;
    }
    debug_assert!(root != EMPTY_ROOT_HASH || updates.is_empty());
    Ok(root)
}

/// Deletes every row of `table` whose key starts with `prefix`.
pub(crate) fn delete_prefix(
    store: &ChainStore,
    txn: &RwTxUnsync,
    table: Table,
    prefix: &[u8],
) -> Result<(), StoreError> {
    let db = store.db(table);
    let mut keys = Vec::new();
    {
        let mut cursor = txn.cursor(db)?;
        let mut next = cursor.set_range::<Vec<u8>, ()>(prefix)?;
        while let Some((k, ())) = next.filter(|(k, _)| k.starts_with(prefix)) {
            keys.push(k);
            next = cursor.next::<Vec<u8>, ()>()?;
        }
    }
    for k in keys {
        txn.del(db, k, None)?;
    }
    Ok(())
}
