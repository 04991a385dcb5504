//! discv4 packets: encoding with our key, decoding and verifying a peer's.

use crate::PacketError;
use alloy_primitives::{keccak256, Bytes, B256, B512};
use alloy_rlp::{Decodable, Encodable, Header, RlpEncodable};
use secp256k1::{
    ecdsa::{RecoverableSignature, RecoveryId},
    Message as Digest, SecretKey, SECP256K1,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The largest packet, in bytes ([discv4]: "The maximum size of any packet is 1280
/// bytes").
///
/// [discv4]: https://github.com/ethereum/devp2p/blob/master/discv4.md#wire-protocol
pub const MAX_PACKET_SIZE: usize = 1280;

/// Nodes per Neighbours packet: 12 with IPv6 endpoints stay below [`MAX_PACKET_SIZE`]
/// (geth's and reth's limit).
pub const MAX_NEIGHBOURS_PER_PACKET: usize = 12;

/// hash (32) ‖ signature (65) ‖ type (1).
const HEADER_SIZE: usize = 32 + 65 + 1;

/// A UDP/TCP endpoint as packets carry it: `[ip, udp-port, tcp-port]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeEndpoint {
    /// The address (4 or 16 bytes on the wire).
    pub ip: IpAddr,
    /// The discovery (UDP) port.
    pub udp: u16,
    /// The RLPx (TCP) port; 0 when unknown.
    pub tcp: u16,
}

/// A node in a Neighbours packet: `[ip, udp-port, tcp-port, node-id]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeRecord {
    /// Where it listens.
    pub endpoint: NodeEndpoint,
    /// Its id (the 64-byte public key).
    pub id: B512,
}

/// Ping (0x01): `[version, from, to, expiration, enr-seq?]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    /// The protocol version (4; others are accepted, EIP-8).
    pub version: u64,
    /// The sender's endpoint.
    pub from: NodeEndpoint,
    /// The recipient's endpoint as the sender sees it.
    pub to: NodeEndpoint,
    /// Unix time in seconds after which the packet is void.
    pub expiration: u64,
    /// The sender's ENR sequence number (EIP-868), if it sent one.
    pub enr_seq: Option<u64>,
}

/// Pong (0x02): `[to, ping-hash, expiration, enr-seq?]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pong {
    /// The endpoint the ping came from.
    pub to: NodeEndpoint,
    /// The hash of the ping answered.
    pub ping_hash: B256,
    /// Unix time in seconds after which the packet is void.
    pub expiration: u64,
    /// The sender's ENR sequence number (EIP-868), if it sent one.
    pub enr_seq: Option<u64>,
}

/// FindNode (0x03): `[target, expiration]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindNode {
    /// The public key whose neighbourhood is asked for.
    pub target: B512,
    /// Unix time in seconds after which the packet is void.
    pub expiration: u64,
}

/// Neighbours (0x04): `[[node, …], expiration]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbours {
    /// Nodes close to the target (at most [`MAX_NEIGHBOURS_PER_PACKET`] when we send).
    pub nodes: Vec<NodeRecord>,
    /// Unix time in seconds after which the packet is void.
    pub expiration: u64,
}

/// ENRRequest (0x05, [EIP-868]): `[expiration]`.
///
/// [EIP-868]: https://eips.ethereum.org/EIPS/eip-868
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrRequest {
    /// Unix time in seconds after which the packet is void.
    pub expiration: u64,
}

/// ENRResponse (0x06, [EIP-868]): `[request-hash, ENR]`.
///
/// [EIP-868]: https://eips.ethereum.org/EIPS/eip-868
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrResponse {
    /// The hash of the ENRRequest answered.
    pub request_hash: B256,
    /// The node record, RLP-encoded as EIP-778 defines it.
    pub enr: Bytes,
}

/// A discovery message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// 0x01.
    Ping(Ping),
    /// 0x02.
    Pong(Pong),
    /// 0x03.
    FindNode(FindNode),
    /// 0x04.
    Neighbours(Neighbours),
    /// 0x05.
    EnrRequest(EnrRequest),
    /// 0x06.
    EnrResponse(EnrResponse),
}

impl Message {
    /// The packet type byte.
    pub fn kind(&self) -> u8 {
        match self {
            Self::Ping(_) => 1,
            Self::Pong(_) => 2,
            Self::FindNode(_) => 3,
            Self::Neighbours(_) => 4,
            Self::EnrRequest(_) => 5,
            Self::EnrResponse(_) => 6,
        }
    }

    /// A fixed name for logs and metrics.
    pub fn name(&self) -> &'static str {
        kind_name(self.kind())
    }
}

