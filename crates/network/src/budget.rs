//! A per-peer serving budget: a token bucket of bytes, so one peer's request flood is
//! served at a bounded rate and cannot crowd out everyone else's answers.

use std::time::{Duration, Instant};

/// Bytes per second a peer may be served once its burst is spent.
pub const DEFAULT_SERVE_RATE: u64 = 16 * 1024 * 1024;
/// Bytes a peer may be served at once (an honest fullnode syncing 100k blocks of
/// headers from us, ~55 MB, stays within it).
pub const DEFAULT_SERVE_BURST: u64 = 64 * 1024 * 1024;
/// The least a served request costs, in bytes, however small its answer: a flood of
/// tiny requests still costs the store lookups.
pub const MIN_SERVE_COST: u64 = 1024;

/// A token bucket of bytes; the clock is always an argument.
#[derive(Debug, Clone)]
pub(crate) struct ServeBudget {
    /// Bytes available (negative: in debt until refilled).
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl ServeBudget {
    /// A full bucket of `burst` bytes refilling at `rate` bytes per second.
    pub(crate) fn new(rate: u64, burst: u64, now: Instant) -> Self {
        let burst = burst.max(MIN_SERVE_COST) as f64;
        Self { tokens: burst, rate: rate.max(1) as f64, burst, last: now }
    }

    /// Bytes available at `now` (refilled since the last charge, up to the burst).
    fn tokens_at(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        (self.tokens + elapsed * self.rate).min(self.burst)
    }

    /// Charges an answer of `bytes` (at least [`MIN_SERVE_COST`]).
    pub(crate) fn charge(&mut self, bytes: usize, now: Instant) {
        self.tokens = self.tokens_at(now) - (bytes as u64).max(MIN_SERVE_COST) as f64;
        self.last = now;
    }

    /// When the next request may be served: now, or once the debt is paid back.
    pub(crate) fn ready_at(&self, now: Instant) -> Instant {
        let tokens = self.tokens_at(now);
        if tokens >= 0.0 {
            now
        } else {
            now + Duration::from_secs_f64(-tokens / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut b = ServeBudget::new(1000, 10_000, t0);
        // The burst is served at once.
        for _ in 0..5 {
            assert_eq!(b.ready_at(t0), t0);
            b.charge(2000, t0);
        }
        // 10,000 spent, one more 2,000-byte answer: 2 s of debt at 1,000 B/s.
        b.charge(2000, t0);
        assert_eq!(b.ready_at(t0), t0 + Duration::from_secs(2));
        let later = t0 + Duration::from_secs(2);
        assert_eq!(b.ready_at(later), later);
        // Tiny answers cost the minimum.
        let mut b = ServeBudget::new(1024, 1024, t0);
        b.charge(1, t0);
        b.charge(1, t0);
        assert_eq!(b.ready_at(t0), t0 + Duration::from_secs(1));
    }

    #[test]
    fn refills_no_further_than_the_burst() {
        let t0 = Instant::now();
        let mut b = ServeBudget::new(1000, 2000, t0);
        let much_later = t0 + Duration::from_secs(3600);
        b.charge(2000, much_later);
        b.charge(2000, much_later);
        assert_eq!(b.ready_at(much_later), much_later + Duration::from_secs(2));
    }
}
