//! Events and the objects they carry.

use std::{cell::OnceCell, collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{
    Error, ErrorCode, Result,
    bindings::informant::plugin::types as wit,
    head::{Head, Text, locate},
};

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
    /// The object; empty (`is_null`) for `Synced`.
    pub object: Object,
    /// The previous state, for `Modified` when the subscription asks for it.
    pub old_object: Option<Object>,
    /// How many earlier events of this object were merged into this one
    /// while it waited (0: none). `object` is the newest state; a merged
    /// `Deleted` carries the last one. Latest-state subscriptions always
    /// merge; every-event ones only when the plugin falls behind its bound.
    pub merged: u32,
}

impl Event {
    pub(crate) fn from_wit(e: wit::Event) -> Result<Self> {
        Ok(Self {
            event_type: e.event_type.into(),
            subscription: e.subscription,
            initial: e.initial,
            final_state_unknown: e.final_state_unknown,
            object: Object::from_json(e.object),
            old_object: e.old_object.map(Object::from_json),
            merged: e.merged,
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

impl From<wit::ObjectRefResult> for ObjectRef {
    fn from(r: wit::ObjectRefResult) -> Self {
        Self {
            api_version: r.api_version,
            kind: r.kind,
            namespace: r.namespace,
            name: r.name,
        }
    }
}

impl<'a> From<&'a ObjectRef> for wit::ObjectRefParam<'a> {
    fn from(r: &'a ObjectRef) -> Self {
        Self {
            api_version: &r.api_version,
            kind: &r.kind,
            namespace: r.namespace.as_deref(),
            name: &r.name,
        }
    }
}

/// An unstructured Kubernetes object with convenient accessors.
///
/// The JSON is parsed lazily: the identity and metadata accessors read only
/// `apiVersion`, `kind` and `metadata`, as spans of the text (no copies),
/// and stop once they have all three (the host sends them first);
/// [`Object::get`] and [`Object::pointer`] read only the way to the value
/// they return; the full value is built on the first call that needs it
/// ([`Object::value`], or a seventh path). Plugins that
/// look at labels, names and a few fields, the common case, never pay for
/// the whole tree.
pub struct Object {
    raw: String,
    head: OnceCell<Head>,
    value: OnceCell<Value>,
    /// The labels and annotations as maps, built on first use of
    /// [`Object::labels`] or [`Object::annotations`].
    maps: OnceCell<[BTreeMap<String, String>; 2]>,
    /// Values read by [`Object::get`] and [`Object::pointer`] before the
    /// whole tree was needed, each parsed from its own text. Once these
    /// are taken, the next new path builds the whole tree.
    fields: [OnceCell<Field>; FIELDS],
}

/// How many values an object keeps read by path, apart from its whole
/// tree. A handler reads a few fields of an object; one that reads more
/// than this pays for the whole tree once, and then nothing per path.
const FIELDS: usize = 6;

/// A value read by path (or JSON pointer): none if there is none there.
struct Field {
    pointer: bool,
    path: Box<str>,
    value: Option<Value>,
}

impl Object {
    /// An object from its JSON text.
    pub fn from_json(raw: String) -> Self {
        Self {
            raw,
            head: OnceCell::new(),
            value: OnceCell::new(),
            maps: OnceCell::new(),
            fields: Default::default(),
        }
    }

    /// An object from a JSON value.
    pub fn from_value(value: Value) -> Self {
        let raw = value.to_string();
        let cell = OnceCell::new();
        let _ = cell.set(value);
        Self {
            raw,
            head: OnceCell::new(),
            value: cell,
            maps: OnceCell::new(),
            fields: Default::default(),
        }
    }

    fn head(&self) -> &Head {
        // The host sends valid JSON; anything else reads as empty fields.
        self.head.get_or_init(|| Head::parse(&self.raw))
    }

    /// `apiVersion`.
    pub fn api_version(&self) -> &str {
        self.head().api_version.get(&self.raw)
    }

    /// `kind`.
    pub fn kind(&self) -> &str {
        self.head().kind.get(&self.raw)
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.head().name.get(&self.raw)
    }

    /// `metadata.namespace`, none for cluster-scoped objects.
    pub fn namespace(&self) -> Option<&str> {
        let namespace = self.head().namespace.as_ref()?.get(&self.raw);
        Some(namespace).filter(|n| !n.is_empty())
    }

    /// `metadata.uid`.
    pub fn uid(&self) -> &str {
        self.head().uid.get(&self.raw)
    }

    /// `metadata.resourceVersion`.
    pub fn resource_version(&self) -> &str {
        self.head().resource_version.get(&self.raw)
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
        Head::find(&self.head().labels, &self.raw, key)
    }

    /// One annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        Head::find(&self.head().annotations, &self.raw, key)
    }

    /// All labels.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.maps()[0]
    }

    /// All annotations.
    pub fn annotations(&self) -> &BTreeMap<String, String> {
        &self.maps()[1]
    }

    fn maps(&self) -> &[BTreeMap<String, String>; 2] {
        self.maps.get_or_init(|| {
            let head = self.head();
            let map = |pairs: &[(Text, Text)]| {
                pairs
                    .iter()
                    .map(|(k, v)| (k.get(&self.raw).to_owned(), v.get(&self.raw).to_owned()))
                    .collect()
            };
            [map(&head.labels), map(&head.annotations)]
        })
    }

    /// A value by dotted path: `spec.replicas`, `spec.containers.0.image`.
    ///
    /// Reads only the way to the value and the value itself, not the whole
    /// object, unless the whole tree was already needed.
    pub fn get(&self, path: &str) -> Option<&Value> {
        let steps = || path.split('.').filter(|s| !s.is_empty());
        if steps().next().is_none() {
            return Some(self.value());
        }
        self.field(
            false,
            path,
            steps,
            |s| s.parse().ok(),
            |v| {
                steps().try_fold(v, |v, step| match v {
                    Value::Array(items) => items.get(step.parse::<usize>().ok()?),
                    _ => v.get(step),
                })
            },
        )
    }

    /// A value by JSON pointer: `/spec/replicas`.
    ///
    /// Reads only the way to the value, as [`Object::get`] does.
    pub fn pointer(&self, pointer: &str) -> Option<&Value> {
        if pointer.is_empty() {
            return Some(self.value());
        }
        let rest = pointer.strip_prefix('/')?;
        let steps = || {
            rest.split('/')
                .map(|s| s.replace("~1", "/").replace("~0", "~"))
        };
        // As serde_json reads an index: digits, no sign, no leading zero.
        let index = |s: &str| {
            let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            (digits && (s == "0" || !s.starts_with('0')))
                .then(|| s.parse().ok())
                .flatten()
        };
        self.field(true, pointer, steps, index, |v| v.pointer(pointer))
    }

    /// The value at `path`: from the whole tree if it was built, else
    /// read once from the text and kept, else (all slots taken) from the
    /// whole tree, built now.
    fn field<'a, S: AsRef<str>, I: Iterator<Item = S>>(
        &'a self,
        pointer: bool,
        path: &str,
        steps: impl Fn() -> I,
        index: impl Fn(&str) -> Option<usize>,
        walk: impl Fn(&'a Value) -> Option<&'a Value>,
    ) -> Option<&'a Value> {
        if let Some(value) = self.value.get() {
            return walk(value);
        }
        for slot in &self.fields {
            let Some(field) = slot.get() else {
                let value = locate(&self.raw, steps(), index)
                    .and_then(|text| serde_json::from_str(text).ok());
                let field = slot.get_or_init(|| Field {
                    pointer,
                    path: path.into(),
                    value,
                });
                return field.value.as_ref();
            };
            if field.pointer == pointer && *field.path == *path {
                return field.value.as_ref();
            }
        }
        walk(self.value())
    }