fn kind_name(kind: u8) -> &'static str {
    match kind {
        1 => "ping",
        2 => "pong",
        3 => "findnode",
        4 => "neighbours",
        5 => "enrrequest",
        6 => "enrresponse",
        _ => "unknown",
    }
}

/// A verified packet: what it says, who signed it, and its hash (a Pong or ENRResponse
/// names it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The message.
    pub message: Message,
    /// The signer's node id.
    pub node_id: B512,
    /// The packet hash.
    pub hash: B256,
}

#[derive(RlpEncodable)]
struct EndpointRlp {
    ip: Bytes,
    udp: u16,
    tcp: u16,
}

fn ip_bytes(ip: IpAddr) -> Bytes {
    match ip {
        IpAddr::V4(v4) => Bytes::copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => Bytes::copy_from_slice(&v6.octets()),
    }
}

impl Encodable for NodeEndpoint {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        EndpointRlp { ip: ip_bytes(self.ip), udp: self.udp, tcp: self.tcp }.encode(out)
    }
    fn length(&self) -> usize {
        EndpointRlp { ip: ip_bytes(self.ip), udp: self.udp, tcp: self.tcp }.length()
    }
}

#[derive(RlpEncodable)]
struct NodeRecordRlp {
    ip: Bytes,
    udp: u16,
    tcp: u16,
    id: B512,
}

impl Encodable for NodeRecord {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        self.as_rlp().encode(out)
    }
    fn length(&self) -> usize {
        self.as_rlp().length()
    }
}

impl NodeRecord {
    fn as_rlp(&self) -> NodeRecordRlp {
        let e = self.endpoint;
        NodeRecordRlp { ip: ip_bytes(e.ip), udp: e.udp, tcp: e.tcp, id: self.id }
    }
}

/// Appends an RLP list of the encoded `items` to `out`.
fn list(out: &mut Vec<u8>, items: &[&dyn Encodable]) {
    let payload_length = items.iter().map(|i| i.length()).sum();
    Header { list: true, payload_length }.encode(out);
    items.iter().for_each(|i| i.encode(out));
}

/// The RLP data of `message` (what follows the type byte in a packet).
pub fn message_data(message: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    match message {
        Message::Ping(p) => match p.enr_seq {
            Some(seq) => list(&mut out, &[&p.version, &p.from, &p.to, &p.expiration, &seq]),
            None => list(&mut out, &[&p.version, &p.from, &p.to, &p.expiration]),
        },
        Message::Pong(p) => match p.enr_seq {
            Some(seq) => list(&mut out, &[&p.to, &p.ping_hash, &p.expiration, &seq]),
            None => list(&mut out, &[&p.to, &p.ping_hash, &p.expiration]),
        },
        Message::FindNode(f) => list(&mut out, &[&f.target, &f.expiration]),
        Message::Neighbours(n) => list(&mut out, &[&n.nodes, &n.expiration]),
        Message::EnrRequest(r) => list(&mut out, &[&r.expiration]),
        Message::EnrResponse(r) => {
            let enr = RawRlp(&r.enr);
            list(&mut out, &[&r.request_hash, &enr]);
        }
    }
    out
}

/// Already-encoded RLP, appended as is.
struct RawRlp<'a>(&'a [u8]);

impl Encodable for RawRlp<'_> {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        out.put_slice(self.0)
    }
    fn length(&self) -> usize {
        self.0.len()
    }
}

/// Encodes and signs `message` with `key`: the packet and its hash.
pub fn encode(message: &Message, key: &SecretKey) -> (Vec<u8>, B256) {
    let mut signed = vec![message.kind()];
    signed.extend_from_slice(&message_data(message));
    let digest = Digest::from_digest(keccak256(&signed).0);
    let (id, rs) = SECP256K1.sign_ecdsa_recoverable(digest, key).serialize_compact();
    let mut packet = Vec::with_capacity(32 + 65 + signed.len());
    packet.extend_from_slice(&[0; 32]);
    packet.extend_from_slice(&rs);
    packet.push(i32::from(id) as u8);
    packet.extend_from_slice(&signed);
    let hash = keccak256(&packet[32..]);
    packet[..32].copy_from_slice(hash.as_slice());
    (packet, hash)
}

/// The fields of an RLP list, read in order; what follows the fields read is ignored
/// (EIP-8).
struct Fields<'a> {
    rest: &'a [u8],
    kind: &'static str,
}

