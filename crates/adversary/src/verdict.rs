//! Judging a node's reaction by what the specifications allow, not by Tern's choices.
//!
//! Tern refuses a peer on another chain with `SubprotocolSpecific`, bans a protocol
//! breach at once and lowers a liar's score; reth answers a wrong genesis with
//! `ProtocolBreach`, another client may drop a breaching peer without a ban. devp2p's
//! [rlpx.md](https://github.com/ethereum/devp2p/blob/master/rlpx.md) and
//! [eth.md](https://github.com/ethereum/devp2p/blob/master/caps/eth.md) leave those
//! choices open, so they are [`Verdict::Allowed`]. What no specification allows is
//! [`Verdict::Wrong`]: crashing, storing or serving a liar's data, staying in a session
//! with a peer on another chain or one whose frames do not authenticate, and holding a
//! handshake that never completes.

use crate::{Behaviour, Expected, Outcome, Report, MAX_HEADERS};
use std::fmt;

/// What a fresh connection found after a run ([`crate::Adversary::aftermath`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aftermath {
    /// The node still completes a handshake with a new, honest peer.
    pub alive: bool,
    /// The node refuses the adversary's key now (Disconnect `UselessPeer`).
    pub banned: bool,
    /// The node serves a header or body the adversary forged: it took the liar's data.
    pub took_forgery: bool,
}

/// A verdict on one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Exactly Tern's reaction ([`Behaviour::expected`]).
    AsTern,
    /// Another reaction the specifications allow (what differed).
    Allowed(String),
    /// The node never asked this adversary for data, so a serving trick was not tried.
    Untested,
    /// A reaction no specification allows (what went wrong).
    Wrong(String),
}

impl Verdict {
    /// Whether the verdict is [`Verdict::Wrong`].
    pub fn is_wrong(&self) -> bool {
        matches!(self, Self::Wrong(_))
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AsTern => f.write_str("as Tern does"),
            Self::Allowed(what) => write!(f, "allowed: {what}"),
            Self::Untested => f.write_str("untested: the node never asked it for data"),
            Self::Wrong(what) => write!(f, "WRONG: {what}"),
        }
    }
}

