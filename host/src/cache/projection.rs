//! Field projections: what the cache keeps of each object of a kind when
//! every reader of the kind declared the fields it reads.
//!
//! A plugin may declare, per subscription, the fields it reads (index-style
//! paths: `metadata.labels`, `spec.nodeName`, `spec.containers[*].image`).
//! The cache keeps, per kind, the union of what every reader of the kind
//! declared and what the kind's indexes look at, plus the metadata the host
//! itself needs ([`HOST_FIELDS`]). One reader that declares nothing (or the
//! host's own watches, which never do) keeps whole objects, as without
//! projections. A projected object says so: its
//! `metadata.annotations["informant.dev/projection"]` lists the declared
//! fields the kind keeps.
//!
//! Projecting works on the object's text, like the informer's reader: the
//! members kept are copied as written, nothing is decoded into a tree.

use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
};

use serde_json::value::RawValue;

use super::path::{FieldPath, Step};

/// The annotation a projected object carries: the declared fields its kind
/// keeps, comma-separated, sorted.
pub const ANNOTATION: &str = "informant.dev/projection";

/// What the host keeps of every object whatever is declared: what keys,
/// selects, shards and versions it.
pub const HOST_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "metadata.resourceVersion",
    "metadata.labels",
    "metadata.ownerReferences",
];

/// What a reader needs of a kind's objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Need {
    /// Whole objects: the reader declared nothing.
    #[default]
    Whole,
    /// Only these fields (paths as declared, each parsed by [`FieldPath`]).
    Fields(BTreeSet<String>),
}

impl Need {
    /// The need of a reader that declared `paths`; none declared is whole.
    pub fn of<S: Into<String>>(paths: impl IntoIterator<Item = S>) -> Self {
        let fields: BTreeSet<String> = paths.into_iter().map(Into::into).collect();
        if fields.is_empty() {
            Self::Whole
        } else {
            Self::Fields(fields)
        }
    }

    /// What two readers need together.
    #[must_use]
    pub fn union(self, other: &Self) -> Self {
        match (self, other) {
            (Self::Fields(mut a), Self::Fields(b)) => {
                a.extend(b.iter().cloned());
                Self::Fields(a)
            }
            _ => Self::Whole,
        }
    }

    /// Whether what this keeps includes everything `other` needs.
    pub fn covers(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Whole, _) => true,
            (Self::Fields(_), Self::Whole) => false,
            (Self::Fields(mine), Self::Fields(theirs)) => {
                theirs.iter().all(|t| mine.iter().any(|m| is_within(t, m)))
            }
        }
    }
}

/// Whether path `inner` lies within path `outer` (or is it).
fn is_within(inner: &str, outer: &str) -> bool {
    inner
        .strip_prefix(outer)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

impl std::fmt::Display for Need {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Whole => f.write_str("whole objects"),
            Self::Fields(fields) => {
                let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
                f.write_str(&fields.join(","))
            }
        }
    }
}

/// What to keep of one value.
#[derive(Debug, Default)]
struct Node {
    /// All of it.
    all: bool,
    /// Of an object, these members (with what to keep of each).
    fields: BTreeMap<String, Node>,
    /// Of a list, what to keep of each element (and of an object, of each
    /// member not named in `fields`: `[*]` on an object takes every value).
    items: Option<Box<Node>>,
}

/// Keeps all of a value.
static ALL: Node = Node {
    all: true,
    fields: BTreeMap::new(),
    items: None,
};

impl Node {
    /// What to keep of the member `key` of an object this keeps part of.
    fn child(&self, key: &str) -> Option<&Node> {
        if self.all {
            return Some(&ALL);
        }
        self.fields.get(key).or(self.items.as_deref())
    }

    fn add(&mut self, steps: &[Step]) {
        if self.all {
            return;
        }
        let Some((first, rest)) = steps.split_first() else {
            *self = Self {
                all: true,
                ..Self::default()
            };
            return;
        };
        match first {
            Step::Field(name) => self.fields.entry(name.clone()).or_default().add(rest),
            // One element is kept as every element is: the cache keeps a
            // list's shape.
            Step::Element(_) | Step::Every => self.items.get_or_insert_default().add(rest),
        }
    }
}

