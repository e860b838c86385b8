"""Leases with fencing: exactly one process of a store runs the jobs, and a process that lost its lease
(it died, hung, or was cut off) cannot commit one more step.

A lease is a row of `leases` (migration 0008): its holder, its fence and its expiry, in Unix ms of
the database's clock (PostgreSQL's, so nodes with skewed clocks agree; SQLite lives on one host). The
holder renews it well before it expires; anyone else takes it only once it has expired, and taking it
increments the fence. A write unit of work opened inside `fenced(fence)` first checks, in its own
transaction, that the row still names this holder with this fence and has not expired, and on
PostgreSQL locks it FOR SHARE until it commits: a taker waits for that commit (or gives up after
`TAKEOVER_LOCK_TIMEOUT`), so a step of the old holder and a step of the new one never overlap. SQLite
serialises writers at BEGIN IMMEDIATE, which gives the same guarantee on one host.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import socket
import uuid
from collections.abc import Iterator

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from openkms.domain.lease import Fence
from openkms.errors import LeaseLost

JOBS_LEASE = "jobs"
TAKEOVER_LOCK_TIMEOUT = "2s"

_NOW_MS = {
    "postgresql": "(extract(epoch FROM clock_timestamp()) * 1000)::bigint",
    "sqlite": "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
}


# NOW_MS is replaced by the dialect's clock expression above (a constant, never input).
_ACQUIRE = (
    "INSERT INTO leases (name, holder, fence, expires_at) VALUES (:name, :holder, 1, NOW_MS + :ms) "
    "ON CONFLICT (name) DO UPDATE SET "
    "fence = CASE WHEN leases.holder = excluded.holder THEN leases.fence ELSE leases.fence + 1 END, "
    "holder = excluded.holder, expires_at = excluded.expires_at "
    "WHERE leases.holder = excluded.holder OR leases.expires_at <= NOW_MS "
    "RETURNING fence"
)
_CHECK = (
    "SELECT fence FROM leases WHERE name = :name AND holder = :holder AND fence = :fence "
    "AND expires_at > NOW_MS"
)

_current: contextvars.ContextVar[Fence | None] = contextvars.ContextVar("openkms_fence", default=None)


def new_holder() -> str:
    """A name no other process of any node will use: host, pid and a random part."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class Lease:
    def __init__(self, engine: Engine, name: str, seconds: float, holder: str | None = None) -> None:
        self._engine = engine
        self.name = name
        self.holder = holder or new_holder()
        self._ms = int(seconds * 1000)
        self._now = _NOW_MS[engine.dialect.name]
        self._postgres = engine.dialect.name == "postgresql"

    def acquire(self) -> Fence | None:
        """Take the lease if it is free or expired, or renew it if this holder has it; the fence it
        is held under, or None when another holder has it."""
        statement = text(_ACQUIRE.replace("NOW_MS", self._now))
        try:
            with self._engine.begin() as connection:
                if self._postgres:
                    connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{TAKEOVER_LOCK_TIMEOUT}'")
                row = connection.execute(
                    statement, {"name": self.name, "holder": self.holder, "ms": self._ms}
                ).first()
        except DBAPIError as exc:
            if _lock_timeout(exc):
                return None  # the old holder's last step is still committing
            raise
        return None if row is None else Fence(self.name, self.holder, int(row[0]), self._ms)

    def release(self) -> None:
        """Give the lease up now (a clean shutdown), so another process need not wait for expiry."""
        with contextlib.suppress(Exception), self._engine.begin() as connection:
            connection.execute(
                text("UPDATE leases SET expires_at = 0 WHERE name = :name AND holder = :holder"),
                {"name": self.name, "holder": self.holder},
            )


@contextlib.contextmanager
def fenced(fence: Fence) -> Iterator[None]:
    """Write units of work opened in this context (and threads it is copied to) check `fence`."""
    token = _current.set(fence)
    try:
        yield
    finally:
        _current.reset(token)


def check_fence(connection: Connection) -> None:
    """Inside a write transaction: raise LeaseLost unless the current fence (if any) still holds."""
    fence = _current.get()
    if fence is None:
        return
    dialect = connection.dialect.name
    if dialect == "postgresql":
        # A step that stalls inside its transaction (a hung backend call, a paused host) holds the
        # lease row only as long as a lease lasts: then PostgreSQL ends it, and a taker proceeds.
        limit = int(fence.milliseconds)
        connection.exec_driver_sql(f"SET LOCAL idle_in_transaction_session_timeout = {limit}")
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {limit}")
    check = _CHECK.replace("NOW_MS", _NOW_MS[dialect])
    row = connection.execute(
        text(check + " FOR SHARE" if dialect == "postgresql" else check),
        {"name": fence.name, "holder": fence.holder, "fence": fence.value},
    ).first()
    if row is None:
        raise LeaseLost()


def _lock_timeout(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == "55P03"  # lock_not_available
