//! Shared watches: one informer per distinct (resource, namespace, label
//! selector, field selector), reference-counted across subscribers.
//!
//! The first subscriber starts the watch; later ones get the cached objects
//! as a snapshot (their initial list) without a new list against the
//! server; the last one to leave stops the watch and frees the objects only
//! it kept in the cache.
//!
//! A subscriber that takes the first list as it streams in
//! ([`FirstList::Streamed`]) gets a place of its own in it; one that comes
//! while it streams, or takes lists whole, gets it as a snapshot once it is
//! complete.
//!
//! Each subscriber says what it needs of the objects ([`Need`]); the cache
//! keeps, per kind, what every subscriber of every watch of the kind needs
//! together. A subscriber that needs more than the cache holds makes every
//! watch of its kind list again, and gets its initial snapshot only once
//! its own watch has: it never sees an object with less than it asked for.
//! A subscriber that declared its fields is not sent a modification that
//! changed nothing it sees of the object.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::{FirstList, Informer, Notification, Purpose, Scope, Snapshot, WatchStatus};
use crate::{
    cache::{Entries, Need, Projection, Store},
    vocabulary::{EventType, KindKey},
};

/// What makes two subscriptions the same watch.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchKey {
    /// `v1`, `apps/v1`.
    pub api_version: String,
    /// The plural resource name.
    pub plural: String,
    /// The namespace, if one.
    pub namespace: Option<String>,
    /// The label selector, canonical form.
    pub labels: String,
    /// The field selector, canonical form.
    pub fields: String,
    /// The kind served under the plural (determined by it).
    pub kind: String,
}

impl WatchKey {
    /// The key of a scope.
    pub fn of(scope: &Scope) -> Self {
        Self {
            api_version: scope.resource.api_version.clone(),
            plural: scope.resource.plural.clone(),
            namespace: scope.namespace.clone(),
            labels: scope.labels.to_string(),
            fields: scope.fields.to_string(),
            kind: scope.resource.kind.clone(),
        }
    }
}

/// One subscriber's handle; pass it back to [`SharedInformers::unsubscribe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriberId(u64);

/// One subscriber: where its notifications go, how it takes first lists,
/// what it needs of the objects, and whether it waits for a relist.
#[derive(Clone)]
struct Subscriber {
    tx: mpsc::Sender<Notification>,
    first_list: FirstList,
    need: Need,
    /// What it sees of an object, if it declared its fields: a modification
    /// that changes none of it is not sent to it.
    sees: Option<Arc<Projection>>,
    /// The relist its initial snapshot waits for (it gets nothing before).
    waits_for: Option<u64>,
}

/// The relists a watch was asked for ([`Informer::relist`]) and the last
/// one its fan-out saw complete; both change only under the subscribers'
/// lock.
#[derive(Default)]
struct Relists {
    asked: AtomicU64,
    done: AtomicU64,
}

type Subscribers = Arc<Mutex<HashMap<SubscriberId, Subscriber>>>;

/// Replays of the cache to subscribers with a resync period.
type Resyncs = Mutex<HashMap<SubscriberId, tokio::task::JoinHandle<()>>>;

struct Shared {
    scope: Scope,
    informer: Informer,
    subscribers: Subscribers,
    relists: Arc<Relists>,
    fanout: tokio::task::JoinHandle<()>,
}

/// Every running watch.
pub struct SharedInformers {
    client: kube::Client,
    cache: Arc<Store>,
    watches: tokio::sync::Mutex<HashMap<WatchKey, Shared>>,
    resyncs: Resyncs,
    next_id: std::sync::atomic::AtomicU64,
}

