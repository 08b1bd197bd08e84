//! Subscriptions as plugins state them, resolved through discovery: served
//! kinds start a (shared) watch; kinds not served yet stay pending and start
//! by themselves when their CRD appears; a deleted CRD stops its watches and
//! puts their subscriptions back to pending. The host watches CRDs itself
//! for this.
//!
//! Nothing here needs the API server to be up. A subscription whose kind
//! cannot be resolved because discovery fails (the server is unreachable,
//! or answers 5xx or 429) is kept as unreachable and asked about again with
//! backoff, from [`RETRY_MIN`] doubling to [`DISCOVERY_REFRESH`]; it starts
//! by itself once the server answers.

use std::{collections::HashMap, sync::Arc};

use kube::api::ApiResource;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Change, FirstList, Notification, Scope, SharedInformers, Snapshot, SubscriberId};
use crate::{
    cache::{Need, Store},
    discovery,
    vocabulary::EventType,
};
use informant_k8s::selector::{FieldSelector, LabelSelector};

/// How often pending subscriptions ask discovery again; the longest wait
/// between two tries for an unreachable one.
pub const DISCOVERY_REFRESH: std::time::Duration = std::time::Duration::from_secs(30);

/// The first wait before asking discovery again after it failed.
pub const RETRY_MIN: std::time::Duration = std::time::Duration::from_millis(500);

/// A subscription as a plugin states it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `v1`, `example.com/v1`.
    pub api_version: String,
    /// A kind, plural or short name.
    pub kind: String,
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
    /// Replay the cached objects as `resync` events this often.
    pub resync: Option<std::time::Duration>,
    /// What the subscriber needs of the objects.
    pub need: Need,
}

/// Where a subscription is, for the admin view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum State {
    /// The kind is not served (yet): nothing to watch until its CRD appears.
    Pending,
    /// Discovery failed (the server is unreachable, or answered 5xx or
    /// 429): whether the kind is served is not known yet. Retried with
    /// backoff.
    Unreachable {
        /// The last discovery error.
        error: String,
    },
    /// Watching.
    Active {
        /// The resolved kind.
        kind: String,
        /// The plural.
        plural: String,
    },
}

/// A handle on one subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriptionId(u64);

struct Entry {
    request: Request,
    tx: mpsc::Sender<Notification>,
    first_list: FirstList,
    active: Option<(SubscriberId, ApiResource)>,
    /// Why discovery could not tell, while it cannot.
    unreachable: Option<String>,
    /// The state as it changes, for whoever waits on it.
    state: tokio::sync::watch::Sender<State>,
}

impl Entry {
    /// Publish the state after a change.
    fn publish(&self) {
        let now = self.state();
        self.state.send_if_modified(|s| {
            let changed = *s != now;
            *s = now;
            changed
        });
    }

    fn state(&self) -> State {
        match (&self.active, &self.unreachable) {
            (Some((_, r)), _) => State::Active {
                kind: r.kind.clone(),
                plural: r.plural.clone(),
            },
            (None, Some(error)) => State::Unreachable {
                error: error.clone(),
            },
            (None, None) => State::Pending,
        }
    }
}

/// A subscription that is not watching, for readiness and the admin view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unresolved {
    /// `v1`, `example.com/v1`.
    pub api_version: String,
    /// The kind as the plugin named it.
    pub kind: String,
    /// Pending or unreachable.
    #[serde(flatten)]
    pub state: State,
}

/// Every subscription of every plugin.
pub struct Subscriptions {
    client: kube::Client,
    shared: Arc<SharedInformers>,
    entries: tokio::sync::Mutex<HashMap<SubscriptionId, Entry>>,
    next: Mutex<u64>,
    stop: CancellationToken,
    /// Wakes the retry loop when a subscription turns out unreachable.
    unreachable: Arc<tokio::sync::Notify>,
}

