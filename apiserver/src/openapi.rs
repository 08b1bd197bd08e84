//! OpenAPI v3, as far as kubectl needs it: the index, and per group version
//! the operations with their `x-kubernetes-group-version-kind` and the
//! `fieldValidation` parameter kubectl checks before apply, create -f and
//! replace (it then leaves validation to the server). Schemas are
//! permissive: objects of each kind with any fields.

use serde_json::{Value, json};
use sha2::{Digest, Sha512};

use crate::registry::{Registry, ResourceType};

fn gv_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The document for one group version (`api/v1`, `apis/apps/v1`), or none.
pub fn group_version(registry: &Registry, key: &str) -> Option<Value> {
    let (group, version) = match key.split('/').collect::<Vec<_>>().as_slice() {
        ["api", v] => (String::new(), (*v).to_string()),
        ["apis", g, v] => ((*g).to_string(), (*v).to_string()),
        _ => return None,
    };
    if !registry.has_group_version(&group, &version) {
        return None;
    }
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for t in registry
        .all()
        .filter(|t| t.group == group && t.version == version)
    {
        let schema_name = schema_name(t);
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        schemas.insert(
            schema_name.clone(),
            json!({
                "type": "object",
                "description": format!("{} ({}), served by the Informant embedded API server", t.kind, t.api_version()),
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                },
                "x-kubernetes-preserve-unknown-fields": true,
                "x-kubernetes-group-version-kind": [gvk],
            }),
        );
        let prefix = t.group_version_path();
        let item = if t.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", t.plural)
        } else {
            format!("{prefix}/{}/{{name}}", t.plural)
        };
        let collection = item.trim_end_matches("/{name}").to_string();
        let reference = json!({"$ref": format!("#/components/schemas/{schema_name}")});
        let body =
            json!({"content": {"application/json": {"schema": reference}}, "required": true});
        let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}});
        let query = |names: &[&str]| -> Vec<Value> {
            names.iter().map(|n| json!({"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": true}})).collect()
        };
        let op = |verb: &str, params: &[&str], with_body: bool| {
            let mut o = json!({
                "operationId": format!("{verb}{}", t.kind),
                "parameters": query(params),
                "responses": ok,
                "x-kubernetes-action": verb,
                "x-kubernetes-group-version-kind": gvk,
            });
            if with_body {
                o["requestBody"] = body.clone();
            }
            o
        };
        let write_params = ["dryRun", "fieldManager", "fieldValidation", "pretty"];
        paths.insert(
            item,
            json!({
                "get": op("get", &["pretty"], false),
                "put": op("put", &write_params, true),
                "patch": op("patch", &["dryRun", "fieldManager", "fieldValidation", "force", "pretty"], true),
                "delete": op("delete", &["dryRun", "gracePeriodSeconds", "propagationPolicy"], false),
            }),
        );
        paths.insert(
            collection,
            json!({
                "get": op("list", &["labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "watch"], false),
                "post": op("post", &write_params, true),
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "1.35"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

fn schema_name(t: &ResourceType) -> String {
    let group = if t.group.is_empty() {
        "core".to_string()
    } else {
        t.group.split('.').rev().collect::<Vec<_>>().join(".")
    };
    format!("{group}.{}.{}", t.version, t.kind)
}

/// The index: every group version with a hash-addressed URL.
pub fn index(registry: &Registry) -> Value {
    let mut paths = serde_json::Map::new();
    let mut keys: Vec<String> = vec![gv_key("", "v1")];
    for (g, versions) in registry.groups() {
        for v in versions {
            keys.push(gv_key(&g, &v));
        }
    }
    for key in keys {
        if let Some(doc) = group_version(registry, &key) {
            paths.insert(
                key.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={}", hash(&doc))}),
            );
        }
    }
    json!({"paths": paths})
}

/// The hash that addresses a document (and is its ETag).
pub fn hash(doc: &Value) -> String {
    Sha512::digest(doc.to_string().as_bytes())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_patch_operation_with_field_validation() {
        let r = Registry::builtin();
        let doc = group_version(&r, "api/v1").unwrap();
        let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "ConfigMap"
        );
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(
            index(&r)["paths"]["apis/apps/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/apis/apps/v1?hash=")
        );
        assert!(group_version(&r, "apis/example.com/v1").is_none());
    }
}
