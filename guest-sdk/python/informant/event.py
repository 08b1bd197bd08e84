"""Events and the objects they carry."""

import json

from wit_world.imports import types as wit

EVENT_TYPES = {
    wit.EventType.ADDED: "added",
    wit.EventType.MODIFIED: "modified",
    wit.EventType.DELETED: "deleted",
    wit.EventType.SYNCED: "synced",
    wit.EventType.RESYNC: "resync",
}


class ObjectRef:
    """Names one object: ``ObjectRef("v1", "ConfigMap", "settings", namespace="shop")``."""

    __slots__ = ("api_version", "kind", "name", "namespace")

    def __init__(self, api_version, kind, name, namespace=None):
        self.api_version = api_version
        self.kind = kind
        self.name = name
        self.namespace = namespace

    @classmethod
    def of(cls, target):
        """An ``ObjectRef`` from an ``ObjectRef``, an :class:`Object` or a dict."""
        if isinstance(target, ObjectRef):
            return target
        if isinstance(target, Object):
            return target.ref
        if isinstance(target, dict):
            return Object(target).ref
        raise TypeError(f"expected an ObjectRef or an object, got {type(target).__name__}")

    def to_wit(self):
        return wit.ObjectRef(self.api_version, self.kind, self.namespace, self.name)

    @classmethod
    def from_wit(cls, r):
        return cls(r.api_version, r.kind, r.name, r.namespace)

    def __eq__(self, other):
        return isinstance(other, ObjectRef) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def _key(self):
        return (self.api_version, self.kind, self.namespace, self.name)

    def __str__(self):
        if self.namespace is None:
            return f"{self.kind} {self.name}"
        return f"{self.kind} {self.namespace}/{self.name}"

    def __repr__(self):
        return f"ObjectRef({self.api_version!r}, {self.kind!r}, {self.name!r}, namespace={self.namespace!r})"


def _step(value, step):
    if isinstance(value, list):
        if not step.isdigit() or int(step) >= len(value):
            return None
        return value[int(step)]
    if isinstance(value, dict):
        # dict's own get: an Object's get takes paths.
        return dict.get(value, step)
    return None


class Object(dict):
    """A Kubernetes object: the parsed JSON, plus shortcuts.

    It is a ``dict``, so ``obj["spec"]["replicas"]`` works; ``get`` also takes
    dotted paths, where a number indexes a list: ``obj.get("spec.replicas")``,
    ``obj.get("spec.containers.0.image")``.
    """

    def get(self, path, default=None):
        value = self
        for step in path.split("."):
            if step == "":
                continue
            value = _step(value, step)
            if value is None:
                return default
        return value

    @property
    def metadata(self):
        return dict.get(self, "metadata") or {}

    @property
    def api_version(self):
        return dict.get(self, "apiVersion", "")

    @property
    def kind(self):
        return dict.get(self, "kind", "")

    @property
    def name(self):
        return self.metadata.get("name", "")

    @property
    def namespace(self):
        return self.metadata.get("namespace")

    @property
    def uid(self):
        return self.metadata.get("uid", "")

    @property
    def resource_version(self):
        return self.metadata.get("resourceVersion", "")

    @property
    def labels(self):
        return self.metadata.get("labels") or {}

    @property
    def annotations(self):
        return self.metadata.get("annotations") or {}

    def label(self, key):
        return self.labels.get(key)

    def annotation(self, key):
        return self.annotations.get(key)

    @property
    def ref(self):
        """The :class:`ObjectRef` naming this object."""
        return ObjectRef(self.api_version, self.kind, self.name, self.namespace)

    @classmethod
    def parse(cls, text):
        return cls(json.loads(text)) if text else cls()


class Event:
    """One event: ``type`` is ``added``, ``modified``, ``deleted``, ``synced``
    or ``resync``; ``object`` is an :class:`Object` (empty for ``synced``).
    ``merged`` says how many earlier events of the object were merged into
    this one while it waited (0: none); ``object`` is then the newest state."""

    __slots__ = ("type", "subscription", "initial", "final_state_unknown", "object", "old_object",
                 "merged")

    def __init__(self, type, object, subscription=0, initial=False,
                 final_state_unknown=False, old_object=None, merged=0):
        self.type = type
        self.object = object
        self.subscription = subscription
        self.initial = initial
        self.final_state_unknown = final_state_unknown
        self.old_object = old_object
        self.merged = merged

    @classmethod
    def from_wit(cls, e):
        return cls(
            EVENT_TYPES[e.event_type],
            Object.parse(e.object),
            subscription=e.subscription,
            initial=e.initial,
            final_state_unknown=e.final_state_unknown,
            old_object=Object.parse(e.old_object) if e.old_object is not None else None,
            merged=e.merged,
        )

    @property
    def is_upsert(self):
        """The object exists now: added, modified or resynced."""
        return self.type in ("added", "modified", "resync")

    def __repr__(self):
        return f"Event({self.type!r}, {self.object.ref})"
