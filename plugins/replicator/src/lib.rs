//! replicator: copies every ConfigMap and Secret labelled
//! `informant.dev/replicate=true` into every other namespace, including
//! namespaces created later, and removes the copies when the source goes.
//!
//! Copies are applied server-side, so re-running is harmless; they carry the
//! label `informant.dev/replica=true` and the annotation
//! `informant.dev/replicated-from: <namespace>/<name>`.
//!
//! Settings (optional): `{"excludeNamespaces": ["kube-system"]}`.

use informant_sdk::{action, cache, info, prelude::*};
use serde::Deserialize;

const SELECTOR: &str = "informant.dev/replicate=true";
const SOURCE_KINDS: [&str; 2] = ["ConfigMap", "Secret"];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
struct Config {
    exclude_namespaces: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            exclude_namespaces: vec![
                "kube-system".into(),
                "kube-public".into(),
                "kube-node-lease".into(),
            ],
        }
    }
}

struct Replicator {
    config: Config,
}

impl Replicator {
    fn targets(&self, source_namespace: Option<&str>) -> Result<Vec<String>> {
        Ok(cache::list_keys("v1", "Namespace", None, None)?
            .into_iter()
            .map(|r| r.name)
            .filter(|ns| {
                Some(ns.as_str()) != source_namespace
                    && !self.config.exclude_namespaces.contains(ns)
            })
            .collect())
    }

    /// The copy of `source` for `namespace`: only what the replicator owns.
    fn copy(source: &Object, namespace: &str) -> Value {
        let mut copy = json!({
            "apiVersion": "v1",
            "kind": source.kind(),
            "metadata": {
                "name": source.name(),
                "namespace": namespace,
                "labels": {"informant.dev/replica": "true"},
                "annotations": {
                    "informant.dev/replicated-from": format!("{}/{}", source.namespace().unwrap_or(""), source.name())
                },
            },
        });
        for field in ["data", "binaryData", "stringData", "type", "immutable"] {
            if let Some(v) = source.pointer(&format!("/{field}")) {
                copy[field] = v.clone();
            }
        }
        copy
    }

    fn replicate(&self, source: &Object, namespaces: &[String]) -> Result<()> {
        for ns in namespaces {
            action::apply(&Self::copy(source, ns)).enqueue()?;
        }
        if !namespaces.is_empty() {
            info!(
                "{}: applied {} copies",
                source.object_ref(),
                namespaces.len()
            );
        }
        Ok(())
    }
}

impl Plugin for Replicator {
    fn describe() -> Manifest {
        let mut m = Manifest::new("replicator", env!("CARGO_PKG_VERSION"));
        for kind in SOURCE_KINDS {
            let events = [
                EventType::Added,
                EventType::Modified,
                EventType::Deleted,
                EventType::Resync,
            ];
            m = m
                .subscribe(
                    Subscription::to("v1", kind)
                        .label_selector(SELECTOR)
                        .events(events),
                )
                .writes("v1", kind, [Verb::Apply, Verb::Delete]);
        }
        m.subscribe(Subscription::to("v1", "Namespace").events([EventType::Added]))
    }

    fn init(settings: Settings) -> Result<Self> {
        Ok(Self {
            config: settings.parse()?,
        })
    }

    fn handle(&mut self, event: Event) -> Result<()> {
        let object = &event.object;
        if object.kind() == "Namespace" {
            // Sources already present are replicated by their own initial
            // events; a namespace created later needs every source.
            if event.initial
                || self
                    .config
                    .exclude_namespaces
                    .iter()
                    .any(|n| n == object.name())
            {
                return Ok(());
            }
            let target = [object.name().to_string()];
            for kind in SOURCE_KINDS {
                for source in cache::list("v1", kind, None, Some(SELECTOR))? {
                    if source.namespace() != Some(object.name()) {
                        self.replicate(&source, &target)?;
                    }
                }
            }
            return Ok(());
        }
        let targets = self.targets(object.namespace())?;
        match event.event_type {
            EventType::Deleted => {
                for ns in &targets {
                    let copy = ObjectRef::namespaced("v1", object.kind(), ns, object.name());
                    action::delete(&copy).enqueue()?;
                }
                info!(
                    "{}: deleted; removing {} copies",
                    object.object_ref(),
                    targets.len()
                );
                Ok(())
            }
            _ => self.replicate(object, &targets),
        }
    }
}

informant_sdk::export_plugin!(Replicator);
