"""Read access to the host's cache of watched objects.

Only kinds the plugin subscribes to or declares with ``Manifest.reads`` can be
read; anything else raises :class:`informant.Error` with code ``forbidden``.
"""

from typing import List, Optional

from ._bindings import cache as wit
from .error import host_call
from .event import Object, ObjectRef

# `list` below is the cache's; this is the builtin, for the annotations.
_List = List


def get(api_version: str, kind: str, name: str, namespace: Optional[str] = None) -> Optional[Object]:
    """One object, or ``None`` if it is not in the cache."""
    ref = ObjectRef(api_version, kind, name, namespace)
    text = host_call(wit.get, ref.to_wit())
    return None if text is None else Object.parse(text)


def list(api_version: str, kind: str, namespace: Optional[str] = None,
         label_selector: Optional[str] = None) -> "_List[Object]":
    """The objects of a kind, optionally in one namespace and matching a
    label selector, ordered by namespace and name."""
    return [Object.parse(t) for t in host_call(wit.list, api_version, kind, namespace, label_selector)]


def list_keys(api_version: str, kind: str, namespace: Optional[str] = None,
              label_selector: Optional[str] = None) -> "_List[ObjectRef]":
    """Like :func:`list`, but only the :class:`ObjectRef` of each: cheap."""
    refs = host_call(wit.list_keys, api_version, kind, namespace, label_selector)
    return [ObjectRef.from_wit(r) for r in refs]


def by_index(index: str, value: str) -> "_List[Object]":
    """The objects whose index ``index`` has the key ``value``."""
    return [Object.parse(t) for t in host_call(wit.by_index, index, value)]


def by_index_keys(index: str, value: str) -> "_List[ObjectRef]":
    """Like :func:`by_index`, but only the references."""
    return [ObjectRef.from_wit(r) for r in host_call(wit.by_index_keys, index, value)]


def index_values(index: str) -> "_List[str]":
    """Every key present in the index, sorted."""
    return host_call(wit.index_values, index)
