//! Actions: changes to the cluster, committed when `handle` returns `Ok`.
//!
//! Build one with a function here, adjust it, and call `.enqueue()`:
//!
//! ```no_run
//! # use informant_sdk::{action, json, ObjectRef};
//! # fn f(target: ObjectRef) -> informant_sdk::Result<()> {
//! action::merge_patch(&target, json!({"metadata": {"labels": {"team": "unknown"}}})).enqueue()?;
//! action::event(&target, "LabelAdded", "added the team label").enqueue()?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use serde::Serialize;

use crate::{ObjectRef, Result, bindings::informant::plugin::actions as wit};

/// An action ready to enqueue.
#[derive(Debug, Clone)]
#[must_use = "an action does nothing until it is enqueued"]
pub struct Action(Kind);

/// What an action holds until it is enqueued; the host is handed it
/// borrowed, without a copy.
#[derive(Debug, Clone)]
enum Kind {
    Apply(Apply),
    Create(String),
    MergePatch(ObjectRef, String),
    JsonPatch(ObjectRef, String),
    PatchStatus(ObjectRef, String),
    Delete(Delete),
    EmitEvent(EmitEvent),
    RequeueAfter(ObjectRef, u64),
}

impl Action {
    /// Queue the action for when the call returns `Ok`.
    ///
    /// # Errors
    /// `Forbidden` if the manifest does not grant it, `Invalid` if it is
    /// malformed, `LimitExceeded` past the per-call cap on actions.
    pub fn enqueue(self) -> Result<()> {
        fn patch<'a>(target: &'a ObjectRef, patch: &'a str) -> wit::PatchAction<'a> {
            wit::PatchAction {
                target: target.into(),
                patch,
            }
        }
        let action = match &self.0 {
            Kind::Apply(a) => wit::Action::Apply(wit::ApplyAction {
                object: &a.object,
                force: a.force,
            }),
            Kind::Create(object) => wit::Action::Create(object),
            Kind::MergePatch(t, p) => wit::Action::MergePatch(patch(t, p)),
            Kind::JsonPatch(t, p) => wit::Action::JsonPatch(patch(t, p)),
            Kind::PatchStatus(t, p) => wit::Action::PatchStatus(patch(t, p)),
            Kind::Delete(d) => wit::Action::Delete(wit::DeleteAction {
                target: (&d.target).into(),
                uid: d.uid.as_deref(),
                resource_version: d.resource_version.as_deref(),
            }),
            Kind::EmitEvent(e) => wit::Action::EmitEvent(wit::EventAction {
                regarding: (&e.regarding).into(),
                severity: if e.warning {
                    wit::EventSeverity::Warning
                } else {
                    wit::EventSeverity::Normal
                },
                reason: &e.reason,
                message: &e.message,
                action: &e.action,
            }),
            Kind::RequeueAfter(t, delay_ms) => wit::Action::RequeueAfter(wit::RequeueAction {
                target: t.into(),
                delay_ms: *delay_ms,
            }),
        };
        Ok(wit::enqueue(action)?)
    }
}

fn json<T: Serialize>(value: &T) -> String {
    // Serialising a JSON value (or a serde type into one) does not fail for
    // the types plugins use; a map with non-string keys would, and shows up
    // as an `Invalid` error from the host on the empty string.
    serde_json::to_string(value).unwrap_or_default()
}

/// Server-side apply of a whole object (field manager `informant.<plugin>`).
pub fn apply<T: Serialize>(object: &T) -> Apply {
    Apply {
        object: json(object),
        force: false,
    }
}

/// A server-side apply, before it is enqueued.
#[derive(Debug, Clone)]
#[must_use = "an action does nothing until it is enqueued"]
pub struct Apply {
    object: String,
    force: bool,
}

impl Apply {
    /// Take over fields other managers own instead of failing with a conflict.
    pub fn force(mut self) -> Self {
        self.force = true;
        self
    }

