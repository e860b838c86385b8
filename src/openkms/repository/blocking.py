"""The guard that keeps database I/O off the event loop.

A caller on the event loop runs a use case through `call_on_loop`: the first time that use case
would open a unit of work (or read the keyring) it raises `WouldBlock` instead, before any
statement, and the caller runs it again in a worker thread (`service/offload.py`). Owns only the
flag; never touches a connection.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import TypeVar

__all__ = ["WouldBlock", "call_on_loop", "ensure_may_block"]

T = TypeVar("T")

_LOOP_ONLY: ContextVar[bool] = ContextVar("openkms_loop_only", default=False)


class WouldBlock(BaseException):
    """The use case needs the database; run it in a thread. A BaseException so that no `except
    Exception` in a use case swallows it."""


def call_on_loop(call: Callable[[], T]) -> T:
    """`call()` with database I/O forbidden: it raises `WouldBlock` where it would first block.

    A plain function rather than a generator context manager: every request on the hot path
    passes here twice (credential, use case), and `contextlib.contextmanager` costs about a
    microsecond more per use."""
    token = _LOOP_ONLY.set(True)
    try:
        return call()
    finally:
        _LOOP_ONLY.reset(token)


def ensure_may_block() -> None:
    """Raise `WouldBlock` when the caller runs on the event loop inside `call_on_loop`."""
    if _LOOP_ONLY.get():
        raise WouldBlock()
