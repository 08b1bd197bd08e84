//! Events and the objects they carry.

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{Error, ErrorCode, Result, bindings::informant::plugin::types as wit};

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Created, or present when the subscription started (`initial`).
    Added,
    /// Changed.
    Modified,
    /// Gone; the object is its last known state.
    Deleted,
    /// Every object present at the start has been delivered.
    Synced,
    /// A replay from the cache, or a requested redelivery.
    Resync,
}

impl From<wit::EventType> for EventType {
    fn from(t: wit::EventType) -> Self {
        match t {
            wit::EventType::Added => Self::Added,
            wit::EventType::Modified => Self::Modified,
            wit::EventType::Deleted => Self::Deleted,
            wit::EventType::Synced => Self::Synced,
            wit::EventType::Resync => Self::Resync,
        }
    }
}

impl From<EventType> for wit::EventType {
    fn from(t: EventType) -> Self {
        match t {
            EventType::Added => Self::Added,
            EventType::Modified => Self::Modified,
            EventType::Deleted => Self::Deleted,
            EventType::Synced => Self::Synced,
            EventType::Resync => Self::Resync,
        }
    }
}

/// One event.
#[derive(Debug, Clone)]
pub struct Event {
    /// What happened.
    pub event_type: EventType,
    /// The position of the matching subscription in the manifest.
    pub subscription: u32,
    /// Part of the initial list of the subscription.
    pub initial: bool,
    /// A delete inferred by a relist: the object is the last state seen.
    pub final_state_unknown: bool,
    /// The object; `null` for `Synced`.
    pub object: Object,
    /// The previous state, for `Modified` when the subscription asks for it.
    pub old_object: Option<Object>,
}

impl Event {
    pub(crate) fn from_wit(e: wit::Event) -> Result<Self> {
        let parse = |s: &str| -> Result<Object> {
            if s.is_empty() {
                Ok(Object(Value::Null))
            } else {
                serde_json::from_str(s)
                    .map(Object)
                    .map_err(|e| Error::new(ErrorCode::Invalid, format!("event object: {e}")))
            }
        };
        Ok(Self {
            event_type: e.event_type.into(),
            subscription: e.subscription,
            initial: e.initial,
            final_state_unknown: e.final_state_unknown,
            object: parse(&e.object)?,
            old_object: e.old_object.as_deref().map(parse).transpose()?,
        })
    }

    /// Whether the object was added or modified (or resynced): it exists now.
    pub fn is_upsert(&self) -> bool {
        matches!(
            self.event_type,
            EventType::Added | EventType::Modified | EventType::Resync
        )
    }
}

/// A reference to one object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// `v1`, `apps/v1`.
    pub api_version: String,
    /// `ConfigMap`.
    pub kind: String,
    /// The namespace; none for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl ObjectRef {
    /// A reference to a namespaced object.
    pub fn namespaced(api_version: &str, kind: &str, namespace: &str, name: &str) -> Self {
        Self {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: Some(namespace.into()),
            name: name.into(),
        }
    }

    /// A reference to a cluster-scoped object.
    pub fn cluster(api_version: &str, kind: &str, name: &str) -> Self {
        Self {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: None,
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

impl From<wit::ObjectRef> for ObjectRef {
    fn from(r: wit::ObjectRef) -> Self {
        Self {
            api_version: r.api_version,
            kind: r.kind,
            namespace: r.namespace,
            name: r.name,
        }
    }
}

impl From<&ObjectRef> for wit::ObjectRef {
    fn from(r: &ObjectRef) -> Self {
        Self {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
        }
    }
}

/// An unstructured Kubernetes object with convenient accessors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Object(pub Value);

impl Object {
    fn str_at(&self, pointer: &str) -> &str {
        self.0
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// `apiVersion`.
    pub fn api_version(&self) -> &str {
        self.str_at("/apiVersion")
    }

    /// `kind`.
    pub fn kind(&self) -> &str {
        self.str_at("/kind")
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.str_at("/metadata/name")
    }

    /// `metadata.namespace`, none for cluster-scoped objects.
    pub fn namespace(&self) -> Option<&str> {
        Some(self.str_at("/metadata/namespace")).filter(|n| !n.is_empty())
    }

    /// `metadata.uid`.
    pub fn uid(&self) -> &str {
        self.str_at("/metadata/uid")
    }

    /// `metadata.resourceVersion`.
    pub fn resource_version(&self) -> &str {
        self.str_at("/metadata/resourceVersion")
    }

    /// The reference to this object.
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            api_version: self.api_version().into(),
            kind: self.kind().into(),
            namespace: self.namespace().map(Into::into),
            name: self.name().into(),
        }
    }

    /// One label's value.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.0.pointer("/metadata/labels")?.get(key)?.as_str()
    }

    /// One annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.0.pointer("/metadata/annotations")?.get(key)?.as_str()
    }

    /// All labels.
    pub fn labels(&self) -> BTreeMap<String, String> {
        string_map(self.0.pointer("/metadata/labels"))
    }

    /// All annotations.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        string_map(self.0.pointer("/metadata/annotations"))
    }

    /// A value by dotted path: `spec.replicas`, `spec.containers.0.image`.
    pub fn get(&self, path: &str) -> Option<&Value> {
        path.split('.')
            .filter(|s| !s.is_empty())
            .try_fold(&self.0, |v, step| match v {
                Value::Array(items) => items.get(step.parse::<usize>().ok()?),
                _ => v.get(step),
            })
    }

    /// A value by JSON pointer: `/spec/replicas`.
    pub fn pointer(&self, pointer: &str) -> Option<&Value> {
        self.0.pointer(pointer)
    }

    /// Deserialize into a typed struct: your own serde types, or k8s-openapi's
    /// with the `k8s-openapi` feature.
    ///
    /// # Errors
    /// [`ErrorCode::Invalid`] naming what did not deserialize.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        T::deserialize(&self.0)
            .map_err(|e| Error::new(ErrorCode::Invalid, format!("{}: {e}", self.object_ref())))
    }

    /// The JSON value.
    pub fn value(&self) -> &Value {
        &self.0
    }

    /// The JSON value, owned.
    pub fn into_value(self) -> Value {
        self.0
    }
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accessors_read_metadata_and_paths() {
        let o = Object(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{"image": "nginx"}]}}}}));
        assert_eq!(o.get("spec.replicas"), Some(&json!(3)));
        assert_eq!(
            o.get("spec.template.spec.containers.0.image"),
            Some(&json!("nginx"))
        );
        assert_eq!(o.label("app"), Some("web"));
        assert_eq!(
            o.object_ref(),
            ObjectRef::namespaced("apps/v1", "Deployment", "shop", "web")
        );
        assert_eq!(o.object_ref().to_string(), "Deployment shop/web");
    }
}
