//! The objects informers read, kept as text. kube's watcher decodes each
//! listed or watched object into this type: the object's JSON as the server
//! sent it, rewritten once without `metadata.managedFields` (and the
//! `last-applied-configuration` annotation, which repeats the whole object),
//! plus the few metadata fields the watcher and the cache need. No tree of
//! the object is ever built: a `DynamicObject` would decode every field
//! (managedFields included) into one, and the cache would encode it again.

use std::{borrow::Cow, collections::BTreeMap, fmt::Write as _};

use kube::{
    Resource,
    api::{ApiResource, ObjectMeta},
    core::DynamicResourceScope,
};
use serde::{Deserialize, Deserializer, de::Error as _};

use crate::cache::{RawParts, Text, push_key};

/// The annotation `kubectl apply` writes: the whole object again.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// One object, as text.
#[derive(Debug, Clone)]
pub struct RawObject {
    /// Name, namespace, resourceVersion, uid and labels; nothing else.
    pub metadata: ObjectMeta,
    /// The compact JSON, without managedFields and last-applied.
    pub json: String,
    /// Whether the object named its apiVersion and kind (list items do not).
    typed: bool,
}

impl RawObject {
    /// The metadata, and the JSON with `apiVersion` and `kind` added from
    /// `resource` if the server left them out (items of a list).
    pub fn into_parts(self, resource: &ApiResource) -> (ObjectMeta, String) {
        if self.typed {
            return (self.metadata, self.json);
        }
        let mut out = String::with_capacity(self.json.len() + 64);
        let _ = write!(
            out,
            r#"{{"apiVersion":{},"kind":{}"#,
            quote(&resource.api_version),
            quote(&resource.kind)
        );
        let rest = &self.json[1..];
        if rest != "}" {
            out.push(',');
        }
        out.push_str(rest);
        (self.metadata, out)
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

impl Resource for RawObject {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The name under which serde_json hands a value's raw text to a visitor
/// (`serde_json::value::RawValue` asks for it this way).
const RAW_TOKEN: &str = "$serde_json::private::RawValue";

impl<'de> Deserialize<'de> for RawObject {
    /// One pass over the object: each member's text (borrowed from the line
    /// being decoded) is written out as it is read, `metadata` rewritten on
    /// the way; no member is kept aside and no text is scanned twice.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawObject;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a Kubernetes object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<RawObject, A::Error> {
                SCRATCH.with_borrow_mut(|json| {
                    json.clear();
                    let (metadata, typed) = write_object(map, json)?;
                    // Copied into an allocation of exactly its size, which
                    // the cache keeps.
                    let object = RawObject {
                        metadata,
                        json: json.as_str().to_owned(),
                        typed,
                    };
                    if json.capacity() > SCRATCH_KEPT {
                        *json = String::new();
                    }
                    Ok(object)
                })
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// The most the scratch string keeps between objects: a rare huge object
/// does not pin its size on the thread.
const SCRATCH_KEPT: usize = 64 << 10;

thread_local! {
    /// Where the object being decoded is written: it grows once per thread
    /// to the largest object, instead of once or twice per object.
    static SCRATCH: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Write the object's members into `json`, without what the cache drops;
/// returns its metadata and whether it named its apiVersion and kind.
fn write_object<'de, A: serde::de::MapAccess<'de>>(
    mut map: A,
    json: &mut String,
) -> Result<(ObjectMeta, bool), A::Error> {
    let mut metadata = ObjectMeta::default();
    let mut typed = (false, false);
    json.push('{');
    let mut first = true;
    while let Some(Text(key)) = map.next_key()? {
        if !std::mem::take(&mut first) {
            json.push(',');
        }
        push_key(json, &key);
        match key.as_ref() {
            "metadata" => {
                metadata = map.next_value_seed(Metadata(json))?;
                continue;
            }
            "apiVersion" => typed.0 = true,
            "kind" => typed.1 = true,
            _ => {}
        }
        let RawText(value) = map.next_value()?;
        json.push_str(&value);
    }
    json.push('}');
    Ok((metadata, typed.0 && typed.1))
}

/// One value's JSON text: borrowed as written when serde_json reads the
/// text (its raw-value mode); written again from a decoded tree when serde
/// had buffered it (a watch event whose `object` came before its `type`).
struct RawText<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for RawText<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawText<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }

            /// serde_json, reading the text: the value's raw JSON, as is.
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawText<'de>, A::Error> {
                let _token: Option<serde::de::IgnoredAny> = map.next_key()?;
                let Text(text) = map.next_value()?;
                Ok(RawText(text))
            }

            /// Anything else: decode a tree, then write it.
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<RawText<'de>, D::Error> {
                let value = serde_json::Value::deserialize(d)?;
                Ok(RawText(Cow::Owned(value.to_string())))
            }
        }
        deserializer.deserialize_newtype_struct(RAW_TOKEN, Visitor)
    }
}

/// Reads an object's `metadata`, writing it into the string it holds
/// without `managedFields` (skipped as it is read) and last-applied, and
/// keeps the fields the host needs.
struct Metadata<'a>(&'a mut String);

