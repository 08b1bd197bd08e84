//! The resource types the embedded API server serves: built-ins and CRDs.

use std::{collections::BTreeMap, sync::Arc};

use serde_json::{Value, json};

/// One served resource type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    /// Version.
    pub version: String,
    /// Kind, e.g. `ConfigMap`.
    pub kind: String,
    /// Plural resource name, e.g. `configmaps`.
    pub plural: String,
    /// Singular name, e.g. `configmap`.
    pub singular: String,
    /// Short names, e.g. `cm`.
    pub short_names: Vec<String>,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Whether `/status` is a subresource (status writes go there only).
    pub status: bool,
    /// Whether this type comes from a CRD (objects serialise with sorted keys).
    pub custom: bool,
    /// Categories, e.g. `all`.
    pub categories: Vec<String>,
}

impl ResourceType {
    fn builtin(
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
        short: &[&str],
        namespaced: bool,
        status: bool,
    ) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: kind.to_ascii_lowercase(),
            short_names: short.iter().map(|s| (*s).to_string()).collect(),
            namespaced,
            status,
            custom: false,
            categories: Vec::new(),
        }
    }

    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The verbs the resource supports, as discovery lists them.
    pub fn verbs(&self) -> Vec<&'static str> {
        if self.custom {
            // CRDs list their verbs in this (unsorted) order [reference 01, 03].
            vec![
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "create",
                "update",
                "watch",
            ]
        } else {
            vec![
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ]
        }
    }

    /// The path prefix of this resource's group version: `/api/v1` or `/apis/apps/v1`.
    pub fn group_version_path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }
}

/// The key of a resource type: group, version and plural.
pub type ResourceKey = (String, String, String);

/// All served resource types.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    types: BTreeMap<ResourceKey, Arc<ResourceType>>,
}

impl Registry {
    /// The built-in types.
    pub fn builtin() -> Self {
        let mut r = Self::default();
        for t in [
            ResourceType::builtin("", "v1", "Namespace", "namespaces", &["ns"], false, true),
            ResourceType::builtin("", "v1", "ConfigMap", "configmaps", &["cm"], true, false),
            ResourceType::builtin("", "v1", "Secret", "secrets", &[], true, false),
            ResourceType::builtin("", "v1", "Pod", "pods", &["po"], true, true),
            ResourceType::builtin("", "v1", "Service", "services", &["svc"], true, true),
            ResourceType::builtin(
                "",
                "v1",
                "ServiceAccount",
                "serviceaccounts",
                &["sa"],
                true,
                false,
            ),
            ResourceType::builtin("", "v1", "Event", "events", &["ev"], true, false),
            ResourceType::builtin(
                "events.k8s.io",
                "v1",
                "Event",
                "events",
                &["ev"],
                true,
                false,
            ),
            ResourceType::builtin(
                "apps",
                "v1",
                "Deployment",
                "deployments",
                &["deploy"],
                true,
                true,
            ),
            ResourceType::builtin(
                "coordination.k8s.io",
                "v1",
                "Lease",
                "leases",
                &[],
                true,
                false,
            ),
            ResourceType::builtin(
                "rbac.authorization.k8s.io",
                "v1",
                "ClusterRole",
                "clusterroles",
                &[],
                false,
                false,
            ),
            ResourceType::builtin(
                "rbac.authorization.k8s.io",
                "v1",
                "ClusterRoleBinding",
                "clusterrolebindings",
                &[],
                false,
                false,
            ),
            ResourceType::builtin(
                "rbac.authorization.k8s.io",
                "v1",
                "Role",
                "roles",
                &[],
                true,
                false,
            ),
            ResourceType::builtin(
                "rbac.authorization.k8s.io",
                "v1",
                "RoleBinding",
                "rolebindings",
                &[],
                true,
                false,
            ),
            ResourceType::builtin(
                "policy",
                "v1",
                "PodDisruptionBudget",
                "poddisruptionbudgets",
                &["pdb"],
                true,
                true,
            ),
            ResourceType::builtin(
                "admissionregistration.k8s.io",
                "v1",
                "ValidatingWebhookConfiguration",
                "validatingwebhookconfigurations",
                &[],
                false,
                false,
            ),
            ResourceType::builtin(
                "admissionregistration.k8s.io",
                "v1",
                "MutatingWebhookConfiguration",
                "mutatingwebhookconfigurations",
                &[],
                false,
                false,
            ),
            ResourceType::builtin(
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
                "customresourcedefinitions",
                &["crd", "crds"],
                false,
                true,
            ),
        ] {
            r.insert(t);
        }
        r
    }

    /// Serve a type.
    pub fn insert(&mut self, t: ResourceType) {
        self.types.insert(
            (t.group.clone(), t.version.clone(), t.plural.clone()),
            Arc::new(t),
        );
    }

