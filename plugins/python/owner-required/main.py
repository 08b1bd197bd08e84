"""owner-required, in Python: the twin of plugins/owner-required.

A validating admission webhook that reads the cluster: in a namespace
labelled ``informant.dev/owner-required=true``, a Deployment without an
``owner`` label is refused, with a message that names the Deployment and the
namespace; in other namespaces it is allowed. The namespace's labels come
from the host's cache. A namespace the cache does not hold yet is an error,
so the failure policy (Fail) refuses the request rather than guess.

Settings (optional): ``{"label": "owner"}``, the label required.
"""

from informant import Error, Manifest, Plugin, Response, Rule, Webhook, cache, log

OPT_IN = "informant.dev/owner-required"


class OwnerRequired(Plugin):
    def describe(self):
        return (
            Manifest("owner-required", "0.1.0")
            .reads("v1", "Namespace")
            .webhook(
                Webhook.validating()
                .rule(Rule("apps", "v1", "deployments", operations=["create", "update"], scope="namespaced"))
                .timeout(5)
            )
        )

    def init(self, settings):
        settings = settings or {}
        unknown = set(settings) - {"label"}
        if unknown:
            raise Error(f"unknown settings {sorted(unknown)}; known: ['label']", "invalid")
        self.label = settings.get("label", "owner")
        if not self.label:
            raise Error("label must not be empty", "invalid")

    def handle(self, event):
        # Namespaces are read, not subscribed to: no event comes here.
        pass

    def review(self, request):
        namespace, obj = request.namespace, request.object
        if namespace is None or obj is None:
            return Response.allow()
        ns = cache.get("v1", "Namespace", namespace)
        if ns is None:
            raise Error(f"namespace {namespace} is not in the cache yet; try again in a moment", "not-found")
        if ns.label(OPT_IN) != "true":
            log.debug(f"{request.describe()}: namespace {namespace} does not require an owner")
            return Response.allow()
        if obj.label(self.label):
            return Response.allow()
        return Response.deny(
            f'{request.describe()} has no "{self.label}" label, and namespace {namespace} requires one '
            f"({OPT_IN}=true): add metadata.labels.{self.label}"
        )
