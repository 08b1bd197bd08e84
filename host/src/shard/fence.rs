//! The fence: which buckets this replica may act on right now, consulted
//! before every plugin call and right before every action is written.
//!
//! A bucket is held until a moment, not until further notice: each renewal
//! of its Lease extends it to the renewal's start plus the renew deadline,
//! which is shorter than the Lease's duration. A replica that cannot renew
//! (its API server is gone, its renewals hang) stops acting when that moment
//! passes, by its own clock, before any other replica can see the Lease as
//! expired and take it. Reading it is one atomic load and a clock read.

use std::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, Instant},
};

/// Per bucket, until when this replica may act on it.
#[derive(Debug)]
pub struct Fence {
    origin: Instant,
    /// Nanoseconds after `origin` until which the bucket is held; 0: not held.
    until: Box<[AtomicU64]>,
    /// Whether this replica holds the singleton Lease (cluster-wide work).
    singleton: AtomicBool,
}

impl Fence {
    /// A fence over `buckets` buckets, none held.
    pub fn new(buckets: u16) -> Self {
        Self {
            origin: Instant::now(),
            until: (0..buckets.max(1)).map(|_| AtomicU64::new(0)).collect(),
            singleton: AtomicBool::new(false),
        }
    }

    /// How many buckets there are.
    pub fn buckets(&self) -> u16 {
        u16::try_from(self.until.len()).unwrap_or(u16::MAX)
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos())
            .unwrap_or(u64::MAX)
            // 0 means "not held".
            .max(1)
    }

    /// Whether this replica may act on `bucket` now.
    pub fn holds(&self, bucket: u16) -> bool {
        self.holds_at(bucket, Instant::now())
    }

    /// Whether this replica may act on `bucket` at `now`.
    pub fn holds_at(&self, bucket: u16, now: Instant) -> bool {
        self.until
            .get(usize::from(bucket))
            .is_some_and(|u| self.nanos(now) < u.load(Ordering::Acquire))
    }

    /// Hold `bucket` until `until` (a renewal's start plus the renew
    /// deadline). Returns whether it had lapsed (or was not held) at `now`:
    /// then work on it was skipped, and the bucket must be replayed.
    pub fn grant(&self, bucket: u16, until: Instant, now: Instant) -> bool {
        let Some(slot) = self.until.get(usize::from(bucket)) else {
            return false;
        };
        let before = slot.swap(self.nanos(until), Ordering::AcqRel);
        before <= self.nanos(now)
    }

    /// Stop acting on `bucket` at once.
    pub fn revoke(&self, bucket: u16) {
        if let Some(slot) = self.until.get(usize::from(bucket)) {
            slot.store(0, Ordering::Release);
        }
    }

    /// The buckets held at `now`.
    pub fn held_at(&self, now: Instant) -> Vec<u16> {
        (0..self.buckets())
            .filter(|b| self.holds_at(*b, now))
            .collect()
    }

    /// How long `bucket` stays held after `now`; zero if it is not.
    pub fn remaining(&self, bucket: u16, now: Instant) -> Duration {
        self.until
            .get(usize::from(bucket))
            .map_or(Duration::ZERO, |u| {
                Duration::from_nanos(u.load(Ordering::Acquire).saturating_sub(self.nanos(now)))
            })
    }

    /// Whether this replica does the cluster-wide work.
    pub fn singleton(&self) -> bool {
        self.singleton.load(Ordering::Acquire)
    }

    /// Hold the singleton, or not.
    pub fn set_singleton(&self, held: bool) {
        self.singleton.store(held, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_is_held_until_its_moment_and_not_after() {
        let fence = Fence::new(4);
        let t0 = Instant::now();
        assert!(!fence.holds_at(1, t0));
        // Granted for the first time: it was not held, so it is replayed.
        assert!(fence.grant(1, t0 + Duration::from_secs(10), t0));
        assert!(fence.holds_at(1, t0 + Duration::from_secs(9)));
        assert!(!fence.holds_at(1, t0 + Duration::from_secs(10)));
        assert_eq!(fence.held_at(t0), vec![1]);
        assert_eq!(
            fence.remaining(1, t0 + Duration::from_secs(4)),
            Duration::from_secs(6)
        );
        // Renewed in time: no replay.
        assert!(!fence.grant(1, t0 + Duration::from_secs(12), t0 + Duration::from_secs(2)));
        // Renewed after it lapsed: work was skipped meanwhile, replay.
        assert!(fence.grant(
            1,
            t0 + Duration::from_secs(23),
            t0 + Duration::from_secs(13)
        ));
    }

    #[test]
    fn a_revoked_bucket_is_let_go_at_once() {
        let fence = Fence::new(2);
        let t0 = Instant::now();
        fence.grant(0, t0 + Duration::from_secs(10), t0);
        fence.revoke(0);
        assert!(!fence.holds_at(0, t0));
        assert!(fence.held_at(t0).is_empty());
        // Out of range: never held.
        assert!(!fence.holds_at(9, t0));
        assert!(!fence.grant(9, t0 + Duration::from_secs(1), t0));
    }
}
