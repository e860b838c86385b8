"""Run a use case on the event loop only while it needs no database: the hot path's steady state.

`run_without_blocking` calls it inline under `repository.blocking.loop_only()`; a cache miss makes
it raise `WouldBlock` before its first statement, and it is run again, whole, in a worker thread.
So a cold cache costs one thread hop for that request, and warm requests never wait behind another
request's database round trip. Use cases run this way must do nothing that matters before their
first database read (the read-only crypto path: resolve, authorize, cipher).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from openkms.repository.blocking import WouldBlock, loop_only

__all__ = ["run_without_blocking"]

T = TypeVar("T")


async def run_without_blocking(call: Callable[[], T]) -> T:
    try:
        with loop_only():
            return call()
    except WouldBlock:
        return await asyncio.to_thread(call)
