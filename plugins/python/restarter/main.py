"""restarter, in Python: the twin of plugins/restarter.

When a ConfigMap's data changes, rolls the Deployments that use it (as a
volume or through ``envFrom``) by patching an annotation on their pod
template, and records a Kubernetes Event on each. The Deployments are found
through an index the host keeps (ConfigMap name -> Deployments).

Each Deployment has a restart budget (settings ``budget``: 3 restarts per
3600 s unless given). The count lives in the plugin's store, in the durable
tier, shared by every instance, a reloaded version and a restarted or newly
elected host, and expires with the window. Past the budget the restarter
records a Warning Event instead of restarting.

Settings (optional): ``{"budget": {"restarts": 3, "windowSeconds": 3600}}``
"""

from informant import Error, Manifest, Plugin, Subscription, action, cache, log, state

INDEX = "configmap-users"
ANNOTATION_PREFIX = "informant.dev/configmap-"


class Restarter(Plugin):
    def describe(self):
        return (
            Manifest("restarter", "0.1.0")
            .subscribe(Subscription("v1", "ConfigMap", events=["modified", "synced"],
                                    latest_state=True, old_object=True))
            .index(INDEX, "apps/v1", "Deployment", [
                "spec.template.spec.volumes[*].configMap.name",
                "spec.template.spec.containers[*].envFrom[*].configMapRef.name",
            ])
            .reads("apps/v1", "Deployment")
            .writes("apps/v1", "Deployment", ["patch"])
            .events()
            .state("durable")
        )

    def init(self, settings):
        settings = settings or {}
        budget = settings.get("budget") or {}
        unknown = sorted(set(settings) - {"budget"}) + sorted(
            f"budget.{k}" for k in set(budget) - {"restarts", "windowSeconds"})
        if unknown:
            raise Error(f"unknown settings: {', '.join(unknown)}", "invalid")
        self.restarts = int(budget.get("restarts", 3))
        self.window = int(budget.get("windowSeconds", 3600))
        if self.restarts < 0 or self.window <= 0:
            raise Error("budget: restarts must be 0 or more, windowSeconds more than 0", "invalid")

    def spend(self, deployment):
        """Take one restart from the Deployment's budget; False if none is left."""
        key = f"restarts/{deployment}"
        used = state.get(key, 0)
        if used >= self.restarts:
            return False
        if used == 0:
            # The window starts with the first restart.
            state.set(key, 0, ttl=self.window)
        state.increment(key)
        return True

    def handle(self, event):
        if event.type == "synced":
            log.info(f"watching {len(cache.index_values(INDEX))} ConfigMap names used by Deployments")
            return
        cm = event.object
        old = event.old_object
        if old is not None and (old.get("data"), old.get("binaryData")) == (cm.get("data"), cm.get("binaryData")):
            log.debug(f"{cm.ref}: only metadata changed")
            return
        annotation = ANNOTATION_PREFIX + cm.name
        keys = cache.by_index_keys(INDEX, cm.name)
        for deployment in cache.by_index(INDEX, cm.name):
            # Index keys are names; only Deployments in the ConfigMap's namespace use it.
            if deployment.namespace != cm.namespace:
                continue
            annotations = deployment.get("spec.template.metadata.annotations") or {}
            if annotations.get(annotation) == cm.resource_version:
                continue
            target = deployment.ref
            if not self.spend(target):
                message = (f"ConfigMap {cm.name} changed (resourceVersion {cm.resource_version}), "
                           f"but the Deployment was restarted {self.restarts} times in {self.window} s already")
                action.event(target, "RestartBudgetExhausted", message, action="Restart", warning=True)
                log.warn(f"not restarting {target}: {message}")
                continue
            patch = {"spec": {"template": {"metadata": {"annotations": {annotation: cm.resource_version}}}}}
            action.merge_patch(target, patch)
            message = f"ConfigMap {cm.name} changed (resourceVersion {cm.resource_version})"
            action.event(target, "ConfigMapChanged", message, action="Restart")
            log.info(f"restarting {target}: {message}")
        log.debug(f"{len(keys)} Deployments reference a ConfigMap named {cm.name}")
