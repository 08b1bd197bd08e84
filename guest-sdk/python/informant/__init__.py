"""Write Informant plugins in Python.

A plugin is one subclass of :class:`Plugin` in one file::

    from informant import Plugin, Manifest, Subscription, action, log

    class Hello(Plugin):
        def describe(self):
            return (Manifest("hello", "0.1.0")
                    .subscribe(Subscription("v1", "ConfigMap", events=["added"]))
                    .writes("v1", "ConfigMap", ["patch"]))

        def handle(self, event):
            cm = event.object
            if cm.label("greeted") is None:
                log.info(f"greeting {cm.ref}")
                action.merge_patch(cm, {"metadata": {"labels": {"greeted": "yes"}}})

Build it into a component with ``python3 guest-sdk/python/build.py hello.py``.

Actions, and writes to the plugin's :data:`state` store, are committed only
if ``handle`` returns normally; raising discards them. Raise :class:`Error` to
choose the error code the host logs.
"""

from .admission import Request, Response, Rule, Webhook
from .error import Error
from .event import Event, EventType, Object, ObjectRef
from .manifest import Index, Manifest, StateTier, Subscription, Verb
from .plugin import Plugin
from .state import state
from . import action, cache, log

__all__ = [
    "Error",
    "Event",
    "EventType",
    "Index",
    "Manifest",
    "Object",
    "ObjectRef",
    "Plugin",
    "Request",
    "Response",
    "Rule",
    "StateTier",
    "Subscription",
    "Verb",
    "Webhook",
    "action",
    "cache",
    "log",
    "state",
]
