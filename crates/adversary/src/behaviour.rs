//! The scripted behaviours and what a correct node does about each.

use std::{fmt, str::FromStr};

/// One hostile script. See [`Behaviour::expected`] for the node's correct reaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Behaviour {
    /// Status with another genesis hash.
    WrongGenesis,
    /// Status with another network id.
    WrongNetworkId,
    /// Status with a fork id no chain of ours has (EIP-2124 "local incompatible").
    WrongForkId,
    /// A second Status after the handshake.
    StatusTwice,
    /// BlockHeaders nobody asked for, with made-up request ids.
    UnsolicitedResponses,
    /// Answers every request correctly but under another request id.
    WrongRequestIds,
    /// Header responses whose parent hashes do not link.
    BrokenLinkage,
    /// Serves a linked chain, one block longer than the honest one and forking a few
    /// blocks below its head, whose new headers are sealed by a key that is not a signer.
    BadSeals,
    /// Correct headers, bodies that do not match them (transactions dropped or an ommer
    /// added).
    MismatchedBodies,
    /// Correct headers, each body taken from the next block.
    BodiesForOtherBlocks,
    /// Completes the handshake, then never answers anything.
    Silent,
    /// Sends a valid auth packet one byte at a time, 200 ms apart.
    SlowHandshake,
    /// After the handshake, a frame whose snappy header announces 32 MiB.
    OversizedFrame,
    /// After the handshake, bytes that are not a sealed frame (the header MAC fails).
    BadMac,
    /// Thousands of NewBlockHashes with unknown hashes and absurd block numbers.
    AnnouncementFlood,
    /// GetBlockHeaders for huge ranges as fast as the node answers.
    HeaderRequestFlood,
}

/// What a correct node does about a behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// The node refuses our Status: it disconnects with `SubprotocolSpecific` (0x10), and
    /// bans nothing (a peer on another chain is not misbehaving).
    Refused,
    /// The node ends the session and refuses the same node id afterwards.
    Banned,
    /// The node lowers the peer's reputation (and bans it once it reaches the threshold).
    Penalised,
    /// The node closes the connection within its handshake timeout.
    Dropped,
    /// The node keeps serving, within its response limits.
    Served,
}

impl Behaviour {
    /// Every behaviour, in declaration order.
    pub const ALL: [Behaviour; 16] = [
        Self::WrongGenesis,
        Self::WrongNetworkId,
        Self::WrongForkId,
        Self::StatusTwice,
        Self::UnsolicitedResponses,
        Self::WrongRequestIds,
        Self::BrokenLinkage,
        Self::BadSeals,
        Self::MismatchedBodies,
        Self::BodiesForOtherBlocks,
        Self::Silent,
        Self::SlowHandshake,
        Self::OversizedFrame,
        Self::BadMac,
        Self::AnnouncementFlood,
        Self::HeaderRequestFlood,
    ];

    /// The kebab-case name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::WrongGenesis => "wrong-genesis",
            Self::WrongNetworkId => "wrong-network-id",
            Self::WrongForkId => "wrong-fork-id",
            Self::StatusTwice => "status-twice",
            Self::UnsolicitedResponses => "unsolicited-responses",
            Self::WrongRequestIds => "wrong-request-ids",
            Self::BrokenLinkage => "broken-linkage",
            Self::BadSeals => "bad-seals",
            Self::MismatchedBodies => "mismatched-bodies",
            Self::BodiesForOtherBlocks => "bodies-for-other-blocks",
            Self::Silent => "silent",
            Self::SlowHandshake => "slow-handshake",
            Self::OversizedFrame => "oversized-frame",
            Self::BadMac => "bad-mac",
            Self::AnnouncementFlood => "announcement-flood",
            Self::HeaderRequestFlood => "header-request-flood",
        }
    }

    /// The node's correct reaction. Serving behaviours (linkage, seals, bodies, ids,
    /// silence) are only noticed once the node asks this peer for data, so they are
    /// `Penalised` at least; one bad response costs 50 points, a ban takes 100.
    pub fn expected(self) -> Expected {
        match self {
            Self::WrongGenesis | Self::WrongNetworkId | Self::WrongForkId => Expected::Refused,
            Self::StatusTwice | Self::OversizedFrame | Self::BadMac => Expected::Banned,
            Self::UnsolicitedResponses => Expected::Banned,
            Self::WrongRequestIds
            | Self::BrokenLinkage
            | Self::BadSeals
            | Self::MismatchedBodies
            | Self::BodiesForOtherBlocks
            | Self::Silent
            | Self::AnnouncementFlood => Expected::Penalised,
            Self::SlowHandshake => Expected::Dropped,
            Self::HeaderRequestFlood => Expected::Served,
        }
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownBehaviour(pub String);

impl fmt::Display for UnknownBehaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Behaviour::ALL.iter().map(|b| b.name()).collect();
        write!(f, "unknown behaviour `{}` (one of: {})", self.0, names.join(", "))
    }
}

impl std::error::Error for UnknownBehaviour {}

impl FromStr for Behaviour {
    type Err = UnknownBehaviour;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|b| b.name() == s).ok_or_else(|| UnknownBehaviour(s.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for b in Behaviour::ALL {
            assert_eq!(b.name().parse::<Behaviour>().unwrap(), b);
        }
        let mut names: Vec<&str> = Behaviour::ALL.iter().map(|b| b.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Behaviour::ALL.len());
        let err = "polite".parse::<Behaviour>().unwrap_err().to_string();
        assert!(err.contains("polite") && err.contains("bad-seals"), "{err}");
    }
}
