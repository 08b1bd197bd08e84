//! Executing one action against the Kubernetes API, and classifying what
//! went wrong as retryable or terminal. The queue around it (dedupe,
//! backoff, rate limit, dead letters) is built on this.

use std::{collections::HashMap, sync::Arc, time::Instant};

use kube::{
    Api,
    api::{
        ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions,
    },
};
use parking_lot::Mutex;
use serde_json::{Value, json};

use super::{
    Action, Severity,
    recorder::{Observed, Recorder, SeriesKey},
};
use crate::{cache::ObjectRef, informer::discovery};

/// What executing an action did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// The API accepted it.
    Applied,
    /// Nothing to do: a delete of an object already gone, a create of one
    /// that exists.
    AlreadyDone,
    /// A requeue: nothing goes to the API; the caller schedules it.
    Requeue,
    /// An Event that repeats one already created: counted into its series,
    /// written later.
    Aggregated,
    /// A JSON patch whose `test` operation no longer held: the object
    /// changed after the plugin saw it, so the guarded patch changed nothing,
    /// as it is meant to. The plugin sees the newer state as its own event.
    Superseded,
}

/// Why an action failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{action} {target}: {message} (HTTP {code}{})", if *.retryable { ", will retry" } else { "" })]
pub struct Failure {
    /// The action's name.
    pub action: &'static str,
    /// What it was about.
    pub target: String,
    /// The HTTP status, or 0 for a transport error.
    pub code: u16,
    /// The API's message.
    pub message: String,
    /// Whether a retry may succeed: 409, 429, 5xx and transport errors.
    pub retryable: bool,
}

/// Runs actions for plugins through one client.
pub struct Executor {
    client: kube::Client,
    dry_run: bool,
    reporting_instance: String,
    kinds: Mutex<HashMap<(String, String), (ApiResource, bool)>>,
    recorder: Mutex<Recorder>,
}

impl Executor {
    /// An executor; with `dry_run`, writes carry `dryRun=All` and change nothing.
    pub fn new(
        client: kube::Client,
        dry_run: bool,
        reporting_instance: impl Into<String>,
    ) -> Arc<Self> {
        Self::with_recorder(client, dry_run, reporting_instance, Recorder::default())
    }

    /// An executor aggregating Events with `recorder`'s settings.
    pub fn with_recorder(
        client: kube::Client,
        dry_run: bool,
        reporting_instance: impl Into<String>,
        recorder: Recorder,
    ) -> Arc<Self> {
        Arc::new(Self {
            client,
            dry_run,
            reporting_instance: reporting_instance.into(),
            kinds: Mutex::new(HashMap::new()),
            recorder: Mutex::new(recorder),
        })
    }

