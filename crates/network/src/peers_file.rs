//! `<datadir>/known-peers.json`: peers we can dial, with their reputation and bans.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// One known peer as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownPeer {
    /// Its enode URL.
    pub enode: String,
    /// Its reputation when saved.
    pub reputation: i32,
    /// End of its ban, in seconds since the Unix epoch, if banned.
    pub banned_until: Option<u64>,
}

/// Reads the file; a missing file is an empty list, an unreadable one is logged and
/// ignored (it is a cache, not a source of truth).
pub(crate) fn load(path: &Path) -> Vec<KnownPeer> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable known-peers file");
            Vec::new()
        }),
        Err(_) => Vec::new(),
    }
}

/// Writes the file atomically (temporary file, then rename).
pub(crate) fn save(path: &Path, peers: &[KnownPeer]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(peers).map_err(std::io::Error::other)?)?;
    std::fs::rename(tmp, path)
}
