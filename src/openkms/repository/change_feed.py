"""The change feed: how a node learns that another node committed a change it must act on.

PostgreSQL only (a SQLite store lives on one node, whose workers share `node/generation.py`). Every
transaction that changes a watched table increments `cluster_generation` and sends NOTIFY
openkms_changes as it commits (triggers of migration 0008). One thread per worker process LISTENs on
a connection of its own and also reads the counter every `poll_seconds`, so a lost notification or a
reconnect still bounds the delay by the poll interval; on either it calls `on_change` (which bumps
the node's generation: every cache and material cache of the node's workers is dropped).

While the feed is down (database unreachable) it calls `on_change` at every poll: the node then
keeps nothing cached for longer than the poll interval, so it never acts on a change late.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger("openkms.repository.change_feed")

CHANNEL = "openkms_changes"
_READ_COUNTER = "SELECT value FROM cluster_generation WHERE id = 1"


def psycopg_conninfo(database_url: str) -> str:
    """The libpq connection string of a SQLAlchemy PostgreSQL URL (psycopg's own driver name)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class ChangeFeed:
    """Calls `on_change(delay)` when another transaction changed a watched table; `delay` is the
    seconds from that transaction's start to now when a notification says it, else None."""

    def __init__(
        self, database_url: str, on_change: Callable[[float | None], None], *, poll_seconds: float = 0.25
    ) -> None:
        self._conninfo = psycopg_conninfo(database_url)
        self._on_change = on_change
        self._poll = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: int | None = None
        self.connected = threading.Event()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="openkms-change-feed", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._listen()
                failures = 0
            except psycopg.Error as exc:
                self.connected.clear()
                failures += 1
                if failures == 1:
                    log.warning(
                        "the change feed lost the database (%s); caches are not kept", type(exc).__name__
                    )
                # Down: nothing this node caches may outlive the poll interval.
                self._on_change(None)
                self._stop.wait(self._poll)

    def _listen(self) -> None:
        # A database that stops answering counts as down within a second (then nothing stays cached).
        with psycopg.connect(
            self._conninfo, autocommit=True, connect_timeout=2, options="-c statement_timeout=1000"
        ) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            # Whatever happened while we were not listening counts as a change.
            self._check(connection, force=self._seen is not None)
            self.connected.set()
            log.info("the change feed is listening")
            while not self._stop.is_set():
                notified = False
                # Each notification is acted on as it arrives; the generator ends after the poll
                # interval, and the counter is read then (the fallback for a lost notification).
                for notice in connection.notifies(timeout=self._poll):
                    notified = True
                    self._on_change(_delay(notice.payload))
                if notified:
                    self._seen = self._read(connection)
                else:
                    self._check(connection, force=False)

    def _check(self, connection: psycopg.Connection[tuple[int]], *, force: bool) -> None:
        value = self._read(connection)
        if force or (self._seen is not None and value != self._seen):
            self._on_change(None)
        self._seen = value

    @staticmethod
    def _read(connection: psycopg.Connection[tuple[int]]) -> int:
        row = connection.execute(_READ_COUNTER).fetchone()
        return 0 if row is None else int(row[0])


def _delay(payload: str) -> float | None:
    try:
        started = int(payload) / 1000.0
    except ValueError:
        return None
    return max(0.0, time.time() - started)
