//! Disconnect reasons of the p2p base protocol.
//!
//! Spec: <https://github.com/ethereum/devp2p/blob/master/rlpx.md#disconnect-0x01>

use alloy_rlp::{Decodable, Encodable, Header};
use bytes::BufMut;

/// Why a peer is disconnected: every reason code of rlpx.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DisconnectReason {
    /// 0x00: disconnect requested.
    DisconnectRequested = 0x00,
    /// 0x01: TCP sub-system error.
    TcpSubsystemError = 0x01,
    /// 0x02: breach of protocol, e.g. a malformed message, bad RLP.
    ProtocolBreach = 0x02,
    /// 0x03: useless peer.
    UselessPeer = 0x03,
    /// 0x04: too many peers.
    TooManyPeers = 0x04,
    /// 0x05: already connected.
    AlreadyConnected = 0x05,
    /// 0x06: incompatible p2p protocol version.
    IncompatibleP2pVersion = 0x06,
    /// 0x07: null node identity received.
    NullNodeIdentity = 0x07,
    /// 0x08: client quitting.
    ClientQuitting = 0x08,
    /// 0x09: unexpected identity in handshake.
    UnexpectedIdentity = 0x09,
    /// 0x0a: identity is the same as this node (connected to itself).
    ConnectedToSelf = 0x0a,
    /// 0x0b: ping timeout.
    PingTimeout = 0x0b,
    /// 0x10: some other reason specific to a subprotocol.
    SubprotocolSpecific = 0x10,
}

impl DisconnectReason {
    /// Every reason, in code order.
    pub const ALL: [Self; 13] = [
        Self::DisconnectRequested,
        Self::TcpSubsystemError,
        Self::ProtocolBreach,
        Self::UselessPeer,
        Self::TooManyPeers,
        Self::AlreadyConnected,
        Self::IncompatibleP2pVersion,
        Self::NullNodeIdentity,
        Self::ClientQuitting,
        Self::UnexpectedIdentity,
        Self::ConnectedToSelf,
        Self::PingTimeout,
        Self::SubprotocolSpecific,
    ];

    /// The reason with wire code `code`, if rlpx.md defines one.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| *r as u8 == code)
    }

    /// Decodes a Disconnect payload: the spec's one-element list `[reason]`, a bare
    /// reason byte (as some clients send), or an empty list / empty string (reason 0).
    /// `Ok(None)` for a well-formed but unknown code.
    pub fn decode_payload(mut buf: &[u8]) -> Result<Option<Self>, alloy_rlp::Error> {
        if buf.is_empty() {
            return Ok(Some(Self::DisconnectRequested));
        }
        let code = if buf[0] >= 0xc0 {
            let header = Header::decode(&mut buf)?;
            if header.payload_length == 0 {
                0
            } else {
                u8::decode(&mut buf)?
            }
        } else {
            u8::decode(&mut buf)?
        };
        Ok(Self::from_code(code))
    }

    /// Encodes the payload as the one-element list `[reason]`.
    pub fn encode_payload(self, out: &mut dyn BufMut) {
        let code = self as u8;
        Header { list: true, payload_length: code.length() }.encode(out);
        code.encode(out);
    }
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            Self::DisconnectRequested => "disconnect requested",
            Self::TcpSubsystemError => "TCP sub-system error",
            Self::ProtocolBreach => "breach of protocol",
            Self::UselessPeer => "useless peer",
            Self::TooManyPeers => "too many peers",
            Self::AlreadyConnected => "already connected",
            Self::IncompatibleP2pVersion => "incompatible p2p protocol version",
            Self::NullNodeIdentity => "null node identity received",
            Self::ClientQuitting => "client quitting",
            Self::UnexpectedIdentity => "unexpected identity in handshake",
            Self::ConnectedToSelf => "connected to self",
            Self::PingTimeout => "ping timeout",
            Self::SubprotocolSpecific => "subprotocol-specific reason",
        };
        write!(f, "{text} ({:#04x})", *self as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_round_trips_as_list_and_bare_byte() {
        for reason in DisconnectReason::ALL {
            let mut out = Vec::new();
            reason.encode_payload(&mut out);
            let code = reason as u8;
            // [reason] as a one-element list: c1 <code> (0x80 for code zero).
            let expected = if code == 0 { vec![0xc1, 0x80] } else { vec![0xc1, code] };
            assert_eq!(out, expected);
            assert_eq!(DisconnectReason::decode_payload(&out).unwrap(), Some(reason));
            let bare = if code == 0 { vec![0x80] } else { vec![code] };
            assert_eq!(DisconnectReason::decode_payload(&bare).unwrap(), Some(reason));
        }
        assert_eq!(DisconnectReason::from_code(0x0c), None);
        assert_eq!(DisconnectReason::decode_payload(&[0xc1, 0x0c]).unwrap(), None);
        assert_eq!(
            DisconnectReason::decode_payload(&[0xc0]).unwrap(),
            Some(DisconnectReason::DisconnectRequested)
        );
        assert!(DisconnectReason::decode_payload(&[0xc3, 0x01]).is_err());
    }
}
