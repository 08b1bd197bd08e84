"""Errors between the plugin and the host."""

from wit_world.imports import types as wit
from componentize_py_types import Err

CODES = {
    "invalid": wit.ErrorCode.INVALID,
    "forbidden": wit.ErrorCode.FORBIDDEN,
    "limit-exceeded": wit.ErrorCode.LIMIT_EXCEEDED,
    "not-found": wit.ErrorCode.NOT_FOUND,
    "failed": wit.ErrorCode.FAILED,
}
NAMES = {code: name for name, code in CODES.items()}


class Error(Exception):
    """An error with a code: raised by the host's calls, or by the plugin.

    ``code`` is one of ``invalid``, ``forbidden``, ``limit-exceeded``,
    ``not-found`` and ``failed``.
    """

    def __init__(self, message, code="failed"):
        if code not in CODES:
            raise ValueError(f"unknown error code {code!r}; one of {sorted(CODES)}")
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self):
        return f"{self.code}: {self.message}"

    def to_wit(self):
        return wit.Error(CODES[self.code], self.message)

    @classmethod
    def from_wit(cls, error):
        return cls(error.message, NAMES.get(error.code, "failed"))


def host_call(function, *args):
    """Call an import, turning its error result into :class:`Error`."""
    try:
        return function(*args)
    except Err as err:
        value = err.value
        if isinstance(value, wit.Error):
            raise Error.from_wit(value) from None
        raise
