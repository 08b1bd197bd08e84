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
use crate::{discovery, vocabulary::ObjectRef};

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
                let ops: json_patch::Patch = patch
                    .parse_into()
                    .map_err(|e| malformed(name, &target, &e))?;
                let tests = json_patch::Patch(
                    ops.0
                        .iter()
                        .filter(|op| matches!(op, json_patch::PatchOperation::Test(_)))
                        .cloned()
                        .collect(),
                );
                match api
                    .patch(&target.name, &patch_params, &Patch::<()>::Json(ops))
                    .await
                {
                    Ok(_) => Ok(Done::Applied),
                    // The API server says only "the server rejected our
                    // request" for every patch that cannot apply, whatever the
                    // reason: whether a guard failed is read off the object.
                    Err(kube::Error::Api(s)) if s.code == 422 && !tests.0.is_empty() => {
                        match api.get_opt(&target.name).await {
                            Ok(Some(current)) if !tests_hold(&tests, &current) => {
                                tracing::info!(
                                    "the JSON patch's test no longer holds: the object changed after the plugin saw it; nothing was changed"
                                );
                                Ok(Done::Superseded)
                            }
                            // Gone since: nothing left to guard.
                            Ok(None) => Ok(Done::Superseded),
                            Ok(Some(_)) => Err(classify(kube::Error::Api(s))),
                            Err(e) => Err(classify(e)),
                        }
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
                "name": event_name(&regarding.name, jiff::Timestamp::now()),
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

/// An Event's name, as client-go's recorders make it: the object's name, a
/// dot and the time in nanoseconds as hex (`web.187d1c2a3f4e5a6b`). A
/// `generateName` of `"<name>."` is refused by the API server (it must be a
/// valid name itself). A name too long for a DNS subdomain keeps its end,
/// the part that makes it unique.
fn event_name(object: &str, at: jiff::Timestamp) -> String {
    const MAX: usize = 253;
    let suffix = format!(".{:x}", at.as_nanosecond());
    let room = MAX.saturating_sub(suffix.len());
    let mut head = &object[..object.len().min(room)];
    // Cut at a character boundary, and never end on a dot or a dash.
    while !object.is_char_boundary(head.len()) || head.ends_with(['.', '-']) {
        head = &head[..head.len() - 1];
    }
    format!("{head}{suffix}")
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

/// Whether every `test` operation of `tests` holds on `object` as it is now.
fn tests_hold(tests: &json_patch::Patch, object: &DynamicObject) -> bool {
    let Ok(mut value) = serde_json::to_value(object) else {
        return false;
    };
    json_patch::patch(&mut value, tests).is_ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_named_like_client_go_names_them() {
        let at = jiff::Timestamp::from_nanosecond(1_735_000_000_123_456_789).unwrap();
        assert_eq!(event_name("web", at), "web.1813f54ec4a94d15");
        let long = "a".repeat(250);
        let name = event_name(&long, at);
        assert_eq!(name.len(), 253);
        assert!(name.ends_with(".1813f54ec4a94d15"));
        assert!(informant_k8s::selector::is_dns1123_subdomain(&name));
    }
}
