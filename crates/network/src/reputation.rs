//! Peer reputation: scores, penalties, slow recovery and bans. Pure: the clock is an
//! argument, so the rules are tested deterministically.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};
use tern_p2p::PeerId;

/// Score of a peer we know nothing bad about.
pub const DEFAULT_REPUTATION: i32 = 0;
/// Highest score good behaviour can earn: enough to absorb a few timeouts, not enough to
/// survive a stream of bad data.
pub const MAX_REPUTATION: i32 = 50;
/// At or below this a peer is disconnected and banned.
pub const BAN_THRESHOLD: i32 = -100;
/// How long a ban lasts.
pub const BAN_DURATION: Duration = Duration::from_secs(30 * 60);
/// Every this long a peer's score moves one point back toward [`DEFAULT_REPUTATION`]: a
/// peer that timed out a few times is forgiven within minutes, a banned one is not
/// (bans are separate).
pub const RECOVERY_INTERVAL: Duration = Duration::from_secs(10);
/// Points for a response that matched its request and validated.
pub const GOOD_RESPONSE_REWARD: i32 = 1;

/// A misbehaviour and its penalty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Penalty {
    /// A message that does not decode, an unknown id, a second Status, an oversized
    /// message: the peer cannot speak the protocol. Bans at once.
    ProtocolBreach,
    /// A header, seal or body that fails validation: -50, two strikes (honest peers can
    /// relay one bad block they did not check themselves).
    BadBlock,
    /// A response whose id matches no outstanding request, or whose type differs from the
    /// request's: -25, four strikes (a late answer after our timeout lands here too).
    UnsolicitedResponse,
    /// No response within the timeout: -10, ten strikes, and recovery in between keeps
    /// a slow but honest peer connected.
    Timeout,
    /// An announcement that is absurd (too many entries) or for blocks that turn out
    /// not to exist: -20.
    BadAnnouncement,
    /// A transaction the peer could have known is invalid (bad signature, wrong chain,
    /// intrinsic gas...), a blob transaction broadcast whole, or a pooled transaction
    /// whose type or size differs from its announcement: -15.
    BadTransaction,
}

impl Penalty {
    /// Every penalty, in declaration order.
    pub const ALL: [Penalty; 6] = [
        Self::ProtocolBreach,
        Self::BadBlock,
        Self::UnsolicitedResponse,
        Self::Timeout,
        Self::BadAnnouncement,
        Self::BadTransaction,
    ];

    /// Points subtracted.
    pub const fn points(self) -> i32 {
        match self {
            Self::ProtocolBreach => 100,
            Self::BadBlock => 50,
            Self::UnsolicitedResponse => 25,
            Self::Timeout => 10,
            Self::BadAnnouncement => 20,
            Self::BadTransaction => 15,
        }
    }

    /// A short name for logs and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ProtocolBreach => "protocol_breach",
            Self::BadBlock => "bad_block",
            Self::UnsolicitedResponse => "unsolicited_response",
            Self::Timeout => "timeout",
            Self::BadAnnouncement => "bad_announcement",
            Self::BadTransaction => "bad_transaction",
        }
    }
}

/// How many times a peer received each [`Penalty`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PenaltyCounts([u32; Penalty::ALL.len()]);

impl PenaltyCounts {
    /// Times `penalty` was applied.
    pub fn get(&self, penalty: Penalty) -> u32 {
        self.0[penalty as usize]
    }

    /// Penalties of every kind.
    pub fn total(&self) -> u32 {
        self.0.iter().sum()
    }

    fn add(&mut self, penalty: Penalty) {
        self.0[penalty as usize] = self.0[penalty as usize].saturating_add(1);
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    score: i32,
    /// When the score was last brought up to date with recovery.
    updated: Instant,
    /// Every penalty applied since we met the peer (in this run).
    penalties: PenaltyCounts,
}

/// Scores and bans of every peer we have met.
#[derive(Debug, Clone, Default)]
pub struct Reputation {
    entries: HashMap<PeerId, Entry>,
    bans: HashMap<PeerId, Instant>,
    trusted: HashSet<PeerId>,
}

impl Reputation {
    /// Marks `peer` trusted: never banned, penalties capped just above the threshold.
    pub fn trust(&mut self, peer: PeerId) {
        self.trusted.insert(peer);
    }

    /// Whether `peer` is trusted.
    pub fn is_trusted(&self, peer: &PeerId) -> bool {
        self.trusted.contains(peer)
    }

    fn entry(&mut self, peer: PeerId, now: Instant) -> &mut Entry {
        let e = self.entries.entry(peer).or_insert(Entry {
            score: DEFAULT_REPUTATION,
            updated: now,
            penalties: PenaltyCounts::default(),
        });
        let steps =
            now.saturating_duration_since(e.updated).as_secs() / RECOVERY_INTERVAL.as_secs();
        if steps > 0 {
            let steps = steps.min(i32::MAX as u64) as i32;
            e.score = if e.score < DEFAULT_REPUTATION {
                (e.score + steps).min(DEFAULT_REPUTATION)
            } else {
                e.score
            };
            e.updated += RECOVERY_INTERVAL * steps as u32;
        }
        e
    }