    /// Whether writes are sent with `dryRun=All`.
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    async fn resource(
        &self,
        api_version: &str,
        kind: &str,
        action: &'static str,
        target: &str,
    ) -> Result<(ApiResource, bool), Failure> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(found) = self.kinds.lock().get(&key).cloned() {
            return Ok(found);
        }
        let failure = |code, message: String, retryable| Failure {
            action,
            target: target.into(),
            code,
            message,
            retryable,
        };
        match discovery::resolve(&self.client, api_version, kind).await {
            Ok(Some(r)) => {
                let found = (r.resource, r.namespaced);
                self.kinds.lock().insert(key, found.clone());
                Ok(found)
            }
            Ok(None) => Err(failure(
                404,
                format!("{api_version} {kind} is not served"),
                false,
            )),
            Err(e) => Err(failure(0, e.to_string(), true)),
        }
    }

    async fn api(
        &self,
        target: &ObjectRef,
        action: &'static str,
    ) -> Result<Api<DynamicObject>, Failure> {
        let (resource, namespaced) = self
            .resource(
                &target.api_version,
                &target.kind,
                action,
                &target.to_string(),
            )
            .await?;
        Ok(match (&target.namespace, namespaced) {
            (Some(ns), true) => Api::namespaced_with(self.client.clone(), ns, &resource),
            _ => Api::all_with(self.client.clone(), &resource),
        })
    }

    /// Execute one action of `plugin`.
    ///
    /// # Errors
    /// [`Failure`], saying whether a retry may help.
    pub async fn execute(&self, plugin: &str, action: &Action) -> Result<Done, Failure> {
        let name = action.name();
        let target = action.target().clone();
        let manager = format!("informant.{plugin}");
        let classify = |e: kube::Error| classify(name, &target, e);
        let mut patch_params = PatchParams {
            field_manager: Some(manager.clone()),
            ..PatchParams::default()
        };
        patch_params.dry_run = self.dry_run;
        let post = PostParams {
            dry_run: self.dry_run,
            field_manager: Some(manager.clone()),
        };
        match action {
            Action::Apply { object, force, .. } => {
                let api = self.api(&target, name).await?;
                let mut params = PatchParams::apply(&manager);
                params.force = *force;
                params.dry_run = self.dry_run;
                api.patch(&target.name, &params, &Patch::Apply(object))
                    .await
                    .map_err(classify)?;
                Ok(Done::Applied)
            }
            Action::Create { object, .. } => {
                let api = self.api(&target, name).await?;
                let object: DynamicObject = serde_json::from_value(object.clone())
                    .map_err(|e| malformed(name, &target, &e))?;
                match api.create(&post, &object).await {
                    Ok(_) => Ok(Done::Applied),
                    Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => {
                        Ok(Done::AlreadyDone)
                    }
                    Err(e) => Err(classify(e)),
                }
            }
            Action::MergePatch { patch, .. } => {
                let api = self.api(&target, name).await?;
                api.patch(&target.name, &patch_params, &Patch::Merge(patch))
                    .await
                    .map_err(classify)?;
                Ok(Done::Applied)
            }
            Action::JsonPatch { patch, .. } => {
                let api = self.api(&target, name).await?;
                let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                    .map_err(|e| malformed(name, &target, &e))?;
                let guarded = ops
                    .0
                    .iter()
                    .any(|op| matches!(op, json_patch::PatchOperation::Test(_)));
                match api
                    .patch(&target.name, &patch_params, &Patch::<()>::Json(ops))
                    .await
                {
                    Ok(_) => Ok(Done::Applied),
                    Err(kube::Error::Api(s)) if guarded && is_failed_test(&s) => {
                        tracing::info!(error = %s.message, "the JSON patch's test no longer holds: the object changed after the plugin saw it; nothing was changed");
                        Ok(Done::Superseded)
                    }
                    Err(e) => Err(classify(e)),
                }
            }
            Action::PatchStatus { patch, .. } => {
                let api = self.api(&target, name).await?;
                api.patch_status(&target.name, &patch_params, &Patch::Merge(patch))
                    .await
                    .map_err(classify)?;
                Ok(Done::Applied)
            }
            Action::Delete {
                uid,
                resource_version,
                ..
            } => {
                let api = self.api(&target, name).await?;
                let preconditions =
                    (uid.is_some() || resource_version.is_some()).then(|| Preconditions {
                        uid: uid.clone(),
                        resource_version: resource_version.clone(),
                    });
                let params = DeleteParams {
                    dry_run: self.dry_run,
                    preconditions,
                    ..DeleteParams::default()
                };
                match api.delete(&target.name, &params).await {
                    Ok(_) => Ok(Done::Applied),
                    // Already gone is what a delete wants.
                    Err(kube::Error::Api(s)) if s.code == 404 => Ok(Done::AlreadyDone),
                    Err(e) => Err(classify(e)),
                }
            }
            Action::EmitEvent {
                regarding,
                severity,
                reason,
                message,
                action: what,
            } => {
                let series = SeriesKey {
                    regarding: regarding.clone(),
                    reason: reason.clone(),
                    action: what.clone(),
                    severity: *severity,
                    plugin: plugin.to_string(),
                };
                if self.recorder.lock().observe(&series, Instant::now()) == Observed::Counted {
                    return Ok(Done::Aggregated);
                }
                let event = self.event(regarding, *severity, reason, message, what);
                let created = async {
                    let api = self.api(&events_ref(regarding), name).await?;
                    let event: DynamicObject =
                        serde_json::from_value(event).map_err(|e| malformed(name, &target, &e))?;
                    api.create(&post, &event).await.map_err(classify)
                };
                match created.await {
                    Ok(created) => {
                        let namespace = created.metadata.namespace.unwrap_or_default();
                        let event_name = created.metadata.name.unwrap_or_default();
                        self.recorder.lock().created(&series, namespace, event_name);
                        Ok(Done::Applied)
                    }
                    Err(e) => {
                        self.recorder.lock().failed(&series);
                        Err(e)
                    }
                }
            }
            Action::RequeueAfter { .. } => Ok(Done::Requeue),
        }
    }

    /// Write the count of every Event series that grew since it was last
    /// written and is due. Failures are logged: a series count is best effort.
    pub async fn flush_event_series(&self) {
        let due = self.recorder.lock().due(Instant::now());
        for flush in due {
            let target = events_ref(&flush.key.regarding);
            let Ok(api) = self.api(&target, "emitEvent").await else {
                continue;
            };
            let patch =
                json!({"series": {"count": flush.count, "lastObservedTime": micro_time_now()}});
            let params = PatchParams {
                dry_run: self.dry_run,
                field_manager: Some(format!("informant.{}", flush.key.plugin)),
                ..PatchParams::default()
            };
            if let Err(e) = api.patch(&flush.name, &params, &Patch::Merge(&patch)).await {
                tracing::debug!(event = %flush.name, namespace = %flush.namespace, error = %e, "could not update an Event series");
            }
        }
    }

    /// An `events.k8s.io/v1` Event about `regarding`, reported by `informant`.
    fn event(
        &self,
        regarding: &ObjectRef,
        severity: Severity,
        reason: &str,
        message: &str,
        action: &str,
    ) -> Value {
        let now = micro_time_now();
        json!({
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {
                "generateName": format!("{}.", regarding.name),
                "namespace": regarding.namespace.clone().unwrap_or_else(|| "default".into()),
            },
            "eventTime": now,
            "reportingController": "informant",
            "reportingInstance": self.reporting_instance,
            "action": action,
            "reason": reason,
            "note": message,
            "type": match severity { Severity::Normal => "Normal", Severity::Warning => "Warning" },
            "regarding": {
                "apiVersion": regarding.api_version,
                "kind": regarding.kind,
                "namespace": regarding.namespace,
                "name": regarding.name,
            },
        })
    }
}

