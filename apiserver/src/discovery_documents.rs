//! Discovery documents: `/version`, legacy `/api` `/apis` and group versions,
//! and aggregated discovery (`apidiscovery.k8s.io/v2`) as kubectl asks for it.

use serde_json::{Value, json};

use crate::registry::{Registry, ResourceType};

/// The content type of aggregated discovery.
pub const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// What an `Accept` header asks discovery for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wants {
    /// The aggregated v2 document.
    Aggregated,
    /// The legacy document.
    Legacy,
    /// Only a form this server does not serve (v2beta1 alone).
    Unsupported,
}

/// Read the `Accept` header of a discovery request.
pub fn wants(accept: Option<&str>) -> Wants {
    let Some(accept) = accept else {
        return Wants::Legacy;
    };
    let mut saw_other_aggregated = false;
    for part in accept.split(',') {
        let part = part.trim();
        if part.contains("as=APIGroupDiscoveryList") {
            if part.contains("v=v2")
                && !part.contains("v=v2beta1")
                && part.starts_with("application/json")
            {
                return Wants::Aggregated;
            }
            saw_other_aggregated = true;
        } else if part.starts_with("application/json") || part.starts_with("*/*") || part.is_empty()
        {
            return Wants::Legacy;
        }
    }
    if saw_other_aggregated {
        Wants::Unsupported
    } else {
        Wants::Legacy
    }
}

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "35",
        "emulationMajor": "1",
        "emulationMinor": "35",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "34",
        "gitVersion": concat!("v1.35.0+informant-", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": "linux/amd64"
    })
}

/// Legacy `/api`.
pub fn api_versions(server_address: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]})
}

fn group_entry(name: &str, versions: &[String]) -> Value {
    let gvs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    let preferred = gvs.first().cloned().unwrap_or(Value::Null);
    json!({"name": name, "versions": gvs, "preferredVersion": preferred})
}

/// Legacy `/apis`.
pub fn api_group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .iter()
        .map(|(g, vs)| group_entry(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// Legacy `/apis/{group}`, or none for an unknown group.
pub fn api_group(registry: &Registry, group: &str) -> Option<Value> {
    let groups = registry.groups();
    let versions = groups.get(group)?;
    let mut v = group_entry(group, versions);
    if let Some(map) = v.as_object_mut() {
        map.insert("kind".into(), json!("APIGroup"));
        map.insert("apiVersion".into(), json!("v1"));
    }
    Some(reorder(
        v,
        &["kind", "apiVersion", "name", "versions", "preferredVersion"],
    ))
}

fn reorder(v: Value, order: &[&str]) -> Value {
    let Value::Object(mut map) = v else { return v };
    let mut out = serde_json::Map::new();
    for k in order {
        if let Some(x) = map.remove(*k) {
            out.insert((*k).to_string(), x);
        }
    }
    out.extend(map);
    Value::Object(out)
}

/// Legacy `/api/v1` or `/apis/{group}/{version}`.
pub fn api_resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    if !registry.has_group_version(group, version) {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut resources = Vec::new();
    for t in registry
        .all()
        .filter(|t| t.group == group && t.version == version)
    {
        let mut r = json!({"name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
                           "kind": t.kind, "verbs": t.verbs()});
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            r["categories"] = json!(t.categories);
        }
        resources.push(r);
        if t.status {
            resources.push(json!({"name": format!("{}/status", t.plural), "singularName": "",
                                  "namespaced": t.namespaced, "kind": t.kind, "verbs": ["get", "patch", "update"]}));
        }
    }
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

fn aggregated_resource(t: &ResourceType) -> Value {
    let response_kind = if t.group.is_empty() {
        json!({"group": "", "version": "", "kind": t.kind})
    } else {
        json!({"group": t.group, "version": t.version, "kind": t.kind})
    };
    let mut r = json!({
        "resource": t.plural,
        "responseKind": response_kind,
        "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": t.singular,
        "verbs": t.verbs(),
    });
    if !t.short_names.is_empty() {
        r["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        r["categories"] = json!(t.categories);
    }
    if t.status {
        r["subresources"] = json!([{"subresource": "status", "responseKind": response_kind, "verbs": ["get", "patch", "update"]}]);
    }
    r
}

/// Aggregated discovery: the core group for `/api`, the others for `/apis`.
pub fn aggregated(registry: &Registry, core: bool) -> Value {
    let mut items = Vec::new();
    let groups: Vec<(String, Vec<String>)> = if core {
        vec![(String::new(), vec!["v1".to_string()])]
    } else {
        registry.groups().into_iter().collect()
    };
    for (group, versions) in groups {
        let versions: Vec<Value> = versions
            .iter()
            .map(|v| {
                let resources: Vec<Value> = registry
                    .all()
                    .filter(|t| t.group == group && &t.version == v)
                    .map(|t| aggregated_resource(t))
                    .collect();
                json!({"version": v, "resources": resources, "freshness": "Current"})
            })
            .collect();
        let metadata = if group.is_empty() {
            json!({})
        } else {
            json!({"name": group})
        };
        items.push(json!({"metadata": metadata, "versions": versions}));
    }
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_choose_the_document() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(wants(Some(kubectl)), Wants::Aggregated);
        assert_eq!(wants(Some("application/json, */*")), Wants::Legacy);
        assert_eq!(wants(None), Wants::Legacy);
        assert_eq!(
            wants(Some(
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
            )),
            Wants::Unsupported
        );
    }

    #[test]
    fn documents_have_the_shapes_clients_read() {
        let r = Registry::builtin();
        let core = aggregated(&r, true);
        assert_eq!(core["items"][0]["metadata"], json!({}));
        let cm = core["items"][0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["resource"] == "configmaps")
            .unwrap();
        assert_eq!(
            cm["responseKind"],
            json!({"group": "", "version": "", "kind": "ConfigMap"})
        );
        assert_eq!(cm["scope"], "Namespaced");
        let legacy = api_resource_list(&r, "apps", "v1").unwrap();
        assert!(
            legacy["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["name"] == "deployments/status")
        );
        assert!(api_resource_list(&r, "apps", "v9").is_none());
        assert_eq!(
            api_group(&r, "apps").unwrap()["preferredVersion"]["groupVersion"],
            "apps/v1"
        );
    }
}
