//! The Hello message and capability negotiation.
//!
//! Spec: <https://github.com/ethereum/devp2p/blob/master/rlpx.md#hello-0x00>

use alloy_rlp::{Decodable, Encodable, Header};
use bytes::BufMut;
use tern_ecies::PeerId;

/// The p2p base protocol version we speak (5: snappy compression after Hello).
///
/// Spec: <https://github.com/ethereum/devp2p/blob/master/rlpx.md#hello-0x00>
pub const P2P_VERSION: u64 = 5;

/// Message ids 0x00..0x10 belong to the base protocol; capabilities start here.
///
/// Spec: <https://github.com/ethereum/devp2p/blob/master/rlpx.md#message-id-based-multiplexing>
pub const BASE_PROTOCOL_LENGTH: u64 = 0x10;

/// A capability as advertised in Hello: a short ASCII name and a version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Capability {
    /// Name, e.g. `eth`.
    pub name: String,
    /// Version, e.g. 68.
    pub version: u64,
}

impl Capability {
    /// A capability from its name and version.
    pub fn new(name: impl Into<String>, version: u64) -> Self {
        Self { name: name.into(), version }
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.name, self.version)
    }
}

impl Encodable for Capability {
    fn encode(&self, out: &mut dyn BufMut) {
        let payload_length = self.name.as_bytes().length() + self.version.length();
        Header { list: true, payload_length }.encode(out);
        self.name.as_bytes().encode(out);
        self.version.encode(out);
    }

    fn length(&self) -> usize {
        let payload_length = self.name.as_bytes().length() + self.version.length();
        payload_length + alloy_rlp::length_of_length(payload_length)
    }
}

impl Decodable for Capability {
    fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        let mut payload = list_payload(buf)?;
        let name = alloy_rlp::Bytes::decode(&mut payload)?;
        let name = String::from_utf8(name.to_vec())
            .map_err(|_| alloy_rlp::Error::Custom("capability name is not UTF-8"))?;
        let version = u64::decode(&mut payload)?;
        Ok(Self { name, version })
    }
}

/// Splits the next RLP list off `buf` and returns its payload (extra elements inside are
/// left for the caller to ignore).
fn list_payload<'a>(buf: &mut &'a [u8]) -> alloy_rlp::Result<&'a [u8]> {
    let header = Header::decode(buf)?;
    if !header.list {
        return Err(alloy_rlp::Error::UnexpectedString);
    }
    let (payload, rest) = buf.split_at(header.payload_length);
    *buf = rest;
    Ok(payload)
}

/// The Hello message: `[protocolVersion, clientId, capabilities, listenPort, nodeKey, ...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloMessage {
    /// p2p protocol version ([`P2P_VERSION`] for us).
    pub protocol_version: u64,
    /// Client id, e.g. `tern/v0.1.0/linux-x86_64/rustc1.95.0`.
    pub client_id: String,
    /// Capabilities offered.
    pub capabilities: Vec<Capability>,
    /// TCP listening port (0 if not listening).
    pub port: u16,
    /// The sender's node id.
    pub id: PeerId,
}

impl HelloMessage {
    fn payload_length(&self) -> usize {
        self.protocol_version.length()
            + self.client_id.as_bytes().length()
            + alloy_rlp::list_length(&self.capabilities)
            + self.port.length()
            + self.id.length()
    }
}

impl Encodable for HelloMessage {
    fn encode(&self, out: &mut dyn BufMut) {
        Header { list: true, payload_length: self.payload_length() }.encode(out);
        self.protocol_version.encode(out);
        self.client_id.as_bytes().encode(out);
        alloy_rlp::encode_list(&self.capabilities, out);
        self.port.encode(out);
        self.id.encode(out);
    }

    fn length(&self) -> usize {
        let p = self.payload_length();
        p + alloy_rlp::length_of_length(p)
    }
}

impl Decodable for HelloMessage {
    /// Decodes any protocol version; list elements after `nodeKey` are ignored (EIP-8).
    fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        let mut payload = list_payload(buf)?;
        let protocol_version = u64::decode(&mut payload)?;
        let client_id = alloy_rlp::Bytes::decode(&mut payload)?;
        let client_id = String::from_utf8_lossy(&client_id).into_owned();
        let capabilities = Vec::<Capability>::decode(&mut payload)?;
        let port = u16::decode(&mut payload)?;
        let id = PeerId::decode(&mut payload)?;
        Ok(Self { protocol_version, client_id, capabilities, port, id })
    }
}

/// A capability we implement, with the number of message ids it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    /// The capability.
    pub cap: Capability,
    /// How many message ids it occupies (eth/68: 17, eth/69: 18).
    pub messages: u8,
}

impl Protocol {
    /// A protocol from a capability and its message count.
    pub fn new(cap: Capability, messages: u8) -> Self {
        Self { cap, messages }
    }
}

/// A capability both sides speak, with its place in the message-id space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedCapability {
    /// The negotiated capability (highest version both offer).
    pub cap: Capability,
    /// Its first message id on the wire (0x10 for the first shared capability).
    pub offset: u64,
    /// How many message ids it uses.
    pub messages: u8,
}

