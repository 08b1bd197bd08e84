//! Patches: JSON merge patch, JSON patch, strategic merge patch (as merge
//! patch), and server-side apply with field ownership.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

/// A field path: the keys from the object's root to a leaf.
pub type FieldPath = Vec<String>;

/// Metadata fields that no manager owns.
const UNOWNED_META: [&str; 9] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "selfLink",
];

/// Every leaf path of an object that a manager can own. Lists are atomic.
pub fn leaf_paths(object: &Value) -> BTreeSet<FieldPath> {
    let mut out = BTreeSet::new();
    if let Some(map) = object.as_object() {
        for (k, v) in map {
            if k == "apiVersion" || k == "kind" {
                continue;
            }
            if k == "metadata" {
                if let Some(meta) = v.as_object() {
                    for (mk, mv) in meta {
                        if !UNOWNED_META.contains(&mk.as_str()) {
                            collect(mv, vec!["metadata".into(), mk.clone()], &mut out);
                        }
                    }
                }
                continue;
            }
            collect(v, vec![k.clone()], &mut out);
        }
    }
    out
}

fn collect(v: &Value, path: FieldPath, out: &mut BTreeSet<FieldPath>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, x) in map {
                let mut p = path.clone();
                p.push(k.clone());
                collect(x, p, out);
            }
        }
        _ => {
            out.insert(path);
        }
    }
}

/// The value at a path.
pub fn value_at<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(object, |v, k| v.get(k))
}

fn remove_at(object: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = object;
    for k in parents {
        match cur.get_mut(k) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(map) = cur.as_object_mut() {
        map.remove(last);
    }
}

/// Render paths as the `fieldsV1` tree Kubernetes stores in managedFields.
pub fn fields_v1(paths: &BTreeSet<FieldPath>) -> Value {
    let mut root = Map::new();
    for p in paths {
        let mut cur = &mut root;
        for k in p {
            // Every node this function inserts is an object.
            let Some(next) = cur
                .entry(format!("f:{k}"))
                .or_insert_with(|| json!({}))
                .as_object_mut()
            else {
                break;
            };
            cur = next;
        }
    }
    Value::Object(root)
}

/// Read the paths a `fieldsV1` tree names.
pub fn paths_of(fields: &Value) -> BTreeSet<FieldPath> {
    fn walk(v: &Value, prefix: &FieldPath, out: &mut BTreeSet<FieldPath>) {
        let Some(map) = v.as_object() else { return };
        let children: Vec<_> = map
            .iter()
            .filter_map(|(k, x)| k.strip_prefix("f:").map(|k| (k, x)))
            .collect();
        if children.is_empty() {
            if !prefix.is_empty() {
                out.insert(prefix.clone());
            }
            return;
        }
        for (k, x) in children {
            let mut p = prefix.clone();
            p.push(k.to_string());
            walk(x, &p, out);
        }
    }
    let mut out = BTreeSet::new();
    walk(fields, &Vec::new(), &mut out);
    out
}

/// Field ownership of one object: manager -> (operation, paths).
#[derive(Debug, Clone, Default)]
pub struct Ownership {
    managers: BTreeMap<(String, String), BTreeSet<FieldPath>>,
}

impl Ownership {
    /// Read `metadata.managedFields`.
    pub fn of(object: &Value) -> Self {
        let mut managers = BTreeMap::new();
        for entry in object
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let manager = entry
                .get("manager")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let operation = entry
                .get("operation")
                .and_then(Value::as_str)
                .unwrap_or("Update")
                .to_string();
            let paths = entry.get("fieldsV1").map(paths_of).unwrap_or_default();
            managers.insert((manager, operation), paths);
        }
        Self { managers }
    }

    /// Write `metadata.managedFields` back.
    pub fn write(&self, object: &mut Value, api_version: &str, now: &str) {
        let entries: Vec<Value> = self
            .managers
            .iter()
            .filter(|(_, paths)| !paths.is_empty())
            .map(|((manager, operation), paths)| {
                json!({"manager": manager, "operation": operation, "apiVersion": api_version, "time": now,
                       "fieldsType": "FieldsV1", "fieldsV1": fields_v1(paths)})
            })
            .collect();
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            if entries.is_empty() {
                meta.remove("managedFields");
            } else {
                meta.insert("managedFields".into(), Value::Array(entries));
            }
        }
    }

    /// An update by `manager`: it takes every field whose value changed.
    pub fn record_update(&mut self, manager: &str, old: Option<&Value>, new: &Value) {
        let new_paths = leaf_paths(new);
        let changed: BTreeSet<FieldPath> = new_paths
            .iter()
            .filter(|p| old.and_then(|o| value_at(o, p)) != value_at(new, p))
            .cloned()
            .collect();
        for paths in self.managers.values_mut() {
            paths.retain(|p| new_paths.contains(p) && !changed.contains(p));
        }
        self.managers
            .entry((manager.to_string(), "Update".into()))
            .or_default()
            .extend(changed);
    }

    /// Every (manager, path) of another manager that applying `applied` would
    /// change.
    pub fn conflicts(
        &self,
        manager: &str,
        current: &Value,
        applied: &Value,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for p in leaf_paths(applied) {
            if value_at(current, &p) == value_at(applied, &p) || value_at(current, &p).is_none() {
                continue;
            }
            for ((m, _), paths) in &self.managers {
                if m != manager && paths.contains(&p) {
                    out.push((m.clone(), format!(".{}", p.join("."))));
                }
            }
        }
        out
    }

    /// A server-side apply by `manager` of `applied` onto `current`: returns
    /// the new object. With `force`, conflicting fields change owner.
    pub fn apply(&mut self, manager: &str, current: Option<&Value>, applied: &Value) -> Value {
        let applied_paths = leaf_paths(applied);
        let key = (manager.to_string(), "Apply".to_string());
        let previously = self.managers.get(&key).cloned().unwrap_or_default();
        let mut result = current.cloned().unwrap_or_else(|| json!({}));
        merge_apply(&mut result, applied);
        // Fields this manager applied before and no longer applies are removed,
        // unless someone else owns them too.
        for p in previously.difference(&applied_paths) {
            let shared = self
                .managers
                .iter()
                .any(|(k, paths)| k != &key && paths.contains(p));
            if !shared {
                remove_at(&mut result, p);
            }
        }
        for (k, paths) in &mut self.managers {
            if k != &key {
                paths.retain(|p| {
                    !applied_paths.contains(p)
                        || value_at(current.unwrap_or(&Value::Null), p) == value_at(applied, p)
                });
            }
        }
        self.managers.insert(key, applied_paths);
        result
    }
}