    /// The current score of `peer`.
    pub fn score(&mut self, peer: PeerId, now: Instant) -> i32 {
        self.entry(peer, now).score
    }

    /// The penalties `peer` received since we met it in this run.
    pub fn penalties(&self, peer: &PeerId) -> PenaltyCounts {
        self.entries.get(peer).map(|e| e.penalties).unwrap_or_default()
    }

    /// Sets a score (restoring persisted state).
    pub fn set_score(&mut self, peer: PeerId, score: i32, now: Instant) {
        self.entry(peer, now).score = score.clamp(BAN_THRESHOLD, MAX_REPUTATION);
    }

    /// Applies `penalty`; returns `true` when the peer is now banned (and must be
    /// disconnected).
    pub fn penalize(&mut self, peer: PeerId, penalty: Penalty, now: Instant) -> bool {
        let trusted = self.is_trusted(&peer);
        let e = self.entry(peer, now);
        e.penalties.add(penalty);
        e.score = e.score.saturating_sub(penalty.points());
        if trusted {
            e.score = e.score.max(BAN_THRESHOLD + 1);
            return false;
        }
        if e.score <= BAN_THRESHOLD {
            e.score = BAN_THRESHOLD;
            self.bans.insert(peer, now + BAN_DURATION);
            return true;
        }
        false
    }

    /// Rewards a good response.
    pub fn reward(&mut self, peer: PeerId, now: Instant) {
        let e = self.entry(peer, now);
        e.score = (e.score + GOOD_RESPONSE_REWARD).min(MAX_REPUTATION);
    }

    /// Bans `peer` until `until` (restoring persisted bans).
    pub fn ban_until(&mut self, peer: PeerId, until: Instant) {
        if !self.is_trusted(&peer) {
            self.bans.insert(peer, until);
        }
    }

    /// Whether `peer` is banned at `now` (expired bans are forgotten).
    pub fn is_banned(&mut self, peer: &PeerId, now: Instant) -> bool {
        match self.bans.get(peer) {
            Some(until) if *until > now => true,
            Some(_) => {
                self.bans.remove(peer);
                false
            }
            None => false,
        }
    }

    /// When the ban of `peer` ends, if banned.
    pub fn banned_until(&self, peer: &PeerId) -> Option<Instant> {
        self.bans.get(peer).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(b: u8) -> PeerId {
        PeerId::repeat_byte(b)
    }

    #[test]
    fn penalties_ban_at_the_threshold_and_recover_slowly() {
        let t0 = Instant::now();
        let mut r = Reputation::default();
        assert!(r.penalize(peer(1), Penalty::ProtocolBreach, t0), "a breach bans at once");
        assert!(r.is_banned(&peer(1), t0 + BAN_DURATION - Duration::from_secs(1)));
        assert!(!r.is_banned(&peer(1), t0 + BAN_DURATION));

        assert!(!r.penalize(peer(2), Penalty::BadBlock, t0));
        assert!(r.penalize(peer(2), Penalty::BadBlock, t0), "two bad blocks ban");

        for i in 0..3 {
            assert!(!r.penalize(peer(3), Penalty::UnsolicitedResponse, t0), "strike {i}");
        }
        assert!(r.penalize(peer(3), Penalty::UnsolicitedResponse, t0));

        // Timeouts spread out in time are forgiven: 10 s recovers one point.
        let mut t = t0;
        for _ in 0..30 {
            assert!(!r.penalize(peer(4), Penalty::Timeout, t));
            t += RECOVERY_INTERVAL * 10;
        }
        assert_eq!(r.score(peer(4), t), DEFAULT_REPUTATION);
        // ...but ten in a row ban.
        let banned = (0..10).map(|_| r.penalize(peer(5), Penalty::Timeout, t0)).last().unwrap();
        assert!(banned);
        // Each kind is counted on its own.
        assert_eq!(r.penalties(&peer(5)).get(Penalty::Timeout), 10);
        assert_eq!(r.penalties(&peer(3)).get(Penalty::UnsolicitedResponse), 4);
        assert_eq!(r.penalties(&peer(3)).total(), 4);
        assert_eq!(r.penalties(&peer(6)), PenaltyCounts::default());
    }

    #[test]
    fn trusted_peers_are_never_banned() {
        let t0 = Instant::now();
        let mut r = Reputation::default();
        r.trust(peer(9));
        for _ in 0..10 {
            assert!(!r.penalize(peer(9), Penalty::ProtocolBreach, t0));
        }
        assert!(!r.is_banned(&peer(9), t0));
        assert_eq!(r.score(peer(9), t0), BAN_THRESHOLD + 1);
        r.ban_until(peer(9), t0 + BAN_DURATION);
        assert!(!r.is_banned(&peer(9), t0));
    }

    #[test]
    fn rewards_are_capped() {
        let t0 = Instant::now();
        let mut r = Reputation::default();
        for _ in 0..1000 {
            r.reward(peer(1), t0);
        }
        assert_eq!(r.score(peer(1), t0), MAX_REPUTATION);
    }
}
