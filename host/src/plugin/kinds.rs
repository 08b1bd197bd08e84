//! The kinds one instance names in its cache reads and actions, kept as
//! shared keys: a [`KindKey`] holds two reference-counted strings, and
//! building one for every `cache.get` or action would cost two allocations
//! (and two frees) per host call on the event path.

use crate::vocabulary::KindKey;

/// How many kinds an instance keeps. Plugins name a handful; past this,
/// keys are built (and dropped) per call again, so a guest naming endless
/// kinds cannot grow the instance's memory on the host.
const KEPT: usize = 32;

/// The kinds an instance has named, in the order it first named them.
#[derive(Debug, Default)]
pub(crate) struct Kinds {
    keys: Vec<KindKey>,
}

impl Kinds {
    /// The key of `api_version` and `kind`: one kept, or a new one, kept
    /// while there is room.
    pub(crate) fn key(&mut self, api_version: &str, kind: &str) -> KindKey {
        if let Some(key) = self
            .keys
            .iter()
            .find(|k| &*k.kind == kind && &*k.api_version == api_version)
        {
            return key.clone();
        }
        let key = KindKey::new(api_version, kind);
        if self.keys.len() < KEPT {
            self.keys.push(key.clone());
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_kind_named_again_shares_the_first_key() {
        let mut kinds = Kinds::default();
        let first = kinds.key("v1", "ConfigMap");
        let again = kinds.key("v1", "ConfigMap");
        assert_eq!(first, KindKey::new("v1", "ConfigMap"));
        assert!(Arc::ptr_eq(&first.kind, &again.kind));
        assert!(Arc::ptr_eq(&first.api_version, &again.api_version));
        // Same kind name, other group: another key.
        let other = kinds.key("example.com/v1", "ConfigMap");
        assert_eq!(other, KindKey::new("example.com/v1", "ConfigMap"));
        assert_ne!(other, first);
    }

    #[test]
    fn past_its_room_it_still_answers_and_keeps_no_more() {
        let mut kinds = Kinds::default();
        for i in 0..KEPT + 10 {
            let kind = format!("Kind{i}");
            assert_eq!(kinds.key("v1", &kind), KindKey::new("v1", &kind));
        }
        assert_eq!(kinds.keys.len(), KEPT);
        let late = kinds.key("v1", &format!("Kind{}", KEPT + 5));
        assert_eq!(late, KindKey::new("v1", &format!("Kind{}", KEPT + 5)));
        assert_eq!(kinds.keys.len(), KEPT);
    }
}
