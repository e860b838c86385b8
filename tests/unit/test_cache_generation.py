"""A value read after a cache miss is not kept if a change was announced while it was being read."""

from __future__ import annotations

import threading

from openkms.node.generation import LocalGeneration
from openkms.service.cache import TtlCache


def test_a_value_read_across_a_change_is_not_cached() -> None:
    generation = LocalGeneration()
    cache: TtlCache[str, str] = TtlCache(60, generation)
    assert cache.get("key") is None  # miss: the caller reads the database
    generation.bump()  # another node's change arrives while it reads
    other = threading.Thread(target=lambda: cache.get("other"))  # another request empties the cache
    other.start()
    other.join()
    cache.put("key", "read before the change")
    assert cache.get("key") is None  # not kept: it may predate the change


def test_a_value_read_with_no_change_is_cached() -> None:
    generation = LocalGeneration()
    cache: TtlCache[str, str] = TtlCache(60, generation)
    assert cache.get("key") is None
    cache.put("key", "fresh")
    assert cache.get("key") == "fresh"


def test_each_thread_puts_against_its_own_miss() -> None:
    generation = LocalGeneration()
    cache: TtlCache[str, str] = TtlCache(60, generation)
    assert cache.get("old") is None  # this thread missed before the change
    generation.bump()

    def later_reader() -> None:
        assert cache.get("new") is None  # missed after the change: its value is current
        cache.put("new", "after")

    thread = threading.Thread(target=later_reader)
    thread.start()
    thread.join()
    cache.put("old", "before")
    assert cache.get("new") == "after"
    assert cache.get("old") is None
