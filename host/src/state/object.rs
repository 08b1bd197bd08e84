//! The durable tier's objects: one `PluginState` (`informant.dev/v1alpha1`,
//! deploy/base/crd-pluginstate.yaml) per shard of a plugin's store, in the
//! host's namespace, owned by the host. What they look like, and the pure
//! translation between them and a shard's entries.
//!
//! ```yaml
//! apiVersion: informant.dev/v1alpha1
//! kind: PluginState
//! metadata:
//!   name: restarter-state-003
//!   labels: {informant.dev/plugin: restarter}
//! spec:
//!   plugin: restarter
//!   shard: 3
//!   shards: 16
//!   entries:
//!     budget/shop/web: {value: "2", version: "48213", expiresAt: "2026-12-01T20:14:03.220Z"}
//!     blob: {valueBase64: "AAEC", version: "48190"}
//! ```
//!
//! A value that is UTF-8 text is kept as `value`, readable with kubectl;
//! any other bytes as `valueBase64`. An entry's `version` is the
//! resourceVersion the write that last changed it was made against.

use std::{collections::BTreeMap, sync::Arc};

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::store::{Entry, Version};

/// The objects' API group and version.
pub const API_VERSION: &str = "informant.dev/v1alpha1";
/// The objects' kind.
pub const KIND: &str = "PluginState";
/// The objects' resource.
pub const PLURAL: &str = "pluginstates";
/// The label naming the plugin an object belongs to.
pub const PLUGIN_LABEL: &str = "informant.dev/plugin";
/// The field manager of the host's writes.
pub const FIELD_MANAGER: &str = "informant";

/// The kube-rs description of the resource.
pub fn api_resource() -> kube::core::ApiResource {
    kube::core::ApiResource {
        group: "informant.dev".into(),
        version: "v1alpha1".into(),
        api_version: API_VERSION.into(),
        kind: KIND.into(),
        plural: PLURAL.into(),
    }
}

/// The name of shard `shard` of `plugin`'s store.
pub fn name(plugin: &str, shard: usize) -> String {
    format!("{plugin}-state-{shard:03}")
}

/// The shard that holds `key` in a store of `shards` shards.
pub fn shard_of_key(key: &str, shards: usize) -> usize {
    super::store::shard_of(key, shards)
}

/// One object, read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decoded {
    pub(crate) plugin: String,
    pub(crate) shard: usize,
    pub(crate) shards: usize,
    pub(crate) resource_version: String,
    pub(crate) uid: String,
    pub(crate) entries: BTreeMap<String, Entry>,
}

/// Read an object as the API server serves it.
///
/// # Errors
/// What is missing or malformed, for the log: an object someone edited by
/// hand into a shape the host does not know.
pub(crate) fn decode(object: &Value) -> Result<Decoded, String> {
    let meta = object.get("metadata").ok_or("no metadata")?;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    let resource_version = text(meta.get("resourceVersion"));
    let uid = text(meta.get("uid"));
    let spec = object.get("spec").ok_or("no spec")?;
    let number = |field: &str| {
        spec.get(field)
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| format!("spec.{field} is not a number"))
    };
    let (shard, shards) = (number("shard")?, number("shards")?);
    if shards == 0 || shard >= shards {
        return Err(format!(
            "spec.shard {shard} is not below spec.shards {shards}"
        ));
    }
    let mut entries = BTreeMap::new();
    if let Some(map) = spec.get("entries").and_then(Value::as_object) {
        for (key, e) in map {
            entries.insert(key.clone(), entry(key, e, &resource_version)?);
        }
    }
    Ok(Decoded {
        plugin: text(spec.get("plugin")),
        shard,
        shards,
        resource_version,
        uid,
        entries,
    })
}

fn entry(key: &str, e: &Value, resource_version: &str) -> Result<Entry, String> {
    let value: Arc<[u8]> = match (e.get("value"), e.get("valueBase64")) {
        (Some(Value::String(s)), _) => s.as_bytes().into(),
        (_, Some(Value::String(b))) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|err| format!("entries[{key:?}].valueBase64: {err}"))?
            .into(),
        _ => {
            return Err(format!(
                "entries[{key:?}] has neither value nor valueBase64"
            ));
        }
    };
    // An entry written by hand without a version gets the object's.
    let version = e
        .get("version")
        .and_then(Value::as_str)
        .unwrap_or(resource_version);
    let expires_at = match e.get("expiresAt").and_then(Value::as_str) {
        None => None,
        Some(at) => Some(
            at.parse::<jiff::Timestamp>()
                .map_err(|err| format!("entries[{key:?}].expiresAt: {err}"))?
                .as_millisecond()
                .max(0)
                .unsigned_abs(),
        ),
    };
    Ok(Entry {
        value,
        version: Version::Rv(version.into()),
        expires_at,
    })
}