    /// Stop serving every version of a group's plural; returns what was removed.
    pub fn remove(&mut self, group: &str, plural: &str) -> Vec<Arc<ResourceType>> {
        let keys: Vec<_> = self
            .types
            .keys()
            .filter(|(g, _, p)| g == group && p == plural)
            .cloned()
            .collect();
        keys.iter().filter_map(|k| self.types.remove(k)).collect()
    }

    /// The type served at group/version/plural.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// Every type, ordered by group, version and plural.
    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceType>> {
        self.types.values()
    }

    /// Whether a group is served at all (unknown groups get a plain-text 404).
    pub fn has_group(&self, group: &str) -> bool {
        self.types.keys().any(|(g, _, _)| g == group)
    }

    /// Whether a group version is served.
    pub fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.types
            .keys()
            .any(|(g, v, _)| g == group && v == version)
    }

    /// The groups with their versions, in order; the core group is left out.
    pub fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (g, v, _) in self.types.keys() {
            if g.is_empty() {
                continue;
            }
            let versions = groups.entry(g.clone()).or_default();
            if !versions.contains(v) {
                versions.push(v.clone());
            }
        }
        groups
    }

    /// Find a type by apiVersion and kind.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.types
            .values()
            .find(|t| t.api_version() == api_version && t.kind == kind)
            .cloned()
    }
}

/// The resource types a CRD object defines: one per served version.
///
/// # Errors
/// A message naming the missing or invalid field.
pub fn types_from_crd(crd: &Value) -> Result<Vec<ResourceType>, String> {
    let spec = crd.get("spec").ok_or("spec is required")?;
    let text = |v: &Value, field: &str| v.get(field).and_then(Value::as_str).map(str::to_string);
    let group = text(spec, "group").ok_or("spec.group is required")?;
    let names = spec.get("names").ok_or("spec.names is required")?;
    let plural = text(names, "plural").ok_or("spec.names.plural is required")?;
    let kind = text(names, "kind").ok_or("spec.names.kind is required")?;
    let singular = text(names, "singular").unwrap_or_else(|| kind.to_ascii_lowercase());
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let short_names = strings(names.get("shortNames"));
    let categories = strings(names.get("categories"));
    let namespaced = match text(spec, "scope").as_deref() {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        _ => return Err("spec.scope must be Namespaced or Cluster".into()),
    };
    let expected_name = format!("{plural}.{group}");
    if crd.pointer("/metadata/name").and_then(Value::as_str) != Some(&expected_name) {
        return Err(format!(
            "metadata.name must be spec.names.plural+\".\"+spec.group: {expected_name:?}"
        ));
    }
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or("spec.versions is required")?;
    if versions.is_empty() {
        return Err("spec.versions must have at least one version".into());
    }
    let mut out = Vec::new();
    for v in versions {
        let version = text(v, "name").ok_or("spec.versions[].name is required")?;
        if v.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        out.push(ResourceType {
            group: group.clone(),
            version,
            kind: kind.clone(),
            plural: plural.clone(),
            singular: singular.clone(),
            short_names: short_names.clone(),
            namespaced,
            status: v.pointer("/subresources/status").is_some(),
            custom: true,
            categories: categories.clone(),
        });
    }
    Ok(out)
}

/// The status a CRD gets once its names are accepted and it is served.
pub fn crd_established_status(crd: &Value, now: &str) -> Value {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(Value::Null);
    let condition = |type_: &str, reason: &str, message: &str| json!({"type": type_, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message});
    json!({
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "acceptedNames": names,
        "storedVersions": crd.pointer("/spec/versions").and_then(Value::as_array)
            .map(|vs| vs.iter().filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned()).collect::<Vec<_>>())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crd_defines_one_type_per_served_version() {
        let crd = json!({"metadata": {"name": "widgets.example.com"}, "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}},
                         {"name": "v2", "served": false}]}});
        let types = types_from_crd(&crd).unwrap();
        assert_eq!(types.len(), 1);
        assert_eq!(types[0].api_version(), "example.com/v1");
        assert!(types[0].status && types[0].custom && types[0].namespaced);
        assert_eq!(types[0].singular, "widget");
        let bad = json!({"metadata": {"name": "wrong"}, "spec": crd["spec"].clone()});
        assert!(
            types_from_crd(&bad)
                .unwrap_err()
                .contains("widgets.example.com")
        );
    }

    #[test]
    fn builtins_include_what_the_plugins_and_kubectl_use() {
        let r = Registry::builtin();
        assert!(r.get("", "v1", "configmaps").is_some());
        assert!(r.get("apps", "v1", "deployments").is_some());
        assert_eq!(
            r.by_kind("coordination.k8s.io/v1", "Lease").unwrap().plural,
            "leases"
        );
        assert!(r.has_group("apiextensions.k8s.io"));
        assert!(!r.has_group("example.com"));
    }
}
