//! Executing one action against the Kubernetes API, and classifying what
//! went wrong as retryable or terminal. The queue around it (dedupe,
//! backoff, rate limit, dead letters) is built on this.

use std::{collections::HashMap, sync::Arc};

use kube::{
    Api,
    api::{
        ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions,
    },
};
use parking_lot::Mutex;
use serde_json::{Value, json};

use super::{Action, Severity};
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
}

impl Executor {
    /// An executor; with `dry_run`, writes carry `dryRun=All` and change nothing.
    pub fn new(
        client: kube::Client,
        dry_run: bool,
        reporting_instance: impl Into<String>,
    ) -> Arc<Self> {
        Arc::new(Self {
            client,
            dry_run,
            reporting_instance: reporting_instance.into(),
            kinds: Mutex::new(HashMap::new()),
        })
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
                api.patch(&target.name, &patch_params, &Patch::<()>::Json(ops))
                    .await
                    .map_err(classify)?;
                Ok(Done::Applied)
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
                let event = self.event(regarding, *severity, reason, message, what);
                let events = ObjectRef {
                    api_version: "events.k8s.io/v1".into(),
                    kind: "Event".into(),
                    namespace: Some(
                        regarding
                            .namespace
                            .clone()
                            .unwrap_or_else(|| "default".into()),
                    ),
                    name: String::new(),
                };
                let api = self.api(&events, name).await?;
                let event: DynamicObject =
                    serde_json::from_value(event).map_err(|e| malformed(name, &target, &e))?;
                api.create(&post, &event).await.map_err(classify)?;
                Ok(Done::Applied)
            }
            Action::RequeueAfter { .. } => Ok(Done::Requeue),
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
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string();
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
