"""The plugin's own key-value store, kept by the host (contract 0.3.0).

``state`` behaves like a dict whose values are kept as JSON::

    from informant import state

    key = f"restarts/{event.object.ref}"
    if key not in state:
        state.set(key, 0, ttl=3600)        # expires an hour after this call commits
    if state.increment(key) > 3:
        return                             # over budget: no restart this hour
    state["last"] = {"name": event.object.name}
    state.get("missing", 0)                # 0

The guarantees:

- **One store per plugin**, shared by all its instances; it survives
  instance recycling and hot reload of the same plugin name.
- **Committed with the call.** Writes take effect only if ``handle`` returns
  normally, like actions; raising, a trap or a timeout leaves the store as it
  was. Reads see the call's own writes.
- **Isolated.** A call whose reads another instance changed before it
  committed runs again with the same event (the first run's actions are
  dropped): ``increment``, ``compare_and_swap`` and a read followed by a
  write are atomic across instances. Calls that only read never run again.
- **Tiers** (``Manifest.state``): ``memory`` (the default; lost when the host
  stops) or ``durable`` (kept in the cluster, loaded before the first call;
  with leader election only the leader's writes count).
- **Limits.** Quotas on keys, value size and total bytes: a write past them
  raises :class:`informant.Error` with code ``limit-exceeded``. Keys are
  1-512 bytes. ``init`` cannot use the store; ``handle`` can.
"""

import json
from typing import Any, Dict, Iterable, Iterator, List, MutableMapping, Optional, Tuple

from ._bindings import state as wit
from .error import host_call

_MISSING = object()


def _encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _decode(data: bytes) -> Any:
    return json.loads(bytes(data).decode())


def _ttl_ms(ttl: Optional[float]) -> Optional[int]:
    """Seconds (a float) as the host's milliseconds; at least 1."""
    return None if ttl is None else max(1, int(ttl * 1000))


class State(MutableMapping[str, Any]):
    """The plugin's store as a dict of JSON values; see the module."""

    def __getitem__(self, key: str) -> Any:
        data = host_call(wit.get, key)
        if data is None:
            raise KeyError(key)
        return _decode(data)

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        if not self.__contains__(key):
            raise KeyError(key)
        host_call(wit.delete, key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and bool(host_call(wit.exists, key))

    def __iter__(self) -> Iterator[str]:
        return self.list_keys()

    def __len__(self) -> int:
        return sum(1 for _ in self.list_keys())

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` if it does not exist."""
        data = host_call(wit.get, key)
        return default if data is None else _decode(data)

    def set(self, key: str, value: Any, ttl: Optional[float] = None) -> None:
        """Set ``key`` to ``value`` (as JSON); with ``ttl``, it expires that many
        seconds after the call commits."""
        host_call(wit.set, key, _encode(value), _ttl_ms(ttl))

    def delete(self, key: str) -> None:
        """Remove ``key``; nothing happens if it does not exist."""
        host_call(wit.delete, key)

    def get_bytes(self, key: str) -> Optional[bytes]:
        """The raw bytes of ``key``."""
        data = host_call(wit.get, key)
        return None if data is None else bytes(data)

    def set_bytes(self, key: str, value: bytes, ttl: Optional[float] = None) -> None:
        """Set ``key`` to raw bytes."""
        host_call(wit.set, key, bytes(value), _ttl_ms(ttl))

    def get_versioned(self, key: str) -> Optional[Tuple[Any, str]]:
        """The value of ``key`` and its version, for :meth:`compare_and_swap`."""
        found = host_call(wit.get_versioned, key)
        return None if found is None else (_decode(found.value), found.version)

    def compare_and_swap(self, key: str, expected: Optional[str], value: Any,
                         ttl: Optional[float] = None) -> bool:
        """Set ``key`` only if its version is still ``expected`` (``None``: only
        if it does not exist). Returns whether it was set."""
        return bool(host_call(wit.compare_and_swap, key, expected, _encode(value), _ttl_ms(ttl)))

    def increment(self, key: str, delta: int = 1) -> int:
        """Add ``delta`` to the integer at ``key`` (0 if absent) and return the
        sum; the key keeps its time to live."""
        return int(host_call(wit.increment, key, delta))

    def get_many(self, keys: Iterable[str]) -> List[Any]:
        """The values of several keys (``None`` where absent), in order."""
        found = host_call(wit.get_many, list(keys))
        return [None if d is None else _decode(d) for d in found]

    def set_many(self, entries: Dict[str, Any], ttl: Optional[float] = None) -> None:
        """Set several keys, all or none."""
        host_call(wit.set_many, [(k, _encode(v)) for k, v in entries.items()], _ttl_ms(ttl))

    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove several keys."""
        host_call(wit.delete_many, list(keys))

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Every key that starts with ``prefix``, in byte order, a page at a time."""
        cursor: Optional[str] = None
        while True:
            page = host_call(wit.list_keys, prefix, cursor, 0)
            yield from page.keys
            cursor = page.cursor
            if cursor is None:
                return


state = State()
"""The plugin's store."""
