"""Run a use case on the event loop only while it needs no database: the hot path's steady state.

`run_without_blocking` calls it inline through `repository.blocking.call_on_loop`; a cache miss makes
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
import os
import sys
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from openkms.repository.blocking import WouldBlock, call_on_loop

__all__ = ["cold_path_threads", "note_lapsed_entry", "run_without_blocking"]

T = TypeVar("T")

# Threads per event loop that retry use cases which missed a cache, by store (`cold_path_threads`,
# set by the composition root). With a networked database, two keep one round trip overlapping
# another's Python work without handing the GIL around among many threads. SQLite has no round
# trip to overlap: a miss is Python work from start to end, and a second thread only takes the GIL
# from the loop more often. In `make bench`'s cold burst on SQLite (one run each), one thread took
# the warm requests' p50 under the burst from 4.5x to 2.0x alone and their req/s from 0.21 to 0.40
# of alone, for a burst of 342 req/s instead of 457.
COLD_PATH_THREADS = 2
COLD_PATH_THREADS_SQLITE = 1
_cold_threads = [COLD_PATH_THREADS]


def cold_path_threads(count: int) -> None:
    """Size the cold-path pools made from now on (the composition root, once per process)."""
    if count < 1:
        raise ValueError("the cold path needs at least one thread")
    _cold_threads[0] = count


# How much lower the cold-path threads run than the event loop (nice increment, Linux). In `make
# bench`'s cold-burst scenario (2 cores, 2 workers, PostgreSQL; one run each) nice 5 and 10 took the
# warm requests' p99 under the burst from 6.6x their p99 alone to 2.8x and 4.0x, the burst's own
# throughput unchanged (about 220 req/s). The refresh lane is not niced: warm requests wait on it.
COLD_PATH_NICE = 5

# Threads per event loop for warm requests whose cached entry lapsed a moment ago (its TTL ran out):
# a lane of their own, so a hot key's or credential's periodic re-read never queues behind a burst
# of cold misses, and neither do the warm requests that arrive while it is being re-read.
REFRESH_THREADS = 2

# One pool per running loop and lane, dropped with the loop (idle threads then exit): the pools belong
# to the loop like its default executor does, so nothing is shared between loops or processes.
_POOLS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, tuple[ThreadPoolExecutor, ThreadPoolExecutor]
] = weakref.WeakKeyDictionary()

# Set by a cache (`service/cache.py`) when the entry a request needed had just lapsed; read right
# after the request's attempt on the loop, which runs one request at a time.
_lapsed = [False]


def note_lapsed_entry() -> None:
    """A cache entry that was warm until a moment ago missed: the retry takes the refresh lane."""
    _lapsed[0] = True


def _yield_to_the_loop() -> None:
    """Run this cold-path thread at a lower scheduling priority (Linux: a thread's own nice value).

    A burst of cache misses keeps these threads busy with ORM work; at the same priority they take
    the CPU (and with it the GIL) from the event loop, whose warm requests then wait. Niced, the
    kernel runs the loop first whenever both are ready. Lowering one's own priority needs no
    privilege; where it is not possible the thread runs as it is."""
    if sys.platform != "linux":
        return  # elsewhere PRIO_PROCESS with a thread id would renice the whole process
    thread = threading.get_native_id()
    try:
        own = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(own + COLD_PATH_NICE, 19))
    except OSError:
        pass


def _pool(loop: asyncio.AbstractEventLoop, refresh: bool) -> ThreadPoolExecutor:
    pools = _POOLS.get(loop)
    if pools is None:
        pools = (
            ThreadPoolExecutor(
                _cold_threads[0], thread_name_prefix="openkms-cold-path", initializer=_yield_to_the_loop
            ),
            ThreadPoolExecutor(REFRESH_THREADS, thread_name_prefix="openkms-refresh"),
        )
        _POOLS[loop] = pools
    return pools[1] if refresh else pools[0]


async def run_without_blocking(call: Callable[[], T]) -> T:
    _lapsed[0] = False
    try:
        return call_on_loop(call)
    except WouldBlock:
        loop = asyncio.get_running_loop()
        # As asyncio.to_thread does: the retry sees the caller's context variables.
        context = contextvars.copy_context()
        return await loop.run_in_executor(_pool(loop, _lapsed[0]), context.run, call)
