//! Our node record ([EIP-778] ENR, through the `enr` crate) with the `eth` entry that
//! carries the fork id ([EIP-2124]), and reading a peer's.
//!
//! [EIP-778]: https://eips.ethereum.org/EIPS/eip-778
//! [EIP-2124]: https://eips.ethereum.org/EIPS/eip-2124

use alloy_eip2124::ForkId;
use alloy_rlp::{Decodable, RlpDecodable, RlpEncodable};
use enr::k256::ecdsa::SigningKey;
use std::net::IpAddr;

/// A node record signed with a secp256k1 key ("v4" identity scheme).
pub type NodeEnr = enr::Enr<SigningKey>;

/// The ENR key of the eth entry (EIP-2124: "eth" = `[[fork-hash, fork-next], …]`).
pub const ETH_ENR_KEY: &str = "eth";

/// The `eth` entry: a list whose first element is the fork id; later elements are
/// extensions and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, RlpEncodable, RlpDecodable)]
#[rlp(trailing)]
struct EthEntry {
    fork_id: ForkId,
}

/// Why a record could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the node record: {0}")]
pub struct RecordError(String);

/// Our record: `seq`, the address peers reach us at, our TCP and UDP ports, and the fork
/// id of our chain at the head (no `eth` entry without one).
pub fn local_record(
    key: &secp256k1::SecretKey,
    seq: u64,
    ip: IpAddr,
    tcp: u16,
    udp: u16,
    fork_id: Option<ForkId>,
) -> Result<NodeEnr, RecordError> {
    let signing =
        SigningKey::from_slice(&key.secret_bytes()).map_err(|e| RecordError(e.to_string()))?;
    let mut b = enr::Enr::builder();
    b.seq(seq).ip(ip).tcp4(tcp).udp4(udp);
    if let Some(fork_id) = fork_id {
        b.add_value(ETH_ENR_KEY, &EthEntry { fork_id });
    }
    if ip.is_ipv6() {
        b.tcp6(tcp).udp6(udp);
    }
    b.build(&signing).map_err(|e| RecordError(e.to_string()))
}

/// The fork id a record announces in its `eth` entry, if it has a well-formed one.
pub fn record_fork_id(record: &NodeEnr) -> Option<ForkId> {
    let mut raw = record.get_raw_rlp(ETH_ENR_KEY)?;
    EthEntry::decode(&mut raw).ok().map(|e| e.fork_id)
}

/// The 64-byte node id (uncompressed public key without its prefix) of a record's
/// signer, as discv4 and RLPx name nodes.
pub fn record_node_id(record: &NodeEnr) -> alloy_primitives::B512 {
    let point = record.public_key().to_encoded_point(false);
    alloy_primitives::B512::from_slice(&point.as_bytes()[1..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_eip2124::ForkHash;
    use std::str::FromStr;

    /// EIP-778's example record and the key that signed it.
    const EXAMPLE: &str = "enr:-IS4QHCYrYZbAKWCBRlAy5zzaDZXJBGkcnh4MHcBFZntXNFrdvJjX04jRzjzCBOonrkTfj499SZuOh8R33Ls8RRcy5wBgmlkgnY0gmlwhH8AAAGJc2VjcDI1NmsxoQPKY0yuDUmstAHYpMa2_oxVtw0RW_QAdpzBQA8yWM0xOIN1ZHCCdl8";
    const EXAMPLE_KEY: &str = "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291";

    fn example_key() -> secp256k1::SecretKey {
        secp256k1::SecretKey::from_byte_array(hex::decode(EXAMPLE_KEY).unwrap().try_into().unwrap())
            .unwrap()
    }

    #[test]
    fn eip778_example_record_decodes_and_verifies() {
        let r = NodeEnr::from_str(EXAMPLE).unwrap();
        assert!(r.verify());
        assert_eq!(r.seq(), 1);
        assert_eq!(r.ip4(), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(r.udp4(), Some(30303));
        assert_eq!(
            hex::encode(r.node_id().raw()),
            "a448f24c6d18e575453db13171562b71999873db5b286df957af199ec94617f7"
        );
        let pk = secp256k1::PublicKey::from_secret_key(secp256k1::SECP256K1, &example_key());
        assert_eq!(record_node_id(&r).as_slice(), &pk.serialize_uncompressed()[1..]);
        assert_eq!(record_fork_id(&r), None, "no eth entry");
    }

    #[test]
    fn our_record_carries_the_fork_id_and_round_trips() {
        let fork = ForkId { hash: ForkHash([0xfc, 0x64, 0xec, 0x04]), next: 1_150_000 };
        let r =
            local_record(&example_key(), 7, "10.0.0.1".parse().unwrap(), 30303, 30304, Some(fork))
                .unwrap();
        let back = NodeEnr::from_str(&r.to_base64()).unwrap();
        assert!(back.verify());
        assert_eq!(back.seq(), 7);
        assert_eq!((back.tcp4(), back.udp4()), (Some(30303), Some(30304)));
        assert_eq!(record_fork_id(&back), Some(fork));
        // The entry is EIP-2124's `[[fork-hash, fork-next]]`.
        assert_eq!(hex::encode(back.get_raw_rlp(ETH_ENR_KEY).unwrap()), "cac984fc64ec0483118c30");
    }
}
