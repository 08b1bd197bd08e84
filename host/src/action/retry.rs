//! What to do with an action that failed: retry it soon, retry it slowly
//! because the API server refused it (403), or give it up. A pure decision
//! with its own tests; the queue carries it out.
//!
//! A 403 is not final. It means the host's service account lacks a rule,
//! which an operator fixes by changing RBAC, without restarting anything.
//! So a forbidden action is retried with a long backoff (1 s doubling to
//! `forbidden_backoff`, 30 s by default), as controller-runtime requeues a
//! failed reconcile, for up to `forbidden_retry_for` (1 h) before it becomes
//! a dead letter; the admin API can re-drive dead letters after that.

use std::time::Duration;

use super::Failure;

/// The retry policy of the action queue.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Retries after the first attempt, for transient failures.
    pub max_retries: u32,
    /// First retry delay of a transient failure; doubles per attempt.
    pub min_backoff: Duration,
    /// Longest retry delay of a transient failure.
    pub max_backoff: Duration,
    /// Longest retry delay of a forbidden (403) action.
    pub forbidden_backoff: Duration,
    /// How long a forbidden action is retried before it is given up.
    pub forbidden_retry_for: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_retries: 10,
            min_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_secs(300),
            forbidden_backoff: Duration::from_secs(30),
            forbidden_retry_for: Duration::from_secs(3600),
        }
    }
}

/// The first delay after a 403.
const FORBIDDEN_MIN_BACKOFF: Duration = Duration::from_secs(1);

/// Why an action was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// Transient failures until the retries ran out.
    RetriesExhausted,
    /// A failure no retry fixes (404, 422, a malformed action).
    Terminal,
    /// Refused by the API server (403) for longer than the policy allows.
    Forbidden,
}

/// What the queue does next with a failed action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try again after the delay.
    Retry(Duration),
    /// The API server refused it: try again after the (longer) delay.
    RetryForbidden(Duration),
    /// Stop trying.
    GiveUp(GiveUp),
}

impl Policy {
    /// What to do after `attempts` attempts (the last one failed with
    /// `failure`), when the first 403 of this action was `forbidden_for`
    /// ago (zero if this is the first).
    pub fn decide(&self, failure: &Failure, attempts: u32, forbidden_for: Duration) -> Decision {
        if failure.code == 403 {
            if forbidden_for >= self.forbidden_retry_for {
                return Decision::GiveUp(GiveUp::Forbidden);
            }
            return Decision::RetryForbidden(jittered(
                FORBIDDEN_MIN_BACKOFF,
                self.forbidden_backoff.max(FORBIDDEN_MIN_BACKOFF),
                attempts,
            ));
        }
        if !failure.retryable {
            return Decision::GiveUp(GiveUp::Terminal);
        }
        if attempts > self.max_retries {
            return Decision::GiveUp(GiveUp::RetriesExhausted);
        }
        Decision::Retry(self.backoff_for(attempts))
    }

    /// The delay before retry number `retry` (1-based) of a transient
    /// failure: exponential, capped, with jitter.
    pub fn backoff_for(&self, retry: u32) -> Duration {
        jittered(self.min_backoff, self.max_backoff, retry)
    }
}

/// `min` doubled per retry up to `max`, with "equal jitter" (half fixed,
/// half random) so that actions failing together do not retry together.
fn jittered(min: Duration, max: Duration, retry: u32) -> Duration {
    let exp = min
        .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
        .min(max);
    let half = exp / 2;
    half + half.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: u16, retryable: bool) -> Failure {
        Failure {
            action: "mergePatch",
            target: "v1/ConfigMap shop/a".into(),
            code,
            message: "m".into(),
            retryable,
        }
    }

    #[test]
    fn backoff_doubles_from_the_minimum_up_to_the_cap_with_jitter() {
        let c = Policy::default();
        for _ in 0..100 {
            let first = c.backoff_for(1);
            assert!(first >= Duration::from_micros(2500) && first <= Duration::from_millis(5));
            let fifth = c.backoff_for(5);
            assert!(fifth >= Duration::from_millis(40) && fifth <= Duration::from_millis(80));
            let late = c.backoff_for(40);
            assert!(late >= Duration::from_secs(150) && late <= Duration::from_secs(300));
        }
    }

    #[test]
    fn transient_failures_retry_until_the_retries_run_out() {
        let p = Policy::default();
        let f = failure(503, true);
        assert!(matches!(
            p.decide(&f, 1, Duration::ZERO),
            Decision::Retry(_)
        ));
        assert!(matches!(
            p.decide(&f, 10, Duration::ZERO),
            Decision::Retry(_)
        ));
        assert_eq!(
            p.decide(&f, 11, Duration::ZERO),
            Decision::GiveUp(GiveUp::RetriesExhausted)
        );
    }

    #[test]
    fn terminal_failures_are_given_up_at_once() {
        let p = Policy::default();
        for code in [404, 422] {
            assert_eq!(
                p.decide(&failure(code, false), 1, Duration::ZERO),
                Decision::GiveUp(GiveUp::Terminal)
            );
        }
    }

    #[test]
    fn forbidden_actions_retry_slowly_beyond_the_retry_count_and_stop_after_the_window() {
        let p = Policy::default();
        let f = failure(403, false);
        // Past max_retries, still retried: an operator may grant the rule.
        for attempts in [1, 11, 500] {
            match p.decide(&f, attempts, Duration::from_secs(60)) {
                Decision::RetryForbidden(d) => assert!(d <= Duration::from_secs(30)),
                other => panic!("attempt {attempts}: {other:?}"),
            }
        }
        // The delay grows from a second to the cap, so that a granted rule
        // is noticed within the cap.
        match p.decide(&f, 1, Duration::ZERO) {
            Decision::RetryForbidden(d) => {
                assert!(d >= Duration::from_millis(500) && d <= Duration::from_secs(1))
            }
            other => panic!("{other:?}"),
        }
        match p.decide(&f, 30, Duration::ZERO) {
            Decision::RetryForbidden(d) => assert!(d >= Duration::from_secs(15)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            p.decide(&f, 2000, Duration::from_secs(3600)),
            Decision::GiveUp(GiveUp::Forbidden)
        );
    }
}
