//! Packet rate limits: a token bucket per source IP and one for all sources. Pure
//! bookkeeping with the clock as an argument; the service drops what is refused.
//!
//! On loopback every node of a machine shares one IP, so there a source is an address
//! and port (one process): a local network of many nodes is not cut to one node's rate,
//! and one local flooder still is.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    time::Instant,
};

/// Packets per second one IP address may send us, sustained ([`RateLimits::default`]).
/// A lookup by a peer costs it a FindNode per query and a Ping/Pong per new contact;
/// 50 per second is far above what an honest node sends one peer.
pub const PER_IP_RATE: u32 = 50;

/// Packets per second from everyone together ([`RateLimits::default`]).
pub const GLOBAL_RATE: u32 = 2_000;

/// Source addresses tracked at most; beyond this the idle ones are forgotten (a
/// forgotten address starts again with a full bucket).
const MAX_TRACKED_IPS: usize = 8_192;

/// Rates of the packet limits (packets per second; the burst is twice the rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Per source IP.
    pub per_ip: u32,
    /// All sources together.
    pub global: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self { per_ip: PER_IP_RATE, global: GLOBAL_RATE }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: u32, now: Instant) -> Self {
        Self { tokens: 2.0 * f64::from(rate), at: now }
    }

    fn take(&mut self, rate: u32, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(rate)).min(2.0 * f64::from(rate));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The limiter of one service.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    global: Bucket,
    per_ip: HashMap<SocketAddr, Bucket>,
}

impl RateLimiter {
    /// A limiter whose buckets start full at `now`.
    pub fn new(limits: RateLimits, now: Instant) -> Self {
        Self { limits, global: Bucket::full(limits.global, now), per_ip: HashMap::new() }
    }

    /// Whether a packet from `from` arriving at `now` may be handled (it uses a token of
    /// both buckets if so).
    pub fn allow(&mut self, from: SocketAddr, now: Instant) -> bool {
        let ip = match from.ip() {
            IpAddr::V4(v4) if v4.is_loopback() => from,
            IpAddr::V6(v6) if v6.is_loopback() => from,
            ip => SocketAddr::new(ip, 0),
        };
        if self.per_ip.len() >= MAX_TRACKED_IPS && !self.per_ip.contains_key(&ip) {
            // Those idle long enough to be full again lose nothing by being forgotten.
            let refill = 2.0 / f64::from(self.limits.per_ip.max(1));
            self.per_ip.retain(|_, b| now.saturating_duration_since(b.at).as_secs_f64() < refill);
            if self.per_ip.len() >= MAX_TRACKED_IPS {
                self.per_ip.clear();
            }
        }
        let rate = self.limits.per_ip;
        let bucket = self.per_ip.entry(ip).or_insert_with(|| Bucket::full(rate, now));
        if !bucket.take(rate, now) {
            return false;
        }
        self.global.take(self.limits.global, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_flooding_address_is_cut_to_its_rate_and_others_still_pass() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(RateLimits { per_ip: 10, global: 1_000 }, t0);
        let flooder: SocketAddr = "10.0.0.1:30303".parse().unwrap();
        let honest: SocketAddr = "10.0.0.2:30303".parse().unwrap();
        let passed = (0..100).filter(|_| l.allow(flooder, t0)).count();
        assert_eq!(passed, 20, "the burst is twice the rate");
        let other_port: SocketAddr = "10.0.0.1:30304".parse().unwrap();
        assert!(!l.allow(other_port, t0), "another port of the same IP shares its bucket");
        assert!(l.allow(honest, t0));
        // One second later, ten more.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..100).filter(|_| l.allow(flooder, t1)).count(), 10);
    }

    #[test]
    fn the_global_bucket_caps_many_sources() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(RateLimits { per_ip: 10, global: 50 }, t0);
        let ip = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        let passed = (0..200u32).filter(|i| l.allow(SocketAddr::new(ip(*i), 1), t0)).count();
        assert_eq!(passed, 100);
    }

    #[test]
    fn on_loopback_each_port_is_a_source() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(RateLimits { per_ip: 10, global: 1_000 }, t0);
        for port in 1..=30u16 {
            let from = SocketAddr::from(([127, 0, 0, 1], port));
            assert_eq!((0..30).filter(|_| l.allow(from, t0)).count(), 20, "port {port}");
        }
    }
}
