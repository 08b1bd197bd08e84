"""Admission: a plugin that also validates or mutates requests before the API
server stores them. Declare the webhook with :class:`Webhook` in the
manifest and define ``review(self, request)`` on the plugin class; the build
script then builds it for the ``plugin-with-admission`` world::

    from informant import Manifest, Plugin, Response, Rule, Webhook

    class NoLatest(Plugin):
        def describe(self):
            return Manifest("no-latest", "0.1.0").webhook(
                Webhook.validating().rule(Rule("apps", "v1", "deployments")))

        def review(self, request):
            images = [c.get("image", "") for c in request.object.get("spec.template.spec.containers", [])]
            if any(i.endswith(":latest") for i in images):
                return Response.deny(f"{request.describe()}: images must not use :latest")
            return Response.allow()

A review reads the cache as ``handle`` does; it cannot enqueue actions (an
admission call has no side effects), and a refused read makes the host answer
with the webhook's failure policy.
"""

import json
from typing import Any, Dict, Iterable, List, Literal, Optional, Tuple

from ._bindings import member, name_of
from ._bindings import types as wit
from .event import Object

Operation = Literal["create", "update", "delete", "connect"]
"""An operation a webhook is called for."""

OPERATIONS: Tuple[Operation, ...] = ("create", "update", "delete", "connect")

Scope = Literal["all", "cluster", "namespaced"]
"""The objects a rule covers, by scope."""


def _check(names: Iterable[str], name: str, what: str) -> str:
    if name not in names:
        raise ValueError(f"unknown {what} {name!r}; one of {sorted(names)}")
    return name


class Rule:
    """The requests a webhook is called for: ``Rule("apps", "v1", "deployments",
    operations=["create", "update"], scope="namespaced")``. ``group`` is ``""``
    for the core group; resources may name a subresource (``"pods/status"``)
    or be ``"*"``. No operations means all of them."""

    def __init__(self, group: str, version: str, resources: "str | Iterable[str]",
                 operations: Iterable[Operation] = ("create", "update"),
                 scope: Scope = "all") -> None:
        self.group = group
        self.version = version
        self.resources = [resources] if isinstance(resources, str) else list(resources)
        self.operations = [_check(OPERATIONS, o, "operation") for o in operations]
        self.scope = _check(("all", "cluster", "namespaced"), scope, "scope")

    def to_wit(self) -> Any:
        return wit.WebhookRule(
            [member(wit.Operation, o) for o in self.operations],
            [self.group], [self.version], self.resources,
            member(wit.RuleScope, self.scope),
        )


class Webhook:
    """The admission webhook a plugin serves; the operator may narrow or
    override any of it. Build with :meth:`validating` or :meth:`mutating`."""

    def __init__(self, mode: Literal["validating", "mutating"]) -> None:
        self.mode = mode
        self.rules: List[Rule] = []
        self.namespace_selector: Optional[str] = None
        self.object_selector: Optional[str] = None
        self.conditions: List[Tuple[str, str]] = []
        self.fail = True
        self.timeout_seconds: Optional[int] = None

    @classmethod
    def validating(cls) -> "Webhook":
        """A webhook that allows or denies."""
        return cls("validating")

    @classmethod
    def mutating(cls) -> "Webhook":
        """A webhook that may also patch the object; it runs before every
        validating one."""
        return cls("mutating")

    def rule(self, rule: Rule) -> "Webhook":
        self.rules.append(rule)
        return self

    def namespaces(self, selector: str) -> "Webhook":
        """Only objects in namespaces whose labels match ``selector``."""
        self.namespace_selector = selector
        return self

    def objects(self, selector: str) -> "Webhook":
        """Only objects whose labels match ``selector``."""
        self.object_selector = selector
        return self

    def match_condition(self, name: str, expression: str) -> "Webhook":
        """A CEL condition the API server evaluates before calling."""
        self.conditions.append((name, expression))
        return self

    def ignore_failures(self) -> "Webhook":
        """Let requests through when the plugin cannot answer; by default
        they are refused."""
        self.fail = False
        return self

    def timeout(self, seconds: int) -> "Webhook":
        """How long the API server waits, 1 to 30 s (10 by default)."""
        self.timeout_seconds = seconds
        return self

    def to_wit(self) -> Any:
        return wit.Webhook(
            member(wit.AdmissionMode, self.mode),
            [r.to_wit() for r in self.rules],
            self.namespace_selector,
            self.object_selector,
            [wit.MatchCondition(n, e) for n, e in self.conditions],
            wit.FailurePolicy.FAIL if self.fail else wit.FailurePolicy.IGNORE,
            self.timeout_seconds,
        )


