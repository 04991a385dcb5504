//! Counters of what the network served and dialed (for tests, logs and metrics).

use std::sync::atomic::{AtomicU64, Ordering};

/// Running totals, shared by every session.
#[derive(Debug, Default)]
pub struct Counters {
    /// GetBlockHeaders requests answered.
    pub header_requests: AtomicU64,
    /// Headers sent in those answers.
    pub headers: AtomicU64,
    /// GetBlockBodies requests answered.
    pub body_requests: AtomicU64,
    /// Bodies sent in those answers.
    pub bodies: AtomicU64,
    /// Outbound dials that ended before a session (refused, unreachable, wrong chain).
    pub failed_dials: AtomicU64,
}

/// A copy of [`Counters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServedCounts {
    /// GetBlockHeaders requests answered.
    pub header_requests: u64,
    /// Headers sent.
    pub headers: u64,
    /// GetBlockBodies requests answered.
    pub body_requests: u64,
    /// Bodies sent.
    pub bodies: u64,
}

impl Counters {
    pub(crate) fn served_headers(&self, n: usize) {
        metrics::counter!("tern_requests_served_total", "type" => "headers").increment(1);
        self.header_requests.fetch_add(1, Ordering::Relaxed);
        self.headers.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn served_bodies(&self, n: usize) {
        metrics::counter!("tern_requests_served_total", "type" => "bodies").increment(1);
        self.body_requests.fetch_add(1, Ordering::Relaxed);
        self.bodies.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn dial_failed(&self) {
        metrics::counter!("tern_dial_failures_total").increment(1);
        self.failed_dials.fetch_add(1, Ordering::Relaxed);
    }

    /// The current totals.
    pub fn snapshot(&self) -> ServedCounts {
        ServedCounts {
            header_requests: self.header_requests.load(Ordering::Relaxed),
            headers: self.headers.load(Ordering::Relaxed),
            body_requests: self.body_requests.load(Ordering::Relaxed),
            bodies: self.bodies.load(Ordering::Relaxed),
        }
    }
}
