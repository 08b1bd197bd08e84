"""label-enforcer, in Python: the twin of plugins/label-enforcer.

Every ConfigMap and Deployment carries the labels the platform team requires,
with values from an allowed set:

- a missing required label is added with its default, by a merge patch;
- a label whose value is not allowed is reset to the first allowed value, by
  a JSON patch guarded with a ``test`` operation, so that a concurrent change
  by someone else is never overwritten;
- namespaces labelled ``informant.dev/enforce-labels=disabled`` are skipped.

Settings (all optional)::

    {"required": {"owner": "unassigned"},
     "allowed": {"env": ["dev", "staging", "prod"]},
     "ignoreNamespaces": ["kube-system"]}
"""

from informant import Error, Manifest, Plugin, Subscription, action, cache, log

EVENTS = ["added", "modified", "resync"]
DEFAULTS = {
    "required": {"owner": "unassigned"},
    "allowed": {},
    "ignoreNamespaces": ["kube-system", "kube-public", "kube-node-lease"],
}


def pointer_escape(key):
    """A label key as one JSON pointer step (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


class LabelEnforcer(Plugin):
    def describe(self):
        return (
            Manifest("label-enforcer", "0.1.0")
            .subscribe(Subscription("v1", "ConfigMap", events=EVENTS, latest_state=True))
            .subscribe(Subscription("apps/v1", "Deployment", events=EVENTS, latest_state=True))
            .reads("v1", "Namespace")
            .writes("v1", "ConfigMap", ["patch"])
            .writes("apps/v1", "Deployment", ["patch"])
        )

    def init(self, settings):
        settings = settings or {}
        unknown = set(settings) - set(DEFAULTS)
        if unknown:
            raise Error(f"unknown settings {sorted(unknown)}; known: {sorted(DEFAULTS)}", "invalid")
        self.config = {**DEFAULTS, **settings}
        for key, values in self.config["allowed"].items():
            if not values:
                raise Error(f"allowed.{key} lists no value", "invalid")

    def handle(self, event):
        obj = event.object
        namespace = obj.namespace
        if namespace is None or namespace in self.config["ignoreNamespaces"]:
            return
        ns = cache.get("v1", "Namespace", namespace)
        if ns is not None and ns.label("informant.dev/enforce-labels") == "disabled":
            log.debug(f"{obj.ref} skipped: its namespace opts out")
            return

        missing = {k: v for k, v in self.config["required"].items() if obj.label(k) is None}
        if missing:
            log.info(f"{obj.ref}: adding labels {missing}")
            action.merge_patch(obj, {"metadata": {"labels": missing}})

        operations = []
        for key, allowed in self.config["allowed"].items():
            value = obj.label(key)
            if value is not None and value not in allowed:
                path = "/metadata/labels/" + pointer_escape(key)
                log.info(f"{obj.ref}: label {key}={value} is not allowed; resetting it to {allowed[0]}")
                operations.append({"op": "test", "path": path, "value": value})
                operations.append({"op": "replace", "path": path, "value": allowed[0]})
        if operations:
            action.json_patch(obj, operations)
