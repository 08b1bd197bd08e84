//! Plugin objects: plugins by reference, as the cluster lists them. The host
//! watches `plugins.informant.dev` through its own informers (the CRD may
//! come later: the subscription waits for it) and brings what runs in line:
//!
//! - created or changed: resolve the reference's tag to a digest, verify
//!   the digest's signature as the operator's policy requires, pull it (or
//!   take it from the content cache), compile and load it under the
//!   object's name, with the object's settings, limits and grants, and swap
//!   it in with hot reload's guarantees (nothing lost, nothing doubled);
//! - every `oci.resolveIntervalSeconds`: resolve tags again; a moved tag is
//!   a reload;
//! - disabled or deleted: unload.
//!
//! A failure at any step leaves the running version running. The status
//! says what runs and why not the spec's version: a `Ready` condition with a
//! reason, the digest and when it loaded. It is written through the action
//! queue, so only the replica that executes actions (the leader) writes it.
//! The plugin directory stays a source beside this one; a name is used by
//! one source only (`source.rs`).

mod spec;

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::Secret;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{
    action::{Action, Allowlist, Rule},
    informer::{
        Notification,
        subscriptions::{Request, Subscriptions},
    },
    oci::{self, Fetcher, Reference, RegistryAuth, Verified},
    plugin::LoadOptions,
    runtime::Runtime,
    source::Source,
    vocabulary::{EventType, ObjectRef},
};

pub use spec::{API_VERSION, Desired, KIND, PluginObject, PluginSpec};

/// `pluginObjects:` in the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct File {
    /// Watch Plugin objects (default true).
    pub enabled: Option<bool>,
    /// Only Plugin objects with these labels: several hosts in one cluster
    /// each run their own.
    pub label_selector: Option<String>,
    /// Where their `imagePullSecrets` are (default: the host's namespace).
    pub secrets_namespace: Option<String>,
}

/// How the host treats Plugin objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Whether it watches them.
    pub enabled: bool,
    /// Only those with these labels.
    pub label_selector: Option<String>,
    /// The namespace of their pull Secrets; none for the host's own.
    pub secrets_namespace: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            label_selector: None,
            secrets_namespace: None,
        }
    }
}

impl File {
    /// Validate.
    ///
    /// # Errors
    /// The dotted key and what is wrong.
    pub fn resolve(self) -> Result<Config, (String, String)> {
        if let Some(selector) = &self.label_selector {
            informant_k8s::selector::LabelSelector::parse(selector).map_err(|e| {
                (
                    "pluginObjects.labelSelector".to_string(),
                    format!("{selector:?}: {e}"),
                )
            })?;
        }
        Ok(Config {
            enabled: self.enabled.unwrap_or(true),
            label_selector: self.label_selector,
            secrets_namespace: self.secrets_namespace,
        })
    }
}

/// How often the wanted status is compared with what the objects say, so
/// that a replica that starts leading writes what the last one did not.
const STATUS_CHECK: Duration = Duration::from_secs(5);

/// What runs for one Plugin object.
#[derive(Debug, Clone)]
struct Running {
    digest: String,
    loaded_at: String,
    /// The spec it was loaded with.
    spec: PluginSpec,
    verified: Verified,
}

/// One Plugin object as the catalog follows it.
#[derive(Debug)]
struct Entry {
    object: PluginObject,
    running: Option<Running>,
    desired: Desired,
    /// The generation and digest last tried and failed, so that the same
    /// failure is not retried at every event.
    failed: Option<(i64, Option<String>)>,
}