impl<'a> Fields<'a> {
    /// The list at the start of `buf` (bytes after it are ignored).
    fn open(mut buf: &'a [u8], kind: &'static str) -> Result<Self, PacketError> {
        let malformed = |reason: &str| PacketError::Malformed { kind, reason: reason.into() };
        let h = Header::decode(&mut buf).map_err(|e| malformed(&e.to_string()))?;
        if !h.list {
            return Err(malformed("not a list"));
        }
        let rest = buf.get(..h.payload_length).ok_or_else(|| malformed("list is truncated"))?;
        Ok(Self { rest, kind })
    }

    fn malformed(&self, reason: impl Into<String>) -> PacketError {
        PacketError::Malformed { kind: self.kind, reason: reason.into() }
    }

    fn next<T: Decodable>(&mut self, what: &str) -> Result<T, PacketError> {
        if self.rest.is_empty() {
            return Err(self.malformed(format!("{what} missing")));
        }
        T::decode(&mut self.rest).map_err(|e| self.malformed(format!("{what}: {e}")))
    }

    /// The next field as an integer, if there is one and it is a string (a list there is
    /// an extension this version does not know, and is ignored).
    fn optional_u64(&mut self) -> Option<u64> {
        match self.rest.first() {
            Some(b) if *b < 0xc0 => u64::decode(&mut self.rest).ok(),
            _ => None,
        }
    }

    fn next_list(&mut self, what: &str) -> Result<Fields<'a>, PacketError> {
        let mut buf = self.rest;
        let h = Header::decode(&mut buf).map_err(|e| self.malformed(format!("{what}: {e}")))?;
        if !h.list || buf.len() < h.payload_length {
            return Err(self.malformed(format!("{what}: not a list")));
        }
        let inner = Fields { rest: &buf[..h.payload_length], kind: self.kind };
        self.rest = &buf[h.payload_length..];
        Ok(inner)
    }

    /// The next field as raw RLP (an item and its header).
    fn next_raw(&mut self, what: &str) -> Result<Bytes, PacketError> {
        let mut buf = self.rest;
        let h = Header::decode(&mut buf).map_err(|e| self.malformed(format!("{what}: {e}")))?;
        let len = (self.rest.len() - buf.len()) + h.payload_length;
        let raw =
            self.rest.get(..len).ok_or_else(|| self.malformed(format!("{what} truncated")))?;
        self.rest = &self.rest[len..];
        Ok(Bytes::copy_from_slice(raw))
    }

    fn endpoint(&mut self, what: &str) -> Result<NodeEndpoint, PacketError> {
        let mut e = self.next_list(what)?;
        let ip =
            ip_from(&e.next::<Bytes>("ip")?).ok_or_else(|| self.malformed("ip of bad length"))?;
        Ok(NodeEndpoint { ip, udp: e.next("udp port")?, tcp: e.next("tcp port")? })
    }
}

fn ip_from(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        0 => Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        4 => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?))),
        16 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?))),
        _ => None,
    }
}

/// Decodes the data of a packet of type `kind` (what [`decode`] does once the hash and
/// signature are verified).
pub fn decode_message(kind: u8, buf: &[u8]) -> Result<Message, PacketError> {
    let name = kind_name(kind);
    let mut f = Fields::open(buf, name)?;
    Ok(match kind {
        1 => Message::Ping(Ping {
            version: f.next("version")?,
            from: f.endpoint("from")?,
            to: f.endpoint("to")?,
            expiration: f.next("expiration")?,
            enr_seq: f.optional_u64(),
        }),
        2 => Message::Pong(Pong {
            to: f.endpoint("to")?,
            ping_hash: f.next("ping hash")?,
            expiration: f.next("expiration")?,
            enr_seq: f.optional_u64(),
        }),
        3 => Message::FindNode(FindNode {
            target: f.next("target")?,
            expiration: f.next("expiration")?,
        }),
        4 => {
            let mut list = f.next_list("nodes")?;
            let mut nodes = Vec::new();
            while !list.rest.is_empty() {
                let mut n = list.next_list("node")?;
                let ip = ip_from(&n.next::<Bytes>("ip")?)
                    .ok_or_else(|| list.malformed("node ip of bad length"))?;
                let endpoint =
                    NodeEndpoint { ip, udp: n.next("udp port")?, tcp: n.next("tcp port")? };
                nodes.push(NodeRecord { endpoint, id: n.next("node id")? });
            }
            Message::Neighbours(Neighbours { nodes, expiration: f.next("expiration")? })
        }
        5 => Message::EnrRequest(EnrRequest { expiration: f.next("expiration")? }),
        6 => Message::EnrResponse(EnrResponse {
            request_hash: f.next("request hash")?,
            enr: f.next_raw("enr")?,
        }),
        other => return Err(PacketError::UnknownType(other)),
    })
}

