"""The merchandising a search applies: an area's published version, compiled once per
version and process, or its draft (compiled on every call: only previews ask for it)."""

from __future__ import annotations

import threading
from typing import Protocol

from searchgate.merchandising.apply import CompiledMerchandising
from searchgate.merchandising.document import MerchandisingDocument


class PublishedVersion(Protocol):
    @property
    def number(self) -> int: ...

    @property
    def document(self) -> MerchandisingDocument: ...


class MerchandisingSource(Protocol):
    """What the merchandising service offers the data plane (no actor, no audit)."""

    def live(self, area: str) -> PublishedVersion | None: ...

    def draft_document(self, area: str) -> MerchandisingDocument: ...


class MerchandisingLookup:
    def __init__(self, source: MerchandisingSource) -> None:
        self.source = source
        self._compiled: dict[str, CompiledMerchandising] = {}
        self._lock = threading.Lock()

    def compiled(self, area: str, draft: bool = False) -> CompiledMerchandising | None:
        """None when the area has nothing published (and a draft was not asked for)."""
        if draft:
            return CompiledMerchandising(self.source.draft_document(area), "draft")
        published = self.source.live(area)
        if published is None:
            return None
        hit = self._compiled.get(area)
        # The number alone could repeat: an area deleted and created again starts at 1.
        if (
            hit is not None
            and hit.version == published.number
            and (hit.document is published.document or hit.document == published.document)
        ):
            return hit
        compiled = CompiledMerchandising(published.document, published.number)
        with self._lock:
            if len(self._compiled) > 1000:
                self._compiled.clear()
            self._compiled[area] = compiled
        return compiled
