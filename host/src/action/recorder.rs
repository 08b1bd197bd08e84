//! Event aggregation, the way client-go's `events` recorder does it: the
//! first of a run of isomorphic Events (same object, reason, action, type and
//! reporter) is created; repeats only count, in memory, and reach the API as
//! an update of the Event's `series` at most once per interval. A plugin
//! that emits an Event on every call, in a loop, costs the API server one
//! write per interval rather than one per call.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use super::Severity;
use crate::vocabulary::ObjectRef;

/// What makes two Events the same series; the note (message) is not part of
/// it, as in client-go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeriesKey {
    /// The object the Event is about.
    pub regarding: ObjectRef,
    /// The reason.
    pub reason: String,
    /// The action.
    pub action: String,
    /// Normal or Warning.
    pub severity: Severity,
    /// The plugin that emitted it.
    pub plugin: String,
}

/// What to do with an Event that was just observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// A new series: create the Event, then [`Recorder::created`].
    Create,
    /// A repeat: counted; nothing to send now.
    Counted,
}

/// A series whose count changed since it was last written, to be patched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flush {
    /// The series.
    pub key: SeriesKey,
    /// The namespace and name of the Event object.
    pub namespace: String,
    /// The Event's name.
    pub name: String,
    /// Occurrences so far.
    pub count: u32,
}

#[derive(Debug)]
struct Series {
    /// Set once the first Event is created.
    event: Option<(String, String)>,
    count: u32,
    written_count: u32,
    last_seen: Instant,
    last_written: Instant,
}

/// The state of every live series.
#[derive(Debug)]
pub struct Recorder {
    series: HashMap<SeriesKey, Series>,
    /// How often a growing series is written.
    interval: Duration,
    /// A series idle this long ends; the next occurrence starts a new Event.
    idle: Duration,
    /// Bound on the number of series kept.
    max_series: usize,
}

impl Default for Recorder {
    fn default() -> Self {
        // client-go ends a series after 6 minutes without an occurrence.
        Self::new(Duration::from_secs(30), Duration::from_secs(6 * 60), 4096)
    }
}

impl Recorder {
    /// A recorder writing growing series every `interval`.
    pub fn new(interval: Duration, idle: Duration, max_series: usize) -> Self {
        Self {
            series: HashMap::new(),
            interval,
            idle,
            max_series,
        }
    }

    /// Record one occurrence.
    pub fn observe(&mut self, key: &SeriesKey, now: Instant) -> Observed {
        if let Some(s) = self.series.get_mut(key)
            && now.duration_since(s.last_seen) < self.idle
        {
            s.count += 1;
            s.last_seen = now;
            return Observed::Counted;
        }
        if self.series.len() >= self.max_series {
            self.expire(now);
            if self.series.len() >= self.max_series
                && let Some(oldest) = self
                    .series
                    .iter()
                    .min_by_key(|(_, s)| s.last_seen)
                    .map(|(k, _)| k.clone())
            {
                self.series.remove(&oldest);
            }
        }
        self.series.insert(
            key.clone(),
            Series {
                event: None,
                count: 1,
                written_count: 1,
                last_seen: now,
                last_written: now,
            },
        );
        Observed::Create
    }

    /// The Event of a new series was created as `namespace/name`.
    pub fn created(&mut self, key: &SeriesKey, namespace: String, name: String) {
        if let Some(s) = self.series.get_mut(key) {
            s.event = Some((namespace, name));
        }
    }

    /// Creating the Event failed: forget the series, so the next occurrence
    /// tries again.
    pub fn failed(&mut self, key: &SeriesKey) {
        self.series.remove(key);
    }

    /// Series due for a write: their count grew and the interval passed, or
    /// they are about to end. Marks them written.
    pub fn due(&mut self, now: Instant) -> Vec<Flush> {
        let mut out = Vec::new();
        for (key, s) in &mut self.series {
            let Some((namespace, name)) = &s.event else {
                continue;
            };
            let ending = now.duration_since(s.last_seen) >= self.idle;
            let grown = s.count > s.written_count;
            if grown && (ending || now.duration_since(s.last_written) >= self.interval) {
                s.written_count = s.count;
                s.last_written = now;
                out.push(Flush {
                    key: key.clone(),
                    namespace: namespace.clone(),
                    name: name.clone(),
                    count: s.count,
                });
            }
        }
        self.expire(now);
        out
    }

    fn expire(&mut self, now: Instant) {
        let idle = self.idle;
        self.series
            .retain(|_, s| now.duration_since(s.last_seen) < idle || s.count > s.written_count);
    }

    /// How many series are live.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether no series is live.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(reason: &str) -> SeriesKey {
        SeriesKey {
            regarding: ObjectRef {
                api_version: "v1".into(),
                kind: "Pod".into(),
                namespace: Some("a".into()),
                name: "p".into(),
            },
            reason: reason.into(),
            action: "Check".into(),
            severity: Severity::Warning,
            plugin: "x".into(),
        }
    }

    #[test]
    fn repeats_are_counted_and_written_once_per_interval() {
        let mut r = Recorder::new(Duration::from_secs(30), Duration::from_secs(360), 10);
        let t0 = Instant::now();
        assert_eq!(r.observe(&key("Bad"), t0), Observed::Create);
        r.created(&key("Bad"), "a".into(), "p.1".into());
        for i in 1..1000 {
            assert_eq!(
                r.observe(&key("Bad"), t0 + Duration::from_millis(i)),
                Observed::Counted
            );
        }
        assert!(r.due(t0 + Duration::from_secs(1)).is_empty());
        let due = r.due(t0 + Duration::from_secs(31));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].count, 1000);
        assert_eq!(due[0].name, "p.1");
        // Nothing new: nothing to write.
        assert!(r.due(t0 + Duration::from_secs(62)).is_empty());
    }

    #[test]
    fn a_different_reason_is_a_different_series() {
        let mut r = Recorder::default();
        let t0 = Instant::now();
        assert_eq!(r.observe(&key("A"), t0), Observed::Create);
        assert_eq!(r.observe(&key("B"), t0), Observed::Create);
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn an_idle_series_ends_and_the_next_occurrence_creates_again() {
        let mut r = Recorder::new(Duration::from_secs(30), Duration::from_secs(60), 10);
        let t0 = Instant::now();
        r.observe(&key("A"), t0);
        r.created(&key("A"), "a".into(), "p.1".into());
        r.observe(&key("A"), t0 + Duration::from_secs(1));
        // The last count is written as the series ends.
        let due = r.due(t0 + Duration::from_secs(70));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].count, 2);
        assert!(r.is_empty());
        assert_eq!(
            r.observe(&key("A"), t0 + Duration::from_secs(71)),
            Observed::Create
        );
    }

    #[test]
    fn the_number_of_series_is_bounded() {
        let mut r = Recorder::new(Duration::from_secs(30), Duration::from_secs(60), 2);
        let t0 = Instant::now();
        for (i, reason) in ["A", "B", "C"].iter().enumerate() {
            r.observe(&key(reason), t0 + Duration::from_millis(i as u64));
        }
        assert_eq!(r.len(), 2);
    }
}