/// Decodes and verifies a packet: size, hash, signature (the signer is the node id), type
/// and data. Expiration is the caller's to check (it needs the clock).
pub fn decode(packet: &[u8]) -> Result<Decoded, PacketError> {
    if packet.len() < HEADER_SIZE || packet.len() > MAX_PACKET_SIZE {
        return Err(PacketError::Size(packet.len()));
    }
    let hash = keccak256(&packet[32..]);
    if hash.as_slice() != &packet[..32] {
        return Err(PacketError::HashMismatch);
    }
    let (sig, signed) = packet[32..].split_at(65);
    let id = RecoveryId::try_from(i32::from(sig[64])).map_err(|_| PacketError::BadSignature)?;
    let sig = RecoverableSignature::from_compact(&sig[..64], id)
        .map_err(|_| PacketError::BadSignature)?;
    let digest = Digest::from_digest(keccak256(signed).0);
    let key = SECP256K1.recover_ecdsa(digest, &sig).map_err(|_| PacketError::BadSignature)?;
    let node_id = B512::from_slice(&key.serialize_uncompressed()[1..]);
    let message = decode_message(signed[0], &signed[1..])?;
    Ok(Decoded { message, node_id, hash })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The node key that signed the EIP-8 discovery vectors
    /// (EIP-8, copied from `../shared/testvectors` to `testdata/rlpx-eip8.txt`).
    const VECTOR_KEY: &str = "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291";

    fn vector_id() -> B512 {
        let key = SecretKey::from_byte_array(hex::decode(VECTOR_KEY).unwrap().try_into().unwrap())
            .unwrap();
        let pk = secp256k1::PublicKey::from_secret_key(SECP256K1, &key);
        B512::from_slice(&pk.serialize_uncompressed()[1..])
    }

    fn vector(name: &str) -> Vec<u8> {
        let text = include_str!("../../../testdata/rlpx-eip8.txt");
        let start = text.find(name).unwrap_or_else(|| panic!("{name} in the vectors"));
        let block = &text[start..];
        let body = &block[block.find("```text").unwrap() + 7..];
        let body = &body[..body.find("```").unwrap()];
        hex::decode(body.split_whitespace().collect::<String>()).unwrap()
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn v6(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn eip8_ping_vectors_decode_with_extensions_ignored() {
        let d = decode(&vector("ping packet with version 4, additional list elements:")).unwrap();
        assert_eq!(d.node_id, vector_id());
        assert_eq!(
            d.message,
            Message::Ping(Ping {
                version: 4,
                from: NodeEndpoint { ip: v4(127, 0, 0, 1), udp: 3322, tcp: 5544 },
                to: NodeEndpoint { ip: v6("::1"), udp: 2222, tcp: 3333 },
                expiration: 1_136_239_445,
                // The extra elements are `01 02`: the first sits where EIP-868 later put
                // the ENR sequence number, and reads as one.
                enr_seq: Some(1),
            })
        );
        let d = decode(&vector("ping packet with version 555")).unwrap();
        assert_eq!(d.node_id, vector_id());
        let Message::Ping(p) = d.message else { panic!("a ping") };
        assert_eq!(p.version, 555);
        assert_eq!(
            p.from,
            NodeEndpoint { ip: v6("2001:db8:3c4d:15::abcd:ef12"), udp: 3322, tcp: 5544 }
        );
        assert_eq!(
            p.to,
            NodeEndpoint { ip: v6("2001:db8:85a3:8d3:1319:8a2e:370:7348"), udp: 2222, tcp: 33338 }
        );
        assert_eq!(p.expiration, 1_136_239_445);
        assert_eq!(p.enr_seq, None, "a list where the sequence number would be is an extension");
    }

    #[test]
    fn eip8_pong_findnode_neighbours_vectors_decode() {
        let d = decode(&vector("pong packet with additional list elements")).unwrap();
        assert_eq!(d.node_id, vector_id());
        let Message::Pong(p) = d.message else { panic!("a pong") };
        assert_eq!(
            p.to,
            NodeEndpoint { ip: v6("2001:db8:85a3:8d3:1319:8a2e:370:7348"), udp: 2222, tcp: 33338 }
        );
        assert_eq!(
            p.ping_hash,
            "0xfbc914b16819237dcd8801d7e53f69e9719adecb3cc0e790c57e91ca4461c954"
                .parse::<B256>()
                .unwrap()
        );
        assert_eq!(p.expiration, 1_136_239_445);

        let d = decode(&vector("findnode packet with additional list elements")).unwrap();
        let Message::FindNode(f) = d.message else { panic!("a findnode") };
        assert_eq!(f.target, "0xca634cae0d49acb401d8a4c6b6fe8c55b70d115bf400769cc1400f3258cd31387574077f301b421bc84df7266c44e9e6d569fc56be00812904767bf5ccd1fc7f".parse::<B512>().unwrap());
        assert_eq!(f.expiration, 1_136_239_445);

        let d = decode(&vector("neighbours packet with additional list elements")).unwrap();
        assert_eq!(d.node_id, vector_id());
        let Message::Neighbours(n) = d.message else { panic!("neighbours") };
        assert_eq!(n.nodes.len(), 4);
        assert_eq!(
            n.nodes[0].endpoint,
            NodeEndpoint { ip: v4(99, 33, 22, 55), udp: 4444, tcp: 4445 }
        );
        assert_eq!(n.nodes[1].endpoint, NodeEndpoint { ip: v4(1, 2, 3, 4), udp: 1, tcp: 1 });
        assert_eq!(n.nodes[2].endpoint.ip, v6("2001:db8:3c4d:15::abcd:ef12"));
        assert_eq!(n.nodes[3].endpoint.ip, v6("2001:db8:85a3:8d3:1319:8a2e:370:7348"));
        assert_eq!(n.expiration, 1_136_239_445);
    }

    #[test]
    fn what_we_encode_decodes_to_the_same_message_signed_by_us() {
        let key = SecretKey::from_byte_array([9; 32]).unwrap();
        let id = B512::from_slice(
            &secp256k1::PublicKey::from_secret_key(SECP256K1, &key).serialize_uncompressed()[1..],
        );
        let e = NodeEndpoint { ip: v4(127, 0, 0, 1), udp: 30303, tcp: 30303 };
        let node = |i: u8| NodeRecord {
            endpoint: NodeEndpoint { ip: v6("2001:db8::1"), udp: 30303, tcp: 30303 },
            id: B512::repeat_byte(i),
        };
        let messages = [
            Message::Ping(Ping { version: 4, from: e, to: e, expiration: 10, enr_seq: Some(3) }),
            Message::Pong(Pong {
                to: e,
                ping_hash: B256::repeat_byte(1),
                expiration: 10,
                enr_seq: None,
            }),
            Message::FindNode(FindNode { target: B512::repeat_byte(2), expiration: 10 }),
            Message::Neighbours(Neighbours {
                nodes: (0..MAX_NEIGHBOURS_PER_PACKET as u8).map(node).collect(),
                expiration: 10,
            }),
            Message::EnrRequest(EnrRequest { expiration: 10 }),
            Message::EnrResponse(EnrResponse {
                request_hash: B256::repeat_byte(3),
                enr: Bytes::from_static(&[0xc3, 0x01, 0x02, 0x03]),
            }),
        ];
        for m in messages {
            let (packet, hash) = encode(&m, &key);
            assert!(packet.len() <= MAX_PACKET_SIZE, "{} is {} bytes", m.name(), packet.len());
            let d = decode(&packet).unwrap();
            assert_eq!((d.message, d.node_id, d.hash), (m, id, hash));
        }
    }

    #[test]
    fn damaged_packets_are_refused() {
        let good = vector("ping packet with version 4, additional list elements:");
        let mut bad_hash = good.clone();
        bad_hash[0] ^= 1;
        assert_eq!(decode(&bad_hash), Err(PacketError::HashMismatch));
        // A flipped signature byte with a fixed-up hash: another signer, or none.
        let mut resigned = good.clone();
        resigned[40] ^= 1;
        let h = keccak256(&resigned[32..]);
        resigned[..32].copy_from_slice(h.as_slice());
        assert!(decode(&resigned).map_or(true, |d| d.node_id != vector_id()));
        assert_eq!(decode(&good[..97]), Err(PacketError::Size(97)));
        assert_eq!(decode(&vec![0; MAX_PACKET_SIZE + 1]), Err(PacketError::Size(1281)));
        // Unknown type, and data that is not a list, both signed properly.
        let key = SecretKey::from_byte_array([9; 32]).unwrap();
        let (mut p, _) = encode(&Message::EnrRequest(EnrRequest { expiration: 1 }), &key);
        p[97] = 0x09;
        // Re-sign the changed content by hand.
        let digest = Digest::from_digest(keccak256(&p[97..]).0);
        let (rid, rs) = SECP256K1.sign_ecdsa_recoverable(digest, &key).serialize_compact();
        p[32..96].copy_from_slice(&rs);
        p[96] = i32::from(rid) as u8;
        let h = keccak256(&p[32..]);
        p[..32].copy_from_slice(h.as_slice());
        assert_eq!(decode(&p), Err(PacketError::UnknownType(9)));
    }
}