impl<'de> serde::de::DeserializeSeed<'de> for Metadata<'_> {
    type Value = ObjectMeta;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ObjectMeta, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Metadata<'_> {
    type Value = ObjectMeta;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object's metadata")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ObjectMeta, A::Error> {
        let json = self.0;
        let mut meta = ObjectMeta::default();
        let string = |v: &str| serde_json::from_str::<String>(v).ok();
        json.push('{');
        let mut first = true;
        while let Some(Text(key)) = map.next_key()? {
            if key == "managedFields" {
                map.next_value::<serde::de::IgnoredAny>()?;
                continue;
            }
            let RawText(value) = map.next_value()?;
            match key.as_ref() {
                "name" => meta.name = string(&value),
                "namespace" => meta.namespace = string(&value),
                "resourceVersion" => meta.resource_version = string(&value),
                "uid" => meta.uid = string(&value),
                "labels" => meta.labels = serde_json::from_str(&value).map_err(A::Error::custom)?,
                "annotations" => {
                    let annotations = crate::cache::members(&value).map_err(A::Error::custom)?;
                    if annotations.iter().any(|(k, _)| k == LAST_APPLIED) {
                        let mut kept = annotations
                            .iter()
                            .filter(|(k, _)| k != LAST_APPLIED)
                            .peekable();
                        if kept.peek().is_none() {
                            continue;
                        }
                        if !std::mem::take(&mut first) {
                            json.push(',');
                        }
                        json.push_str("\"annotations\":{");
                        for (i, (k, v)) in kept.enumerate() {
                            if i > 0 {
                                json.push(',');
                            }
                            push_key(json, k);
                            json.push_str(v.get());
                        }
                        json.push('}');
                        continue;
                    }
                }
                _ => {}
            }
            if !std::mem::take(&mut first) {
                json.push(',');
            }
            push_key(json, &key);
            json.push_str(&value);
        }
        json.push('}');
        Ok(meta)
    }
}

/// What the cache takes of an object read as text.
pub fn parts<'a>(meta: &'a ObjectMeta, json: String) -> RawParts<'a> {
    static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();
    RawParts {
        json,
        namespace: meta.namespace.as_deref(),
        name: meta.name.as_deref().unwrap_or(""),
        resource_version: meta.resource_version.as_deref().unwrap_or(""),
        uid: meta.uid.as_deref().unwrap_or(""),
        labels: meta.labels.as_ref().unwrap_or(&NO_LABELS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn resource() -> ApiResource {
        ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
        }
    }

    #[test]
    fn an_object_keeps_everything_but_managed_fields_and_last_applied() {
        let text = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "n", "resourceVersion": "7", "uid": "u",
                         "labels": {"app": "web"},
                         "annotations": {"keep": "me", "kubectl.kubernetes.io/last-applied-configuration": "{...}"},
                         "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:data": {}}}]},
            "data": {"k": "v \"quoted\" é"}
        })
        .to_string();
        let raw: RawObject = serde_json::from_str(&text).unwrap();
        assert_eq!(raw.metadata.name.as_deref(), Some("a"));
        assert_eq!(raw.metadata.namespace.as_deref(), Some("n"));
        assert_eq!(raw.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(raw.metadata.uid.as_deref(), Some("u"));
        assert_eq!(raw.metadata.labels.as_ref().unwrap()["app"], "web");
        let value: Value = serde_json::from_str(&raw.into_parts(&resource()).1).unwrap();
        assert_eq!(
            value,
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "a", "namespace": "n", "resourceVersion": "7", "uid": "u",
                             "labels": {"app": "web"}, "annotations": {"keep": "me"}},
                "data": {"k": "v \"quoted\" é"}
            })
        );
    }

    #[test]
    fn keys_and_values_with_escapes_keep_their_meaning() {
        // A key with escapes cannot be borrowed from the text: it is
        // decoded, and written escaped again; values keep their text.
        let text = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","labels":{"a\"b":"c\u00e9"},"managedFields":[]},"da\u0074a":{"k\n":"v\"w"}}"#;
        let raw: RawObject = serde_json::from_str(text).unwrap();
        assert_eq!(raw.metadata.labels.as_ref().unwrap()["a\"b"], "cé");
        let value: Value = serde_json::from_str(&raw.into_parts(&resource()).1).unwrap();
        assert_eq!(
            value,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "a", "labels": {"a\"b": "cé"}},
                   "data": {"k\n": "v\"w"}})
        );
    }

    #[test]
    fn a_list_item_gets_its_api_version_and_kind() {
        let text = r#"{"metadata":{"name":"a","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"x"}},"data":{}}"#;
        let raw: RawObject = serde_json::from_str(text).unwrap();
        let value: Value = serde_json::from_str(&raw.into_parts(&resource()).1).unwrap();
        assert_eq!(
            value,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {}})
        );
    }

    #[test]
    fn a_watch_event_decodes_into_it_whatever_the_order_of_its_fields() {
        let object = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"9","managedFields":[{}]},"data":{"k":"v"}}"#;
        // As the API server writes it, and with `object` first, which makes
        // serde buffer it before it knows the type.
        for line in [
            format!(r#"{{"type":"ADDED","object":{object}}}"#),
            format!(r#"{{"object":{object},"type":"ADDED"}}"#),
        ] {
            let event: kube::core::WatchEvent<RawObject> = serde_json::from_str(&line).unwrap();
            let kube::core::WatchEvent::Added(raw) = event else {
                panic!("an Added event");
            };
            assert_eq!(raw.metadata.resource_version.as_deref(), Some("9"));
            let value: Value = serde_json::from_str(&raw.into_parts(&resource()).1).unwrap();
            assert_eq!(value["data"], json!({"k": "v"}), "{line}");
            assert!(value["metadata"].get("managedFields").is_none());
        }
    }
}
