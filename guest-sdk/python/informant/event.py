"""Events and the objects they carry."""

import json
from typing import Any, Dict, Literal, Optional, Tuple

from ._bindings import name_of
from ._bindings import types as wit

EventType = Literal["added", "modified", "deleted", "synced", "resync"]
"""The type of an event, as the contract names it."""

EVENT_TYPES: Tuple[EventType, ...] = ("added", "modified", "deleted", "synced", "resync")


class ObjectRef:
    """Names one object: ``ObjectRef("v1", "ConfigMap", "settings", namespace="shop")``."""

    __slots__ = ("api_version", "kind", "name", "namespace")

    def __init__(self, api_version: str, kind: str, name: str, namespace: Optional[str] = None) -> None:
        self.api_version = api_version
        self.kind = kind
        self.name = name
        self.namespace = namespace

    @classmethod
    def of(cls, target: Any) -> "ObjectRef":
        """An ``ObjectRef`` from an ``ObjectRef``, an :class:`Object` or a dict."""
        if isinstance(target, ObjectRef):
            return target
        if isinstance(target, Object):
            return target.ref
        if isinstance(target, dict):
            return Object(target).ref
        raise TypeError(f"expected an ObjectRef or an object, got {type(target).__name__}")

    def to_wit(self) -> Any:
        return wit.ObjectRef(self.api_version, self.kind, self.namespace, self.name)

    @classmethod
    def from_wit(cls, r: Any) -> "ObjectRef":
        return cls(r.api_version, r.kind, r.name, r.namespace)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectRef) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> Tuple[str, str, Optional[str], str]:
        return (self.api_version, self.kind, self.namespace, self.name)

    def __str__(self) -> str:
        if self.namespace is None:
            return f"{self.kind} {self.name}"
        return f"{self.kind} {self.namespace}/{self.name}"

    def __repr__(self) -> str:
        return f"ObjectRef({self.api_version!r}, {self.kind!r}, {self.name!r}, namespace={self.namespace!r})"


def _step(value: Any, step: str) -> Any:
    if isinstance(value, list):
        if not step.isdigit() or int(step) >= len(value):
            return None
        return value[int(step)]
    if isinstance(value, dict):
        # dict's own get: an Object's get takes paths.
        return dict.get(value, step)
    return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class Object(Dict[str, Any]):
    """A Kubernetes object: the parsed JSON, plus shortcuts.

    It is a ``dict``, so ``obj["spec"]["replicas"]`` works; ``get`` also takes
    dotted paths, where a number indexes a list: ``obj.get("spec.replicas")``,
    ``obj.get("spec.containers.0.image")``.
    """

    def get(self, path: str, default: Any = None) -> Any:
        value = self
        for step in path.split("."):
            if step == "":
                continue
            value = _step(value, step)
            if value is None:
                return default
        return value

    @property
    def metadata(self) -> Dict[str, Any]:
        return dict.get(self, "metadata") or {}

    @property
    def api_version(self) -> str:
        return _text(dict.get(self, "apiVersion"))

    @property
    def kind(self) -> str:
        return _text(dict.get(self, "kind"))

    @property
    def name(self) -> str:
        return _text(self.metadata.get("name"))

    @property
    def namespace(self) -> Optional[str]:
        namespace = self.metadata.get("namespace")
        return namespace if isinstance(namespace, str) else None

    @property
    def uid(self) -> str:
        return _text(self.metadata.get("uid"))

    @property
    def resource_version(self) -> str:
        return _text(self.metadata.get("resourceVersion"))

    @property
    def labels(self) -> Dict[str, str]:
        return self.metadata.get("labels") or {}

    @property
    def annotations(self) -> Dict[str, str]:
        return self.metadata.get("annotations") or {}

    def label(self, key: str) -> Optional[str]:
        return self.labels.get(key)

    def annotation(self, key: str) -> Optional[str]:
        return self.annotations.get(key)

    @property
    def ref(self) -> ObjectRef:
        """The :class:`ObjectRef` naming this object."""
        return ObjectRef(self.api_version, self.kind, self.name, self.namespace)

    @classmethod
    def parse(cls, text: str) -> "Object":
        return cls(json.loads(text)) if text else cls()


class Event:
    """One event: ``type`` is ``added``, ``modified``, ``deleted``, ``synced``
    or ``resync``; ``object`` is an :class:`Object` (empty for ``synced``).
    ``merged`` says how many earlier events of the object were merged into
    this one while it waited (0: none); ``object`` is then the newest state."""

    __slots__ = ("type", "subscription", "initial", "final_state_unknown", "object", "old_object",
                 "merged")

    def __init__(self, type: str, object: Object, subscription: int = 0, initial: bool = False,
                 final_state_unknown: bool = False, old_object: Optional[Object] = None,
                 merged: int = 0) -> None:
        self.type = type
        self.object = object
        self.subscription = subscription
        self.initial = initial
        self.final_state_unknown = final_state_unknown
        self.old_object = old_object
        self.merged = merged

    @classmethod
    def from_wit(cls, e: Any) -> "Event":
        return cls(
            name_of(e.event_type),
            Object.parse(e.object),
            subscription=e.subscription,
            initial=e.initial,
            final_state_unknown=e.final_state_unknown,
            old_object=Object.parse(e.old_object) if e.old_object is not None else None,
            merged=e.merged,
        )

    @property
    def is_upsert(self) -> bool:
        """The object exists now: added, modified or resynced."""
        return self.type in ("added", "modified", "resync")

    def __repr__(self) -> str:
        return f"Event({self.type!r}, {self.object.ref})"
