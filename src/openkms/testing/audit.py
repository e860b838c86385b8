"""Audit sink fakes for tests and plugin authors: one that keeps events, one that always fails.

Owns nothing persistent; the events stay in memory for the test to inspect.
"""

from __future__ import annotations

from openkms.audit.event import AuditEvent
from openkms.errors import AuditUnavailable

__all__ = ["FailingAuditSink", "MemoryAuditSink"]


class MemoryAuditSink:
    """Keeps every appended event in `events`, in order. After `aclose`, appends fail like a real sink."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []
        self.closed = False

    def check(self) -> None:
        if self.closed:
            raise AuditUnavailable()

    def use_chain_key(self, key: bytes) -> None:
        """Nothing to key: this sink keeps no hash chain."""

    async def append(self, event: AuditEvent) -> None:
        self.check()
        self.events.append(event)

    async def aclose(self) -> None:
        self.closed = True


class FailingAuditSink:
    """A broken sink: `check` and `append` raise AuditUnavailable. `attempts` holds what was offered."""

    def __init__(self) -> None:
        self.attempts: list[AuditEvent] = []

    def check(self) -> None:
        raise AuditUnavailable()

    def use_chain_key(self, key: bytes) -> None:
        """Nothing to key: this sink keeps no hash chain."""

    async def append(self, event: AuditEvent) -> None:
        self.attempts.append(event)
        raise AuditUnavailable()

    async def aclose(self) -> None:
        return None
