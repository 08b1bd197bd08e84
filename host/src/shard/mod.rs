//! Scale-out: replicas share the work on Leases.
//!
//! Objects fall into B buckets by a stable hash of their shard key
//! ([`bucket`]: namespace and name by default, or the namespace, or the
//! controller owner, per plugin). Each live replica announces itself with a
//! membership Lease and holds about B/M of the buckets, one
//! `coordination.k8s.io/v1` Lease per bucket, renewed the way leader election
//! renews its Lease ([`coordinator`]). Who should hold what is a pure,
//! balanced function with hysteresis ([`assign()`]): only the surplus moves
//! when replicas join or leave.
//!
//! Every replica keeps the whole cache; dispatch and the action queue pass
//! through the [`Scope`]: a replica calls its plugins only for objects of the
//! buckets it holds, and checks the [`Fence`] right before each action is
//! written. A bucket is held until a moment (its last renewal plus the renew
//! deadline), so a replica that cannot renew stops acting before its Lease
//! can expire for the others. On gaining a bucket, the replica replays the
//! cache to its plugins for that bucket's objects; on losing it, it stops at
//! once, and the new holder starts from its own cache. Server-side apply
//! makes the rare overlap (a write already on the wire when a bucket moves)
//! harmless.
//!
//! Work that must happen once (what a call for no object commits, such as a
//! `synced` event's actions, and cleaning up the membership Leases of
//! replicas long gone) follows the singleton: the holder of the leader
//! Lease, elected as in `--leader-elect` mode.

mod assign;
mod bucket;
pub mod coordinator;
mod fence;
mod thread;

pub use assign::assign;
pub use bucket::{ShardKey, bucket, bucket_of};
pub use coordinator::Follower;
pub use fence::Fence;
pub use thread::{Coordination, Error};

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use parking_lot::Mutex;
use serde::Serialize;

use crate::{
    cache::CachedObject,
    informer::Snapshot,
    vocabulary::{KindKey, ObjectKey},
};

/// The default number of buckets.
pub const DEFAULT_BUCKETS: u16 = 32;
/// The most buckets a configuration may ask for: each is a Lease renewed
/// every retry period.
pub const MAX_BUCKETS: u16 = 1024;

/// How the work is sharded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// How many buckets the objects fall into.
    pub buckets: u16,
    /// What each named plugin's objects are bucketed by; the others by
    /// [`ShardKey::Object`].
    pub keys: HashMap<String, ShardKey>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            buckets: DEFAULT_BUCKETS,
            keys: HashMap::new(),
        }
    }
}

/// What a piece of work is about, for the fence: an action is written only
/// while its claim holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Claim {
    /// Not sharded: this replica does all the work (leader election, if
    /// any, gates it elsewhere).
    Any,
    /// The objects of one bucket.
    Bucket(u16),
    /// Cluster-wide work, done once: by the singleton's holder.
    Singleton,
}

/// How many times buckets changed hands here.
#[derive(Debug, Default)]
pub struct Handoffs {
    /// Buckets taken: free, released by another replica, or expired.
    pub acquired: AtomicU64,
    /// Buckets given up on purpose: to a replica that joined, or on shutdown.
    pub released: AtomicU64,
    /// Buckets lost: taken by another replica after this one could not
    /// renew, or found changed under it.
    pub lost: AtomicU64,
    /// Times a held bucket's fence lapsed because renewals did not succeed
    /// within the renew deadline.
    pub lapsed: AtomicU64,
}

/// A snapshot of [`Handoffs`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HandoffCounts {
    /// Buckets taken.
    pub acquired: u64,
    /// Buckets given up on purpose.
    pub released: u64,
    /// Buckets lost to another replica.
    pub lost: u64,
    /// Fences that lapsed for want of a renewal.
    pub lapsed: u64,
}

impl Handoffs {
    /// The counters, read once.
    pub fn counts(&self) -> HandoffCounts {
        HandoffCounts {
            acquired: self.acquired.load(Ordering::Relaxed),
            released: self.released.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
            lapsed: self.lapsed.load(Ordering::Relaxed),
        }
    }
}

/// One replica as the coordinator last saw the membership Leases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// Its identity (the Pod name).
    pub identity: String,
    /// The buckets it holds, as their Leases say.
    pub buckets: usize,
    /// Its bucket count, if it differs from this replica's (a configuration
    /// being rolled out): it then takes no part in the assignment, and this
    /// replica takes no new bucket while it lives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_bucket_count: Option<u16>,
}