impl SharedInformers {
    /// No watch yet.
    pub fn new(client: kube::Client, cache: Arc<Store>) -> Self {
        Self {
            client,
            cache,
            watches: tokio::sync::Mutex::new(HashMap::new()),
            resyncs: Mutex::new(HashMap::new()),
            next_id: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// Subscribe to a scope: its events go to `tx`. Starts the watch if it is
    /// the first subscriber; otherwise replays the cached objects if the
    /// watch has already synced.
    /// The subscriber needs whole objects.
    pub async fn subscribe(&self, scope: Scope, tx: mpsc::Sender<Notification>) -> SubscriberId {
        self.subscribe_as(scope, tx, FirstList::Whole, Need::Whole)
            .await
    }

    /// Like [`Self::subscribe`], taking the watch's first list as
    /// `first_list` says (if the watch is still to list; otherwise its
    /// cached objects come as a snapshot), and needing `need` of the
    /// objects. If the cache holds less of the kind, every watch of the
    /// kind lists again, and the snapshot comes once this one has.
    pub async fn subscribe_as(
        &self,
        scope: Scope,
        tx: mpsc::Sender<Notification>,
        first_list: FirstList,
        need: Need,
    ) -> SubscriberId {
        let id = SubscriberId(
            self.next_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        );
        let key = WatchKey::of(&scope);
        let mut watches = self.watches.lock().await;
        let kind = kind_of(&scope);
        let sees = Projection::visible(&need).map(Arc::new);
        let together = needed(&watches, &kind).map_or_else(|| need.clone(), |n| n.union(&need));
        if self.cache.set_need(&kind, together) {
            relist_kind(&watches, &kind);
        }
        if let Some(shared) = watches.get(&key) {
            // Hold the fan-out lock while taking the snapshot, so that no
            // live event slips between it and the registration.
            let mut subscribers = shared.subscribers.lock();
            let asked = shared.relists.asked.load(Ordering::SeqCst);
            let waits_for = (shared.informer.status().synced_once
                && asked > shared.relists.done.load(Ordering::SeqCst))
            .then_some(asked);
            if shared.informer.status().synced_once && waits_for.is_none() {
                let n =
                    Notification::Snapshot(snapshot(&self.cache, &shared.scope, Purpose::Initial));
                // A new subscriber's channel is empty: this fits. If it does
                // not (a channel reused after its CRD came back), the
                // snapshot still goes, behind what is queued.
                if let Err(mpsc::error::TrySendError::Full(n)) = tx.try_send(n) {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let _ = tx.send(n).await;
                    });
                }
            }
            subscribers.insert(
                id,
                Subscriber {
                    tx,
                    first_list,
                    need,
                    sees,
                    waits_for,
                },
            );
            return id;
        }
        let subscribers: Subscribers = Arc::new(Mutex::new(HashMap::from([(
            id,
            Subscriber {
                tx,
                first_list,
                need,
                sees,
                waits_for: None,
            },
        )])));
        let (informer_tx, informer_rx) = mpsc::channel::<Notification>(1024);
        let informer = Informer::start_with(
            self.client.clone(),
            self.cache.clone(),
            scope.clone(),
            informer_tx,
            FirstList::Streamed,
        );
        let relists = Arc::new(Relists::default());
        let fanout = tokio::spawn(fan_out(
            informer_rx,
            subscribers.clone(),
            relists.clone(),
            self.cache.clone(),
            scope.clone(),
        ));
        watches.insert(
            key,
            Shared {
                scope,
                informer,
                subscribers,
                relists,
                fanout,
            },
        );
        id
    }

