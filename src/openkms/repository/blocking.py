"""The guard that keeps database I/O off the event loop.

A caller on the event loop runs a use case under `loop_only()`: the first time that use case would
open a unit of work (or read the keyring) it raises `WouldBlock` instead, before any statement, and
the caller runs it again in a worker thread (`service/offload.py`). Owns only the flag; never
touches a connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["WouldBlock", "ensure_may_block", "loop_only"]

_LOOP_ONLY: ContextVar[bool] = ContextVar("openkms_loop_only", default=False)


class WouldBlock(BaseException):
    """The use case needs the database; run it in a thread. A BaseException so that no `except
    Exception` in a use case swallows it."""


@contextmanager
def loop_only() -> Iterator[None]:
    token = _LOOP_ONLY.set(True)
    try:
        yield
    finally:
        _LOOP_ONLY.reset(token)


def ensure_may_block() -> None:
    """Raise `WouldBlock` when the caller runs on the event loop under `loop_only()`."""
    if _LOOP_ONLY.get():
        raise WouldBlock()
