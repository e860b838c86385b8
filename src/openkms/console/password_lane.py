"""Where the console checks passwords: a small thread pool of its own, bounded.

A password check is an Argon2id derivation (tens of milliseconds, tens of MiB). Sign-in is open to
anyone, so its checks must not run in the thread pool the API's actions use: a flood of sign-ins
would stall every management request. Here at most `threads` checks run at once per worker and at
most `waiting` more queue; past that a sign-in is refused at once (429) without checking anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from openkms import errors

T = TypeVar("T")


class PasswordLane:
    def __init__(self, threads: int = 2, waiting: int = 32) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="openkms-passwords")
        self._limit = threads + waiting
        self._admitted = 0

    async def run(self, check: Callable[[], T]) -> T:
        """Run one password check in the lane; `Throttled` when the lane is full."""
        if self._admitted >= self._limit:
            raise errors.Throttled("Too many sign-ins are being checked; try again in a moment.")
        self._admitted += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, check)
        finally:
            self._admitted -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