class Request:
    """One admission request. ``kind`` and ``resource`` are (group, version,
    kind) and (group, version, resource) tuples; ``object`` is ``None`` for a
    delete, ``old_object`` for a create; ``name`` is ``None`` for a create
    whose name the server generates; ``options`` is a dict or ``None``."""

    def __init__(self, uid: str, operation: str, kind: Tuple[str, str, str],
                 resource: Tuple[str, str, str], namespace: Optional[str] = None,
                 name: Optional[str] = None, object: Optional[Object] = None,
                 old_object: Optional[Object] = None, sub_resource: Optional[str] = None,
                 user_info: Optional[Dict[str, Any]] = None, dry_run: bool = False,
                 options: Optional[Dict[str, Any]] = None) -> None:
        self.uid = uid
        self.operation = operation
        self.kind = kind
        self.resource = resource
        self.namespace = namespace
        self.name = name
        self.object = object
        self.old_object = old_object
        self.sub_resource = sub_resource
        self.user_info = user_info or {}
        self.dry_run = dry_run
        self.options = options

    @classmethod
    def from_wit(cls, r: Any) -> "Request":
        return cls(
            r.uid, name_of(r.operation),
            (r.kind.group, r.kind.version, r.kind.kind),
            (r.resource.group, r.resource.version, r.resource.resource),
            namespace=r.namespace, name=r.name,
            object=Object.parse(r.object) if r.object is not None else None,
            old_object=Object.parse(r.old_object) if r.old_object is not None else None,
            sub_resource=r.sub_resource,
            user_info={"username": r.user_info.username, "uid": r.user_info.uid,
                       "groups": list(r.user_info.groups),
                       "extra": {k: list(v) for k, v in r.user_info.extra}},
            dry_run=r.dry_run,
            options=json.loads(r.options) if r.options else None,
        )

    def describe(self) -> str:
        """``Deployment shop/web`` for messages (``(generated name)`` when the
        server will generate it)."""
        name = self.name if self.name is not None else "(generated name)"
        if self.namespace is not None:
            return f"{self.kind[2]} {self.namespace}/{name}"
        return f"{self.kind[2]} {name}"

    def __repr__(self) -> str:
        return f"Request({self.operation} {self.describe()})"


class Response:
    """A plugin's answer: :meth:`allow`, :meth:`deny` or :meth:`patch`, with
    warnings added by :meth:`warn`."""

    def __init__(self, decision: str, message: str = "", code: int = 403,
                 patch: Optional[List[Any]] = None) -> None:
        self.decision = decision
        self.message = message
        self.code = code
        self.operations = patch or []
        self.warnings: List[str] = []

    @classmethod
    def allow(cls) -> "Response":
        """Let the request through."""
        return cls("allow")

    @classmethod
    def deny(cls, message: str, code: int = 403) -> "Response":
        """Refuse it: say what is wrong and how to fix it."""
        return cls("deny", message=message, code=code)

    @classmethod
    def patch(cls, operations: List[Any]) -> "Response":
        """Let it through changed by a JSON patch (a list of RFC 6902
        operations on the request's object); only for a mutating webhook."""
        if not operations:
            return cls.allow()
        return cls("patch", patch=list(operations))

    def warn(self, warning: str) -> "Response":
        """Add a warning for the user, whatever the answer."""
        self.warnings.append(warning)
        return self

    @property
    def allowed(self) -> bool:
        return self.decision != "deny"

    def to_wit(self) -> Any:
        from ._bindings import admission
        if self.decision == "deny":
            decision = admission.Decision_Deny(admission.Denial(self.message, self.code))
        elif self.decision == "patch":
            decision = admission.Decision_Patch(json.dumps(self.operations))
        else:
            decision = admission.Decision_Allow()
        return admission.Response(decision, self.warnings)

    def __repr__(self) -> str:
        return f"Response({self.decision}{': ' + self.message if self.message else ''})"
