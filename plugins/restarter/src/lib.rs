//! restarter: when a ConfigMap's data changes, roll the Deployments that use
//! it (as a volume or through `envFrom`) by patching an annotation on their
//! pod template, and record a Kubernetes Event on each.
//!
//! The Deployments are found through an index the host maintains (ConfigMap
//! name -> Deployments), not by scanning. The annotation's value is the
//! ConfigMap's resourceVersion, so a repeated event patches nothing new.

use informant_sdk::{action, cache, debug, info, prelude::*};

const INDEX: &str = "configmap-users";
const ANNOTATION_PREFIX: &str = "informant.dev/configmap-";

struct Restarter;

impl Plugin for Restarter {
    fn describe() -> Manifest {
        Manifest::new("restarter", env!("CARGO_PKG_VERSION"))
            .subscribe(
                Subscription::to("v1", "ConfigMap")
                    .events([EventType::Modified, EventType::Synced])
                    .latest_state()
                    .with_old_object(),
            )
            .index(
                Index::new(INDEX, "apps/v1", "Deployment")
                    .path("spec.template.spec.volumes[*].configMap.name")
                    .path("spec.template.spec.containers[*].envFrom[*].configMapRef.name"),
            )
            .reads("apps/v1", "Deployment")
            .writes("apps/v1", "Deployment", [Verb::Patch])
            .emits_events()
    }

    fn init(_settings: Settings) -> Result<Self> {
        Ok(Restarter)
    }

    fn handle(&mut self, event: Event) -> Result<()> {
        if event.event_type == EventType::Synced {
            let in_use = cache::index_values(INDEX)?;
            info!("watching {} ConfigMap names used by Deployments", in_use.len());
            return Ok(());
        }
        let cm = &event.object;
        let old_data = event.old_object.as_ref().map(|o| (o.get("data"), o.get("binaryData")));
        if old_data == Some((cm.get("data"), cm.get("binaryData"))) {
            debug!("{}: only metadata changed", cm.object_ref());
            return Ok(());
        }
        let annotation = format!("{ANNOTATION_PREFIX}{}", cm.name());
        let keys = cache::by_index_keys(INDEX, cm.name())?;
        for deployment in cache::by_index(INDEX, cm.name())? {
            // Index keys are names; only Deployments in the ConfigMap's namespace use it.
            if deployment.namespace() != cm.namespace() {
                continue;
            }
            let current = deployment.get("spec.template.metadata.annotations").and_then(|a| a.get(&annotation));
            if current.and_then(Value::as_str) == Some(cm.resource_version()) {
                continue;
            }
            let target = deployment.object_ref();
            let patch = json!({"spec": {"template": {"metadata": {"annotations": {annotation.clone(): cm.resource_version()}}}}});
            action::merge_patch(&target, patch).enqueue()?;
            let message = format!("ConfigMap {} changed (resourceVersion {})", cm.name(), cm.resource_version());
            action::event(&target, "ConfigMapChanged", &message).action("Restart").enqueue()?;
            info!("restarting {target}: {message}");
        }
        debug!("{} Deployments reference a ConfigMap named {}", keys.len(), cm.name());
        Ok(())
    }
}

informant_sdk::export_plugin!(Restarter);