/// A kind's projection, ready to apply.
#[derive(Debug)]
pub struct Projection {
    need: Need,
    root: Node,
    /// The annotation's value, as a JSON string.
    marker: String,
}

impl Projection {
    /// The projection that keeps what `need` asks for, or none if it asks
    /// for whole objects. Paths that do not parse (the manifest refused
    /// them already) are skipped.
    pub fn new(need: &Need) -> Option<Self> {
        Self::keeping(need, HOST_FIELDS)
    }

    /// What a reader of `need` sees of an object that can change: what
    /// [`Self::new`] keeps but the resourceVersion, which changes with
    /// every write. None for a reader of whole objects.
    pub fn visible(need: &Need) -> Option<Self> {
        let host = HOST_FIELDS
            .iter()
            .copied()
            .filter(|f| *f != "metadata.resourceVersion")
            .collect::<Vec<_>>();
        Self::keeping(need, &host)
    }

    /// Whether what this projection keeps of `old` and of `new` differs (or
    /// either is not a JSON object).
    pub fn differs(&self, old: &str, new: &str) -> bool {
        let project = |json: &str| {
            let mut out = String::with_capacity(json.len().min(4096));
            self.write_object(json, &mut out).ok().map(|()| out)
        };
        match (project(old), project(new)) {
            (Some(old), Some(new)) => old != new,
            _ => true,
        }
    }

    fn keeping(need: &Need, host: &[&str]) -> Option<Self> {
        let Need::Fields(fields) = need else {
            return None;
        };
        let mut root = Node::default();
        let paths = fields
            .iter()
            .map(String::as_str)
            .chain(host.iter().copied());
        for path in paths {
            if let Ok(path) = FieldPath::parse(path) {
                root.add(path.steps());
            }
        }
        let listed = fields
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(",");
        Some(Self {
            need: need.clone(),
            root,
            marker: serde_json::to_string(&listed).unwrap_or_else(|_| "\"\"".into()),
        })
    }

    /// What this projection keeps.
    pub fn need(&self) -> &Need {
        &self.need
    }

    /// Keep of the object `json` only the projected fields, and mark it.
    /// Text that is not a JSON object is returned as it is.
    pub fn apply(&self, json: String) -> String {
        let mut out = String::with_capacity(json.len().min(4096));
        match self.write_object(&json, &mut out) {
            Ok(()) => out,
            Err(_) => json,
        }
    }

    fn write_object(&self, json: &str, out: &mut String) -> Result<(), serde_json::Error> {
        out.push('{');
        let mut first = true;
        for (key, value) in members(json)? {
            let Some(node) = self.root.fields.get(key.as_ref()) else {
                continue;
            };
            separate(out, &mut first);
            push_key(out, &key);
            if key == "metadata" {
                self.write_metadata(node, value.get(), out)?;
            } else {
                write(node, value, out)?;
            }
        }
        out.push('}');
        Ok(())
    }

    /// `metadata` as `node` keeps it, its annotations with the marker.
    fn write_metadata(
        &self,
        node: &Node,
        text: &str,
        out: &mut String,
    ) -> Result<(), serde_json::Error> {
        out.push('{');
        let mut first = true;
        let mut annotations = Vec::new();
        for (key, value) in members(text)? {
            if key == "annotations" {
                if let Some(kept) = node.child("annotations") {
                    for (k, v) in members(value.get())? {
                        if kept.all || kept.fields.contains_key(k.as_ref()) || kept.items.is_some()
                        {
                            annotations.push((k, v));
                        }
                    }
                }
                continue;
            }
            let Some(child) = node.child(&key) else {
                continue;
            };
            separate(out, &mut first);
            push_key(out, &key);
            write(child, value, out)?;
        }
        separate(out, &mut first);
        out.push_str("\"annotations\":{");
        for (k, v) in annotations.iter().filter(|(k, _)| k != ANNOTATION) {
            push_key(out, k);
            out.push_str(v.get());
            out.push(',');
        }
        push_key(out, ANNOTATION);
        out.push_str(&self.marker);
        out.push_str("}}");
        Ok(())
    }
}