    /// Queue it.
    ///
    /// # Errors
    /// As [`Action::enqueue`].
    pub fn enqueue(self) -> Result<()> {
        Action::from(self).enqueue()
    }
}

impl From<Apply> for Action {
    fn from(a: Apply) -> Self {
        Action(Kind::Apply(a))
    }
}

/// Create an object; an existing one is left alone.
pub fn create<T: Serialize>(object: &T) -> Action {
    Action(Kind::Create(json(object)))
}

/// A JSON merge patch (RFC 7386).
pub fn merge_patch<T: Serialize>(target: &ObjectRef, patch: T) -> Action {
    Action(Kind::MergePatch(target.clone(), json(&patch)))
}

/// A JSON patch (RFC 6902): an array of operations.
pub fn json_patch<T: Serialize>(target: &ObjectRef, operations: T) -> Action {
    Action(Kind::JsonPatch(target.clone(), json(&operations)))
}

/// A JSON merge patch of the status subresource.
pub fn patch_status<T: Serialize>(target: &ObjectRef, patch: T) -> Action {
    Action(Kind::PatchStatus(target.clone(), json(&patch)))
}

/// Delete an object.
pub fn delete(target: &ObjectRef) -> Delete {
    Delete {
        target: target.clone(),
        uid: None,
        resource_version: None,
    }
}

/// A delete, before it is enqueued.
#[derive(Debug, Clone)]
#[must_use = "an action does nothing until it is enqueued"]
pub struct Delete {
    target: ObjectRef,
    uid: Option<String>,
    resource_version: Option<String>,
}

impl Delete {
    /// Only if the object still has this uid.
    pub fn uid(mut self, uid: impl Into<String>) -> Self {
        self.uid = Some(uid.into());
        self
    }

    /// Only if the object still has this resourceVersion.
    pub fn resource_version(mut self, rv: impl Into<String>) -> Self {
        self.resource_version = Some(rv.into());
        self
    }

    /// Queue it.
    ///
    /// # Errors
    /// As [`Action::enqueue`].
    pub fn enqueue(self) -> Result<()> {
        Action::from(self).enqueue()
    }
}

impl From<Delete> for Action {
    fn from(d: Delete) -> Self {
        Action(Kind::Delete(d))
    }
}

/// A Kubernetes Event (type Normal) about an object.
pub fn event(regarding: &ObjectRef, reason: &str, message: &str) -> EmitEvent {
    EmitEvent {
        regarding: regarding.clone(),
        warning: false,
        reason: reason.into(),
        message: message.into(),
        action: reason.into(),
    }
}

/// An Event, before it is enqueued.
#[derive(Debug, Clone)]
#[must_use = "an action does nothing until it is enqueued"]
pub struct EmitEvent {
    regarding: ObjectRef,
    warning: bool,
    reason: String,
    message: String,
    action: String,
}

impl EmitEvent {
    /// Make it a Warning.
    pub fn warning(mut self) -> Self {
        self.warning = true;
        self
    }

    /// What was done, in CamelCase (defaults to the reason).
    pub fn action(mut self, action: &str) -> Self {
        self.action = action.into();
        self
    }

    /// Queue it.
    ///
    /// # Errors
    /// As [`Action::enqueue`].
    pub fn enqueue(self) -> Result<()> {
        Action::from(self).enqueue()
    }
}

impl From<EmitEvent> for Action {
    fn from(e: EmitEvent) -> Self {
        Action(Kind::EmitEvent(e))
    }
}

/// Deliver `target` to this plugin again, as a `Resync` event, after `delay`.
pub fn requeue_after(target: &ObjectRef, delay: Duration) -> Action {
    Action(Kind::RequeueAfter(
        target.clone(),
        u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
    ))
}

/// Queue any action.
///
/// # Errors
/// As [`Action::enqueue`].
pub fn enqueue(action: impl Into<Action>) -> Result<()> {
    action.into().enqueue()
}
