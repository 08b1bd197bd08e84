"""Read access to the host's cache of watched objects.

Only kinds the plugin subscribes to or declares with ``Manifest.reads`` can be
read; anything else raises :class:`informant.Error` with code ``forbidden``.
"""

from wit_world.imports import cache as wit

from .error import host_call
from .event import Object, ObjectRef


def get(api_version, kind, name, namespace=None):
    """One object, or ``None`` if it is not in the cache."""
    ref = ObjectRef(api_version, kind, name, namespace)
    text = host_call(wit.get, ref.to_wit())
    return None if text is None else Object.parse(text)


def list(api_version, kind, namespace=None, label_selector=None):
    """The objects of a kind, optionally in one namespace and matching a
    label selector, ordered by namespace and name."""
    return [Object.parse(t) for t in host_call(wit.list, api_version, kind, namespace, label_selector)]


def list_keys(api_version, kind, namespace=None, label_selector=None):
    """Like :func:`list`, but only the :class:`ObjectRef` of each: cheap."""
    refs = host_call(wit.list_keys, api_version, kind, namespace, label_selector)
    return [ObjectRef.from_wit(r) for r in refs]


def by_index(index, value):
    """The objects whose index ``index`` has the key ``value``."""
    return [Object.parse(t) for t in host_call(wit.by_index, index, value)]


def by_index_keys(index, value):
    """Like :func:`by_index`, but only the references."""
    return [ObjectRef.from_wit(r) for r in host_call(wit.by_index_keys, index, value)]


def index_values(index):
    """Every key present in the index, sorted."""
    return host_call(wit.index_values, index)
