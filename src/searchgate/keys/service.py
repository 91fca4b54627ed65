"""The client key service, assembled from its parts: reading (``reading``), creation
and changes (``lifecycle``), deletion and its guards (``deletion``), and the check of
a presented key on every data-plane request (``check``)."""

from __future__ import annotations

from searchgate.keys.check import KeyCheck
from searchgate.keys.deletion import KeyDeletion, KeyInUse
from searchgate.keys.lifecycle import (
    MAX_ROLL_DELAY,
    NAME_MAX,
    REASON_MAX,
    KeyLifecycle,
    UnknownCollection,
    unknown_collection_warnings,
)
from searchgate.keys.reading import RecentSystems

__all__ = [
    "MAX_ROLL_DELAY",
    "NAME_MAX",
    "REASON_MAX",
    "KeyInUse",
    "KeyService",
    "RecentSystems",
    "UnknownCollection",
    "unknown_collection_warnings",
]


class KeyService(KeyLifecycle, KeyDeletion, KeyCheck):
    """Client keys: creation, the primary key, rolling, disabling, deletion and the
    check of each request's key."""
