//! One list+watch into the cache, with the relist diff.

use std::{collections::HashMap, sync::Arc};

use futures::{FutureExt, StreamExt};
use kube::{
    Api,
    api::ApiResource,
    runtime::{WatchStreamExt, watcher},
};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::{sync::mpsc, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{
    Change, Listing, Notification, consistency,
    raw::{RawObject, parts},
    relist,
};
use crate::{
    cache::{CachedObject, Listed, Store},
    vocabulary::{EventType, KeySet, KindKey, ObjectKey},
};
use informant_k8s::selector::{FieldSelector, LabelSelector};

/// What one informer watches.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The resource, as discovery describes it.
    pub resource: ApiResource,
    /// Whether the resource is namespaced.
    pub namespaced: bool,
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only objects matching these labels.
    pub labels: LabelSelector,
    /// Only objects matching these fields.
    pub fields: FieldSelector,
}

impl Scope {
    fn kind(&self) -> KindKey {
        KindKey::new(&self.resource.api_version, &self.resource.kind)
    }

    /// Whether a cached object belongs to this scope.
    pub fn contains(&self, key: &ObjectKey, object: &CachedObject) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| ns == &*key.namespace)
            && self.fields.matches(key.namespace(), &key.name)
            && self
                .labels
                .requirements()
                .iter()
                .all(|r| r.matches(|k| object.label(k)))
    }
}

/// Where an informer is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state", content = "reason")]
pub enum WatchState {
    /// Listing for the first time.
    Syncing,
    /// The first list is complete.
    Synced,
    /// The last attempt failed; the watcher retries with backoff.
    Error(String),
}

/// An informer's status, for readiness and the admin view.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchStatus {
    /// The state.
    #[serde(flatten)]
    pub state: WatchState,
    /// Completed relists after the first list.
    pub relists: u64,
    /// Times the watch was cut off (a dropped or silent connection, an
    /// error, 410 Gone) after it had synced.
    pub interruptions: u64,
    /// Times it resumed from where it was, without a relist.
    pub resumes: u64,
    /// Seconds it has been blind in all, from each interruption's detection
    /// (for a silent connection, the idle timeout) to the resume or relist
    /// that ended it.
    pub blind_seconds: f64,
    /// Whether the first list has completed at least once.
    pub synced_once: bool,
}

/// A watch that cannot see, since when and why.
struct Blind {
    since: std::time::Instant,
    cause: String,
    attempts: u32,
}

/// How an informer delivers its first list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstList {
    /// Once complete and in the cache, as one [`super::Snapshot`].
    Whole,
    /// As it streams in: a [`Notification::Streaming`] when it starts, then
    /// [`Notification::Streamed`] once it is complete and in the cache.
    /// Objects missing from it that a list broken off before had handed
    /// out come, before that, as deletes whose final state is unknown.
    Streamed,
}

/// A running informer; dropping it does not stop it, [`Informer::stop`] does.
pub struct Informer {
    status: Arc<Mutex<WatchStatus>>,
    stop: CancellationToken,
    relist: tokio::sync::watch::Sender<u64>,
    task: JoinHandle<()>,
}

impl Informer {
    /// Start watching `scope` into `cache`, sending every change to `tx`.
    ///
    /// The first list is delivered as one [`Snapshot`] of the objects; later
    /// relists as the changes they found. The bounded channel applies
    /// backpressure: while it is
    /// full the watch stops reading, and the server buffers or, past its
    /// limits, closes the watch, after which the watcher resumes from the
    /// last resourceVersion (or relists on 410). Nothing is dropped.
    pub fn start(
        client: kube::Client,
        cache: Arc<Store>,
        scope: Scope,
        tx: mpsc::Sender<Notification>,
    ) -> Self {
        Self::start_with(client, cache, scope, tx, FirstList::Whole)
    }

