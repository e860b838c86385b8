"""Bounded, short-lived caches of key records, version material references and credentials.

They keep the hot path free of database round trips. Staleness is bounded twice: every entry expires
after `ttl` seconds, and any change committed on this node, or announced by another node of the
store (`repository/change_feed.py`), bumps the node-wide change generation, which empties every
worker's caches on its next request. Hits and misses are
tallied per cache name for the metrics (`openkms_cache_lookups_total`).
"""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

from openkms.metrics import CACHE_LOOKUPS, Tally
from openkms.node.generation import Generation
from openkms.service.offload import note_lapsed_entry

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """A dict with per-entry expiry and a size bound; emptied when the change generation moves.

    A value read after a miss is kept only if the generation has not moved since that miss (`put`
    compares it with the generation the same thread's last miss saw): a change committed while the
    value was being read may be in it or not, so it is not cached past the change."""

    def __init__(
        self, ttl: float, generation: Generation, max_entries: int = 100_000, *, name: str = "other"
    ) -> None:
        self._ttl = ttl
        self._generation = generation
        self._seen = generation.current()
        self._max = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self._hits = Tally(CACHE_LOOKUPS, name, "hit")
        self._misses = Tally(CACHE_LOOKUPS, name, "miss")
        self._miss = threading.local()  # the generation this thread's last miss saw

    def get(self, key: K) -> V | None:
        seen = self._generation.current()
        if seen != self._seen:
            self._entries.clear()
            self._seen = seen
            self._misses.count += 1
            self._miss.generation = seen
            return None
        entry = self._entries.get(key)
        if entry is None:
            self._misses.count += 1
            self._miss.generation = seen
            return None
        expires, value = entry
        now = time.monotonic()
        if expires < now:
            if now - expires < self._ttl:
                # Warm until a moment ago: kept (so every request for it until the re-read lands
                # says so), and its re-read takes the refresh lane, not the queue of cold misses.
                note_lapsed_entry()
            else:
                self._entries.pop(key, None)
            self._misses.count += 1
            self._miss.generation = seen
            return None
        self._hits.count += 1
        return value

    def put(self, key: K, value: V) -> None:
        """Keep `value`, read after this thread's last miss, unless the generation moved since."""
        if self._ttl <= 0 or getattr(self._miss, "generation", None) != self._generation.current():
            return
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self._ttl, value)

    def discard(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
