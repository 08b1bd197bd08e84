"""The bindings componentize-py generates from the WIT contract.

Inside a component built by ``build.py`` they are the host's imports. Anywhere
else (an editor, a type checker, a unit test of your own) the package still
imports, so that its classes and signatures can be read; calling the host
there raises a ``RuntimeError`` that says why.
"""

from typing import TYPE_CHECKING, Any

__all__ = ["AVAILABLE", "Err", "actions", "admission", "cache", "log", "state", "types", "member", "name_of"]


class _Unavailable:
    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        raise RuntimeError(
            f"informant's host bindings ({self._name}.{attr}) exist only inside a plugin "
            "component built with guest-sdk/python/build.py"
        )


class _Err(Exception):
    """Stands in for componentize-py's ``Err`` outside a build."""

    def __init__(self, value: Any) -> None:
        super().__init__(value)
        self.value = value


if TYPE_CHECKING:
    # A type checker sees the generated bindings as Any: the SDK's own
    # signatures are what a plugin is checked against.
    Err = _Err
    AVAILABLE: bool
    actions: Any
    admission: Any
    cache: Any
    log: Any
    state: Any
    types: Any
else:
    try:
        from componentize_py_types import Err
        from wit_world.imports import actions, cache, log, state, types

        AVAILABLE = True
    except ImportError:  # pragma: no cover - exercised outside a build
        AVAILABLE = False
        Err = _Err
        actions = _Unavailable("actions")
        cache = _Unavailable("cache")
        log = _Unavailable("log")
        state = _Unavailable("state")
        types = _Unavailable("types")
    # Only in a component of the plugin-with-admission world.
    try:
        from wit_world.exports import admission
    except ImportError:  # pragma: no cover - a plugin without a webhook
        admission = _Unavailable("admission")


def member(enum: Any, name: str) -> Any:
    """The member of a WIT enum by its WIT name: ``member(types.Verb, "patch-status")``."""
    return getattr(enum, name.upper().replace("-", "_"))


def name_of(value: Any) -> str:
    """The WIT name of an enum member: ``PATCH_STATUS`` -> ``patch-status``."""
    name: str = value.name
    return name.lower().replace("_", "-")
