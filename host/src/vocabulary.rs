//! The words every part of the host shares: kinds, object keys and
//! references, event types and write verbs. It depends on nothing else in
//! the crate, so that the informers, the cache, dispatch, plugins and
//! actions can all use it without using each other.

use std::{fmt, sync::Arc};

use serde::{Deserialize, Serialize};

/// A kind of object: apiVersion and kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KindKey {
    /// `v1`, `apps/v1`.
    pub api_version: Arc<str>,
    /// `ConfigMap`.
    pub kind: Arc<str>,
}

impl KindKey {
    /// A kind from its apiVersion and kind.
    pub fn new(api_version: &str, kind: &str) -> Self {
        Self {
            api_version: api_version.into(),
            kind: kind.into(),
        }
    }

    /// The API group: empty for the core group.
    pub fn group(&self) -> &str {
        self.api_version.rsplit_once('/').map_or("", |(g, _)| g)
    }
}

impl fmt::Display for KindKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.api_version, self.kind)
    }
}

/// A set of object keys, hashed with foldhash: an informer keeps one of
/// every object it has reported, and builds one at the end of every list;
/// at 100,000 objects SipHash's cost shows at the end of the list.
pub type KeySet = std::collections::HashSet<Arc<ObjectKey>, foldhash::fast::RandomState>;

/// Where one object lives within its kind: namespace (empty for cluster-scoped
/// objects) and name. Orders by namespace, then name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// The namespace; empty for cluster-scoped objects.
    pub namespace: Box<str>,
    /// The name.
    pub name: Box<str>,
}

impl ObjectKey {
    /// A key from an optional namespace and a name.
    pub fn new(namespace: Option<&str>, name: &str) -> Self {
        Self {
            namespace: namespace.unwrap_or("").into(),
            name: name.into(),
        }
    }

    /// A key from strings the caller owns: [`Self::new`] without copying
    /// them (a string whose capacity is its length moves as it is).
    pub fn from_owned(namespace: Option<String>, name: String) -> Self {
        Self {
            namespace: namespace.map_or_else(Box::default, String::into_boxed_str),
            name: name.into_boxed_str(),
        }
    }

    /// The namespace, or none for a cluster-scoped object.
    pub fn namespace(&self) -> Option<&str> {
        (!self.namespace.is_empty()).then_some(&*self.namespace)
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.namespace() {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// A full reference to an object: its kind and its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// `v1`, `apps/v1`.
    pub api_version: String,
    /// `ConfigMap`.
    pub kind: String,
    /// The namespace, none for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl ObjectRef {
    /// The kind part of the reference.
    pub fn kind_key(&self) -> KindKey {
        KindKey::new(&self.api_version, &self.kind)
    }

    /// The key part of the reference.
    pub fn object_key(&self) -> ObjectKey {
        ObjectKey::new(self.namespace.as_deref(), &self.name)
    }

    /// A reference from a kind and a key.
    pub fn from_parts(kind: &KindKey, key: &ObjectKey) -> Self {
        Self {
            api_version: kind.api_version.to_string(),
            kind: kind.kind.to_string(),
            namespace: key.namespace().map(str::to_string),
            name: key.name.to_string(),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{} {ns}/{}", self.api_version, self.kind, self.name),
            None => write!(f, "{}/{} {}", self.api_version, self.kind, self.name),
        }
    }
}

/// The type of an event, as the host models it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EventType {
    /// Created, or present at the start of a subscription.
    Added,
    /// Changed.
    Modified,
    /// Gone.
    Deleted,
    /// The initial list of a subscription is complete.
    Synced,
    /// A replay from the cache, or a requested redelivery.
    Resync,
}

impl EventType {
    /// Every event type.
    pub const ALL: [EventType; 5] = [
        Self::Added,
        Self::Modified,
        Self::Deleted,
        Self::Synced,
        Self::Resync,
    ];

    /// Parse `added`, `ADDED`, `Modified`...
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "added" => Self::Added,
            "modified" => Self::Modified,
            "deleted" => Self::Deleted,
            "synced" => Self::Synced,
            "resync" => Self::Resync,
            _ => return None,
        })
    }
}

/// What a plugin may do to a kind of object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Verb {
    /// Server-side apply.
    Apply,
    /// Create.
    Create,
    /// JSON merge patch or JSON patch.
    Patch,
    /// Patch of the status subresource.
    PatchStatus,
    /// Delete.
    Delete,
}

impl Verb {
    /// The contract's name: `apply`, `create`, `patch`, `patch-status`,
    /// `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "apply",
            Self::Create => "create",
            Self::Patch => "patch",
            Self::PatchStatus => "patch-status",
            Self::Delete => "delete",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_from_owned_strings_is_the_key_from_borrowed_ones() {
        for namespace in [None, Some("shop"), Some("")] {
            assert_eq!(
                ObjectKey::from_owned(namespace.map(str::to_string), "settings".into()),
                ObjectKey::new(namespace, "settings")
            );
        }
    }
}