    /// Deserialize into a typed struct: your own serde types, or k8s-openapi's
    /// with the `k8s-openapi` feature. Parses the JSON text directly.
    ///
    /// # Errors
    /// [`ErrorCode::Invalid`] naming what did not deserialize.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.raw)
            .map_err(|e| Error::new(ErrorCode::Invalid, format!("{}: {e}", self.object_ref())))
    }

    /// The JSON value (parsed on first use).
    pub fn value(&self) -> &Value {
        self.value.get_or_init(|| {
            if self.raw.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&self.raw).unwrap_or(Value::Null)
            }
        })
    }

    /// The JSON value, owned.
    pub fn into_value(self) -> Value {
        let _ = self.value();
        self.value.into_inner().unwrap_or(Value::Null)
    }

    /// The JSON text as the host sent it.
    pub fn json(&self) -> &str {
        &self.raw
    }

    /// Whether there is no object (the `Synced` event's).
    pub fn is_null(&self) -> bool {
        self.raw.is_empty() || self.value().is_null()
    }
}

impl Clone for Object {
    fn clone(&self) -> Self {
        Self::from_json(self.raw.clone())
    }
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Object").field(&self.raw).finish()
    }
}

impl PartialEq for Object {
    fn eq(&self, other: &Self) -> bool {
        self.value() == other.value()
    }
}