/// Judges the node's reaction to `report.behaviour`.
pub fn judge(report: &Report, after: &Aftermath) -> Verdict {
    let b = report.behaviour;
    if !after.alive {
        return Verdict::Wrong("the node no longer completes a handshake".into());
    }
    if after.took_forgery {
        return Verdict::Wrong("the node serves the data the liar forged".into());
    }
    let ended = report.ended_by_node();
    match b.expected() {
        Expected::Refused => match &report.outcome {
            Outcome::StillOpen => Verdict::Wrong("stayed in a session with another chain".into()),
            Outcome::Disconnected(Some(tern_p2p::DisconnectReason::SubprotocolSpecific))
                if !after.banned =>
            {
                Verdict::AsTern
            }
            other => Verdict::Allowed(format!("refused as {other:?}, banned {}", after.banned)),
        },
        Expected::Banned => match b {
            Behaviour::OversizedFrame | Behaviour::BadMac if !ended => {
                Verdict::Wrong("stayed in a session after a frame it cannot accept".into())
            }
            _ => match (ended, after.banned) {
                (true, true) => Verdict::AsTern,
                (true, false) => Verdict::Allowed("ended the session without a ban".into()),
                (false, _) => Verdict::Allowed("kept the session".into()),
            },
        },
        Expected::Penalised => {
            if report.requests_received == 0 && report.messages_sent == 0 {
                return Verdict::Untested;
            }
            match (ended, after.banned) {
                // A penalty alone is invisible from outside; a ban or a kept session are both
                // Tern's reaction, depending on how many strikes the run reached.
                (false, _) | (true, true) => Verdict::AsTern,
                (true, false) => Verdict::Allowed("ended the session without a ban".into()),
            }
        }
        Expected::Dropped => match &report.outcome {
            Outcome::StillOpen => {
                Verdict::Wrong(format!("held an unfinished handshake for {:?}", report.elapsed))
            }
            Outcome::Closed(_) => Verdict::AsTern,
            other => Verdict::Allowed(format!("ended it as {other:?}")),
        },
        Expected::Served => {
            if report.max_headers_per_response > MAX_HEADERS {
                return Verdict::Allowed(format!(
                    "answered with {} headers at once",
                    report.max_headers_per_response
                ));
            }
            match (&report.outcome, report.responses_received) {
                (Outcome::StillOpen, 1..) if !after.banned => Verdict::AsTern,
                (Outcome::StillOpen, 0) => Verdict::Allowed("answered none of the flood".into()),
                (outcome, _) => Verdict::Allowed(format!(
                    "limited the flood: {outcome:?}, banned {}",
                    after.banned
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tern_p2p::{DisconnectReason, PeerId};

    fn report(behaviour: Behaviour, outcome: Outcome) -> Report {
        Report {
            behaviour,
            peer_id: PeerId::ZERO,
            outcome,
            requests_received: 3,
            messages_sent: 3,
            responses_received: 3,
            max_headers_per_response: 10,
            elapsed: Duration::from_secs(1),
            forged: Vec::new(),
        }
    }

    const FINE: Aftermath = Aftermath { alive: true, banned: false, took_forgery: false };
    const BANNED: Aftermath = Aftermath { banned: true, ..FINE };

    #[test]
    fn another_clients_disconnect_reason_is_allowed_staying_is_wrong() {
        let tern = report(
            Behaviour::WrongGenesis,
            Outcome::Disconnected(Some(DisconnectReason::SubprotocolSpecific)),
        );
        assert_eq!(judge(&tern, &FINE), Verdict::AsTern);
        // reth's reaction to a wrong genesis.
        let reth = report(
            Behaviour::WrongGenesis,
            Outcome::Disconnected(Some(DisconnectReason::ProtocolBreach)),
        );
        assert!(matches!(judge(&reth, &FINE), Verdict::Allowed(_)));
        assert!(matches!(judge(&reth, &BANNED), Verdict::Allowed(_)));
        let closed = report(Behaviour::WrongForkId, Outcome::Closed("reset".into()));
        assert!(matches!(judge(&closed, &FINE), Verdict::Allowed(_)));
        let stayed = report(Behaviour::WrongNetworkId, Outcome::StillOpen);
        assert!(judge(&stayed, &FINE).is_wrong());
    }

    #[test]
    fn a_breach_may_be_dropped_without_a_ban_but_not_kept() {
        let dropped = report(Behaviour::BadMac, Outcome::Closed("eof".into()));
        assert_eq!(judge(&dropped, &BANNED), Verdict::AsTern);
        assert!(matches!(judge(&dropped, &FINE), Verdict::Allowed(_)));
        for b in [Behaviour::BadMac, Behaviour::OversizedFrame] {
            assert!(judge(&report(b, Outcome::StillOpen), &FINE).is_wrong(), "{b}");
        }
        // A second Status or unrequested responses may be tolerated.
        for b in [Behaviour::StatusTwice, Behaviour::UnsolicitedResponses] {
            assert!(matches!(judge(&report(b, Outcome::StillOpen), &FINE), Verdict::Allowed(_)));
        }
    }

    #[test]
    fn taking_a_liars_data_or_dying_is_wrong_whatever_else_happened() {
        for b in Behaviour::ALL {
            let r = report(b, Outcome::StillOpen);
            let took = Aftermath { took_forgery: true, ..FINE };
            assert!(judge(&r, &took).is_wrong(), "{b}");
            assert!(judge(&r, &Aftermath { alive: false, ..FINE }).is_wrong(), "{b}");
        }
        let r = report(Behaviour::BadSeals, Outcome::Disconnected(None));
        assert_eq!(judge(&r, &BANNED), Verdict::AsTern);
        assert!(matches!(judge(&r, &FINE), Verdict::Allowed(_)));
        assert_eq!(judge(&report(Behaviour::Silent, Outcome::StillOpen), &FINE), Verdict::AsTern);
        let untried = Report {
            requests_received: 0,
            messages_sent: 0,
            ..report(Behaviour::MismatchedBodies, Outcome::StillOpen)
        };
        assert_eq!(judge(&untried, &FINE), Verdict::Untested);
    }

    #[test]
    fn a_half_handshake_held_open_is_wrong_and_a_flood_may_be_limited() {
        let held = report(Behaviour::SlowHandshake, Outcome::StillOpen);
        assert!(judge(&held, &FINE).is_wrong());
        let closed = report(Behaviour::SlowHandshake, Outcome::Closed("eof".into()));
        assert_eq!(judge(&closed, &FINE), Verdict::AsTern);
        let served = report(Behaviour::HeaderRequestFlood, Outcome::StillOpen);
        assert_eq!(judge(&served, &FINE), Verdict::AsTern);
        let cut = report(Behaviour::HeaderRequestFlood, Outcome::Disconnected(None));
        assert!(matches!(judge(&cut, &FINE), Verdict::Allowed(_)));
        let big = Report { max_headers_per_response: 5000, ..served };
        assert!(matches!(judge(&big, &FINE), Verdict::Allowed(_)));
    }
}
