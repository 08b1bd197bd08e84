//! `requeue-after`: a plugin asks to see an object again later. The lane
//! keeps one timer per object (the earliest request wins); when it fires,
//! the object comes back from the cache as a `resync` event.

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use super::{
    lane::Lane,
    queue::{Job, Key},
};
use crate::{
    plugin::Event,
    vocabulary::{EventType, ObjectRef},
};

impl Lane {
    /// Redeliver `target` after `delay`; of several requeues of one object,
    /// the earliest wins.
    pub(super) fn requeue_after(self: &Arc<Self>, target: ObjectRef, delay: Duration) {
        let due = Instant::now() + delay;
        {
            let mut requeues = self.requeues.lock();
            if requeues.get(&target).is_some_and(|d| *d <= due) {
                return;
            }
            requeues.insert(target.clone(), due);
        }
        let lane = self.clone();
        self.runtime.spawn(async move {
            tokio::time::sleep_until(due.into()).await;
            {
                let mut requeues = lane.requeues.lock();
                if requeues.get(&target) != Some(&due) {
                    return;
                }
                requeues.remove(&target);
            }
            lane.redeliver(&target);
        });
    }

    fn redeliver(self: &Arc<Self>, target: &ObjectRef) {
        let kind = target.kind_key();
        let sub = self
            .kinds
            .lock()
            .iter()
            .filter(|(_, k)| **k == kind)
            .map(|(i, _)| *i)
            .min();
        let Some(sub) = sub else {
            tracing::debug!(plugin.name = %self.name, object.ref = %target, "requeue dropped: no subscription delivers this kind");
            return;
        };
        let key = target.object_key();
        let Some(object) = self.cache.get(&kind, &key) else {
            tracing::debug!(plugin.name = %self.name, object.ref = %target, "requeue dropped: the object is gone");
            return;
        };
        let event = Event {
            event_type: EventType::Resync,
            subscription: sub,
            initial: false,
            final_state_unknown: false,
            object: Some(object),
            old_object: None,
            merged: 0,
        };
        self.stats.requeued.fetch_add(1, Ordering::Relaxed);
        self.push(
            Job::new(Key::Object(kind, Arc::new(key)), sub, event),
            self.delivery(sub),
        );
    }
}