    /// Like [`Self::start`], delivering the first list as `first_list` says.
    pub fn start_with(
        client: kube::Client,
        cache: Arc<Store>,
        scope: Scope,
        tx: mpsc::Sender<Notification>,
        first_list: FirstList,
    ) -> Self {
        let status = Arc::new(Mutex::new(WatchStatus {
            state: WatchState::Syncing,
            relists: 0,
            interruptions: 0,
            resumes: 0,
            blind_seconds: 0.0,
            synced_once: false,
        }));
        let stop = CancellationToken::new();
        let (relist, relists) = tokio::sync::watch::channel(0);
        let span = tracing::info_span!("informer.watch", resource.kind = %scope.kind(), namespace = scope.namespace.as_deref().unwrap_or(""));
        let task = tokio::spawn(
            run(
                Watch {
                    client: consistency::most_recent(client),
                    cache,
                    scope,
                    tx,
                    first_list,
                },
                status.clone(),
                stop.clone(),
                relists,
            )
            .instrument(span),
        );
        Self {
            status,
            stop,
            relist,
            task,
        }
    }

    /// List again from scratch, even though nothing went wrong (the cache
    /// keeps more of the kind than it did, say). Once the list is complete
    /// and in the cache, the informer sends [`Notification::Relisted`] with
    /// the highest `asked` it had seen when it began. A list already under
    /// way starts over.
    pub fn relist(&self, asked: u64) {
        self.relist.send_if_modified(|a| {
            let newer = asked > *a;
            *a = (*a).max(asked);
            newer
        });
    }

    /// The current status.
    pub fn status(&self) -> WatchStatus {
        self.status.lock().clone()
    }

    /// Stop watching and wait for the task to end.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Whether an error says the server does not do streaming lists: a 4xx
/// (other than 403, 404, 410 and 429) on the watch that carries
/// `sendInitialEvents`.
fn refuses_streaming(e: &watcher::Error) -> bool {
    let code = match e {
        watcher::Error::WatchStartFailed(kube::Error::Api(s)) => s.code,
        watcher::Error::WatchError(s) => s.code,
        _ => return false,
    };
    (400..500).contains(&code) && ![403, 404, 410, 429].contains(&code)
}

/// What a watch can see, kept in its shared status: whether it has synced,
/// and, while it cannot see, since when and why. Each transition logs once
/// and counts, so that `run` is only the watch's steps.
struct Sight {
    status: Arc<Mutex<WatchStatus>>,
    /// Set while the watch cannot see: the first error after it could.
    blind: Option<Blind>,
}

impl Sight {
    fn synced_once(&self) -> bool {
        self.status.lock().synced_once
    }

    /// The watcher failed; it retries with backoff.
    fn failed(&mut self, e: &watcher::Error) {
        let forbidden = matches!(e, watcher::Error::InitialListFailed(kube::Error::Api(s)) | watcher::Error::WatchStartFailed(kube::Error::Api(s)) if s.code == 403);
        let mut st = self.status.lock();
        let reason = e.to_string();
        match &mut self.blind {
            // Still blind: each retry at debug.
            Some(b) => {
                b.attempts += 1;
                tracing::debug!(error = %reason, attempt = b.attempts, "watch still interrupted; retrying with backoff");
            }
            None => {
                if st.synced_once {
                    st.interruptions += 1;
                }
                if forbidden {
                    tracing::warn!(error = %reason, "watch forbidden; retrying with backoff");
                } else if st.synced_once {
                    tracing::info!(cause = %reason, "watch interrupted; resuming from the last resourceVersion, or relisting if the server no longer has it");
                } else {
                    tracing::info!(cause = %reason, "first list failed; retrying with backoff");
                }
                self.blind = Some(Blind {
                    since: std::time::Instant::now(),
                    cause: reason.clone(),
                    attempts: 1,
                });
            }
        }
        st.state = WatchState::Error(reason);
    }

    /// A watch event after an interruption, without a relist: the watch
    /// sees again from where it was.
    fn resumed(&mut self) {
        if !self.synced_once() {
            return;
        }
        let Some(b) = self.blind.take() else {
            return;
        };
        let blind_for = b.since.elapsed();
        let mut st = self.status.lock();
        st.resumes += 1;
        st.blind_seconds += blind_for.as_secs_f64();
        st.state = WatchState::Synced;
        tracing::info!(cause = %b.cause, attempts = b.attempts, blind_s = blind_for.as_secs_f64(), "watch resumed where it was; nothing missed");
    }

