"""run_without_blocking: inline while the use case needs no database, else retried on the loop's
small cold-path pool (never the default executor, whose many threads starve the loop)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from contextvars import ContextVar

import pytest

from openkms.repository.blocking import ensure_may_block
from openkms.service import offload
from openkms.service.offload import run_without_blocking

REQUEST: ContextVar[str] = ContextVar("request", default="")


def test_a_use_case_that_needs_no_database_runs_on_the_loop() -> None:
    async def main() -> str:
        return await run_without_blocking(lambda: threading.current_thread().name)

    assert asyncio.run(main()) == threading.current_thread().name


def test_a_cache_miss_is_retried_whole_on_the_cold_path_pool() -> None:
    attempts: list[str] = []

    def use_case() -> tuple[str, str]:
        attempts.append(threading.current_thread().name)
        ensure_may_block()  # the first database read
        return threading.current_thread().name, REQUEST.get()

    async def main() -> tuple[str, str]:
        REQUEST.set("r-1")
        return await run_without_blocking(use_case)

    thread, request = asyncio.run(main())
    assert attempts == [threading.current_thread().name, thread]
    assert thread.startswith("openkms-cold-path")
    assert request == "r-1"  # the retry sees the caller's context


def _most_misses_at_once(requests: int) -> int:
    """Run `requests` use cases that all miss the cache; how many ran on the pool at the same time."""
    running = 0
    most = 0
    lock = threading.Lock()

    def use_case() -> None:
        nonlocal running, most
        ensure_may_block()
        with lock:
            running += 1
            most = max(most, running)
        threading.Event().wait(0.01)
        with lock:
            running -= 1

    async def main() -> None:
        await asyncio.gather(*(run_without_blocking(use_case) for _ in range(requests)))

    asyncio.run(main())  # a new loop: a new pool
    return most


def test_misses_queue_on_a_bounded_pool() -> None:
    most = _most_misses_at_once(12)
    assert 1 <= most <= offload.COLD_PATH_THREADS


def test_a_lapsed_warm_entry_is_re_read_on_the_refresh_lane_not_behind_cold_misses() -> None:
    from openkms.node.generation import LocalGeneration
    from openkms.service.cache import TtlCache

    cache: TtlCache[str, str] = TtlCache(0.05, LocalGeneration())
    assert cache.get("warm") is None  # a miss, then the value read after it
    cache.put("warm", "value")
    threading.Event().wait(0.06)  # its TTL runs out

    def use_case(name: str) -> str:
        if cache.get(name) is None:
            ensure_may_block()
        return threading.current_thread().name

    async def main() -> tuple[str, str, str]:
        warm = await run_without_blocking(lambda: use_case("warm"))
        again = await run_without_blocking(lambda: use_case("warm"))  # still lapsed, not yet re-read
        cold = await run_without_blocking(lambda: use_case("never-cached"))
        return warm, again, cold

    warm, again, cold = asyncio.run(main())
    assert warm.startswith("openkms-refresh") and again.startswith("openkms-refresh")
    assert cold.startswith("openkms-cold-path")
    threading.Event().wait(0.06)  # long expired (beyond one more TTL): an ordinary cold miss
    assert asyncio.run(run_without_blocking(lambda: use_case("warm"))).startswith("openkms-cold-path")


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are a Linux feature")
def test_cold_path_threads_run_at_a_lower_priority_than_the_loop() -> None:
    def priority() -> tuple[str, int]:
        return threading.current_thread().name, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def cold() -> tuple[str, int]:
        ensure_may_block()
        return priority()

    async def main() -> tuple[tuple[str, int], tuple[str, int]]:
        return await run_without_blocking(priority), await run_without_blocking(cold)

    (loop_thread, loop_nice), (cold_thread, cold_nice) = asyncio.run(main())
    assert loop_thread == threading.current_thread().name
    assert cold_thread.startswith("openkms-cold-path")
    assert cold_nice == min(loop_nice + offload.COLD_PATH_NICE, 19)
    assert os.getpriority(os.PRIO_PROCESS, 0) == loop_nice  # the process itself is not reniced


def test_the_composition_root_sizes_the_pool_by_store() -> None:
    """One thread for SQLite (nothing to overlap), two for a networked database."""
    before = offload._cold_threads[0]
    try:
        offload.cold_path_threads(offload.COLD_PATH_THREADS_SQLITE)
        assert _most_misses_at_once(8) == 1
        with pytest.raises(ValueError):
            offload.cold_path_threads(0)
    finally:
        offload.cold_path_threads(before)
