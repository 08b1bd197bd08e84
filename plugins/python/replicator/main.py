"""replicator, in Python: the twin of plugins/replicator.

Copies every ConfigMap and Secret labelled ``informant.dev/replicate=true`` into
every other namespace, including namespaces created later, and removes the
copies when the source goes. Copies are applied server-side, so re-running is
harmless; they carry the label ``informant.dev/replica=true`` and the
annotation ``informant.dev/replicated-from: <namespace>/<name>``.

Settings (optional): ``{"excludeNamespaces": ["kube-system"]}``
"""

from informant import Error, Manifest, ObjectRef, Plugin, Subscription, action, cache, log

SELECTOR = "informant.dev/replicate=true"
SOURCE_KINDS = ["ConfigMap", "Secret"]
COPIED_FIELDS = ["data", "binaryData", "stringData", "type", "immutable"]


def copy_of(source, namespace):
    """The copy of ``source`` for ``namespace``: only what the replicator owns."""
    copy = {
        "apiVersion": "v1",
        "kind": source.kind,
        "metadata": {
            "name": source.name,
            "namespace": namespace,
            "labels": {"informant.dev/replica": "true"},
            "annotations": {"informant.dev/replicated-from": f"{source.namespace or ''}/{source.name}"},
        },
    }
    for field in COPIED_FIELDS:
        if field in source:
            copy[field] = source[field]
    return copy


class Replicator(Plugin):
    def describe(self):
        manifest = Manifest("replicator", "0.1.0")
        for kind in SOURCE_KINDS:
            events = ["added", "modified", "deleted", "resync"]
            manifest.subscribe(Subscription("v1", kind, label_selector=SELECTOR, events=events))
            manifest.writes("v1", kind, ["apply", "delete"])
        return manifest.subscribe(Subscription("v1", "Namespace", events=["added"]))

    def init(self, settings):
        settings = dict(settings or {})
        exclude = settings.pop("excludeNamespaces", ["kube-system", "kube-public", "kube-node-lease"])
        if settings:
            raise Error(f"unknown settings {sorted(settings)}; known: ['excludeNamespaces']", "invalid")
        self.exclude = set(exclude)

    def targets(self, source_namespace):
        """Every namespace a copy of an object in ``source_namespace`` belongs in."""
        return [
            ref.name
            for ref in cache.list_keys("v1", "Namespace")
            if ref.name != source_namespace and ref.name not in self.exclude
        ]

    def replicate(self, source, namespaces):
        for ns in namespaces:
            action.apply(copy_of(source, ns))
        if namespaces:
            log.info(f"{source.ref}: applied {len(namespaces)} copies")

    def handle(self, event):
        obj = event.object
        if obj.kind == "Namespace":
            # Sources already present are replicated by their own initial
            # events; a namespace created later needs every source.
            if event.initial or obj.name in self.exclude:
                return
            for kind in SOURCE_KINDS:
                for source in cache.list("v1", kind, label_selector=SELECTOR):
                    if source.namespace != obj.name:
                        self.replicate(source, [obj.name])
            return
        targets = self.targets(obj.namespace)
        if event.type == "deleted":
            for ns in targets:
                action.delete(ObjectRef("v1", obj.kind, obj.name, ns))
            log.info(f"{obj.ref}: deleted; removing {len(targets)} copies")
        else:
            self.replicate(obj, targets)