impl Serialize for Object {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Value::deserialize(d).map(Self::from_value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accessors_read_metadata_and_paths() {
        let o = Object::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment",
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

    #[test]
    fn paths_read_from_the_text_agree_with_the_whole_tree() {
        let tree = json!({"apiVersion": "v1", "kind": "K", "metadata": {"name": "n"},
            "spec": {"a/b": {"c~d": 1}, "list": [0, {"x": [null, true]}, "s\"q"],
            "0": "zero", "empty": {}, "nested": {"deep": {"er": 2.5}}}});
        let paths = [
            "spec.list.1.x.1",
            "spec.a/b",
            "spec.0",
            "spec.list.+1",
            "spec.list.01",
            "spec.missing",
            "spec.list.2",
            "spec.list.3",
            "metadata.name.x",
            "spec.nested.deep.er",
            "spec.empty",
            "..spec..0.",
            "spec.list.1.x.1",
        ];
        let pointers = [
            "/spec/a~1b/c~0d",
            "/spec/list/01",
            "/spec/list/1",
            "/spec/list/+1",
            "/spec/0",
            "spec",
            "/spec/list/2",
            "/",
            "/spec/nested/deep/er",
            "/spec/list/-",
        ];
        let whole = Object::from_value(tree.clone());
        let read = |o: &Object, pointer: bool, path: &str| {
            if pointer {
                o.pointer(path).cloned()
            } else {
                o.get(path).cloned()
            }
        };
        let mut order: Vec<(bool, &str)> = paths.iter().map(|p| (false, *p)).collect();
        order.extend(pointers.iter().map(|p| (true, *p)));
        // Each path read first from the text of a fresh object.
        for &(pointer, path) in &order {
            let text = Object::from_json(tree.to_string());
            assert_eq!(
                read(&text, pointer, path),
                read(&whole, pointer, path),
                "{path}"
            );
        }
        // All of them from one object, both ways round: the first few are
        // kept, the rest come from the whole tree, built when they ran out.
        for reversed in [false, true] {
            let text = Object::from_json(tree.to_string());
            let mut order = order.clone();
            if reversed {
                order.reverse();
            }
            for _ in 0..2 {
                for &(pointer, path) in &order {
                    assert_eq!(
                        read(&text, pointer, path),
                        read(&whole, pointer, path),
                        "{path}"
                    );
                }
            }
        }
        assert_eq!(Object::from_json(tree.to_string()).get(""), Some(&tree));
        assert_eq!(Object::from_json(tree.to_string()).pointer(""), Some(&tree));
    }
}