    /// Like [`Self::subscribe`], and every `period` replay the cached objects
    /// of the scope to this subscriber as `resync` events. A replay is not a
    /// relist: the server is not asked again.
    pub async fn subscribe_with_resync(
        &self,
        scope: Scope,
        tx: mpsc::Sender<Notification>,
        period: std::time::Duration,
        first_list: FirstList,
        need: Need,
    ) -> SubscriberId {
        let id = self
            .subscribe_as(scope.clone(), tx.clone(), first_list, need)
            .await;
        let cache = self.cache.clone();
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let n = Notification::Snapshot(snapshot(&cache, &scope, Purpose::Resync));
                if tx.send(n).await.is_err() {
                    return;
                }
            }
        });
        self.resyncs.lock().insert(id, task);
        id
    }

    /// Remove a subscriber. The last one stops the watch and removes from
    /// the cache the objects no other watch of the same kind covers.
    pub async fn unsubscribe(&self, id: SubscriberId) {
        if let Some(task) = self.resyncs.lock().remove(&id) {
            task.abort();
        }
        let mut watches = self.watches.lock().await;
        let Some(key) = watches
            .iter()
            .find(|(_, s)| s.subscribers.lock().contains_key(&id))
            .map(|(k, _)| k.clone())
        else {
            return;
        };
        let empty = {
            let shared = &watches[&key];
            let mut subs = shared.subscribers.lock();
            subs.remove(&id);
            subs.is_empty()
        };
        let kind = KindKey::new(&key.api_version, &key.kind);
        if !empty {
            // What is left needs no more than before: no relist.
            self.cache
                .set_need(&kind, needed(&watches, &kind).unwrap_or_default());
            return;
        }
        let Some(shared) = watches.remove(&key) else {
            return;
        };
        self.cache
            .set_need(&kind, needed(&watches, &kind).unwrap_or_default());
        shared.informer.stop().await;
        shared.fanout.abort();
        let kind = KindKey::new(
            &shared.scope.resource.api_version,
            &shared.scope.resource.kind,
        );
        let others: Vec<Scope> = watches
            .values()
            .filter(|s| {
                WatchKey::of(&s.scope).plural == key.plural
                    && s.scope.resource.api_version == key.api_version
            })
            .map(|s| s.scope.clone())
            .collect();
        let doomed: Vec<_> = self
            .cache
            .list(
                &kind,
                shared.scope.namespace.as_deref(),
                &shared.scope.labels,
            )
            .into_iter()
            .filter(|(k, o)| {
                shared.scope.contains(k, o) && !others.iter().any(|s| s.contains(k, o))
            })
            .map(|(k, _)| k)
            .collect();
        for k in doomed {
            self.cache.remove(&kind, &k);
        }
        tracing::info!(resource = %kind, namespace = key.namespace.as_deref().unwrap_or(""), labels = %key.labels, "last subscriber left; watch stopped");
    }

    /// The cached objects of a subscriber's scope.
    pub async fn cached(&self, id: SubscriberId) -> Entries {
        let watches = self.watches.lock().await;
        let Some(shared) = watches
            .values()
            .find(|s| s.subscribers.lock().contains_key(&id))
        else {
            return Vec::new();
        };
        in_scope(&self.cache, &shared.scope)
    }

    /// What a subscriber added now would get: the cached objects of its
    /// scope as an initial snapshot. None if its watch has not synced yet
    /// (its own first list will come).
    pub async fn replay_for(&self, id: SubscriberId) -> Option<Snapshot> {
        let watches = self.watches.lock().await;
        watches
            .values()
            .find(|s| s.subscribers.lock().contains_key(&id))
            .filter(|shared| shared.informer.status().synced_once)
            .map(|shared| snapshot(&self.cache, &shared.scope, Purpose::Initial))
    }

    /// Whether every watch has completed its first list: the readiness barrier.
    pub async fn all_synced(&self) -> bool {
        self.watches
            .lock()
            .await
            .values()
            .all(|s| s.informer.status().synced_once)
    }

    /// The watches and their status, for the admin view.
    pub async fn statuses(&self) -> Vec<(WatchKey, WatchStatus, usize)> {
        let watches = self.watches.lock().await;
        let mut out: Vec<_> = watches
            .iter()
            .map(|(k, s)| (k.clone(), s.informer.status(), s.subscribers.lock().len()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// The kind of a scope's objects.
fn kind_of(scope: &Scope) -> KindKey {
    KindKey::new(&scope.resource.api_version, &scope.resource.kind)
}

/// What every subscriber of every watch of `kind` needs together; none if
/// the kind has no subscriber.
fn needed(watches: &HashMap<WatchKey, Shared>, kind: &KindKey) -> Option<Need> {
    let mut needs = watches
        .values()
        .filter(|s| kind_of(&s.scope) == *kind)
        .flat_map(|s| {
            s.subscribers
                .lock()
                .values()
                .map(|s| s.need.clone())
                .collect::<Vec<_>>()
        });
    let first = needs.next()?;
    Some(needs.fold(first, |all, n| all.union(&n)))
}

/// Ask every watch of `kind` to list again: the cache now keeps more of
/// its objects than those it holds.
fn relist_kind(watches: &HashMap<WatchKey, Shared>, kind: &KindKey) {
    for shared in watches.values().filter(|s| kind_of(&s.scope) == *kind) {
        let _subscribers = shared.subscribers.lock();
        let asked = shared.relists.asked.fetch_add(1, Ordering::SeqCst) + 1;
        shared.informer.relist(asked);
    }
    tracing::info!(resource = %kind, "a subscriber needs more of this kind than the cache holds: its watches list again");
}

/// Send every notification of a watch to its subscribers, each with
/// backpressure (a dropped receiver is skipped). A streaming first list gives
/// each subscriber that takes it so a place of its own; the others, and
/// whoever subscribed while it streamed, get it as a snapshot once complete.
/// A subscriber waiting for a relist gets nothing until it is complete, and
/// then the cached objects as its initial snapshot.
async fn fan_out(
    mut rx: mpsc::Receiver<Notification>,
    subscribers: Subscribers,
    relists: Arc<Relists>,
    cache: Arc<Store>,
    scope: Scope,
) {
    let mut streamed_to: HashSet<SubscriberId> = HashSet::new();
    while let Some(n) = rx.recv().await {
        if let Notification::Relisted(done) = n {
            let released: Vec<_> = {
                let mut subscribers = subscribers.lock();
                relists.done.fetch_max(done, Ordering::SeqCst);
                subscribers
                    .values_mut()
                    .filter(|s| s.waits_for.is_some_and(|w| w <= done))
                    .map(|s| {
                        s.waits_for = None;
                        s.tx.clone()
                    })
                    .collect()
            };
            if !released.is_empty() {
                let n = Notification::Snapshot(snapshot(&cache, &scope, Purpose::Initial));
                for tx in released {
                    let _ = tx.send(n.clone()).await;
                }
            }
            continue;
        }
        let targets: Vec<_> = subscribers
            .lock()
            .iter()
            .filter(|(_, s)| s.waits_for.is_none())
            .map(|(id, s)| (*id, s.clone()))
            .collect();
        match n {
            Notification::Streaming(slot) => {
                streamed_to.clear();
                for (id, s) in targets {
                    if s.first_list != FirstList::Streamed {
                        continue;
                    }
                    let own = Arc::new(slot.listing().slot());
                    if s.tx.send(Notification::Streaming(own)).await.is_ok() {
                        streamed_to.insert(id);
                    }
                }
            }
            Notification::Streamed(listing) => {
                let mut whole = None;
                for (id, s) in targets {
                    let n = if streamed_to.contains(&id) {
                        Notification::Streamed(listing.clone())
                    } else {
                        let snapshot = whole.get_or_insert_with(|| listing.snapshot());
                        Notification::Snapshot(snapshot.clone())
                    };
                    let _ = s.tx.send(n).await;
                }
                streamed_to.clear();
            }
            n => {
                for (_, s) in targets {
                    if !visible(&n, s.sees.as_deref()) {
                        continue;
                    }
                    let _ = s.tx.send(n.clone()).await;
                }
            }
        }
    }
}

/// Whether a subscriber that sees `sees` of the objects (all of them if
/// none) sees anything of `n`: a modification whose old and new states
/// differ only in fields it did not declare (and the resourceVersion) is
/// invisible to it, as a jqFilter's unchanged result is to a
/// shell-operator hook.
fn visible(n: &Notification, sees: Option<&Projection>) -> bool {
    match (n, sees) {
        (Notification::Change(c), Some(sees)) if c.event_type == EventType::Modified => c
            .old
            .as_ref()
            .is_none_or(|old| sees.differs(old.json(), c.object.json())),
        _ => true,
    }
}

/// The cached objects of a scope.
fn in_scope(cache: &Store, scope: &Scope) -> Entries {
    let kind = KindKey::new(&scope.resource.api_version, &scope.resource.kind);
    cache
        .list(&kind, scope.namespace.as_deref(), &scope.labels)
        .into_iter()
        .filter(|(k, o)| scope.contains(k, o))
        .collect()
}

/// The cached objects of a scope as a snapshot (the cache lists them sorted).
fn snapshot(cache: &Store, scope: &Scope, purpose: Purpose) -> Snapshot {
    Snapshot {
        kind: KindKey::new(&scope.resource.api_version, &scope.resource.kind),
        purpose,
        objects: in_scope(cache, scope).into(),
    }
}