/// Negotiates capabilities: for each name both sides offer, the highest version both
/// offer; ordered by name; message-id offsets assigned from 0x10 in that order.
///
/// Spec: <https://github.com/ethereum/devp2p/blob/master/rlpx.md#message-id-based-multiplexing>
pub fn shared_capabilities(ours: &[Protocol], theirs: &[Capability]) -> Vec<SharedCapability> {
    let mut best: Vec<&Protocol> = Vec::new();
    for p in ours.iter().filter(|p| theirs.contains(&p.cap)) {
        match best.iter_mut().find(|b| b.cap.name == p.cap.name) {
            Some(b) if b.cap.version < p.cap.version => *b = p,
            Some(_) => {}
            None => best.push(p),
        }
    }
    best.sort_by(|a, b| a.cap.name.cmp(&b.cap.name));
    let mut offset = BASE_PROTOCOL_LENGTH;
    best.into_iter()
        .map(|p| {
            let shared = SharedCapability { cap: p.cap.clone(), offset, messages: p.messages };
            offset += u64::from(p.messages);
            shared
        })
        .collect()
}

/// Our client id: `tern/v<version>/<os>-<arch>/<rustc version>`.
pub fn client_id() -> String {
    format!(
        "tern/v{}/{}-{}/{}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH,
        env!("TERN_RUSTC_VERSION")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// EIP-8 "devp2p hello packet advertising version 22 and containing a few additional
    /// list elements" (<https://eips.ethereum.org/EIPS/eip-8#test-vectors>).
    const HELLO_EIP8: &str = concat!(
        "f87137916b6e6574682f76302e39312f706c616e39cdc5836574683dc6846d6f726b1682270fb840",
        "fda1cff674c90c9a197539fe3dfb53086ace64f83ed7c6eabec741f7f381cc803e52ab2cd55d5569",
        "bce4347107a310dfd5f88a010cd2ffd1005ca406f1842877c883666f6f836261720304",
    );

    #[test]
    fn decodes_eip8_hello_with_extra_elements() {
        let bytes = hex::decode(HELLO_EIP8).unwrap();
        let hello = HelloMessage::decode(&mut &bytes[..]).unwrap();
        assert_eq!(hello.protocol_version, 55);
        assert_eq!(hello.client_id, "kneth/v0.91/plan9");
        assert_eq!(
            hello.capabilities,
            vec![Capability::new("eth", 61), Capability::new("mork", 22)]
        );
        assert_eq!(hello.port, 9999);
        assert_eq!(
            hello.id.to_string(),
            "0xfda1cff674c90c9a197539fe3dfb53086ace64f83ed7c6eabec741f7f381cc803e52ab2cd55d5569bce4347107a310dfd5f88a010cd2ffd1005ca406f1842877"
        );
    }

    #[test]
    fn our_hello_has_exactly_five_fields_and_round_trips() {
        let hello = HelloMessage {
            protocol_version: P2P_VERSION,
            client_id: client_id(),
            capabilities: vec![Capability::new("eth", 68), Capability::new("eth", 69)],
            port: 30303,
            id: PeerId::repeat_byte(7),
        };
        let mut out = Vec::new();
        hello.encode(&mut out);
        assert_eq!(out.len(), hello.length());
        let mut buf = &out[..];
        let mut payload = list_payload(&mut buf).unwrap();
        assert!(buf.is_empty());
        let mut fields = 0;
        while !payload.is_empty() {
            let h = Header::decode(&mut payload).unwrap();
            payload = &payload[h.payload_length..];
            fields += 1;
        }
        assert_eq!(fields, 5);
        assert_eq!(HelloMessage::decode(&mut &out[..]).unwrap(), hello);
        assert!(hello.client_id.starts_with("tern/v"));
    }

    #[test]
    fn negotiation_picks_highest_shared_version_in_name_order() {
        let ours = [
            Protocol::new(Capability::new("eth", 68), 17),
            Protocol::new(Capability::new("eth", 69), 18),
            Protocol::new(Capability::new("abc", 1), 3),
            Protocol::new(Capability::new("zzz", 1), 2),
        ];
        let theirs = [
            Capability::new("eth", 67),
            Capability::new("eth", 68),
            Capability::new("eth", 69),
            Capability::new("abc", 1),
            Capability::new("snap", 1),
        ];
        let shared = shared_capabilities(&ours, &theirs);
        assert_eq!(shared.len(), 2);
        assert_eq!((shared[0].cap.to_string(), shared[0].offset), ("abc/1".into(), 0x10));
        assert_eq!((shared[1].cap.to_string(), shared[1].offset), ("eth/69".into(), 0x13));
        // When the peer offers only eth/68, eth/68 it is.
        let shared = shared_capabilities(&ours, &[Capability::new("eth", 68)]);
        assert_eq!(shared[0].cap, Capability::new("eth", 68));
        assert_eq!(shared[0].messages, 17);
        assert!(shared_capabilities(&ours, &[Capability::new("les", 4)]).is_empty());
    }
}
