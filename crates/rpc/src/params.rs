//! Parameters as geth parses them, where alloy's types are more lenient: hashes need
//! their `0x`, storage keys may be short but not longer than 32 bytes.

use crate::error::RpcError;
use alloy_primitives::{B256, U256};
use serde::{de::Error as _, Deserialize, Deserializer};

/// A 32-byte hash written as `0x` and 64 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StrictHash(pub(crate) B256);

impl<'de> Deserialize<'de> for StrictHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let Some(digits) = s.strip_prefix("0x") else {
            return Err(D::Error::custom(
                "json: cannot unmarshal hex string without 0x prefix into Go value of type common.Hash",
            ));
        };
        if digits.len() != 64 {
            return Err(D::Error::custom(format!(
                "hex string has length {}, want 64 for common.Hash",
                digits.len()
            )));
        }
        digits.parse::<B256>().map(Self).map_err(|e| D::Error::custom(e.to_string()))
    }
}

/// A storage slot: `0x` and at most 64 hex digits (leading zeros may be left out).
pub(crate) fn storage_key(s: &str) -> Result<U256, RpcError> {
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| RpcError::InvalidParams(format!("storage key without 0x prefix: {s:?}")))?;
    if digits.len() > 64 {
        return Err(RpcError::InvalidParams(format!(
            "storage key too long (want at most 32 bytes): {s:?}"
        )));
    }
    if digits.is_empty() {
        return Ok(U256::ZERO);
    }
    U256::from_str_radix(digits, 16)
        .map_err(|_| RpcError::InvalidParams(format!("invalid hex storage key: {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_need_the_prefix_and_all_digits() {
        let ok: StrictHash = serde_json::from_str(&format!("\"0x{}\"", "11".repeat(32))).unwrap();
        assert_eq!(ok.0, B256::repeat_byte(0x11));
        for bad in [format!("\"{}\"", "11".repeat(32)), "\"0x11\"".to_string(), "\"0xzz\"".into()] {
            assert!(serde_json::from_str::<StrictHash>(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn storage_keys_are_at_most_32_bytes() {
        assert_eq!(storage_key("0x0").unwrap(), U256::ZERO);
        assert_eq!(storage_key("0x00").unwrap(), U256::ZERO);
        assert_eq!(storage_key(&format!("0x{}", "f".repeat(64))).unwrap(), U256::MAX);
        let long = format!("0x{}", "0".repeat(65));
        let e = storage_key(&long).unwrap_err();
        assert!(e.to_string().starts_with("storage key too long"), "{e}");
        assert!(storage_key("12").is_err());
        assert!(storage_key("0xg").is_err());
    }
}
