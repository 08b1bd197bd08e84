"""The ``Plugin`` base class and the adapter that exports it to the host."""

import json
import traceback

from componentize_py_types import Err

from .error import Error
from .event import Event

_registered = []


class Plugin:
    """Subclass this once per plugin file.

    - ``describe(self)`` returns a :class:`informant.Manifest`; it runs on a
      fresh instance and must not depend on settings.
    - ``init(self, settings)`` receives the parsed settings (``None`` when
      none were given); raise :class:`informant.Error` to refuse them.
    - ``handle(self, event)`` receives each :class:`informant.Event`.

    The host keeps an instance for many calls, so attributes set in ``init``
    persist between events (but not across reloads or after a failed call).
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _registered.append(cls)

    def describe(self):
        raise NotImplementedError(f"{type(self).__name__} must define describe()")

    def init(self, settings):
        self.settings = settings

    def handle(self, event):
        raise NotImplementedError(f"{type(self).__name__} must define handle(event)")


def plugin_class():
    """The one ``Plugin`` subclass the plugin file defines (the last one wins)."""
    if not _registered:
        raise Error("the plugin file defines no subclass of informant.Plugin", "invalid")
    return _registered[-1]


def _as_wit_error(exc):
    if isinstance(exc, Error):
        return exc.to_wit()
    # Anything else is a bug in the plugin: say where.
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return Error(f"{type(exc).__name__}: {exc}{where}", "failed").to_wit()


# The plugin instance lives here, not on the exported class: the bindings may
# build a new exported object for each call.
_instance = [None]


class World:
    """What the component exports; the build script names it ``WitWorld``."""

    def describe(self):
        return plugin_class()().describe().to_wit()

    def init(self, settings):
        try:
            plugin = plugin_class()()
            plugin.init(json.loads(settings) if settings else None)
            _instance[0] = plugin
        except Exception as exc:
            raise Err(_as_wit_error(exc))

    def handle(self, event):
        try:
            plugin = _instance[0]
            if plugin is None:
                raise Error("handle before init", "failed")
            plugin.handle(Event.from_wit(event))
        except Exception as exc:
            raise Err(_as_wit_error(exc))