impl Subscriptions {
    /// Start managing subscriptions; spawns the host's own CRD watch.
    pub fn start(client: kube::Client, cache: Arc<Store>) -> Arc<Self> {
        let shared = Arc::new(SharedInformers::new(client.clone(), cache));
        let this = Arc::new(Self {
            client,
            shared,
            entries: tokio::sync::Mutex::new(HashMap::new()),
            next: Mutex::new(1),
            stop: CancellationToken::new(),
            unreachable: Arc::new(tokio::sync::Notify::new()),
        });
        let weak = Arc::downgrade(&this);
        let stop = this.stop.clone();
        let crd_scope = Scope {
            resource: ApiResource {
                group: "apiextensions.k8s.io".into(),
                version: "v1".into(),
                api_version: "apiextensions.k8s.io/v1".into(),
                kind: "CustomResourceDefinition".into(),
                plural: "customresourcedefinitions".into(),
            },
            namespaced: false,
            namespace: None,
            labels: LabelSelector::default(),
            fields: FieldSelector::default(),
        };
        let shared = this.shared.clone();
        let unreachable = this.unreachable.clone();
        tokio::spawn(async move {
            let (tx, mut rx) = mpsc::channel(256);
            let id = shared.subscribe(crd_scope, tx).await;
            // Discovery is asked again periodically too: a kind can become
            // served without a CRD event (an aggregated API, say).
            let mut refresh = tokio::time::interval(DISCOVERY_REFRESH);
            refresh.tick().await;
            // Unreachable subscriptions are asked about sooner, with backoff.
            let mut retry: Option<(tokio::time::Instant, std::time::Duration)> = None;
            loop {
                let retry_at = retry.map(|(at, _)| at);
                let n = tokio::select! {
                    () = stop.cancelled() => break,
                    _ = refresh.tick() => None,
                    () = sleep_until_some(retry_at) => None,
                    () = unreachable.notified(), if retry.is_none() => {
                        retry = Some((tokio::time::Instant::now() + RETRY_MIN, RETRY_MIN));
                        continue;
                    }
                    n = rx.recv() => match n { Some(n) => Some(n), None => break },
                };
                let Some(this) = weak.upgrade() else { break };
                let Some(n) = n else {
                    // A timer: ask again, and wait longer next time if it is
                    // still unreachable.
                    if this.retry_pending().await {
                        let wait = retry.map_or(RETRY_MIN, |(_, w)| (w * 2).min(DISCOVERY_REFRESH));
                        retry = Some((tokio::time::Instant::now() + wait, wait));
                    } else {
                        retry = None;
                    }
                    continue;
                };
                match n {
                    Notification::Change(c) if c.event_type == EventType::Deleted => {
                        let crd = c.object.to_value();
                        let group = crd
                            .pointer("/spec/group")
                            .and_then(|v| v.as_str())
                            .unwrap_or("")
                            .to_string();
                        let plural = crd
                            .pointer("/spec/names/plural")
                            .and_then(|v| v.as_str())
                            .unwrap_or("")
                            .to_string();
                        this.crd_deleted(&group, &plural).await;
                    }
                    // A new or changed CRD may serve a pending kind; the
                    // CRD watch syncing again means the server is back.
                    // A real API server serves a new CRD's kind a moment after
                    // it is established: a CRD event starts the short retries
                    // over, rather than leaving a kind waiting out a long one.
                    _ => {
                        if this.retry_pending().await {
                            retry = Some((tokio::time::Instant::now() + RETRY_MIN, RETRY_MIN));
                        }
                    }
                }
            }
            shared.unsubscribe(id).await;
        });
        this
    }

    /// The shared watches underneath.
    pub fn informers(&self) -> &Arc<SharedInformers> {
        &self.shared
    }

    /// Subscribe; events go to `tx`. A kind that is not served stays
    /// pending; one that discovery cannot resolve yet stays unreachable and
    /// is retried with backoff. Either starts watching by itself later.
    pub async fn subscribe(
        &self,
        request: Request,
        tx: mpsc::Sender<Notification>,
    ) -> SubscriptionId {
        self.subscribe_as(request, tx, FirstList::Whole).await
    }

    /// Like [`Self::subscribe`], taking a watch's first list as `first_list`
    /// says.
    pub async fn subscribe_as(
        &self,
        request: Request,
        tx: mpsc::Sender<Notification>,
        first_list: FirstList,
    ) -> SubscriptionId {
        let id = {
            let mut next = self.next.lock();
            *next += 1;
            SubscriptionId(*next)
        };
        let mut entry = Entry {
            request,
            tx,
            first_list,
            active: None,
            unreachable: None,
            state: tokio::sync::watch::Sender::new(State::Pending),
        };
        self.activate(&mut entry).await;
        let unreachable = entry.unreachable.is_some();
        self.entries.lock().await.insert(id, entry);
        if unreachable {
            self.unreachable.notify_one();
        }
        id
    }

    /// Resolve and start watching, or record why not.
    async fn activate(&self, entry: &mut Entry) {
        self.resolve(entry).await;
        entry.publish();
    }