/// Write what `node` keeps of `value`.
fn write(node: &Node, value: &RawValue, out: &mut String) -> Result<(), serde_json::Error> {
    let text = value.get();
    if node.all {
        out.push_str(text);
        return Ok(());
    }
    match text.as_bytes().first() {
        Some(b'{') if !node.fields.is_empty() || node.items.is_some() => {
            out.push('{');
            let mut first = true;
            for (key, value) in members(text)? {
                let Some(child) = node.child(&key) else {
                    continue;
                };
                separate(out, &mut first);
                push_key(out, &key);
                write(child, value, out)?;
            }
            out.push('}');
        }
        Some(b'[') if node.items.is_some() => {
            let items: Vec<&RawValue> = serde_json::from_str(text)?;
            let child = node.items.as_deref().unwrap_or(node);
            out.push('[');
            for (i, item) in items.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(child, item, out)?;
            }
            out.push(']');
        }
        // A scalar, or a shape the paths did not expect (a list where they
        // name fields): kept whole, never less than asked for.
        _ => out.push_str(text),
    }
    Ok(())
}

fn separate(out: &mut String, first: &mut bool) {
    if !std::mem::take(first) {
        out.push(',');
    }
}

/// Write `"key":`, escaping only a key that needs it (Kubernetes' keys
/// almost never do): no allocation per member on the common path. What
/// JSON escapes is ASCII, so the check looks at bytes, not characters.
pub(crate) fn push_key(out: &mut String, key: &str) {
    if key.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        let _ = write!(out, "{}:", serde_json::to_string(key).unwrap_or_default());
    } else {
        out.push('"');
        out.push_str(key);
        out.push_str("\":");
    }
}

/// A string borrowed from the text when it can be (it has no escapes), as
/// an object's keys nearly always are; serde's own `Cow<str>` always copies.
pub(crate) struct Text<'de>(pub(crate) Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Text<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// The members of one JSON object, as written, borrowed from the text.
pub(crate) type Members<'a> = Vec<(Cow<'a, str>, &'a RawValue)>;

