//! Keys from a BIP-39 mnemonic along Ethereum's BIP-44 path `m/44'/60'/0'/0/i`: the
//! accounts development tools (Hardhat, Anvil, reth `--dev`) fund from the well-known test
//! mnemonic. For development only: anyone can derive these keys.
//!
//! [BIP-39]: https://github.com/bitcoin/bips/blob/master/bip-0039.mediawiki (seed: PBKDF2-
//! HMAC-SHA512, 2048 rounds, salt "mnemonic"); [BIP-32]: child key derivation.

use hmac::{Hmac, Mac};
use secp256k1::{PublicKey, Scalar, SecretKey, SECP256K1};
use sha2::Sha512;

/// The mnemonic development tools fund by default.
pub(crate) const TEST_MNEMONIC: &str =
    "test test test test test test test test test test test junk";

/// BIP-32 index of a hardened child.
const HARDENED: u32 = 1 << 31;

fn hmac_sha512(key: &[u8], parts: &[&[u8]]) -> [u8; 64] {
    let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// The BIP-39 seed of `mnemonic` with an empty passphrase (the words are ASCII, so their
/// NFKD form is themselves).
fn seed(mnemonic: &str) -> [u8; 64] {
    // PBKDF2 with one 64-byte block: U1 = HMAC(P, salt || 1), Ui = HMAC(P, Ui-1), xor all.
    let mut u = hmac_sha512(mnemonic.as_bytes(), &[b"mnemonic", &1u32.to_be_bytes()]);
    let mut out = u;
    for _ in 1..2048 {
        u = hmac_sha512(mnemonic.as_bytes(), &[&u]);
        out.iter_mut().zip(u).for_each(|(o, x)| *o ^= x);
    }
    out
}

/// A BIP-32 extended private key.
struct Extended {
    key: SecretKey,
    chain_code: [u8; 32],
}

impl Extended {
    fn split(i: [u8; 64]) -> ([u8; 32], [u8; 32]) {
        (i[..32].try_into().expect("32"), i[32..].try_into().expect("32"))
    }

    fn master(seed: &[u8]) -> Self {
        let (k, chain_code) = Self::split(hmac_sha512(b"Bitcoin seed", &[seed]));
        Self { key: SecretKey::from_byte_array(k).expect("valid master key"), chain_code }
    }

    fn child(&self, index: u32) -> Self {
        let i = if index >= HARDENED {
            hmac_sha512(&self.chain_code, &[&[0], &self.key.secret_bytes(), &index.to_be_bytes()])
        } else {
            let public = PublicKey::from_secret_key(SECP256K1, &self.key).serialize();
            hmac_sha512(&self.chain_code, &[&public, &index.to_be_bytes()])
        };
        let (tweak, chain_code) = Self::split(i);
        let tweak = Scalar::from_be_bytes(tweak).expect("tweak below the curve order");
        Self { key: self.key.add_tweak(&tweak).expect("valid child key"), chain_code }
    }
}

/// The key of account `index` of `mnemonic` (path `m/44'/60'/0'/0/index`).
pub(crate) fn account_key(mnemonic: &str, index: u32) -> SecretKey {
    let path = [44 | HARDENED, 60 | HARDENED, HARDENED, 0, index];
    path.iter().fold(Extended::master(&seed(mnemonic)), |k, i| k.child(*i)).key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_mnemonic_gives_the_accounts_development_tools_fund() {
        // Published by Hardhat and Foundry as their default accounts 0 and 1.
        let k0 = account_key(TEST_MNEMONIC, 0);
        assert_eq!(
            hex::encode(k0.secret_bytes()),
            "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
        );
        assert_eq!(
            tern_consensus::address_of(&k0).to_checksum(None),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        );
        let k1 = account_key(TEST_MNEMONIC, 1);
        assert_eq!(
            tern_consensus::address_of(&k1).to_checksum(None),
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
        );
    }

    #[test]
    fn master_key_matches_bip32_test_vector_1() {
        // BIP-32 test vector 1: seed 000102…0f, chain m.
        let seed = hex::decode("000102030405060708090a0b0c0d0e0f").unwrap();
        let m = Extended::master(&seed);
        assert_eq!(
            hex::encode(m.key.secret_bytes()),
            "e8f32e723decf4051aefac8e2c93c9c5b214313817cdb01a1494b917c8436b35"
        );
        assert_eq!(
            hex::encode(m.chain_code),
            "873dff81c02f525623fd1fe5167eac3a55a049de3d314bb42ee227ffed37d508"
        );
        // m/0H
        let c = m.child(HARDENED);
        assert_eq!(
            hex::encode(c.key.secret_bytes()),
            "edb2e14f9ee77d26dd93b4ecede8d16ed408ce149b6cd80b0715a2d911a0afea"
        );
    }
}