/// Deep-merge an applied configuration: objects merge, everything else replaces.
fn merge_apply(target: &mut Value, applied: &Value) {
    match (target, applied) {
        (Value::Object(t), Value::Object(a)) => {
            for (k, v) in a {
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        merge_apply(existing, v)
                    }
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, a) => *t = a.clone(),
    }
}

/// Apply an RFC 7386 merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Apply an RFC 6902 JSON patch the way kube-apiserver does.
///
/// One difference from the RFC, as in the API server's patch library:
/// `replace` of a member missing from an object adds it.
///
/// # Errors
/// 400 with a message for a malformed patch; 422 with the reason for one
/// that does not apply (a failed `test`, a missing path). The API server
/// tells the client only that the patch was rejected (see
/// [`StatusError::patch_failed`](crate::StatusError::patch_failed)); the reason is
/// for the server's own log.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), (u16, String)> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| (400, format!("the JSON patch is malformed: {e}")))?;
    for op in ops.0 {
        let op = match op {
            json_patch::PatchOperation::Replace(r) if replaces_missing_member(target, &r.path) => {
                json_patch::PatchOperation::Add(json_patch::AddOperation {
                    path: r.path,
                    value: r.value,
                })
            }
            other => other,
        };
        json_patch::patch(target, &[op]).map_err(|e| (422, e.to_string()))?;
    }
    Ok(())
}

/// Whether `path` names a member missing from an existing object.
fn replaces_missing_member(target: &Value, path: &json_patch::jsonptr::Pointer) -> bool {
    let Some((parent, last)) = path.split_back() else {
        return false;
    };
    matches!(parent.resolve(target), Ok(Value::Object(map)) if !map.contains_key(last.decoded().as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_of_a_missing_member_adds_it_as_the_api_server_does() {
        let mut cm = json!({"data": {"k": "v"}, "list": [1]});
        json_patch(
            &mut cm,
            &json!([{"op": "replace", "path": "/data/missing", "value": "x"}]),
        )
        .unwrap();
        assert_eq!(cm["data"], json!({"k": "v", "missing": "x"}));
        // Not through a missing parent, nor past the end of a list.
        for path in ["/spec/x", "/list/5"] {
            let err = json_patch(
                &mut cm,
                &json!([{"op": "replace", "path": path, "value": 1}]),
            );
            assert_eq!(err.unwrap_err().0, 422, "{path}");
        }
        // A failed test stops the patch.
        let err = json_patch(
            &mut cm,
            &json!([{"op": "test", "path": "/data/k", "value": "old"}]),
        );
        assert_eq!(err.unwrap_err().0, 422);
    }

    #[test]
    fn fields_v1_round_trips() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v", "l": "w"}});
        let paths = leaf_paths(&obj);
        assert_eq!(paths.len(), 3);
        let tree = fields_v1(&paths);
        assert_eq!(
            tree,
            json!({"f:data": {"f:k": {}, "f:l": {}}, "f:metadata": {"f:labels": {"f:x": {}}}})
        );
        assert_eq!(paths_of(&tree), paths);
    }

    #[test]
    fn a_second_manager_conflicts_on_changed_fields_only() {
        let mut own = Ownership::default();
        let first = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"color": "red", "size": "L"}});
        let current = own.apply("alice", None, &first);
        let same = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"color": "red"}});
        assert!(own.conflicts("bob", &current, &same).is_empty());
        let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"color": "blue"}});
        assert_eq!(
            own.conflicts("bob", &current, &other),
            vec![("alice".to_string(), ".data.color".to_string())]
        );
        // Forced, bob takes the field; alice keeps size.
        let forced = own.apply("bob", Some(&current), &other);
        assert_eq!(forced["data"], json!({"color": "blue", "size": "L"}));
        assert!(
            own.conflicts("alice", &forced, &first)
                .iter()
                .any(|(m, _)| m == "bob")
        );
    }

    #[test]
    fn fields_a_manager_stops_applying_are_removed() {
        let mut own = Ownership::default();
        let a = json!({"metadata": {"name": "a"}, "data": {"x": "1", "y": "2"}});
        let cur = own.apply("m", None, &a);
        let b = json!({"metadata": {"name": "a"}, "data": {"x": "1"}});
        assert_eq!(own.apply("m", Some(&cur), &b)["data"], json!({"x": "1"}));
    }
}
