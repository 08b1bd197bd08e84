//! Which bucket an object falls into: a stable hash of its shard key, the
//! same on every replica and in every version of the host, so that replicas
//! of different versions (a rolling update) agree on who works on what.

use std::hash::Hasher;

use serde::{Deserialize, Serialize};

use crate::{
    cache::CachedObject,
    vocabulary::{KindKey, ObjectKey},
};

/// What an object's bucket is computed from, per plugin. Objects with the
/// same key land in the same bucket, so one replica sees them all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ShardKey {
    /// The object's own namespace and name (the default).
    #[default]
    Object,
    /// Its namespace: every object of a namespace (and the Namespace
    /// itself) on one replica.
    Namespace,
    /// Its controller owner (the `ownerReferences` entry with
    /// `controller: true`), which hashes like the owner object itself; an
    /// object without one hashes as itself. A Deployment and its
    /// ReplicaSets, or a Tenant and what it owns, stay together.
    Owner,
}

impl ShardKey {
    /// The name used in the configuration and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Object => "object",
            Self::Namespace => "namespace",
            Self::Owner => "owner",
        }
    }
}

/// The bucket of an object, out of `buckets` (at least 1).
///
/// `object` is read only for [`ShardKey::Owner`]; without it, the object
/// hashes as itself.
pub fn bucket_of(
    buckets: u16,
    key: ShardKey,
    kind: &KindKey,
    object_key: &ObjectKey,
    object: Option<&CachedObject>,
) -> u16 {
    match key {
        ShardKey::Object => bucket(buckets, &object_key.namespace, &object_key.name),
        ShardKey::Namespace => {
            let namespace = if is_namespace(kind) {
                &object_key.name
            } else {
                &object_key.namespace
            };
            bucket(buckets, namespace, "")
        }
        ShardKey::Owner => match object.and_then(|o| controller_owner(o.json())) {
            Some(owner) => bucket(buckets, &object_key.namespace, &owner),
            None => bucket(buckets, &object_key.namespace, &object_key.name),
        },
    }
}

/// The bucket of `namespace/name`: FNV-1a (64 bits) of the two joined by a
/// NUL, finished with a multiply-xorshift so that the low bits (the ones a
/// modulo keeps) depend on every input byte. Neither step may ever change:
/// replicas of different versions must agree.
pub fn bucket(buckets: u16, namespace: &str, name: &str) -> u16 {
    let mut h = fnv::FnvHasher::default();
    h.write(namespace.as_bytes());
    h.write(&[0]);
    h.write(name.as_bytes());
    let mut x = h.finish();
    // The finaliser of SplitMix64.
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    let n = u64::from(buckets.max(1));
    // The remainder is below `buckets`, so it fits.
    u16::try_from(x % n).unwrap_or(0)
}

fn is_namespace(kind: &KindKey) -> bool {
    &*kind.api_version == "v1" && &*kind.kind == "Namespace"
}

/// The name of the object's controller owner, read without building the
/// whole tree.
fn controller_owner(json: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Object {
        #[serde(default)]
        metadata: Meta,
    }
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Meta {
        #[serde(default)]
        owner_references: Vec<Owner>,
    }
    #[derive(Deserialize)]
    struct Owner {
        name: String,
        #[serde(default)]
        controller: Option<bool>,
    }
    let object: Object = serde_json::from_str(json).ok()?;
    object
        .metadata
        .owner_references
        .into_iter()
        .find(|o| o.controller == Some(true))
        .map(|o| o.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{Config, Store};
    use serde_json::json;

    fn configmaps() -> KindKey {
        KindKey::new("v1", "ConfigMap")
    }

    #[test]
    fn the_hash_never_changes() {
        // Replicas of different versions must agree: these values are
        // fixed forever.
        assert_eq!(
            bucket(32, "shop", "settings"),
            bucket(32, "shop", "settings")
        );
        let fixed: Vec<u16> = ["a", "b", "settings", "web-7d4b9c"]
            .iter()
            .map(|n| bucket(32, "shop", n))
            .collect();
        assert_eq!(fixed, FIXED);
        // The hash under it is FNV-1a, 64 bits (its published test vector).
        let mut fnv = fnv::FnvHasher::default();
        fnv.write(b"a");
        assert_eq!(fnv.finish(), 0xaf63_dc4c_8601_ec8c);
        // Namespace and name are kept apart: "ab/c" is not "a/bc".
        assert_ne!(bucket(1 << 15, "ab", "c"), bucket(1 << 15, "a", "bc"));
    }

    /// What [`the_hash_never_changes`] pins.
    const FIXED: [u16; 4] = [19, 31, 31, 9];

    #[test]
    fn thirty_thousand_names_spread_evenly_over_32_buckets() {
        let mut counts = [0u32; 32];
        for i in 0..30_000 {
            counts[bucket(32, "load", &format!("cm-{i:05}")) as usize] += 1;
        }
        let mean = 30_000.0 / 32.0;
        for (b, n) in counts.iter().enumerate() {
            let off = (f64::from(*n) - mean).abs() / mean;
            assert!(
                off < 0.1,
                "bucket {b} has {n} objects, {off:.2} off the mean"
            );
        }
    }

    #[test]
    fn related_objects_stay_together_by_namespace_or_owner() {
        let store = Store::new(Config::default());
        let owned = store.prepare(json!({"metadata": {"name": "web-7d4b9c", "namespace": "shop",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Other", "name": "not-this", "uid": "1"},
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "2", "controller": true}]}}));
        let kind = KindKey::new("apps/v1", "ReplicaSet");
        let key = ObjectKey::new(Some("shop"), "web-7d4b9c");
        let owner = bucket_of(
            1024,
            ShardKey::Owner,
            &KindKey::new("apps/v1", "Deployment"),
            &ObjectKey::new(Some("shop"), "web"),
            None,
        );
        assert_eq!(
            bucket_of(1024, ShardKey::Owner, &kind, &key, Some(&owned)),
            owner
        );
        // Without a controller, or without the object, it hashes as itself.
        let own = bucket_of(1024, ShardKey::Object, &kind, &key, None);
        assert_eq!(bucket_of(1024, ShardKey::Owner, &kind, &key, None), own);
        let orphan =
            store.prepare(json!({"metadata": {"name": "web-7d4b9c", "namespace": "shop"}}));
        assert_eq!(
            bucket_of(1024, ShardKey::Owner, &kind, &key, Some(&orphan)),
            own
        );

        let by_ns = |kind: &KindKey, ns: Option<&str>, name: &str| {
            bucket_of(
                1024,
                ShardKey::Namespace,
                kind,
                &ObjectKey::new(ns, name),
                None,
            )
        };
        let shop = by_ns(&configmaps(), Some("shop"), "a");
        assert_eq!(by_ns(&configmaps(), Some("shop"), "b"), shop);
        assert_eq!(by_ns(&KindKey::new("v1", "Namespace"), None, "shop"), shop);
    }

    #[test]
    fn one_bucket_holds_everything() {
        assert_eq!(bucket(1, "any", "thing"), 0);
        assert_eq!(bucket(0, "any", "thing"), 0);
    }
}