/// What the coordinator last saw, for the admin API.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct View {
    /// Whether this replica has announced itself (it does once its caches
    /// have synced).
    pub joined: bool,
    /// The live replicas.
    pub members: Vec<Member>,
    /// Per bucket, the replica holding its Lease (none: free or expired).
    pub holders: Vec<Option<String>>,
    /// Why this replica takes no new bucket, if it does not: a live replica
    /// that shares the work otherwise (another bucket count, or
    /// `--leader-elect` mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflict: Option<String>,
}

/// The sharded mode's shared state: the configuration, the fence, what the
/// coordinator sees, and the counters.
#[derive(Debug)]
pub struct Shards {
    config: Config,
    identity: String,
    fence: Fence,
    view: Mutex<View>,
    handoffs: Handoffs,
    /// Whether this replica does the cluster-wide work, for whoever does it.
    singleton: tokio::sync::watch::Sender<bool>,
    /// Whether this replica has announced itself: it stands for the
    /// singleton only then.
    joined: tokio::sync::watch::Sender<bool>,
}

impl Shards {
    /// The state of replica `identity` with `config`, holding nothing yet.
    pub fn new(config: Config, identity: &str) -> Arc<Self> {
        let buckets = config.buckets.clamp(1, MAX_BUCKETS);
        Arc::new(Self {
            config: Config { buckets, ..config },
            identity: identity.to_string(),
            fence: Fence::new(buckets),
            view: Mutex::new(View::default()),
            handoffs: Handoffs::default(),
            singleton: tokio::sync::watch::Sender::new(false),
            joined: tokio::sync::watch::Sender::new(false),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// This replica's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The fence.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// The hand-off counters.
    pub fn handoffs(&self) -> &Handoffs {
        &self.handoffs
    }

    /// What the coordinator last saw.
    pub fn view(&self) -> View {
        self.view.lock().clone()
    }

    pub(crate) fn set_view(&self, view: View) {
        *self.view.lock() = view;
    }

    pub(crate) fn set_joined(&self, joined: bool) {
        self.joined
            .send_if_modified(|j| std::mem::replace(j, joined) != joined);
    }

    /// Whether this replica has announced itself, as it changes.
    pub(crate) fn joined(&self) -> tokio::sync::watch::Receiver<bool> {
        self.joined.subscribe()
    }

    /// Whether this replica holds the singleton: the one that does the
    /// cluster-wide work (webhook registration, durable plugin state, what
    /// calls about no object commit, cleaning up membership Leases). A
    /// channel, for work that must start and stop with it.
    pub fn singleton(&self) -> tokio::sync::watch::Receiver<bool> {
        self.singleton.subscribe()
    }
}

/// The singleton is the leader Lease's holder, elected as in
/// `--leader-elect` mode (see `leader`). The fence learns first, so what
/// the singleton queued stops before anyone hears it no longer leads.
impl crate::leader::Follower for Shards {
    fn set_leading(&self, leading: bool) {
        self.fence.set_singleton(leading);
        self.singleton.send_replace(leading);
        if leading {
            tracing::info!(
                "sharding: this replica does the cluster-wide work (it holds the leader Lease)"
            );
        }
    }
}

/// What this replica works on, consulted by dispatch (before queueing an
/// event and again before calling the plugin) and by the action queue
/// (right before writing): everything, or the objects of the buckets it
/// holds.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    shards: Option<Arc<Shards>>,
}

impl Scope {
    /// Everything: a single replica, or leader election.
    pub fn all() -> Self {
        Self::default()
    }

    /// The buckets held in `shards`.
    pub fn sharded(shards: Arc<Shards>) -> Self {
        Self {
            shards: Some(shards),
        }
    }

    /// The sharded state, if sharded.
    pub fn shards(&self) -> Option<&Arc<Shards>> {
        self.shards.as_ref()
    }

    /// What `plugin`'s objects are bucketed by.
    pub fn key_for(&self, plugin: &str) -> ShardKey {
        self.shards
            .as_ref()
            .and_then(|s| s.config.keys.get(plugin).copied())
            .unwrap_or_default()
    }

    /// The claim of work on one object.
    pub fn claim(
        &self,
        key: ShardKey,
        kind: &KindKey,
        object_key: &ObjectKey,
        object: Option<&CachedObject>,
    ) -> Claim {
        match &self.shards {
            None => Claim::Any,
            Some(s) => Claim::Bucket(bucket_of(s.config.buckets, key, kind, object_key, object)),
        }
    }

    /// The claim of work about no object in particular (a `synced` call's
    /// actions): the singleton's.
    pub fn cluster_claim(&self) -> Claim {
        if self.shards.is_some() {
            Claim::Singleton
        } else {
            Claim::Any
        }
    }

    /// Whether this replica may do work of `claim` now.
    pub fn holds(&self, claim: Claim) -> bool {
        match (claim, &self.shards) {
            (Claim::Any, _) | (_, None) => true,
            (Claim::Bucket(b), Some(s)) => s.fence.holds(b),
            (Claim::Singleton, Some(s)) => s.fence.singleton(),
        }
    }

    /// `snapshot` with only the objects whose bucket (by `key`) passes
    /// `keep`; unchanged when not sharded.
    pub fn retain(
        &self,
        key: ShardKey,
        snapshot: Snapshot,
        keep: impl Fn(u16) -> bool,
    ) -> Snapshot {
        let Some(s) = &self.shards else {
            return snapshot;
        };
        let buckets = s.config.buckets;
        let objects: Arc<[_]> = snapshot
            .objects
            .iter()
            .filter(|(k, o)| keep(bucket_of(buckets, key, &snapshot.kind, k, Some(o))))
            .cloned()
            .collect();
        Snapshot {
            objects,
            ..snapshot
        }
    }

    /// `snapshot` with only the objects of buckets held now.
    pub fn retain_held(&self, key: ShardKey, snapshot: Snapshot) -> Snapshot {
        let Some(s) = self.shards.clone() else {
            return snapshot;
        };
        let now = std::time::Instant::now();
        self.retain(key, snapshot, move |b| s.fence.holds_at(b, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        cache::{Config as CacheConfig, Store},
        informer::Purpose,
    };
    use serde_json::json;
    use std::time::{Duration, Instant};

    fn snapshot(names: &[&str]) -> Snapshot {
        let store = Store::new(CacheConfig::default());
        Snapshot {
            kind: KindKey::new("v1", "ConfigMap"),
            purpose: Purpose::Initial,
            objects: names
                .iter()
                .map(|n| {
                    let o = store.prepare(json!({"metadata": {"name": n, "namespace": "a"}}));
                    (Arc::new(ObjectKey::new(Some("a"), n)), Arc::new(o))
                })
                .collect(),
        }
    }

    #[test]
    fn unsharded_everything_is_in_scope_and_nothing_is_hashed() {
        let scope = Scope::all();
        let kind = KindKey::new("v1", "ConfigMap");
        let claim = scope.claim(
            ShardKey::Object,
            &kind,
            &ObjectKey::new(Some("a"), "x"),
            None,
        );
        assert_eq!(claim, Claim::Any);
        assert_eq!(scope.cluster_claim(), Claim::Any);
        assert!(scope.holds(Claim::Bucket(3)) && scope.holds(Claim::Singleton));
        assert_eq!(
            scope
                .retain_held(ShardKey::Object, snapshot(&["x", "y"]))
                .objects
                .len(),
            2
        );
    }

    #[test]
    fn sharded_only_the_held_buckets_and_the_singleton_are_in_scope() {
        let shards = Shards::new(
            Config {
                buckets: 4,
                keys: HashMap::from([("p".to_string(), ShardKey::Namespace)]),
            },
            "me",
        );
        let scope = Scope::sharded(shards.clone());
        assert_eq!(scope.key_for("p"), ShardKey::Namespace);
        assert_eq!(scope.key_for("other"), ShardKey::Object);
        let names: Vec<String> = (0..40).map(|i| format!("cm-{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        assert!(
            scope
                .retain_held(ShardKey::Object, snapshot(&refs))
                .objects
                .is_empty()
        );
        let now = Instant::now();
        shards.fence().grant(1, now + Duration::from_secs(60), now);
        let kept = scope.retain_held(ShardKey::Object, snapshot(&refs));
        assert!(!kept.objects.is_empty() && kept.objects.len() < 40);
        for (key, _) in kept.objects.iter() {
            assert_eq!(bucket(4, "a", &key.name), 1);
            let claim = scope.claim(ShardKey::Object, &kept.kind, key, None);
            assert_eq!(claim, Claim::Bucket(1));
            assert!(scope.holds(claim));
        }
        assert!(!scope.holds(Claim::Bucket(0)));
        assert_eq!(scope.cluster_claim(), Claim::Singleton);
        assert!(!scope.holds(Claim::Singleton));
        let mut singleton = shards.singleton();
        crate::leader::Follower::set_leading(&*shards, true);
        assert!(scope.holds(Claim::Singleton));
        assert!(*singleton.borrow_and_update());
    }
}