    async fn resolve(&self, entry: &mut Entry) {
        let resolved = discovery::resolve(
            &self.client,
            &entry.request.api_version,
            &entry.request.kind,
        )
        .await;
        let resolved = match resolved {
            Ok(Some(resolved)) => resolved,
            Ok(None) => {
                entry.unreachable = None;
                return;
            }
            Err(e) => {
                if entry.unreachable.is_none() {
                    tracing::warn!(api_version = %entry.request.api_version, kind = %entry.request.kind, error = %e, "subscription waits: discovery failed; retrying with backoff");
                }
                entry.unreachable = Some(e.to_string());
                return;
            }
        };
        entry.unreachable = None;
        let scope = Scope {
            resource: resolved.resource.clone(),
            namespaced: resolved.namespaced,
            namespace: entry
                .request
                .namespace
                .clone()
                .filter(|_| resolved.namespaced),
            labels: entry.request.labels.clone(),
            fields: entry.request.fields.clone(),
        };
        let sub = match entry.request.resync {
            Some(period) => {
                self.shared
                    .subscribe_with_resync(
                        scope,
                        entry.tx.clone(),
                        period,
                        entry.first_list,
                        entry.request.need.clone(),
                    )
                    .await
            }
            None => {
                self.shared
                    .subscribe_as(
                        scope,
                        entry.tx.clone(),
                        entry.first_list,
                        entry.request.need.clone(),
                    )
                    .await
            }
        };
        tracing::info!(resource.kind = %resolved.resource.kind, api_version = %resolved.resource.api_version, "subscription active");
        entry.active = Some((sub, resolved.resource));
    }

    /// Ask discovery again for every subscription that is not watching.
    /// Returns whether one is still unreachable.
    async fn retry_pending(&self) -> bool {
        let mut entries = self.entries.lock().await;
        let mut unreachable = false;
        for entry in entries.values_mut().filter(|e| e.active.is_none()) {
            self.activate(entry).await;
            unreachable |= entry.unreachable.is_some();
        }
        unreachable
    }

    /// The subscriptions that are not watching: pending or unreachable.
    pub async fn unresolved(&self) -> Vec<Unresolved> {
        let mut out: Vec<Unresolved> = self
            .entries
            .lock()
            .await
            .values()
            .filter(|e| e.active.is_none())
            .map(|e| Unresolved {
                api_version: e.request.api_version.clone(),
                kind: e.request.kind.clone(),
                state: e.state(),
            })
            .collect();
        out.sort_by(|a, b| (&a.api_version, &a.kind).cmp(&(&b.api_version, &b.kind)));
        out.dedup();
        out
    }

    async fn crd_deleted(&self, group: &str, plural: &str) {
        let mut entries = self.entries.lock().await;
        for entry in entries.values_mut() {
            let gone = entry
                .active
                .as_ref()
                .is_some_and(|(_, r)| r.group == group && r.plural == plural);
            if gone && let Some((sub, resource)) = entry.active.take() {
                entry.publish();
                // Objects the server never reported deleted leave as deletes
                // whose final state is unknown.
                let kind = crate::vocabulary::KindKey::new(&resource.api_version, &resource.kind);
                for (key, object) in self.shared.cached(sub).await {
                    let _ = entry
                        .tx
                        .send(Notification::Change(Change {
                            kind: kind.clone(),
                            event_type: EventType::Deleted,
                            final_state_unknown: true,
                            key,
                            object,
                            old: None,
                        }))
                        .await;
                }
                self.shared.unsubscribe(sub).await;
                tracing::info!(resource.kind = %resource.kind, "CRD deleted: watch stopped, subscription pending again");
            }
        }
    }

    /// Remove a subscription.
    pub async fn unsubscribe(&self, id: SubscriptionId) {
        if let Some(Entry {
            active: Some((sub, _)),
            ..
        }) = self.entries.lock().await.remove(&id)
        {
            self.shared.unsubscribe(sub).await;
        }
    }

    /// What this subscription would get if it started now: the cached
    /// objects as an initial snapshot. None for a pending subscription or one
    /// still in its first list.
    pub async fn replay(&self, id: SubscriptionId) -> Option<Snapshot> {
        let sub = match self.entries.lock().await.get(&id) {
            Some(Entry {
                active: Some((sub, _)),
                ..
            }) => *sub,
            _ => return None,
        };
        self.shared.replay_for(sub).await
    }

    /// The state of a subscription.
    pub async fn state(&self, id: SubscriptionId) -> Option<State> {
        self.entries.lock().await.get(&id).map(Entry::state)
    }

    /// The state of a subscription as it changes.
    pub async fn state_changes(
        &self,
        id: SubscriptionId,
    ) -> Option<tokio::sync::watch::Receiver<State>> {
        self.entries
            .lock()
            .await
            .get(&id)
            .map(|e| e.state.subscribe())
    }

    /// Stop the CRD watch. Subscriptions keep their watches until unsubscribed.
    pub fn shutdown(&self) {
        self.stop.cancel();
    }
}

/// Sleep until `at`, or forever without one.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