/// An entry as the object keeps it. In a merge patch the fields it does
/// not have are `null`, so that they are removed from what was there.
pub(crate) fn encode(value: &[u8], version: &str, expires_at: Option<u64>, patch: bool) -> Value {
    let mut e = Map::new();
    let mut set = |field: &str, v: Option<Value>| match v {
        Some(v) => {
            e.insert(field.into(), v);
        }
        None if patch => {
            e.insert(field.into(), Value::Null);
        }
        None => {}
    };
    match std::str::from_utf8(value) {
        Ok(text) => {
            set("value", Some(text.into()));
            set("valueBase64", None);
        }
        Err(_) => {
            set("value", None);
            set(
                "valueBase64",
                Some(
                    base64::engine::general_purpose::STANDARD
                        .encode(value)
                        .into(),
                ),
            );
        }
    }
    set("version", Some(version.into()));
    set(
        "expiresAt",
        expires_at.map(|ms| {
            jiff::Timestamp::from_millisecond(i64::try_from(ms).unwrap_or(i64::MAX))
                .map_or_else(|_| Value::Null, |t| t.to_string().into())
        }),
    );
    Value::Object(e)
}

/// A new object for shard `shard` of `shards`, holding `entries` (key,
/// encoded entry).
pub(crate) fn new_object(
    plugin: &str,
    namespace: &str,
    shard: usize,
    shards: usize,
    entries: Map<String, Value>,
) -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name(plugin, shard),
            "namespace": namespace,
            "labels": {
                PLUGIN_LABEL: plugin,
                "app.kubernetes.io/managed-by": "informant",
            },
        },
        "spec": {"plugin": plugin, "shard": shard, "shards": shards, "entries": entries},
    })
}

/// A merge patch of an object's entries (`null` removes one), made only if
/// the object is still at `resource_version`: the API server refuses it
/// with 409 Conflict otherwise.
pub(crate) fn patch(resource_version: &str, entries: Map<String, Value>) -> Value {
    json!({
        "metadata": {"resourceVersion": resource_version},
        "spec": {"entries": entries},
    })
}

/// About how many bytes an object takes in the API server's storage for an
/// entry: the key twice (in the entries, and in the field manager's
/// record), the value (a third more if it is not text), and the rest.
pub(crate) fn entry_size(key_len: usize, value: &[u8]) -> u64 {
    let value = if std::str::from_utf8(value).is_ok() {
        value.len()
    } else {
        value.len().div_ceil(3) * 4
    };
    (2 * key_len + value + 160) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_an_object() {
        let mut entries = Map::new();
        entries.insert(
            "text".into(),
            encode(b"2", "41", Some(1_767_225_600_000), false),
        );
        entries.insert("bytes".into(), encode(&[0, 1, 2, 255], "40", None, false));
        let mut object = new_object("restarter", "informant-system", 3, 16, entries);
        object["metadata"]["resourceVersion"] = "42".into();
        object["metadata"]["uid"] = "u-1".into();
        assert_eq!(object["metadata"]["name"], "restarter-state-003");
        assert_eq!(object["spec"]["entries"]["text"]["value"], "2");
        assert_eq!(
            object["spec"]["entries"]["text"]["expiresAt"],
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(
            object["spec"]["entries"]["bytes"]["valueBase64"],
            "AAEC/w=="
        );
        let decoded = decode(&object).unwrap();
        assert_eq!((decoded.shard, decoded.shards), (3, 16));
        assert_eq!(decoded.resource_version, "42");
        assert_eq!(decoded.plugin, "restarter");
        let text = &decoded.entries["text"];
        assert_eq!(&*text.value, b"2");
        assert_eq!(text.version, Version::Rv("41".into()));
        assert_eq!(text.expires_at, Some(1_767_225_600_000));
        assert_eq!(&*decoded.entries["bytes"].value, &[0, 1, 2, 255]);
    }

    #[test]
    fn a_patch_removes_the_fields_an_entry_no_longer_has() {
        let e = encode(b"x", "7", None, true);
        assert_eq!(
            e,
            json!({"value": "x", "valueBase64": null, "version": "7", "expiresAt": null})
        );
        let mut entries = Map::new();
        entries.insert("gone".into(), Value::Null);
        let p = patch("7", entries);
        assert_eq!(p["metadata"]["resourceVersion"], "7");
        assert_eq!(p["spec"]["entries"]["gone"], Value::Null);
    }

    #[test]
    fn hand_edited_objects_are_read_or_refused_with_the_reason() {
        let object = json!({"metadata": {"resourceVersion": "9"}, "spec": {"plugin": "p", "shard": 0, "shards": 1,
            "entries": {"k": {"value": "v"}}}});
        assert_eq!(
            decode(&object).unwrap().entries["k"].version,
            Version::Rv("9".into())
        );
        let bad = json!({"metadata": {}, "spec": {"plugin": "p", "shard": 2, "shards": 1}});
        assert!(decode(&bad).unwrap_err().contains("spec.shard 2"));
        let bad = json!({"metadata": {}, "spec": {"plugin": "p", "shard": 0, "shards": 1, "entries": {"k": {}}}});
        assert!(
            decode(&bad)
                .unwrap_err()
                .contains("neither value nor valueBase64")
        );
    }
}
