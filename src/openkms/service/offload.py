"""Run a use case on the event loop only while it needs no database: the hot path's steady state.

`run_without_blocking` calls it inline under `repository.blocking.loop_only()`; a cache miss makes
it raise `WouldBlock` before its first statement, and it is run again, whole, in a worker thread.
So a cold cache costs one thread hop for that request, and warm requests never wait behind another
request's database round trip. Use cases run this way must do nothing that matters before their
first database read (the read-only crypto path: resolve, authorize, cipher).

The retries run on a small pool of their own per event loop (`COLD_PATH_THREADS`), not on the
loop's default executor (five or six threads on a small machine). Every one of those threads that
wakes from a database round trip competes with the event loop for the GIL and for a CPU, so a
burst of cache misses spread over six threads kept the loop from serving the warm requests: in
`make bench`'s cold-burst scenario (2 cores, 2 workers, PostgreSQL) warm Encrypt's median went from
1 ms to 15 ms and its throughput to a tenth. With two threads the misses queue here instead, the
loop keeps most of the GIL, and the burst's own throughput stays about the same (it is bound by the
CPU either way). Owns only the pool; never touches a connection.
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from openkms.repository.blocking import WouldBlock, loop_only

__all__ = ["run_without_blocking"]

T = TypeVar("T")

# Threads per event loop that retry use cases which missed a cache. Two keep one database round
# trip overlapping another's Python work without handing the GIL around among many threads.
COLD_PATH_THREADS = 2

# One pool per running loop, dropped with it (its idle threads then exit): the pool belongs to the
# loop like the loop's default executor does, so nothing is shared between loops or processes.
_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ThreadPoolExecutor] = weakref.WeakKeyDictionary()


def _pool(loop: asyncio.AbstractEventLoop) -> ThreadPoolExecutor:
    pool = _POOLS.get(loop)
    if pool is None:
        pool = ThreadPoolExecutor(COLD_PATH_THREADS, thread_name_prefix="openkms-cold-path")
        _POOLS[loop] = pool
    return pool


async def run_without_blocking(call: Callable[[], T]) -> T:
    try:
        with loop_only():
            return call()
    except WouldBlock:
        loop = asyncio.get_running_loop()
        # As asyncio.to_thread does: the retry sees the caller's context variables.
        context = contextvars.copy_context()
        return await loop.run_in_executor(_pool(loop), context.run, call)
