//! How long one plugin's calls take, kept in fixed buckets so the admin API
//! can show the distribution (`/metrics` exports the same durations as a
//! Prometheus histogram). Deadlines are wall-clock time: this is where an
//! operator sees how close a plugin's calls come to theirs.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use serde::Serialize;

/// Bucket upper bounds: 25 µs doubling to about 1.6 s, then everything.
const BOUNDS_MICROS: [u64; 17] = [
    25, 50, 100, 200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, 51_200, 102_400, 204_800,
    409_600, 819_200, 1_638_400,
];

/// Call durations, lock-free.
#[derive(Debug, Default)]
pub struct Durations {
    buckets: [AtomicU64; BOUNDS_MICROS.len() + 1],
    max_micros: AtomicU64,
}

/// The distribution, as the admin API shows it: each quantile as the upper
/// bound of its bucket, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Distribution {
    /// Calls measured.
    pub count: u64,
    /// Half the calls took at most this long.
    pub p50_ms: f64,
    /// Nine calls in ten took at most this long.
    pub p90_ms: f64,
    /// 99 calls in 100 took at most this long.
    pub p99_ms: f64,
    /// The longest call.
    pub max_ms: f64,
}

impl Durations {
    /// Count one call.
    pub fn observe(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let at = BOUNDS_MICROS
            .iter()
            .position(|b| micros <= *b)
            .unwrap_or(BOUNDS_MICROS.len());
        self.buckets[at].fetch_add(1, Ordering::Relaxed);
        self.max_micros.fetch_max(micros, Ordering::Relaxed);
    }

    /// The distribution so far.
    pub fn distribution(&self) -> Distribution {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let count: u64 = counts.iter().sum();
        let max_micros = self.max_micros.load(Ordering::Relaxed);
        let quantile = |q: f64| -> f64 {
            if count == 0 {
                return 0.0;
            }
            let rank = ((count as f64) * q).ceil() as u64;
            let mut seen = 0;
            for (i, n) in counts.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    let bound = BOUNDS_MICROS.get(i).copied().unwrap_or(max_micros);
                    return bound.min(max_micros) as f64 / 1000.0;
                }
            }
            max_micros as f64 / 1000.0
        };
        Distribution {
            count,
            p50_ms: quantile(0.5),
            p90_ms: quantile(0.9),
            p99_ms: quantile(0.99),
            max_ms: max_micros as f64 / 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_the_bounds_of_their_buckets() {
        let d = Durations::default();
        for _ in 0..98 {
            d.observe(Duration::from_micros(30));
        }
        d.observe(Duration::from_millis(5));
        d.observe(Duration::from_millis(90));
        let dist = d.distribution();
        assert_eq!(dist.count, 100);
        assert_eq!(dist.p50_ms, 0.05);
        assert_eq!(dist.p90_ms, 0.05);
        assert_eq!(dist.p99_ms, 6.4);
        assert_eq!(dist.max_ms, 90.0);
        assert_eq!(Durations::default().distribution(), Distribution::default());
    }
}
