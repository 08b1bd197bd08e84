//! The relist diff: what a completed list means for one watch's
//! subscribers, given what the watch had told them before. Pure, so that it
//! is tested on its own, the way kube-runtime tests its watcher's steps.
//!
//! What the watch has reported decides the events, not the cache: another
//! watch of the same kind may have cached an object this one never
//! reported, or this one may have reported an object since evicted by none.

use std::sync::Arc;

use super::{Change, Notification, Purpose, Snapshot};
use crate::{
    cache::{CachedObject, Relisted},
    vocabulary::{EventType, KeySet, KindKey, ObjectKey},
};

/// The notifications a completed list brings, and the keys the watch has
/// now reported present (to pass to the next call).
///
/// The first list is one [`Snapshot`] of every object, sorted by key.
/// A relist is changes: each object `known` had and the list lacks, as
/// deleted with its last state and `final_state_unknown`; then, in key
/// order, each listed object `known` lacked as added, and each whose
/// resourceVersion changed as modified. Unchanged objects bring nothing.
pub(super) fn diff(
    kind: &KindKey,
    known: &KeySet,
    relisted: Relisted,
    first: bool,
) -> (Vec<Notification>, KeySet) {
    let Relisted {
        added,
        modified,
        deleted,
        unchanged,
    } = relisted;
    type Present = (Arc<ObjectKey>, Option<Arc<CachedObject>>, Arc<CachedObject>);
    let mut present: Vec<Present> = added
        .into_iter()
        .chain(unchanged)
        .map(|(k, o)| (k, None, o))
        .chain(
            modified
                .into_iter()
                .map(|(k, old, new)| (k, Some(old), new)),
        )
        .collect();
    present.sort_by(|a, b| a.0.cmp(&b.0));
    let listed: KeySet = present.iter().map(|(k, _, _)| k.clone()).collect();
    if first {
        let objects = present.into_iter().map(|(k, _, o)| (k, o)).collect();
        let snapshot = Snapshot {
            kind: kind.clone(),
            purpose: Purpose::Initial,
            objects,
        };
        return (vec![Notification::Snapshot(snapshot)], listed);
    }
    let change = |event_type, final_state_unknown, key, object, old| {
        Notification::Change(Change {
            kind: kind.clone(),
            event_type,
            final_state_unknown,
            key,
            object,
            old,
        })
    };
    let mut notes: Vec<Notification> = deleted
        .into_iter()
        .filter(|(k, _)| known.contains(k))
        .map(|(k, last)| change(EventType::Deleted, true, k, last, None))
        .collect();
    for (k, old, new) in present {
        if !known.contains(&k) {
            notes.push(change(EventType::Added, false, k, new, None));
        } else if old.is_some() {
            notes.push(change(EventType::Modified, false, k, new, old));
        }
    }
    (notes, listed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(name: &str) -> Arc<ObjectKey> {
        Arc::new(ObjectKey::new(Some("ns"), name))
    }

    fn object(name: &str, rv: &str) -> Arc<CachedObject> {
        Arc::new(CachedObject::from_value(
            &json!({"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}}),
        ))
    }

    fn known(names: &[&str]) -> KeySet {
        names.iter().map(|n| key(n)).collect()
    }

    /// (type, name, resourceVersion, final state unknown) of each change.
    fn changes(notes: &[Notification]) -> Vec<(EventType, String, String, bool)> {
        notes
            .iter()
            .map(|n| match n {
                Notification::Change(c) => (
                    c.event_type,
                    c.key.name.to_string(),
                    c.object.resource_version().to_string(),
                    c.final_state_unknown,
                ),
                other => panic!("a relist brings changes, not {other:?}"),
            })
            .collect()
    }

    fn kind() -> KindKey {
        KindKey::new("v1", "ConfigMap")
    }

    #[test]
    fn the_first_list_is_one_sorted_snapshot_of_everything_listed() {
        let relisted = Relisted {
            added: vec![(key("b"), object("b", "2")), (key("a"), object("a", "1"))],
            unchanged: vec![(key("c"), object("c", "3"))],
            ..Relisted::default()
        };
        let (notes, now) = diff(&kind(), &KeySet::default(), relisted, true);
        let [Notification::Snapshot(s)] = notes.as_slice() else {
            panic!("{notes:?}");
        };
        assert_eq!(s.purpose, Purpose::Initial);
        let names: Vec<_> = s.objects.iter().map(|(k, _)| &*k.name).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(now, known(&["a", "b", "c"]));
    }

    #[test]
    fn a_relist_reports_what_the_watch_missed_and_nothing_else() {
        // Known before: a (unchanged), b (changed meanwhile), c (deleted
        // meanwhile). New: d. The cache also held e, which another watch
        // cached and this one never reported: its removal is not this
        // watch's event.
        let relisted = Relisted {
            added: vec![(key("d"), object("d", "9"))],
            modified: vec![(key("b"), object("b", "2"), object("b", "8"))],
            deleted: vec![(key("c"), object("c", "3")), (key("e"), object("e", "5"))],
            unchanged: vec![(key("a"), object("a", "1"))],
        };
        let (notes, now) = diff(&kind(), &known(&["a", "b", "c"]), relisted, false);
        assert_eq!(
            changes(&notes),
            [
                (EventType::Deleted, "c".into(), "3".into(), true),
                (EventType::Modified, "b".into(), "8".into(), false),
                (EventType::Added, "d".into(), "9".into(), false),
            ]
        );
        assert_eq!(now, known(&["a", "b", "d"]));
    }

    #[test]
    fn an_object_cached_by_another_watch_is_added_for_this_one() {
        // The cache had f at this version already (another watch of the
        // kind), so the swap calls it unchanged; this watch never reported
        // it, so for its subscribers it is new.
        let relisted = Relisted {
            unchanged: vec![(key("f"), object("f", "4"))],
            ..Relisted::default()
        };
        let (notes, now) = diff(&kind(), &KeySet::default(), relisted, false);
        assert_eq!(
            changes(&notes),
            [(EventType::Added, "f".into(), "4".into(), false)]
        );
        assert_eq!(now, known(&["f"]));
    }

    #[test]
    fn a_modified_object_keeps_its_previous_state() {
        let relisted = Relisted {
            modified: vec![(key("b"), object("b", "2"), object("b", "3"))],
            ..Relisted::default()
        };
        let (notes, _) = diff(&kind(), &known(&["b"]), relisted, false);
        let [Notification::Change(c)] = notes.as_slice() else {
            panic!("{notes:?}");
        };
        assert_eq!(c.old.as_ref().map(|o| o.resource_version()), Some("2"));
    }

    #[test]
    fn an_unchanged_relist_brings_nothing() {
        let relisted = Relisted {
            unchanged: vec![(key("a"), object("a", "1"))],
            ..Relisted::default()
        };
        let (notes, now) = diff(&kind(), &known(&["a"]), relisted, false);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(now, known(&["a"]));
    }
}
