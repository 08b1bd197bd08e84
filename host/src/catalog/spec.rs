//! A Plugin object (`plugins.informant.dev/v1alpha1`, cluster-scoped) as the
//! host reads it, and the status it writes back.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::action::Rule;

/// The API group, version and kind of Plugin objects.
pub const API_VERSION: &str = "informant.dev/v1alpha1";
/// The kind.
pub const KIND: &str = "Plugin";

/// `spec` of a Plugin object.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginSpec {
    /// An OCI reference: `registry/repository:tag` or `@sha256:...`.
    pub image: String,
    /// Whether it runs (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The settings passed to `init`.
    #[serde(default)]
    pub settings: Value,
    /// Its limits, within the operator's maximum.
    #[serde(default)]
    pub limits: Option<SpecLimits>,
    /// What it may read and write: the grants, within the operator's
    /// allowlist. None means nothing.
    #[serde(default)]
    pub permissions: Vec<Rule>,
    /// Secrets (`kubernetes.io/dockerconfigjson`, in the host's namespace)
    /// with registry credentials.
    #[serde(default)]
    pub image_pull_secrets: Vec<SecretRef>,
}

fn yes() -> bool {
    true
}

/// `spec.limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecLimits {
    /// Memory per instance.
    pub memory_mib: Option<u64>,
    /// Deadline per call.
    pub deadline_ms: Option<u64>,
}

/// A Secret by name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SecretRef {
    /// Its name.
    pub name: String,
}

/// What the host reads of a Plugin object.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginObject {
    /// `metadata.name`: the name the plugin runs under.
    pub name: String,
    /// `metadata.generation`.
    pub generation: i64,
    /// The spec, or why it is not valid.
    pub spec: Result<PluginSpec, String>,
    /// `status`, as the object has it now.
    pub status: Value,
}

impl PluginObject {
    /// Read an object's JSON.
    pub fn parse(json: &str) -> Option<Self> {
        let value: Value = serde_json::from_str(json).ok()?;
        let name = value["metadata"]["name"].as_str()?.to_string();
        let generation = value["metadata"]["generation"].as_i64().unwrap_or(0);
        let spec = serde_json::from_value::<PluginSpec>(value["spec"].clone())
            .map_err(|e| format!("spec: {e}"));
        Some(Self {
            name,
            generation,
            spec,
            status: value.get("status").cloned().unwrap_or(Value::Null),
        })
    }

    /// The digest its status says it ran, if any: what a restart can take
    /// from the content cache when its tag cannot be resolved.
    pub fn last_digest(&self) -> Option<&str> {
        self.status["digest"]
            .as_str()
            .filter(|d| d.starts_with("sha256:"))
    }
}

/// The `Ready` condition and the rest of the status, as the host wants it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Desired {
    /// Whether the version the spec asks for runs.
    pub ready: bool,
    /// CamelCase reason.
    pub reason: String,
    /// For people.
    pub message: String,
    /// The digest running, if one does.
    pub digest: Option<String>,
    /// When it was loaded, RFC 3339.
    pub loaded_at: Option<String>,
    /// The generation this is about.
    pub observed_generation: i64,
}

impl Desired {
    /// Whether `status` (the object's) already says this, times aside.
    pub fn matches(&self, status: &Value) -> bool {
        let ready = &status["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
            .cloned()
            .unwrap_or(Value::Null);
        ready["status"] == if self.ready { "True" } else { "False" }
            && ready["reason"] == self.reason.as_str()
            && ready["message"] == self.message.as_str()
            && status["digest"].as_str() == self.digest.as_deref()
            && status["loadedAt"].as_str() == self.loaded_at.as_deref()
            && status["observedGeneration"].as_i64() == Some(self.observed_generation)
    }

    /// The status patch: the condition's transition time kept when its
    /// status did not change.
    pub fn patch(&self, current: &Value, now: &str) -> Value {
        let status = if self.ready { "True" } else { "False" };
        let previous = current["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready"));
        let since = previous
            .filter(|c| c["status"] == status)
            .and_then(|c| c["lastTransitionTime"].as_str())
            .unwrap_or(now);
        serde_json::json!({
            "status": {
                "observedGeneration": self.observed_generation,
                "digest": self.digest,
                "loadedAt": self.loaded_at,
                "conditions": [{
                    "type": "Ready",
                    "status": status,
                    "reason": self.reason,
                    "message": self.message,
                    "lastTransitionTime": since,
                    "observedGeneration": self.observed_generation,
                }],
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_object_is_read_with_defaults() {
        let o = PluginObject::parse(
            r#"{"metadata": {"name": "le", "generation": 2}, "spec": {"image": "r/p:1", "permissions": [{"apiVersion": "v1", "kind": "ConfigMap", "verbs": ["read", "patch"]}]}, "status": {"digest": "sha256:ab"}}"#,
        )
        .unwrap();
        let spec = o.spec.clone().unwrap();
        assert!(spec.enabled);
        assert_eq!(spec.permissions[0].verbs.len(), 1);
        assert!(spec.permissions[0].read);
        assert_eq!(o.last_digest(), Some("sha256:ab"));
        let bad = PluginObject::parse(r#"{"metadata": {"name": "x"}, "spec": {}}"#).unwrap();
        assert!(bad.spec.unwrap_err().contains("image"));
    }

    #[test]
    fn the_status_keeps_its_transition_time_while_it_holds() {
        let d = Desired {
            ready: true,
            reason: "Loaded".into(),
            message: "m".into(),
            digest: Some("sha256:1".into()),
            loaded_at: Some("t0".into()),
            observed_generation: 1,
        };
        let first = d.patch(&Value::Null, "t1");
        assert!(d.matches(&first["status"]));
        let again = d.patch(&first["status"], "t2");
        assert_eq!(again["status"]["conditions"][0]["lastTransitionTime"], "t1");
        let failing = Desired {
            ready: false,
            ..d.clone()
        };
        assert!(!failing.matches(&first["status"]));
        let changed = failing.patch(&first["status"], "t3");
        assert_eq!(
            changed["status"]["conditions"][0]["lastTransitionTime"],
            "t3"
        );
    }
}
