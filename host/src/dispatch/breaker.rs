//! A circuit breaker per plugin: after a run of failed calls the plugin is
//! left alone for a while (1 s, doubling up to 5 min), then tried with one
//! call; a success closes the circuit.

use std::time::{Duration, Instant};

/// Where the breaker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Circuit {
    /// Calls flow.
    Closed,
    /// No calls until the instant.
    Open(Instant),
    /// One trial call at a time.
    HalfOpen,
}

impl Circuit {
    /// The state without its deadline, as logs, metrics and the admin API
    /// show it.
    pub fn state(self) -> CircuitState {
        match self {
            Self::Closed => CircuitState::Closed,
            Self::Open(_) => CircuitState::Open,
            Self::HalfOpen => CircuitState::HalfOpen,
        }
    }
}

/// Where a circuit is, as it is shown: `closed`, `open`, `halfOpen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CircuitState {
    /// Calls flow.
    Closed,
    /// Calls are held back.
    Open,
    /// One trial call at a time.
    HalfOpen,
}

/// The breaker.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    first: Duration,
    max: Duration,
    consecutive: u32,
    backoff: Duration,
    open_until: Option<Instant>,
}

impl Breaker {
    /// Open after `threshold` consecutive failures, for `first`, doubling up
    /// to `max` while trials fail.
    pub fn new(threshold: u32, first: Duration, max: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            first,
            max,
            consecutive: 0,
            backoff: first,
            open_until: None,
        }
    }

    /// The state at `now`.
    pub fn circuit(&self, now: Instant) -> Circuit {
        match self.open_until {
            None => Circuit::Closed,
            Some(t) if now < t => Circuit::Open(t),
            Some(_) => Circuit::HalfOpen,
        }
    }

    /// Whether a call may start, with `running` calls in flight.
    pub fn allows(&self, now: Instant, running: usize) -> bool {
        match self.circuit(now) {
            Circuit::Closed => true,
            Circuit::Open(_) => false,
            Circuit::HalfOpen => running == 0,
        }
    }

    /// A call succeeded. Returns whether that closed an open circuit.
    pub fn success(&mut self) -> bool {
        self.consecutive = 0;
        self.backoff = self.first;
        self.open_until.take().is_some()
    }

    /// A call failed. Returns how long the circuit is now open for, if this
    /// failure opened it (or failed a trial).
    pub fn failure(&mut self, now: Instant) -> Option<Duration> {
        self.consecutive += 1;
        let open = if self.open_until.is_some() {
            // A failed trial: wait twice as long.
            self.backoff = (self.backoff * 2).min(self.max);
            self.backoff
        } else if self.consecutive >= self.threshold {
            self.backoff
        } else {
            return None;
        };
        self.open_until = Some(now + open);
        Some(open)
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.consecutive
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_backs_off_exponentially() {
        let mut b = Breaker::new(3, Duration::from_secs(1), Duration::from_secs(300));
        let t = Instant::now();
        assert_eq!(b.failure(t), None);
        assert_eq!(b.failure(t), None);
        assert_eq!(b.failure(t), Some(Duration::from_secs(1)));
        assert!(!b.allows(t, 0));
        let later = t + Duration::from_secs(1);
        assert_eq!(b.circuit(later), Circuit::HalfOpen);
        assert!(b.allows(later, 0));
        assert!(!b.allows(later, 1), "one trial at a time");
        assert_eq!(b.failure(later), Some(Duration::from_secs(2)));
        assert_eq!(b.failure(later), Some(Duration::from_secs(4)));
        assert!(b.success());
        assert_eq!(b.circuit(later), Circuit::Closed);
        assert_eq!(b.failures(), 0);
    }

    #[test]
    fn the_backoff_is_capped() {
        let mut b = Breaker::new(1, Duration::from_secs(1), Duration::from_secs(5));
        let t = Instant::now();
        let mut last = Duration::ZERO;
        for _ in 0..10 {
            last = b.failure(t).unwrap();
        }
        assert_eq!(last, Duration::from_secs(5));
    }
}