    /// A list starts again after the first one.
    fn relisting(&self) {
        if self.synced_once() {
            let cause = self.blind.as_ref().map_or("a resync", |b| b.cause.as_str());
            tracing::info!(%cause, "watch relisting: its resourceVersion is gone, so the whole list is read again and compared with the cache");
        }
    }

    /// A list completed: the first one, or a relist that found `changes`
    /// among `objects`.
    fn listed(&mut self, first: bool, objects: usize, changes: usize) {
        let mut st = self.status.lock();
        if !first {
            st.relists += 1;
            let blind_for = self
                .blind
                .take()
                .map(|b| b.since.elapsed())
                .unwrap_or_default();
            st.blind_seconds += blind_for.as_secs_f64();
            tracing::info!(
                objects,
                changes,
                blind_s = blind_for.as_secs_f64(),
                "watch relisted: the changes it missed are delivered as events"
            );
        } else if let Some(b) = self.blind.take() {
            tracing::info!(
                attempts = b.attempts,
                waited_s = b.since.elapsed().as_secs_f64(),
                "first list done after failures"
            );
        }
        st.synced_once = true;
        st.state = WatchState::Synced;
    }
}

/// What one informer's task works with.
struct Watch {
    client: kube::Client,
    cache: Arc<Store>,
    scope: Scope,
    tx: mpsc::Sender<Notification>,
    first_list: FirstList,
}

async fn run(
    watch: Watch,
    status: Arc<Mutex<WatchStatus>>,
    stop: CancellationToken,
    mut relists: tokio::sync::watch::Receiver<u64>,
) {
    let Watch {
        client,
        cache,
        scope,
        tx,
        first_list,
    } = watch;
    let api: Api<RawObject> = match (&scope.namespace, scope.namespaced) {
        (Some(ns), true) => Api::namespaced_with(client, ns, &scope.resource),
        _ => Api::all_with(client, &scope.resource),
    };
    // Streaming lists (WatchList) sync faster and lighter; servers that
    // refuse them get paged lists instead.
    let make = |streaming_lists: bool| {
        let mut config = watcher::Config::default();
        config = if streaming_lists {
            config.streaming_lists()
        } else {
            config.page_size(500)
        };
        if !scope.labels.is_empty() {
            config = config.labels(&scope.labels.to_string());
        }
        if !scope.fields.requirements().is_empty() {
            config = config.fields(&scope.fields.to_string());
        }
        watcher(api.clone(), config).default_backoff().boxed()
    };
    let kind = scope.kind();
    let mut streaming_lists = true;
    let mut stream = make(streaming_lists);
    let mut listing: Vec<Listed> = Vec::new();
    let mut sight = Sight {
        status,
        blind: None,
    };
    // The keys this watch has reported present, so that its events do not
    // depend on what other watches of the same kind put in the cache.
    let mut known = KeySet::default();
    // The first list, while it streams in to the subscribers.
    let mut streaming: Option<Arc<Listing>> = None;
    // What first lists that broke off had handed out, with its last state:
    // the list that completes says what became of it.
    let mut offered: HashMap<Arc<ObjectKey>, Arc<CachedObject>> = HashMap::new();
    // The relist asked for that the list under way answers.
    let mut answering: Option<u64> = None;
    // Set when the wait saw a relist asked for (which marks it seen).
    let mut relist_now = false;
    let send = |n: Notification| {
        let tx = tx.clone();
        async move { tx.send(n).await.is_ok() }
    };
    let change = |event_type, fsu, key: Arc<ObjectKey>, object, old| {
        Notification::Change(Change {
            kind: kind.clone(),
            event_type,
            final_state_unknown: fsu,
            key,
            object,
            old,
        })
    };
    loop {
        if stop.is_cancelled() {
            return;
        }
        if std::mem::take(&mut relist_now) || relists.has_changed().unwrap_or(false) {
            answering = Some(*relists.borrow_and_update());
            tracing::info!("listing again, as asked: the cache keeps more of this kind now");
            stream = make(streaming_lists);
            continue;
        }
        // What the stream has ready is read at once; when it has nothing, the
        // subscribers of a streaming list are told what came meanwhile.
        let event = match stream.next().now_or_never() {
            Some(event) => event,
            None => {
                if let Some(listing) = &streaming {
                    listing.publish();
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = relists.changed() => {
                        relist_now = true;
                        continue;
                    }
                    event = stream.next() => event,
                }
            }
        };
        let Some(event) = event else {
            return;
        };
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                if streaming_lists && !sight.synced_once() && refuses_streaming(&e) {
                    tracing::info!(error = %e, "the server refuses streaming lists; using paged lists");
                    streaming_lists = false;
                    stream = make(streaming_lists);
                } else {
                    sight.failed(&e);
                }
                continue;
            }
        };
        if !matches!(
            event,
            watcher::Event::Init | watcher::Event::InitApply(_) | watcher::Event::InitDone
        ) {
            sight.resumed();
        }
        match event {
            watcher::Event::Init => {
                listing.clear();
                if let Some(broken) = streaming.take() {
                    offered.extend(broken.abandon());
                }
                if answering.is_none() {
                    sight.relisting();
                }
                if first_list == FirstList::Streamed && !sight.synced_once() {
                    let started = Listing::new(kind.clone(), cache.clone());
                    let slot = Arc::new(started.slot());
                    streaming = Some(started);
                    if !send(Notification::Streaming(slot)).await {
                        return;
                    }
                }
            }
            watcher::Event::InitApply(object) => {
                let (meta, json) = object.into_parts(&scope.resource);
                let listed = cache.prepare_listed_raw(&kind, parts(&meta, json));
                match &streaming {
                    Some(streaming) => streaming.push(listed),
                    None => listing.push(listed),
                }
            }
            watcher::Event::InitDone if streaming.is_some() => {
                let Some(streamed) = streaming.take() else {
                    continue;
                };
                let keys = streamed.finish(|k, o| scope.contains(k, o));
                let gone: Vec<_> = offered.drain().filter(|(k, _)| !keys.contains(k)).collect();
                known = keys;
                sight.listed(true, known.len(), gone.len());
                for (key, last) in gone {
                    if !send(change(EventType::Deleted, true, key, last, None)).await {
                        return;
                    }
                }
                if !send(Notification::Streamed(streamed)).await {
                    return;
                }
                if let Some(asked) = answering.take()
                    && !send(Notification::Relisted(asked)).await
                {
                    return;
                }
            }
            watcher::Event::InitDone => {
                let first = !sight.synced_once();
                let listed = std::mem::take(&mut listing);
                let relisted = cache.replace_scope(&kind, |k, o| scope.contains(k, o), listed);
                let (notes, now) = relist::diff(&kind, &known, relisted, first);
                known = now;
                sight.listed(first, known.len(), notes.len());
                for n in notes {
                    if !send(n).await {
                        return;
                    }
                }
                if let Some(asked) = answering.take()
                    && !send(Notification::Relisted(asked)).await
                {
                    return;
                }
            }
            watcher::Event::Apply(object) => {
                let (meta, json) = object.into_parts(&scope.resource);
                let u = cache.upsert_raw(&kind, parts(&meta, json));
                // Added or modified for this watch; the cached old state is
                // only the previous one if it differs (it may be another
                // watch's copy of this very version).
                let key = u.key;
                let event_type = if known.insert(key.clone()) {
                    EventType::Added
                } else {
                    EventType::Modified
                };
                let old = u
                    .old
                    .filter(|o| o.resource_version() != u.new.resource_version())
                    .filter(|_| event_type == EventType::Modified);
                if !send(change(event_type, false, key, u.new, old)).await {
                    return;
                }
            }
            watcher::Event::Delete(object) => {
                let (meta, json) = object.into_parts(&scope.resource);
                // The event carries the deleted state; prefer it to the cached one.
                let (key, last) = cache.prepare_raw(&kind, parts(&meta, json));
                cache.remove(&kind, &key);
                known.remove(&key);
                if !send(change(EventType::Deleted, false, key, Arc::new(last), None)).await {
                    return;
                }
            }
        }
    }
}
