"""Errors between the plugin and the host."""

from typing import Any, Callable, TypeVar

from ._bindings import Err, member, name_of
from ._bindings import types as wit

CODES = ("invalid", "forbidden", "limit-exceeded", "not-found", "failed")

T = TypeVar("T")


class Error(Exception):
    """An error with a code: raised by the host's calls, or by the plugin.

    ``code`` is one of ``invalid``, ``forbidden``, ``limit-exceeded``,
    ``not-found`` and ``failed``.
    """

    def __init__(self, message: str, code: str = "failed") -> None:
        if code not in CODES:
            raise ValueError(f"unknown error code {code!r}; one of {sorted(CODES)}")
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def to_wit(self) -> Any:
        return wit.Error(member(wit.ErrorCode, self.code), self.message)

    @classmethod
    def from_wit(cls, error: Any) -> "Error":
        name = name_of(error.code)
        return cls(error.message, name if name in CODES else "failed")


def host_call(function: Callable[..., T], *args: Any) -> T:
    """Call an import, turning its error result into :class:`Error`."""
    try:
        return function(*args)
    except Err as err:
        value = err.value
        if hasattr(value, "code") and hasattr(value, "message"):
            raise Error.from_wit(value) from None
        raise