/// Read the members of the JSON object `text` without decoding their values.
///
/// # Errors
/// If `text` is not a JSON object.
pub(crate) fn members(text: &str) -> Result<Members<'_>, serde_json::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Members<'de>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
            while let Some(Text(key)) = map.next_key()? {
                out.push((key, map.next_value::<&'de RawValue>()?));
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    serde::Deserializer::deserialize_map(&mut de, Visitor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn project(fields: &[&str], object: &Value) -> Value {
        let projection = Projection::new(&Need::of(fields.iter().copied())).unwrap();
        serde_json::from_str(&projection.apply(object.to_string())).unwrap()
    }

    fn pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u", "resourceVersion": "7",
                         "generation": 2, "labels": {"app": "web"},
                         "annotations": {"note": "hi", "other": "x"},
                         "ownerReferences": [{"uid": "o", "kind": "ReplicaSet", "controller": true}]},
            "spec": {"nodeName": "n1",
                     "containers": [{"name": "a", "image": "i:1", "args": ["big"]},
                                    {"name": "b", "image": "i:2"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready"}]}
        })
    }

    #[test]
    fn labels_only_keeps_what_the_host_needs_and_says_so() {
        assert_eq!(
            project(&["metadata.labels"], &pod()),
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "web", "namespace": "shop", "uid": "u", "resourceVersion": "7",
                             "labels": {"app": "web"},
                             "ownerReferences": [{"uid": "o", "kind": "ReplicaSet", "controller": true}],
                             "annotations": {"informant.dev/projection": "metadata.labels"}}
            })
        );
    }

    #[test]
    fn paths_reach_into_objects_and_every_element_of_lists() {
        let projected = project(
            &[
                "spec.nodeName",
                "spec.containers[*].image",
                "metadata.annotations.note",
            ],
            &pod(),
        );
        assert_eq!(
            projected["spec"],
            json!({"nodeName": "n1", "containers": [{"image": "i:1"}, {"image": "i:2"}]})
        );
        assert!(projected.get("status").is_none());
        assert_eq!(
            projected["metadata"]["annotations"],
            json!({"note": "hi", "informant.dev/projection": "metadata.annotations.note,spec.containers[*].image,spec.nodeName"})
        );
        // A path that names fields where the object has a list keeps the list.
        assert_eq!(
            project(&["spec.containers.image"], &pod())["spec"]["containers"],
            pod()["spec"]["containers"]
        );
        // A path to a field that is not there keeps nothing of it.
        assert!(project(&["spec.missing.deeper"], &pod())["spec"] == json!({}));
    }

    #[test]
    fn a_whole_need_has_no_projection_and_needs_combine() {
        assert!(Projection::new(&Need::Whole).is_none());
        assert_eq!(Need::of(Vec::<String>::new()), Need::Whole);
        let labels = Need::of(["metadata.labels"]);
        let node = Need::of(["spec.nodeName"]);
        assert_eq!(
            labels.clone().union(&node),
            Need::of(["metadata.labels", "spec.nodeName"])
        );
        assert_eq!(labels.clone().union(&Need::Whole), Need::Whole);
        assert!(Need::Whole.covers(&labels));
        assert!(!labels.covers(&Need::Whole));
        assert!(!labels.covers(&node));
        assert!(labels.covers(&Need::of([
            "metadata.labels.app",
            "metadata.labels[\"a.b\"]"
        ])));
        assert!(!labels.covers(&Need::of(["metadata.labelsX"])));
    }

    #[test]
    fn keys_that_need_escaping_are_escaped() {
        let object =
            json!({"metadata": {"name": "a", "labels": {"q\"uote": "1", "back\\slash": "2"}}});
        assert_eq!(
            project(&["metadata.labels"], &object)["metadata"]["labels"],
            object["metadata"]["labels"]
        );
    }

    #[test]
    fn a_change_is_visible_only_in_what_the_reader_is_handed() {
        let node = Projection::visible(&Need::of(["spec.nodeName"])).unwrap();
        let text = |v: &Value| v.to_string();
        let mut next = pod();
        next["metadata"]["resourceVersion"] = json!("8");
        next["status"]["phase"] = json!("Succeeded");
        next["metadata"]["annotations"]["note"] = json!("bye");
        assert!(
            !node.differs(&text(&pod()), &text(&next)),
            "only unseen fields"
        );
        next["spec"]["nodeName"] = json!("n2");
        assert!(
            node.differs(&text(&pod()), &text(&next)),
            "a declared field"
        );
        let mut relabelled = pod();
        relabelled["metadata"]["labels"]["tier"] = json!("front");
        assert!(
            node.differs(&text(&pod()), &text(&relabelled)),
            "the labels every reader is handed"
        );
        // A cached copy kept whole and its projected successor compare by
        // what the reader sees.
        let projected = Projection::new(&Need::of(["spec.nodeName"]))
            .unwrap()
            .apply(text(&pod()));
        assert!(!node.differs(&text(&pod()), &projected));
        assert!(node.differs("[1]", &projected));
        assert!(Projection::visible(&Need::Whole).is_none());
    }

    #[test]
    fn text_that_is_not_an_object_is_kept() {
        let projection = Projection::new(&Need::of(["spec"])).unwrap();
        assert_eq!(projection.apply("[1,2]".into()), "[1,2]");
    }

    #[test]
    fn a_key_is_written_as_serde_json_writes_it() {
        for key in [
            "app",
            "a\"b",
            "back\\slash",
            "new\nline",
            "\u{1}",
            "\u{7f}",
            "\u{85}",
            "é",
            "",
        ] {
            let mut out = String::new();
            push_key(&mut out, key);
            assert_eq!(
                out,
                format!("{}:", serde_json::to_string(key).unwrap()),
                "{key:?}"
            );
        }
    }
}