/// The Plugin objects and what the host runs for them.
pub struct Catalog {
    runtime: Arc<Runtime>,
    client: kube::Client,
    fetcher: Fetcher,
    config: Config,
    /// The operator's allowlist from the configuration: the ceiling of
    /// every Plugin object's grants.
    ceiling: Allowlist,
    secrets_namespace: String,
    entries: tokio::sync::Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why the version a Plugin object asks for does not run.
struct Failure {
    reason: &'static str,
    message: String,
}

impl From<oci::Error> for Failure {
    fn from(e: oci::Error) -> Self {
        Self {
            reason: e.reason(),
            message: e.to_string(),
        }
    }
}

impl Catalog {
    /// Start watching Plugin objects. `namespace` is the host's own (for
    /// pull Secrets, unless the configuration names another).
    ///
    /// # Errors
    /// [`oci::Error`] if the registry client cannot be built.
    pub async fn start(
        runtime: Arc<Runtime>,
        client: kube::Client,
        namespace: String,
        stop: CancellationToken,
    ) -> Result<Arc<Self>, oci::Error> {
        let config = runtime.config().plugin_objects.clone();
        let fetcher = Fetcher::new(
            runtime.config().oci.clone(),
            runtime.config().compile_cache_dir.as_deref(),
        )?;
        let this = Arc::new(Self {
            secrets_namespace: config.secrets_namespace.clone().unwrap_or(namespace),
            ceiling: runtime.config().allowlist.clone(),
            runtime,
            client,
            fetcher,
            config,
            entries: tokio::sync::Mutex::new(HashMap::new()),
        });
        let (tx, rx) = mpsc::channel(256);
        let labels = match &this.config.label_selector {
            Some(s) => informant_k8s::selector::LabelSelector::parse(s).unwrap_or_default(),
            None => informant_k8s::selector::LabelSelector::default(),
        };
        let request = Request {
            need: crate::cache::Need::Whole,
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            namespace: None,
            labels,
            fields: informant_k8s::selector::FieldSelector::default(),
            resync: None,
        };
        let subscriptions: Arc<Subscriptions> = this.runtime.subscriptions().clone();
        let id = subscriptions.subscribe(request, tx).await;
        tracing::info!(selector = ?this.config.label_selector, "watching Plugin objects");
        tokio::spawn(this.clone().run(rx, stop, subscriptions, id));
        Ok(this)
    }

