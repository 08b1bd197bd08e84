//! Subscriptions as plugins state them, resolved through discovery: served
//! kinds start a (shared) watch; kinds not served yet stay pending and start
//! by themselves when their CRD appears; a deleted CRD stops its watches and
//! puts their subscriptions back to pending. The host watches CRDs itself
//! for this.

use std::{collections::HashMap, sync::Arc};

use kube::api::ApiResource;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Notification, Scope, SharedInformers, SubscriberId, discovery};
use crate::{
    cache::Store,
    plugin::EventType,
    selector::{FieldSelector, LabelSelector},
};

/// How often pending subscriptions ask discovery again.
pub const DISCOVERY_REFRESH: std::time::Duration = std::time::Duration::from_secs(30);

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
}

/// Where a subscription is, for the admin view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum State {
    /// The kind is not served (yet).
    Pending,
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
    active: Option<(SubscriberId, ApiResource)>,
}

/// Every subscription of every plugin.
pub struct Subscriptions {
    client: kube::Client,
    shared: Arc<SharedInformers>,
    entries: tokio::sync::Mutex<HashMap<SubscriptionId, Entry>>,
    next: Mutex<u64>,
    stop: CancellationToken,
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
        tokio::spawn(async move {
            let (tx, mut rx) = mpsc::channel(256);
            let id = shared.subscribe(crd_scope, tx).await;
            // Discovery is asked again periodically too: a kind can become
            // served without a CRD event (an aggregated API, say).
            let mut refresh = tokio::time::interval(DISCOVERY_REFRESH);
            refresh.tick().await;
            loop {
                let n = tokio::select! {
                    () = stop.cancelled() => break,
                    _ = refresh.tick() => {
                        match weak.upgrade() {
                            Some(this) => this.retry_pending().await,
                            None => break,
                        }
                        continue;
                    }
                    n = rx.recv() => match n { Some(n) => n, None => break },
                };
                let Some(this) = weak.upgrade() else { break };
                match n.event_type {
                    EventType::Deleted => {
                        let crd = n
                            .object
                            .as_ref()
                            .map(|(_, o)| o.to_value())
                            .unwrap_or_default();
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
                    // A new or changed CRD may serve a pending kind.
                    _ => this.retry_pending().await,
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

    /// Subscribe; events go to `tx`. A kind that is not served stays pending.
    ///
    /// # Errors
    /// If discovery itself fails.
    pub async fn subscribe(
        &self,
        request: Request,
        tx: mpsc::Sender<Notification>,
    ) -> Result<SubscriptionId, discovery::Error> {
        let id = {
            let mut next = self.next.lock();
            *next += 1;
            SubscriptionId(*next)
        };
        let mut entry = Entry {
            request,
            tx,
            active: None,
        };
        self.activate(&mut entry).await?;
        self.entries.lock().await.insert(id, entry);
        Ok(id)
    }

    async fn activate(&self, entry: &mut Entry) -> Result<(), discovery::Error> {
        let Some(resolved) = discovery::resolve(
            &self.client,
            &entry.request.api_version,
            &entry.request.kind,
        )
        .await?
        else {
            return Ok(());
        };
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
                    .subscribe_with_resync(scope, entry.tx.clone(), period)
                    .await
            }
            None => self.shared.subscribe(scope, entry.tx.clone()).await,
        };
        tracing::info!(resource.kind = %resolved.resource.kind, api_version = %resolved.resource.api_version, "subscription active");
        entry.active = Some((sub, resolved.resource));
        Ok(())
    }

    async fn retry_pending(&self) {
        let mut entries = self.entries.lock().await;
        for entry in entries.values_mut().filter(|e| e.active.is_none()) {
            if let Err(e) = self.activate(entry).await {
                tracing::debug!(error = %e, "a pending subscription is still not served");
            }
        }
    }

    async fn crd_deleted(&self, group: &str, plural: &str) {
        let mut entries = self.entries.lock().await;
        for entry in entries.values_mut() {
            let gone = entry
                .active
                .as_ref()
                .is_some_and(|(_, r)| r.group == group && r.plural == plural);
            if gone && let Some((sub, resource)) = entry.active.take() {
                // Objects the server never reported deleted leave as deletes
                // whose final state is unknown.
                for n in self.shared.cached(sub).await {
                    let _ = entry
                        .tx
                        .send(Notification {
                            event_type: EventType::Deleted,
                            final_state_unknown: true,
                            initial: false,
                            ..n
                        })
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

    /// What this subscription would see if it started now: the cached
    /// objects as initial `added` notifications, then `synced`. Empty for a
    /// pending subscription or one still in its first list.
    pub async fn replay(&self, id: SubscriptionId) -> Vec<Notification> {
        let sub = match self.entries.lock().await.get(&id) {
            Some(Entry {
                active: Some((sub, _)),
                ..
            }) => *sub,
            _ => return Vec::new(),
        };
        self.shared.replay_for(sub).await
    }

    /// The state of a subscription.
    pub async fn state(&self, id: SubscriptionId) -> Option<State> {
        self.entries.lock().await.get(&id).map(|e| match &e.active {
            Some((_, r)) => State::Active {
                kind: r.kind.clone(),
                plural: r.plural.clone(),
            },
            None => State::Pending,
        })
    }

    /// Stop the CRD watch. Subscriptions keep their watches until unsubscribed.
    pub fn shutdown(&self) {
        self.stop.cancel();
    }
}
