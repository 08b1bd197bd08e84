//! restarter: when a ConfigMap's data changes, roll the Deployments that use
//! it (as a volume or through `envFrom`) by patching an annotation on their
//! pod template, and record a Kubernetes Event on each.
//!
//! The Deployments are found through an index the host maintains (ConfigMap
//! name -> Deployments), not by scanning. The annotation's value is the
//! ConfigMap's resourceVersion, so a repeated event patches nothing new.
//!
//! Each Deployment has a restart budget (settings `budget`: 3 restarts per
//! 3600 s unless given): a ConfigMap that keeps changing cannot keep its
//! Deployments rolling. The count lives in the plugin's store, in the
//! durable tier, so every instance, a reloaded version and a restarted or
//! newly elected host share it; the key expires with the window. Past the
//! budget the restarter records a Warning Event instead of restarting.

use std::time::Duration;

use informant_sdk::{action, cache, debug, info, prelude::*, state, warn};

const INDEX: &str = "configmap-users";
const ANNOTATION_PREFIX: &str = "informant.dev/configmap-";

/// How many restarts a Deployment may get, and in what window.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Budget {
    restarts: i64,
    window_seconds: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            restarts: 3,
            window_seconds: 3600,
        }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    budget: Budget,
}

struct Restarter {
    budget: Budget,
}

impl Restarter {
    /// Take one restart from `deployment`'s budget; false if none is left.
    fn spend(&self, deployment: &ObjectRef) -> Result<bool> {
        let key = format!("restarts/{deployment}");
        let used: i64 = state::get(&key)?.unwrap_or(0);
        if used >= self.budget.restarts {
            return Ok(false);
        }
        if used == 0 {
            // The window starts with the first restart.
            let window = Duration::from_secs(self.budget.window_seconds);
            state::set_with_ttl(&key, &0, window)?;
        }
        state::increment(&key, 1)?;
        Ok(true)
    }
}

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
            .state(StateTier::Durable)
    }

    fn init(settings: Settings) -> Result<Self> {
        let Options { budget } = settings.parse()?;
        if budget.restarts < 0 || budget.window_seconds == 0 {
            return Err(Error::new(
                ErrorCode::Invalid,
                "budget: restarts must be 0 or more, windowSeconds more than 0",
            ));
        }
        Ok(Restarter { budget })
    }

    fn handle(&mut self, event: Event) -> Result<()> {
        if event.event_type == EventType::Synced {
            let in_use = cache::index_values(INDEX)?;
            info!(
                "watching {} ConfigMap names used by Deployments",
                in_use.len()
            );
            return Ok(());
        }
        let cm = &event.object;
        let old_data = event
            .old_object
            .as_ref()
            .map(|o| (o.get("data"), o.get("binaryData")));
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
            let current = deployment
                .get("spec.template.metadata.annotations")
                .and_then(|a| a.get(&annotation));
            if current.and_then(Value::as_str) == Some(cm.resource_version()) {
                continue;
            }
            let target = deployment.object_ref();
            if !self.spend(&target)? {
                let message = format!(
                    "ConfigMap {} changed (resourceVersion {}), but the Deployment was restarted {} times in {} s already",
                    cm.name(),
                    cm.resource_version(),
                    self.budget.restarts,
                    self.budget.window_seconds
                );
                action::event(&target, "RestartBudgetExhausted", &message)
                    .warning()
                    .action("Restart")
                    .enqueue()?;
                warn!("not restarting {target}: {message}");
                continue;
            }
            let patch = json!({"spec": {"template": {"metadata": {"annotations": {annotation.clone(): cm.resource_version()}}}}});
            action::merge_patch(&target, patch).enqueue()?;
            let message = format!(
                "ConfigMap {} changed (resourceVersion {})",
                cm.name(),
                cm.resource_version()
            );
            action::event(&target, "ConfigMapChanged", &message)
                .action("Restart")
                .enqueue()?;
            info!("restarting {target}: {message}");
        }
        debug!(
            "{} Deployments reference a ConfigMap named {}",
            keys.len(),
            cm.name()
        );
        Ok(())
    }
}

informant_sdk::export_plugin!(Restarter);