    async fn run(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<Notification>,
        stop: CancellationToken,
        subscriptions: Arc<Subscriptions>,
        id: crate::informer::subscriptions::SubscriptionId,
    ) {
        let resolve_every = self.fetcher.config().resolve_interval;
        let mut resolve =
            tokio::time::interval_at(tokio::time::Instant::now() + resolve_every, resolve_every);
        let mut status = tokio::time::interval(STATUS_CHECK);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                got = rx.recv() => match got {
                    Some(Notification::Change(change)) => {
                        let Some(object) = PluginObject::parse(change.object.json()) else { continue };
                        if change.event_type == EventType::Deleted {
                            self.forget(&object.name).await;
                        } else {
                            self.reconcile(object, false).await;
                        }
                    }
                    Some(Notification::Snapshot(snapshot)) => {
                        let objects: Vec<PluginObject> = snapshot
                            .objects
                            .iter()
                            .filter_map(|(_, o)| PluginObject::parse(o.json()))
                            .collect();
                        let present: Vec<String> = objects.iter().map(|o| o.name.clone()).collect();
                        let gone: Vec<String> = self
                            .entries
                            .lock()
                            .await
                            .keys()
                            .filter(|n| !present.contains(n))
                            .cloned()
                            .collect();
                        for name in gone {
                            self.forget(&name).await;
                        }
                        for object in objects {
                            self.reconcile(object, false).await;
                        }
                    }
                    // Subscribed to take first lists whole.
                    Some(
                        Notification::Streaming(_)
                        | Notification::Streamed(_)
                        | Notification::Relisted(_),
                    ) => {}
                    None => break,
                },
                _ = resolve.tick() => self.resolve_tags().await,
                _ = status.tick() => self.write_statuses().await,
            }
        }
        subscriptions.unsubscribe(id).await;
    }

    /// Bring what runs for `object` in line with its spec. With `resolve`,
    /// a tag is resolved again even if nothing else changed.
    async fn reconcile(&self, object: PluginObject, resolve: bool) {
        let name = object.name.clone();
        let mut entries = self.entries.lock().await;
        let entry = entries.entry(name.clone()).or_insert_with(|| Entry {
            object: object.clone(),
            running: None,
            desired: Desired {
                ready: false,
                reason: "Pending".into(),
                message: "not loaded yet".into(),
                digest: None,
                loaded_at: None,
                observed_generation: object.generation,
            },
            failed: None,
        });
        let changed =
            entry.object.generation != object.generation || entry.object.spec != object.spec;
        entry.object = object;
        let first = entry.running.is_none() && entry.failed.is_none();
        if !(changed || first || resolve) {
            // Its status changed (ours, most likely): nothing to load.
            self.write_status(&name, entry);
            return;
        }
        let outcome = self.bring_in_line(&name, entry).await;
        match outcome {
            Ok(desired) => {
                entry.failed = None;
                entry.desired = desired;
            }
            Err(failure) => {
                let keeps = entry
                    .running
                    .as_ref()
                    .map(|r| format!("; {} keeps running", r.digest))
                    .unwrap_or_default();
                tracing::warn!(plugin.object = %name, reason = failure.reason, error = %failure.message, keeps_running = entry.running.is_some(), "Plugin object not in service as it asks");
                entry.desired = Desired {
                    ready: false,
                    reason: failure.reason.into(),
                    message: format!("{}{keeps}", failure.message),
                    digest: entry.running.as_ref().map(|r| r.digest.clone()),
                    loaded_at: entry.running.as_ref().map(|r| r.loaded_at.clone()),
                    observed_generation: entry.object.generation,
                };
                entry.failed = Some((entry.object.generation, None));
            }
        }
        self.write_status(&name, entry);
    }

    /// Resolve, verify, fetch and load what the spec asks for, unless it
    /// runs already.
    async fn bring_in_line(&self, name: &str, entry: &mut Entry) -> Result<Desired, Failure> {
        let generation = entry.object.generation;
        let spec = entry.object.spec.clone().map_err(|message| Failure {
            reason: "InvalidSpec",
            message,
        })?;
        if !spec.enabled {
            self.unload(name, entry).await;
            return Ok(Desired {
                ready: false,
                reason: "Disabled".into(),
                message: "spec.enabled is false: not running".into(),
                digest: None,
                loaded_at: None,
                observed_generation: generation,
            });
        }
        if !informant_k8s::selector::is_dns1123_label(name) {
            return Err(Failure {
                reason: "InvalidName",
                message: format!(
                    "{name:?} cannot name a plugin: use a DNS label (lowercase letters, digits and '-')"
                ),
            });
        }
        let reference = oci::parse_reference(&spec.image)?;
        let auth = self.auth(&reference, &spec).await?;
        let digest = match self.fetcher.resolve(&reference, &auth).await {
            Ok(digest) => digest,
            Err(e @ oci::Error::Unreachable { .. }) => {
                // A restart while the registry is down: the digest this
                // object last ran, from the content cache, if the policy
                // lets it run unverified... which verification decides.
                if entry.running.is_none()
                    && let Some(last) = entry.object.last_digest().map(str::to_string)
                {
                    tracing::warn!(plugin.object = %name, error = %e, digest = %last, "registry unreachable: trying the digest this object last ran");
                    self.load(name, entry, &spec, &reference, &auth, &last)
                        .await?;
                }
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(running) = &entry.running
            && running.digest == digest
            && running.spec == spec
        {
            return Ok(self.ready(entry, &reference));
        }
        self.load(name, entry, &spec, &reference, &auth, &digest)
            .await?;
        Ok(self.ready(entry, &reference))
    }

    fn ready(&self, entry: &Entry, reference: &Reference) -> Desired {
        let running = entry.running.as_ref();
        let verified = match running.map(|r| &r.verified) {
            Some(Verified::Signed { by }) => format!(", signed by {by}"),
            _ => String::new(),
        };
        Desired {
            ready: true,
            reason: "Loaded".into(),
            message: format!(
                "running {} from {}{verified}",
                running.map_or("", |r| r.digest.as_str()),
                reference.whole()
            ),
            digest: running.map(|r| r.digest.clone()),
            loaded_at: running.map(|r| r.loaded_at.clone()),
            observed_generation: entry.object.generation,
        }
    }

    /// Fetch `digest` and put it in service under `name`.
    async fn load(
        &self,
        name: &str,
        entry: &mut Entry,
        spec: &PluginSpec,
        reference: &Reference,
        auth: &RegistryAuth,
        digest: &str,
    ) -> Result<(), Failure> {
        let source = Source::Object(name.to_string());
        if let Some(holder) = self.runtime.sources().holder(name).filter(|h| *h != source) {
            return Err(Failure {
                reason: "NameConflict",
                message: format!(
                    "a plugin named {name} is already loaded from {holder}; rename one of them"
                ),
            });
        }
        self.ceiling
            .check_within(name, &spec.permissions)
            .map_err(|message| Failure {
                reason: "PermissionDenied",
                message,
            })?;
        let fetched = self.fetcher.fetch(reference, digest, auth).await?;
        let started = Instant::now();
        let (limits, ceiling) = self.runtime.config().limits_for(name);
        let limits = match spec.limits {
            Some(l) => {
                let mut limits = limits;
                if let Some(mib) = l.memory_mib {
                    limits = limits.memory_bytes(usize::try_from(mib << 20).unwrap_or(usize::MAX));
                }
                if let Some(ms) = l.deadline_ms {
                    limits = limits.deadline(Duration::from_millis(ms));
                }
                if limits.memory_bytes > ceiling.memory_bytes || limits.deadline > ceiling.deadline
                {
                    return Err(Failure {
                        reason: "LimitsTooHigh",
                        message: format!(
                            "spec.limits ask for more than the operator's maximum ({} MiB, {} ms)",
                            ceiling.memory_bytes >> 20,
                            ceiling.deadline.as_millis()
                        ),
                    });
                }
                limits
            }
            None => limits,
        };
        let options = LoadOptions::default()
            .limits(limits)
            .ceiling(ceiling)
            .settings(spec.settings.clone())
            .name(name);
        let label = PathBuf::from(format!("{}@{}", reference.whole(), fetched.digest));
        let grants = Allowlist::new(HashMap::from([(
            name.to_string(),
            spec.permissions.clone(),
        )]));
        let plugin = self
            .runtime
            .prepare_with(&label, fetched.bytes, move |_| options, Some(&grants))
            .await
            .map_err(|e| {
                if fetched.cached {
                    // What the cache held does not load: pull it again next time.
                    self.fetcher.forget(&fetched.digest);
                }
                Failure {
                    reason: match e {
                        crate::runtime::LoadError::Permission { .. } => "PermissionDenied",
                        _ => "LoadFailed",
                    },
                    message: e.to_string(),
                }
            })?;
        let writes_ok = plugin.manifest().writes.iter().try_for_each(|w| {
            for verb in &w.verbs {
                let covered = spec.permissions.iter().any(|r| {
                    r.verbs.contains(verb)
                        && (r.api_version == "*" || r.api_version == *w.kind.api_version)
                        && (r.kind == *w.kind.kind || (r.kind == "*" && &*w.kind.kind != "Secret"))
                });
                if !covered {
                    return Err(format!(
                        "the plugin writes {} {} ({verb}), and spec.permissions does not grant it; add {{apiVersion: {}, kind: {}, verbs: [{verb}]}}",
                        w.kind.api_version, w.kind.kind, w.kind.api_version, w.kind.kind
                    ));
                }
            }
            Ok(())
        });
        if let Err(message) = writes_ok {
            plugin.release_indexes();
            return Err(Failure {
                reason: "PermissionDenied",
                message,
            });
        }
        if let Err(holder) = self.runtime.sources().claim(name, &source) {
            plugin.release_indexes();
            return Err(Failure {
                reason: "NameConflict",
                message: format!(
                    "a plugin named {name} is already loaded from {holder}; rename one of them"
                ),
            });
        }
        let actions = self.runtime.actions();
        let before = actions.allowlist().rules(name).map(<[Rule]>::to_vec);
        actions.set_rules(name, Some(spec.permissions.clone()));
        if let Err(e) = self.runtime.dispatcher().replace(plugin).await {
            actions.set_rules(name, before);
            if entry.running.is_none() {
                self.runtime.sources().release(name, &source);
            }
            return Err(Failure {
                reason: "LoadFailed",
                message: e.to_string(),
            });
        }
        tracing::info!(plugin.name = %name, reference = %reference.whole(), digest = %fetched.digest, cached = fetched.cached, verified = ?fetched.verified, elapsed_ms = started.elapsed().as_millis() as u64, "Plugin object loaded");
        entry.running = Some(Running {
            digest: fetched.digest,
            loaded_at: jiff::Timestamp::now().to_string(),
            spec: spec.clone(),
            verified: fetched.verified,
        });
        Ok(())
    }

    /// The registry credentials for `reference`: from the object's pull
    /// Secrets first, then the operator's docker config, else anonymous.
    async fn auth(
        &self,
        reference: &Reference,
        spec: &PluginSpec,
    ) -> Result<RegistryAuth, Failure> {
        let secrets: kube::Api<Secret> =
            kube::Api::namespaced(self.client.clone(), &self.secrets_namespace);
        for secret in &spec.image_pull_secrets {
            let source = format!("Secret {}/{}", self.secrets_namespace, secret.name);
            let found = secrets.get_opt(&secret.name).await.map_err(|e| Failure {
                reason: "Unauthorized",
                message: format!("{source}: cannot be read: {e}"),
            })?;
            let Some(found) = found else {
                return Err(Failure {
                    reason: "Unauthorized",
                    message: format!("{source}: not found"),
                });
            };
            let Some(config) = found.data.as_ref().and_then(|d| d.get(".dockerconfigjson")) else {
                return Err(Failure {
                    reason: "Unauthorized",
                    message: format!(
                        "{source}: has no .dockerconfigjson (a kubernetes.io/dockerconfigjson Secret is needed)"
                    ),
                });
            };
            let auth = oci::from_docker_config(&config.0, &source, reference.resolve_registry())?;
            if !matches!(auth, RegistryAuth::Anonymous) {
                return Ok(auth);
            }
        }
        Ok(self.fetcher.configured_auth(reference)?)
    }

    /// Unload what runs for `name`, if anything.
    async fn unload(&self, name: &str, entry: &mut Entry) {
        if entry.running.take().is_some() {
            let source = Source::Object(name.to_string());
            if self.runtime.sources().holder(name).as_ref() == Some(&source) {
                self.runtime.dispatcher().remove(name).await;
                self.runtime.actions().set_rules(name, None);
                self.runtime.sources().release(name, &source);
                tracing::info!(plugin.name = %name, "Plugin object unloaded");
            }
        }
    }

    /// The object is gone: unload its plugin.
    async fn forget(&self, name: &str) {
        let mut entries = self.entries.lock().await;
        if let Some(mut entry) = entries.remove(name) {
            self.unload(name, &mut entry).await;
        }
    }

    /// Resolve every tag again; a moved tag is a reload.
    async fn resolve_tags(&self) {
        let objects: Vec<PluginObject> = self
            .entries
            .lock()
            .await
            .values()
            .filter(|e| {
                e.object
                    .spec
                    .as_ref()
                    .is_ok_and(|s| s.enabled && !s.image.contains('@'))
            })
            .map(|e| e.object.clone())
            .collect();
        for object in objects {
            self.reconcile(object, true).await;
        }
    }

    /// Write the statuses that differ from what their objects say.
    async fn write_statuses(&self) {
        let mut entries = self.entries.lock().await;
        for (name, entry) in entries.iter_mut() {
            if let Some(current) = self.current_status(name) {
                entry.object.status = current;
            }
            self.write_status(name, entry);
        }
    }

    /// The object's status as the cache holds it now.
    fn current_status(&self, name: &str) -> Option<serde_json::Value> {
        let kind = crate::vocabulary::KindKey::new(API_VERSION, KIND);
        let key = crate::vocabulary::ObjectKey::new(None, name);
        let object = self.runtime.cache().get(&kind, &key)?;
        PluginObject::parse(object.json()).map(|o| o.status)
    }

    /// Queue the status patch if the object does not say it yet. (Only the
    /// replica that executes actions writes it.)
    fn write_status(&self, name: &str, entry: &Entry) {
        if entry.desired.matches(&entry.object.status) {
            return;
        }
        let patch = entry
            .desired
            .patch(&entry.object.status, &jiff::Timestamp::now().to_string());
        let target = ObjectRef {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            namespace: None,
            name: name.to_string(),
        };
        self.runtime.actions().submit(
            "informant",
            vec![Action::PatchStatus {
                target,
                patch: patch.into(),
            }],
        );
    }

    /// What the admin view shows: each object, what runs, and its status.
    pub async fn statuses(&self) -> Vec<(String, Desired)> {
        let entries = self.entries.lock().await;
        let mut out: Vec<(String, Desired)> = entries
            .iter()
            .map(|(n, e)| (n.clone(), e.desired.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}
