"""The ``Plugin`` base class and the adapter that exports it to the host."""

import json
import traceback
from typing import Any, List, Optional, Type

from ._bindings import Err
from .error import Error
from .event import Event

_registered: "List[Type[Plugin]]" = []


class Plugin:
    """Subclass this once per plugin file.

    - ``describe(self)`` returns a :class:`informant.Manifest`; it runs on a
      fresh instance and must not depend on settings.
    - ``init(self, settings)`` receives the parsed settings (``None`` when
      none were given); raise :class:`informant.Error` to refuse them.
    - ``handle(self, event)`` receives each :class:`informant.Event`.

    An instance serves many calls, but the host runs several at once (one
    per core), each with its own attributes, and replaces them after a trap,
    a reload or a call that grew their memory: attributes are a per-instance
    cache. ``Manifest.instances(1)`` runs every call on one instance, in order.
    """

    settings: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _registered.append(cls)

    def describe(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define describe()")

    def init(self, settings: Any) -> None:
        self.settings = settings

    def handle(self, event: Event) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define handle(event)")

    # A plugin that serves an admission webhook defines
    # ``review(self, request) -> Response`` (see informant.admission).


def plugin_class() -> "Type[Plugin]":
    """The one ``Plugin`` subclass the plugin file defines (the last one wins)."""
    if not _registered:
        raise Error("the plugin file defines no subclass of informant.Plugin", "invalid")
    return _registered[-1]


def _as_wit_error(exc: BaseException) -> Any:
    if isinstance(exc, Error):
        return exc.to_wit()
    # Anything else is a bug in the plugin: say where.
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return Error(f"{type(exc).__name__}: {exc}{where}", "failed").to_wit()


# The plugin instance lives here, not on the exported class: the bindings may
# build a new exported object for each call.
_instance: "List[Optional[Plugin]]" = [None]


class World:
    """What the component exports; the build script names it ``WitWorld``."""

    def describe(self) -> Any:
        return plugin_class()().describe().to_wit()

    def init(self, settings: str) -> None:
        try:
            plugin = plugin_class()()
            plugin.init(json.loads(settings) if settings else None)
            _instance[0] = plugin
        except Exception as exc:
            raise Err(_as_wit_error(exc))

    def handle(self, event: Any) -> None:
        try:
            plugin = _instance[0]
            if plugin is None:
                raise Error("handle before init", "failed")
            plugin.handle(Event.from_wit(event))
        except Exception as exc:
            raise Err(_as_wit_error(exc))


class Admission:
    """The ``admission`` export of a plugin that defines ``review``; the build
    script exports it for the ``plugin-with-admission`` world."""

    def review(self, request: Any) -> Any:
        from .admission import Request, Response
        try:
            plugin = _instance[0]
            if plugin is None:
                raise Error("review before init", "failed")
            review = getattr(plugin, "review", None)
            if review is None:
                raise Error(f"{type(plugin).__name__} serves a webhook but defines no review(request)", "failed")
            response = review(Request.from_wit(request))
            if not isinstance(response, Response):
                raise Error(f"review returned {type(response).__name__}, not informant.Response", "failed")
            return response.to_wit()
        except Exception as exc:
            raise Err(_as_wit_error(exc))
