//! Actions: the changes plugins ask the host to make to the cluster.
//!
//! A plugin enqueues actions through the WIT `actions` interface; the runtime
//! validates each one into an [`Action`] and commits them when the call
//! returns `ok`. The [`ActionQueue`] checks them against the operator's
//! [`Allowlist`], dedupes, rate-limits and retries them; the [`Executor`]
//! runs each against the API.

mod allowlist;
mod executor;
mod json_text;
mod queue;
pub mod recorder;
mod retry;

pub use allowlist::{Allowlist, Rule};
pub use executor::{Done, Executor, Failure};
pub use json_text::JsonText;
pub use queue::{
    ActionQueue, Config as QueueConfig, DeadLetter, QueueCounts, Reason, Stats as QueueStats,
};
pub use retry::Policy as RetryPolicy;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::vocabulary::{KindKey, ObjectRef, Verb};

/// The type of a Kubernetes Event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Severity {
    /// Something expected happened.
    Normal,
    /// Something may need attention.
    Warning,
}

/// One validated change to the cluster.
///
/// Serialised with a `type` tag, this is also the line format of
/// `informant replay`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Action {
    /// Server-side apply of `object`.
    Apply {
        /// The object applied, as named by its own fields.
        target: ObjectRef,
        /// The object.
        object: Value,
        /// Take over conflicting fields.
        force: bool,
    },
    /// Create `object`.
    Create {
        /// The object created.
        target: ObjectRef,
        /// The object.
        object: Value,
    },
    /// A JSON merge patch.
    MergePatch {
        /// The object patched.
        target: ObjectRef,
        /// The patch, a JSON object, as the plugin wrote it.
        patch: JsonText,
    },
    /// A JSON patch.
    JsonPatch {
        /// The object patched.
        target: ObjectRef,
        /// The operations, a JSON array, as the plugin wrote them.
        patch: JsonText,
    },
    /// A delete, with optional preconditions.
    Delete {
        /// The object deleted.
        target: ObjectRef,
        /// Only if the object still has this uid.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<String>,
        /// Only if the object still has this resourceVersion.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resource_version: Option<String>,
    },
    /// A JSON merge patch of the status subresource.
    PatchStatus {
        /// The object patched.
        target: ObjectRef,
        /// The patch, a JSON object, as the plugin wrote it.
        patch: JsonText,
    },
    /// A Kubernetes Event about an object.
    EmitEvent {
        /// The object the event is about.
        regarding: ObjectRef,
        /// Normal or Warning.
        severity: Severity,
        /// A short CamelCase reason.
        reason: String,
        /// What happened.
        message: String,
        /// What was done.
        action: String,
    },
    /// Redeliver an object to the plugin later.
    RequeueAfter {
        /// The object.
        target: ObjectRef,
        /// The delay in milliseconds.
        delay_ms: u64,
    },
}

/// The kind and verb events need: `events.k8s.io/v1` `Event`, `create`.
pub fn event_kind() -> KindKey {
    KindKey::new("events.k8s.io/v1", "Event")
}

impl Action {
    /// The object the action is about.
    pub fn target(&self) -> &ObjectRef {
        match self {
            Self::Apply { target, .. }
            | Self::Create { target, .. }
            | Self::MergePatch { target, .. }
            | Self::JsonPatch { target, .. }
            | Self::Delete { target, .. }
            | Self::PatchStatus { target, .. }
            | Self::RequeueAfter { target, .. } => target,
            Self::EmitEvent { regarding, .. } => regarding,
        }
    }

    /// The write permission the action needs, or none for a requeue, which
    /// only needs the object to be one the plugin subscribes to.
    pub fn required_grant(&self) -> Option<(KindKey, Verb)> {
        self.required_grant_with(|target| target.kind_key())
    }

    /// [`Self::required_grant`], the key of the target's kind made by
    /// `key_of` (a caller that keeps keys gives its own).
    pub fn required_grant_with(
        &self,
        key_of: impl FnOnce(&ObjectRef) -> KindKey,
    ) -> Option<(KindKey, Verb)> {
        let verb = match self {
            Self::Apply { .. } => Verb::Apply,
            Self::Create { .. } => Verb::Create,
            Self::MergePatch { .. } | Self::JsonPatch { .. } => Verb::Patch,
            Self::Delete { .. } => Verb::Delete,
            Self::PatchStatus { .. } => Verb::PatchStatus,
            Self::EmitEvent { .. } => return Some((event_kind(), Verb::Create)),
            Self::RequeueAfter { .. } => return None,
        };
        Some((key_of(self.target()), verb))
    }

    /// A short name for logs and metrics: `apply`, `mergePatch`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Apply { .. } => "apply",
            Self::Create { .. } => "create",
            Self::MergePatch { .. } => "mergePatch",
            Self::JsonPatch { .. } => "jsonPatch",
            Self::Delete { .. } => "delete",
            Self::PatchStatus { .. } => "patchStatus",
            Self::EmitEvent { .. } => "emitEvent",
            Self::RequeueAfter { .. } => "requeueAfter",
        }
    }
}

/// Read the reference an object names itself by.
///
/// # Errors
/// A message naming the missing field.
pub fn object_ref_of(object: &Value) -> Result<ObjectRef, String> {
    let field = |ptr: &str| {
        object
            .pointer(ptr)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    Ok(ObjectRef {
        api_version: field("/apiVersion")
            .ok_or("the object has no apiVersion")?
            .to_string(),
        kind: field("/kind").ok_or("the object has no kind")?.to_string(),
        namespace: field("/metadata/namespace").map(str::to_string),
        name: field("/metadata/name")
            .ok_or("the object has no metadata.name")?
            .to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn actions_serialise_with_a_type_tag_and_camel_case_fields() {
        let a = Action::RequeueAfter {
            target: ObjectRef {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: None,
                name: "x".into(),
            },
            delay_ms: 5,
        };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(
            v,
            json!({"type": "requeueAfter", "target": {"apiVersion": "v1", "kind": "ConfigMap", "name": "x"}, "delayMs": 5})
        );
        assert_eq!(serde_json::from_value::<Action>(v).unwrap(), a);
    }

    #[test]
    fn events_need_the_create_grant_on_events() {
        let a = Action::EmitEvent {
            regarding: ObjectRef {
                api_version: "v1".into(),
                kind: "Pod".into(),
                namespace: None,
                name: "p".into(),
            },
            severity: Severity::Normal,
            reason: "R".into(),
            message: "m".into(),
            action: "A".into(),
        };
        assert_eq!(a.required_grant(), Some((event_kind(), Verb::Create)));
    }
}