/// Where Events about `regarding` live: its namespace, or `default` for
/// cluster-scoped objects, as the real recorders do.
fn events_ref(regarding: &ObjectRef) -> ObjectRef {
    ObjectRef {
        api_version: "events.k8s.io/v1".into(),
        kind: "Event".into(),
        namespace: Some(
            regarding
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
        ),
        name: String::new(),
    }
}

/// Now as a Kubernetes `MicroTime`.
fn micro_time_now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// An action whose object or patch does not deserialize: 422, never retried.
fn malformed(action: &'static str, target: &ObjectRef, e: &serde_json::Error) -> Failure {
    Failure {
        action,
        target: target.to_string(),
        code: 422,
        message: e.to_string(),
        retryable: false,
    }
}

/// Whether a 422 answers a JSON patch whose `test` operation failed. The
/// API server reports it as a generic 422 with the patch library's message
/// ("testing value /a/b failed: test failed") as its cause.
fn is_failed_test(status: &kube::core::Status) -> bool {
    status.code == 422
        && std::iter::once(status.message.as_str())
            .chain(
                status
                    .details
                    .iter()
                    .flat_map(|d| d.causes.iter().map(|c| c.message.as_str())),
            )
            .any(|m| m.contains("test failed"))
}

/// 409, 429, 5xx and transport errors may pass on a retry; 403, 404 and 422
/// will not.
fn classify(action: &'static str, target: &ObjectRef, e: kube::Error) -> Failure {
    let (code, message) = match &e {
        kube::Error::Api(s) => (s.code, s.message.clone()),
        other => (0, other.to_string()),
    };
    let retryable = code == 0 || code == 409 || code == 429 || code >= 500;
    Failure {
        action,
        target: target.to_string(),
        code,
        message,
        retryable,
    }
}
