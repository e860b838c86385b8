"""The change feed: how a node learns that another node committed a change it must act on.

PostgreSQL only (a SQLite store lives on one node, whose workers share `node/generation.py`). Every
transaction that changes a watched table increments the change counter (the sum of
`cluster_generation`) and sends NOTIFY openkms_changes as it commits (triggers of migration 0008).
One thread per worker process LISTENs on a connection of its own and reads the counter every
`poll_seconds`, so a lost notification or a reconnect still bounds the delay by the poll interval; on
either it calls `on_change` (which bumps the node's generation: every cache and material cache of the
node's workers is dropped).

While the feed cannot vouch for the store (not connected yet, the database down, or a read that has
not answered for `stale_after` seconds: a watchdog thread checks), it calls `on_change` at every poll,
so the node keeps nothing cached longer than that and never acts on a change late. The connections
use TCP keepalives and a user timeout, so a silently dropped connection fails in seconds, not minutes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger("openkms.repository.change_feed")

CHANNEL = "openkms_changes"
_READ_COUNTER = "SELECT coalesce(sum(value), 0) FROM cluster_generation"
# Sessions that ended: their counts move into row 1 in one statement, so the sum does not change.
_FOLD_ENDED_SESSIONS = (
    "WITH gone AS (DELETE FROM cluster_generation WHERE id <> 1 "
    "AND id NOT IN (SELECT pid FROM pg_stat_activity) RETURNING value) "
    "UPDATE cluster_generation SET value = value + (SELECT coalesce(sum(value), 0) FROM gone) WHERE id = 1"
)
_ACK = (
    "INSERT INTO change_acks (worker, seen, alive_at) "
    "VALUES (%s, %s, (extract(epoch FROM clock_timestamp()) * 1000)::bigint) "
    "ON CONFLICT (worker) DO UPDATE SET seen = excluded.seen, alive_at = excluded.alive_at"
)
# Workers that said within the last 1.5 s that they are alive and have not applied `target` yet.
_BEHIND = (
    "SELECT count(*) FROM change_acks WHERE seen < %s "
    "AND alive_at > (extract(epoch FROM clock_timestamp()) * 1000)::bigint - 1500"
)
# A connection that stops answering fails within about two seconds (libpq's TCP options).
CONNECTION_OPTIONS: dict[str, Any] = {
    "connect_timeout": 2,
    "keepalives": 1,
    "keepalives_idle": 1,
    "keepalives_interval": 1,
    "keepalives_count": 2,
    "tcp_user_timeout": 2000,
}


def psycopg_conninfo(database_url: str) -> str:
    """The libpq connection string of a SQLAlchemy PostgreSQL URL (psycopg's own driver name)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class ChangeFeed:
    """Calls `on_change(delay)` when a transaction changed a watched table; `delay` is the seconds
    from that transaction's start to now when a notification says it, else None."""

    def __init__(
        self,
        database_url: str,
        on_change: Callable[[float | None], None],
        *,
        poll_seconds: float = 0.25,
        listen: bool = True,
        worker: str | None = None,
    ) -> None:
        self._conninfo = psycopg_conninfo(database_url)
        self._on_change = on_change
        self._poll = poll_seconds
        self._listen_too = listen
        self._stale_after = max(2 * poll_seconds, 0.5)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._seen: int | None = None
        self._vouched = 0.0  # monotonic time of the last read that answered
        self._worker = worker  # the name this worker acknowledges applied changes under (None: never)
        self.connected = threading.Event()

    def start(self) -> None:
        if not self._threads:
            self._threads = [
                threading.Thread(target=self._run, name="openkms-change-feed", daemon=True),
                threading.Thread(target=self._watch, name="openkms-change-watchdog", daemon=True),
            ]
            for thread in self._threads:
                thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        if self._worker is not None:
            with (
                contextlib.suppress(Exception),
                psycopg.connect(self._conninfo, autocommit=True, **CONNECTION_OPTIONS) as connection,
            ):
                connection.execute("DELETE FROM change_acks WHERE worker = %s", (self._worker,))

    def _watch(self) -> None:
        """Drop caches at every poll while the feed has not vouched for the store lately."""
        while not self._stop.wait(self._poll):
            if time.monotonic() - self._vouched > self._stale_after:
                self._on_change(None)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._follow()
                failures = 0
            except Exception as exc:  # any failure: the feed reconnects, never dies
                self.connected.clear()
                failures += 1
                if failures == 1:
                    log.warning(
                        "the change feed lost the database (%s); caches are not kept", type(exc).__name__
                    )
                self._stop.wait(self._poll)

    def _follow(self) -> None:
        with psycopg.connect(
            self._conninfo, autocommit=True, options="-c statement_timeout=1000", **CONNECTION_OPTIONS
        ) as connection:
            if self._listen_too:
                connection.execute(f"LISTEN {CHANNEL}")
            # Whatever happened before we listened counts as a change.
            self._seen = self._read(connection)
            self._on_change(None)
            self._ack(connection)
            self.connected.set()
            log.info("the change feed is listening")
            while not self._stop.is_set():
                # Wait for one notification or the poll interval, whichever comes first; then read
                # the counter before acting, so a change committed meanwhile is seen next time.
                notices = list(connection.notifies(timeout=self._poll, stop_after=1))
                value = self._read(connection)
                if notices:
                    self._seen = value
                    self._on_change(_delay(notices[0].payload))
                elif value != self._seen:
                    self._seen = value
                    self._on_change(None)
                self._ack(connection)  # applied (and alive), at every poll

    def _ack(self, connection: psycopg.Connection[tuple[int]]) -> None:
        if self._worker is not None:
            connection.execute(_ACK, (self._worker, self._seen))

    def _read(self, connection: psycopg.Connection[tuple[int]]) -> int:
        row = connection.execute(_READ_COUNTER).fetchone()
        self._vouched = time.monotonic()
        return 0 if row is None else int(row[0])


class ChangeBarrier:
    """`wait()`: after this process committed a change, until every live worker of every node has
    applied it (emptied its caches), or `timeout`; True when all had. Blocking: call it in a thread."""

    def __init__(self, database_url: str, *, timeout: float = 1.0, poll_seconds: float = 0.002) -> None:
        self._conninfo = psycopg_conninfo(database_url)
        self._timeout = timeout
        self._poll = poll_seconds
        self._lock = threading.Lock()
        self._connection: psycopg.Connection[tuple[int]] | None = None

    def wait(self) -> bool:
        deadline = time.monotonic() + self._timeout
        with self._lock:
            try:
                connection = self._connect()
                target = _sum(connection)
                while True:
                    row = connection.execute(_BEHIND, (target,)).fetchone()
                    if row is None or int(row[0]) == 0:
                        return True
                    if time.monotonic() >= deadline:
                        log.warning(
                            "a change was answered before every node applied it (over %.1f s)", self._timeout
                        )
                        return False
                    time.sleep(self._poll)
            except psycopg.Error:
                self._close()
                return False  # the feed's own bound still holds

    def _connect(self) -> psycopg.Connection[tuple[int]]:
        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(self._conninfo, autocommit=True, **CONNECTION_OPTIONS)
        return self._connection

    def _close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None

    def close(self) -> None:
        with self._lock:
            self._close()


def _sum(connection: psycopg.Connection[tuple[int]]) -> int:
    row = connection.execute(_READ_COUNTER).fetchone()
    return 0 if row is None else int(row[0])


def fold_ended_sessions(database_url: str) -> None:
    """Keep the counter's rows to the live sessions' (the jobs leader calls it); the sum stays."""
    with psycopg.connect(psycopg_conninfo(database_url), autocommit=True, **CONNECTION_OPTIONS) as connection:
        connection.execute(_FOLD_ENDED_SESSIONS)


def _delay(payload: str) -> float | None:
    try:
        started = int(payload) / 1000.0
    except ValueError:
        return None
    return max(0.0, time.time() - started)
