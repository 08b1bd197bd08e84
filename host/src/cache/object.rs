//! The compact form in which the cache keeps one object.

use serde_json::Value;

/// One cached object: its minified JSON plus the few fields the cache looks
/// at, copied out so that lookups never parse.
///
/// The JSON is the memory budget: the rest is one more allocation holding
/// the resourceVersion, the uid and the labels, separated by NUL (which
/// none of them may contain), labels sorted by key.
#[derive(Debug, PartialEq, Eq)]
pub struct CachedObject {
    json: Box<str>,
    /// `resourceVersion \0 uid [\0 key \0 value]*`.
    meta: Box<str>,
}

const SEP: char = '\0';

/// The fields the API server writes first, in its order.
const HEAD: [&str; 3] = ["kind", "apiVersion", "metadata"];

/// An object's compact JSON with `kind`, `apiVersion` and `metadata` first,
/// as the API server writes objects (a `Value` sorts its keys, which would
/// put `data` and `spec` before them). A guest reads the head of each event
/// and can stop there, without scanning the rest.
fn server_order(value: &Value) -> String {
    // Serialising a `Value` cannot fail: its keys are strings.
    let Value::Object(map) = value else {
        return serde_json::to_string(value).unwrap_or_default();
    };
    let head = HEAD.iter().filter_map(|k| map.get_key_value(*k));
    let rest = map.iter().filter(|(k, _)| !HEAD.contains(&k.as_str()));
    let mut out = Vec::with_capacity(256);
    out.push(b'{');
    for (i, (key, field)) in head.chain(rest).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut out, key);
        out.push(b':');
        let _ = serde_json::to_writer(&mut out, field);
    }
    out.push(b'}');
    String::from_utf8(out).unwrap_or_default()
}

impl CachedObject {
    /// Build the cached form of an already stripped object.
    pub(crate) fn from_value(value: &Value) -> Self {
        let meta = value.get("metadata");
        let text = |field: &str| {
            meta.and_then(|m| m.get(field))
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        let labels = meta
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
            .map(|l| {
                l.iter()
                    .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        Self {
            json: server_order(value).into_boxed_str(),
            meta: pack(text("resourceVersion"), text("uid"), labels),
        }
    }

    /// The cached form of an object already minified and stripped, from
    /// its text and the metadata the cache looks at: no tree is built.
    pub(crate) fn from_parts(
        json: String,
        resource_version: &str,
        uid: &str,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> Self {
        Self {
            json: json.into_boxed_str(),
            meta: pack(
                resource_version,
                uid,
                labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
            ),
        }
    }

    /// The object as minified JSON.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// `metadata.resourceVersion`, empty if the object had none.
    pub fn resource_version(&self) -> &str {
        self.meta.split(SEP).next().unwrap_or("")
    }

    /// `metadata.uid`, empty if the object had none.
    pub fn uid(&self) -> &str {
        self.meta.split(SEP).nth(1).unwrap_or("")
    }

    /// The value of one label.
    pub fn label(&self, key: &str) -> Option<&str> {
        let mut parts = self.meta.split(SEP).skip(2);
        while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
            match k.cmp(key) {
                std::cmp::Ordering::Equal => return Some(v),
                // Sorted: past it, it is not there.
                std::cmp::Ordering::Greater => return None,
                std::cmp::Ordering::Less => {}
            }
        }
        None
    }

    /// Parse the object back into a JSON value.
    pub fn to_value(&self) -> Value {
        // The text was produced by serde_json from a Value, so it parses.
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }

    /// Heap bytes this object holds, for the cache's memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.json.len() + self.meta.len()
    }
}

/// The resourceVersion, uid and labels in one string; NULs inside them (which
/// Kubernetes never allows) are dropped so the fields stay apart.
fn pack(resource_version: &str, uid: &str, mut labels: Vec<(&str, &str)>) -> Box<str> {
    labels.sort_unstable();
    let len = resource_version.len()
        + uid.len()
        + 1
        + labels
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum::<usize>();
    let mut out = String::with_capacity(len);
    let fields = [resource_version, uid]
        .into_iter()
        .chain(labels.into_iter().flat_map(|(k, v)| [k, v]));
    for (i, field) in fields.enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        out.extend(field.chars().filter(|c| *c != SEP));
    }
    out.into_boxed_str()
}

/// Remove what a cache should not keep from an object, in place:
/// `metadata.managedFields` always, and optionally the
/// `kubectl.kubernetes.io/last-applied-configuration` annotation, which
/// repeats the whole object.
pub fn strip(value: &mut Value, managed_fields: bool, last_applied: bool) {
    let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if managed_fields {
        meta.remove("managedFields");
    }
    if last_applied
        && let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut)
    {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        if annotations.is_empty() {
            meta.remove("annotations");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cached_object_keeps_labels_and_versions_for_lookups() {
        let v = json!({"metadata": {"name": "a", "uid": "u", "resourceVersion": "7", "labels": {"b": "2", "a": "1", "empty": ""}}});
        let o = CachedObject::from_value(&v);
        assert_eq!(o.label("a"), Some("1"));
        assert_eq!(o.label("b"), Some("2"));
        assert_eq!(o.label("empty"), Some(""));
        assert_eq!(o.label("c"), None);
        assert_eq!(o.label("0"), None);
        assert_eq!(o.resource_version(), "7");
        assert_eq!(o.uid(), "u");
        assert_eq!(o.to_value(), v);
    }

    #[test]
    fn the_json_has_the_head_first_as_the_api_server_writes_it() {
        let v = json!({"status": {}, "data": {"k": "v\"x"}, "metadata": {"name": "a"}, "kind": "ConfigMap", "apiVersion": "v1"});
        let o = CachedObject::from_value(&v);
        assert_eq!(
            o.json(),
            r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a"},"data":{"k":"v\"x"},"status":{}}"#
        );
        assert_eq!(o.to_value(), v);
        assert_eq!(CachedObject::from_value(&json!([1])).json(), "[1]");
        assert_eq!(CachedObject::from_value(&json!({})).json(), "{}");
    }

    #[test]
    fn strip_removes_managed_fields_and_last_applied() {
        let mut v = json!({"metadata": {"name": "a", "managedFields": [{}],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}}});
        strip(&mut v, true, true);
        assert_eq!(v, json!({"metadata": {"name": "a"}}));
    }
}
