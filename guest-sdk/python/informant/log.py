"""Logging into the host's structured log, tagged with the plugin's name.

``print`` works too (it goes to the host's log at info), but these keep the level.
"""

from typing import Any

from ._bindings import log as wit


def trace(message: Any) -> None:
    wit.log(wit.Level.TRACE, str(message))


def debug(message: Any) -> None:
    wit.log(wit.Level.DEBUG, str(message))


def info(message: Any) -> None:
    wit.log(wit.Level.INFO, str(message))


def warn(message: Any) -> None:
    wit.log(wit.Level.WARN, str(message))


def error(message: Any) -> None:
    wit.log(wit.Level.ERROR, str(message))
