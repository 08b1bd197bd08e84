"""What a plugin declares: subscriptions, indexes, permissions, resources."""

from typing import Any, Iterable, List, Literal, Optional, Tuple, Union

from ._bindings import member
from ._bindings import types as wit
from .event import EVENT_TYPES, EventType

Verb = Literal["apply", "create", "patch", "patch-status", "delete"]
"""What a plugin may do to a kind."""

VERBS: Tuple[Verb, ...] = ("apply", "create", "patch", "patch-status", "delete")

StateTier = Literal["memory", "durable"]
"""Where the plugin's store is kept."""

STATE_TIERS: Tuple[StateTier, ...] = ("memory", "durable")


def _check(names: Iterable[str], name: str, what: str) -> str:
    if name not in names:
        raise ValueError(f"unknown {what} {name!r}; one of {sorted(names)}")
    return name


class Subscription:
    """Events of one kind: ``Subscription("apps/v1", "Deployment",
    namespace=None, label_selector=None, field_selector=None,
    events=["added", "modified"], latest_state=False, old_object=False,
    resync_seconds=None, fields=None)``. ``events`` empty or omitted means all
    types. ``fields`` lists the fields the plugin reads (``["metadata.labels",
    "spec.nodeName"]``), so that the host may keep only those in its cache;
    events and cache reads then carry only what is kept (the annotation
    ``informant.dev/projection`` says which). None: whole objects."""

    def __init__(self, api_version: str, kind: str, namespace: Optional[str] = None,
                 label_selector: Optional[str] = None, field_selector: Optional[str] = None,
                 events: Iterable[EventType] = (), latest_state: bool = False,
                 old_object: bool = False, resync_seconds: Optional[int] = None,
                 fields: Optional[Iterable[str]] = None) -> None:
        self.api_version = api_version
        self.kind = kind
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.events = [_check(EVENT_TYPES, e, "event type") for e in events]
        self.latest_state = latest_state
        self.old_object = old_object
        self.resync_seconds = resync_seconds
        self.fields = None if fields is None else [fields] if isinstance(fields, str) else list(fields)

    def to_wit(self) -> Any:
        delivery = wit.Delivery.LATEST_STATE if self.latest_state else wit.Delivery.EVERY_EVENT
        return wit.Subscription(
            self.api_version, self.kind, self.namespace, self.label_selector,
            self.field_selector, [member(wit.EventType, e) for e in self.events], delivery,
            self.old_object, self.resync_seconds, self.fields,
        )


class Index:
    """An index over the cache: ``Index("by-node", "v1", "Pod", ["spec.nodeName"])``."""

    def __init__(self, name: str, api_version: str, kind: str,
                 field_paths: Union[str, Iterable[str]]) -> None:
        self.name = name
        self.api_version = api_version
        self.kind = kind
        self.field_paths = [field_paths] if isinstance(field_paths, str) else list(field_paths)

    def to_wit(self) -> Any:
        return wit.Index(self.name, self.api_version, self.kind, self.field_paths)


class Manifest:
    """The plugin's name, version and needs, built by chaining::

        Manifest("audit", "1.0.0").subscribe(Subscription("v1", "Secret")).reads("v1", "Namespace")
    """

    def __init__(self, name: str, version: str) -> None:
        self.name = name
        self.version = version
        self.subscriptions: List[Subscription] = []
        self.indexes: List[Index] = []
        self.read_kinds: List[Any] = []
        self.write_grants: List[Any] = []
        self.memory_mib: Optional[int] = None
        self.deadline_ms: Optional[int] = None
        self.max_instances: Optional[int] = None
        self.admission: Optional[Any] = None
        self.state_request: Optional[Tuple[StateTier, Optional[int], Optional[int], Optional[int]]] = None

    def subscribe(self, subscription: Subscription) -> "Manifest":
        self.subscriptions.append(subscription)
        return self

    def index(self, name: str, api_version: str, kind: str,
              field_paths: Union[str, Iterable[str]]) -> "Manifest":
        self.indexes.append(Index(name, api_version, kind, field_paths))
        return self

    def reads(self, api_version: str, kind: str) -> "Manifest":
        self.read_kinds.append(wit.KindRef(api_version, kind))
        return self

    def writes(self, api_version: str, kind: str, verbs: Iterable[Verb]) -> "Manifest":
        names = [_check(VERBS, v, "verb") for v in verbs]
        self.write_grants.append(
            wit.WritePermission(api_version, kind, [member(wit.Verb, v) for v in names]))
        return self

    def events(self) -> "Manifest":
        """Allow emitting Kubernetes Events."""
        return self.writes("events.k8s.io/v1", "Event", ["create"])

    def memory(self, mib: int) -> "Manifest":
        """Ask for this much linear memory, within the operator's maximum."""
        self.memory_mib = mib
        return self

    def deadline(self, ms: int) -> "Manifest":
        """Ask for this deadline per call, within the operator's maximum. It is
        wall-clock time: on a busy host a call gets less CPU within it."""
        self.deadline_ms = ms
        return self

    def instances(self, n: int) -> "Manifest":
        """How many instances may run calls at once. By default the host runs
        one per core, in parallel, each with its own memory: attributes of the
        plugin and module globals are then per instance. With 1, every call
        runs on one instance, one at a time, in delivery order, so state kept
        in the plugin is consistent (until the instance is replaced after a
        trap or a reload)."""
        self.max_instances = n
        return self

    def webhook(self, webhook: Any) -> "Manifest":
        """Serve an admission webhook (an :class:`informant.Webhook`); the
        plugin class then defines ``review(self, request)``. A plugin with a
        webhook needs no subscription."""
        self.admission = webhook
        return self

    def state(self, tier: StateTier = "memory", max_keys: Optional[int] = None,
              max_value_bytes: Optional[int] = None,
              max_total_bytes: Optional[int] = None) -> "Manifest":
        """Where to keep the plugin's store (:data:`informant.state`):
        ``memory`` (the default; lost when the host stops) or ``durable`` (in
        the cluster), and quotas other than the host's defaults, within the
        operator's maximum."""
        _check(STATE_TIERS, tier, "state tier")
        self.state_request = (tier, max_keys, max_value_bytes, max_total_bytes)
        return self

    def to_wit(self) -> Any:
        state = None
        if self.state_request is not None:
            tier, keys, value_bytes, total_bytes = self.state_request
            state = wit.StateRequest(member(wit.StateTier, tier), keys, value_bytes, total_bytes)
        return wit.Manifest(
            self.name,
            self.version,
            [s.to_wit() for s in self.subscriptions],
            [i.to_wit() for i in self.indexes],
            wit.Permissions(self.read_kinds, self.write_grants),
            wit.ResourceRequest(self.memory_mib, self.deadline_ms, self.max_instances),
            state,
            self.admission.to_wit() if self.admission is not None else None,
        )
