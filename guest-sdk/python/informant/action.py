"""Actions: changes the host makes to the cluster after ``handle`` returns.

Each function enqueues at once and raises :class:`informant.Error` if the
host refuses (``forbidden`` when the manifest does not grant it). A target
is an :class:`ObjectRef` or an object (its ``ref`` is used).
"""

import json
from typing import Any, Dict, List, Optional, Union

from ._bindings import actions as wit
from .error import host_call
from .event import Object, ObjectRef

Target = Union[ObjectRef, Object, Dict[str, Any]]
"""What names an object: a reference, or the object itself."""


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _patch(target: Target, patch: Any) -> Any:
    return wit.PatchAction(ObjectRef.of(target).to_wit(), _json(patch))


def enqueue(action: Any) -> None:
    """Enqueue a raw ``wit_world.imports.actions.Action``."""
    host_call(wit.enqueue, action)


def apply(obj: Union[Dict[str, Any], str], force: bool = False) -> None:
    """Server-side apply of ``obj`` (apiVersion, kind, metadata.name and the
    fields the plugin owns). ``force`` takes fields other managers own."""
    enqueue(wit.Action_Apply(wit.ApplyAction(_json(obj), force)))


def create(obj: Union[Dict[str, Any], str]) -> None:
    """Create ``obj``; an existing object is left alone."""
    enqueue(wit.Action_Create(_json(obj)))


def merge_patch(target: Target, patch: Union[Dict[str, Any], str]) -> None:
    """A JSON merge patch (RFC 7386) of ``target``."""
    enqueue(wit.Action_MergePatch(_patch(target, patch)))


def json_patch(target: Target, operations: Union[List[Any], str]) -> None:
    """A JSON patch (RFC 6902): a list of operations."""
    enqueue(wit.Action_JsonPatch(_patch(target, operations)))


def patch_status(target: Target, patch: Union[Dict[str, Any], str]) -> None:
    """A merge patch of ``target``'s status subresource."""
    enqueue(wit.Action_PatchStatus(_patch(target, patch)))


def delete(target: Target, uid: Optional[str] = None, resource_version: Optional[str] = None) -> None:
    """Delete ``target``, only if it still has ``uid`` / ``resource_version`` when given."""
    enqueue(wit.Action_Delete(wit.DeleteAction(ObjectRef.of(target).to_wit(), uid, resource_version)))


def event(regarding: Target, reason: str, message: str, action: str = "", warning: bool = False) -> None:
    """A Kubernetes Event about ``regarding``; needs ``Manifest.events()``."""
    severity = wit.EventSeverity.WARNING if warning else wit.EventSeverity.NORMAL
    enqueue(wit.Action_EmitEvent(wit.EventAction(
        ObjectRef.of(regarding).to_wit(), severity, reason, message, action or reason)))


def requeue_after(target: Target, delay_ms: int) -> None:
    """Deliver ``target`` to this plugin again as a ``resync`` event after ``delay_ms``."""
    enqueue(wit.Action_RequeueAfter(wit.RequeueAction(ObjectRef.of(target).to_wit(), int(delay_ms))))
