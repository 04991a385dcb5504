//! Node keys: 32-byte secp256k1 secret keys stored as 64 hex digits (with or without
//! `0x`), the format reth and geth write.

use crate::P2pError;
use std::path::Path;
use tern_ecies::{pk2id, PeerId, PublicKey, SecretKey};

/// Reads a secret key from a hex text file.
pub fn load_secret_key(path: &Path) -> Result<SecretKey, P2pError> {
    let err = |reason: String| P2pError::NodeKey { path: path.display().to_string(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    parse_secret_key(&text).map_err(err)
}

/// Parses 64 hex digits, with or without `0x`, surrounding whitespace ignored.
pub fn parse_secret_key(text: &str) -> Result<SecretKey, String> {
    let hex_str = text.trim();
    let hex_str = hex_str.strip_prefix("0x").unwrap_or(hex_str);
    if hex_str.len() != 64 {
        return Err(format!("expected 64 hex digits, found {} characters", hex_str.len()));
    }
    let bytes = hex::decode(hex_str).map_err(|_| "not hex".to_string())?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| "expected 32 bytes".to_string())?;
    SecretKey::from_byte_array(bytes).map_err(|_| "not a valid secp256k1 secret key".to_string())
}

/// A new random secret key.
pub fn generate_secret_key() -> SecretKey {
    SecretKey::new(&mut rand::rng())
}

/// Loads the key at `path`, or generates one and writes it there (mode 0600 on Unix)
/// when the file does not exist. An existing but unreadable key is an error, never
/// silently replaced.
pub fn load_or_generate_secret_key(path: &Path) -> Result<SecretKey, P2pError> {
    if path.exists() {
        return load_secret_key(path);
    }
    let key = generate_secret_key();
    write_secret_key(path, &key)?;
    Ok(key)
}

/// Writes `key` as 64 hex digits; refuses to overwrite an existing file.
pub fn write_secret_key(path: &Path, key: &SecretKey) -> Result<(), P2pError> {
    use std::io::Write;
    let err = |e: std::io::Error| P2pError::NodeKey {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts.open(path).map_err(err)?;
    file.write_all(hex::encode(key.secret_bytes()).as_bytes()).map_err(err)
}

/// The node id of a secret key.
pub fn peer_id(key: &SecretKey) -> PeerId {
    pk2id(&PublicKey::from_secret_key(secp256k1::SECP256K1, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files() {
        let dir = std::env::temp_dir().join(format!("tern-key-{}", std::process::id()));
        let path = dir.join("nodekey");
        let _ = std::fs::remove_dir_all(&dir);
        let k = load_or_generate_secret_key(&path).unwrap();
        assert_eq!(load_or_generate_secret_key(&path).unwrap(), k, "second call loads");
        assert!(write_secret_key(&path, &generate_secret_key()).is_err(), "no overwrite");
        std::fs::write(&path, format!("0x{}\n", hex::encode(k.secret_bytes()))).unwrap();
        assert_eq!(load_secret_key(&path).unwrap(), k);
        std::fs::write(&path, "1234").unwrap();
        let e = load_secret_key(&path).unwrap_err().to_string();
        assert!(e.contains("nodekey") && e.contains("64 hex digits"), "{e}");
        std::fs::write(&path, "00".repeat(32)).unwrap();
        assert!(load_secret_key(&path).unwrap_err().to_string().contains("not a valid"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
