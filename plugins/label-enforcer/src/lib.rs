//! label-enforcer: every ConfigMap and Deployment carries the labels the
//! platform team requires, with values from an allowed set.
//!
//! - A missing required label is added with its default, by a merge patch.
//! - A label whose value is not allowed is reset to the first allowed value,
//!   by a JSON patch guarded with a `test` operation so that a concurrent
//!   change by someone else is never overwritten.
//! - Namespaces labelled `informant.dev/enforce-labels=disabled` are skipped.
//!
//! Settings (all optional):
//! ```json
//! {"required": {"owner": "unassigned"},
//!  "allowed": {"env": ["dev", "staging", "prod"]},
//!  "ignoreNamespaces": ["kube-system"]}
//! ```

use std::collections::BTreeMap;

use informant_sdk::{action, cache, debug, info, prelude::*};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
struct Config {
    required: BTreeMap<String, String>,
    allowed: BTreeMap<String, Vec<String>>,
    ignore_namespaces: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            required: BTreeMap::from([("owner".to_string(), "unassigned".to_string())]),
            allowed: BTreeMap::new(),
            ignore_namespaces: vec![
                "kube-system".into(),
                "kube-public".into(),
                "kube-node-lease".into(),
            ],
        }
    }
}

struct LabelEnforcer {
    config: Config,
}

/// The merge patch that adds labels: `{"metadata": {"labels": {...}}}`,
/// serialized straight from the borrowed map (no JSON tree is built for it).
#[derive(Serialize)]
struct AddLabels<'a> {
    metadata: LabelsOnly<'a>,
}

#[derive(Serialize)]
struct LabelsOnly<'a> {
    labels: &'a BTreeMap<&'a str, &'a str>,
}

/// Escape a label key for use in a JSON pointer (RFC 6901).
fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

impl Plugin for LabelEnforcer {
    fn describe() -> Manifest {
        let events = [EventType::Added, EventType::Modified, EventType::Resync];
        Manifest::new("label-enforcer", env!("CARGO_PKG_VERSION"))
            .subscribe(
                Subscription::to("v1", "ConfigMap")
                    .events(events)
                    .latest_state(),
            )
            .subscribe(
                Subscription::to("apps/v1", "Deployment")
                    .events(events)
                    .latest_state(),
            )
            .reads("v1", "Namespace")
            .writes("v1", "ConfigMap", [Verb::Patch])
            .writes("apps/v1", "Deployment", [Verb::Patch])
    }

    fn init(settings: Settings) -> Result<Self> {
        let config: Config = settings.parse()?;
        for (key, values) in &config.allowed {
            if values.is_empty() {
                return Err(Error::new(
                    ErrorCode::Invalid,
                    format!("allowed.{key} lists no value"),
                ));
            }
        }
        Ok(Self { config })
    }

    fn handle(&mut self, event: Event) -> Result<()> {
        let object = &event.object;
        let Some(namespace) = object.namespace() else {
            return Ok(());
        };
        if self.config.ignore_namespaces.iter().any(|n| n == namespace) {
            return Ok(());
        }
        if let Some(ns) = cache::get(&ObjectRef::cluster("v1", "Namespace", namespace))?
            && ns.label("informant.dev/enforce-labels") == Some("disabled")
        {
            debug!("{} skipped: its namespace opts out", object.object_ref());
            return Ok(());
        }
        let target = object.object_ref();

        let missing: BTreeMap<&str, &str> = self
            .config
            .required
            .iter()
            .filter(|(k, _)| object.label(k).is_none())
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if !missing.is_empty() {
            info!("{target}: adding labels {missing:?}");
            let patch = AddLabels {
                metadata: LabelsOnly { labels: &missing },
            };
            action::merge_patch(&target, patch).enqueue()?;
        }

        let mut operations = Vec::new();
        for (key, allowed) in &self.config.allowed {
            let Some(value) = object.label(key) else {
                continue;
            };
            if !allowed.iter().any(|a| a == value) {
                let path = format!("/metadata/labels/{}", pointer_escape(key));
                info!(
                    "{target}: label {key}={value} is not allowed; resetting it to {}",
                    allowed[0]
                );
                operations.push(json!({"op": "test", "path": path, "value": value}));
                operations.push(json!({"op": "replace", "path": path, "value": allowed[0]}));
            }
        }
        if !operations.is_empty() {
            action::json_patch(&target, operations).enqueue()?;
        }
        Ok(())
    }
}

informant_sdk::export_plugin!(LabelEnforcer);
