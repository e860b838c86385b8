"""The replay ledger: SignatureNonces spent on any node of one PostgreSQL store.

A node first checks its own replay cache (`node/nonces.py`, shared memory: a replay to the same node
never reaches the database); a nonce new to the node is then inserted here, and a conflict means
another node spent it. Inserts from concurrent requests are batched: one thread per worker process
sends every nonce waiting at that moment in one statement (`INSERT ... SELECT unnest(...) ON CONFLICT
DO NOTHING RETURNING`), so the cost per request falls as the load rises.

Rows hold a SHA-256 fingerprint of (access key id, nonce), never either value, and the time after
which the timestamp window refuses a replay anyway (`expires_at`, Unix ms); `sweep` deletes expired
rows (the jobs leader calls it). Fails closed: a database error refuses the request (Unavailable).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from openkms import errors
from openkms.repository.change_feed import CONNECTION_OPTIONS, psycopg_conninfo

log = logging.getLogger("openkms.repository.replay_ledger")

_SPEND = (
    "INSERT INTO spent_nonces (fingerprint, expires_at) "
    "SELECT * FROM unnest(%s::bytea[], %s::bigint[]) ON CONFLICT DO NOTHING RETURNING fingerprint"
)
# By the database's clock, with a margin: a node whose clock is behind the database's (by less than
# the margin) still finds the row of a nonce it would accept. Every node must use the same
# timestamp_window_seconds (docs/operations.md): a row expires with the accepting node's window.
_SWEEP = (
    "DELETE FROM spent_nonces WHERE ctid IN (SELECT ctid FROM spent_nonces WHERE expires_at < "
    "(extract(epoch FROM clock_timestamp()) * 1000)::bigint - %s LIMIT %s)"
)
SWEEP_MARGIN_MS = 300_000
MAX_BATCH = 1000
SPEND_TIMEOUT = 10.0  # seconds a request waits for the ledger before it is refused (fail closed)


def fingerprint(access_key_id: str, nonce: str) -> bytes:
    return hashlib.sha256(access_key_id.encode() + b"\x00" + nonce.encode()).digest()


@dataclass(slots=True)
class _Pending:
    fingerprint: bytes
    expires_at: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[bool]


class ReplayLedger:
    """`await spend(access_key_id, nonce, expires_at)` is True when no node had spent the nonce."""

    def __init__(self, database_url: str) -> None:
        self._conninfo = psycopg_conninfo(database_url)
        self._queue: deque[_Pending] = deque()
        self._staged: list[_Pending] = []  # touched only on the event loop that asks
        self.statements = 0  # inserts sent (each carries a batch)
        self._ready = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    async def spend(self, access_key_id: str, nonce: str, expires_at: float) -> bool:
        loop = asyncio.get_running_loop()
        pending = _Pending(
            fingerprint(access_key_id, nonce), int(expires_at * 1000), loop, loop.create_future()
        )
        # Staged on the loop until the requests it is running now have all asked: then handed over
        # in one piece, so they share one statement (and one wake-up of the ledger's thread).
        self._staged.append(pending)
        if len(self._staged) == 1:
            loop.call_soon(self._hand_over)
        try:
            return await asyncio.wait_for(pending.future, SPEND_TIMEOUT)
        except TimeoutError:
            raise errors.Unavailable() from None

    def _hand_over(self) -> None:
        staged, self._staged = self._staged, []
        with self._ready:
            if self._closed:
                for item in staged:
                    _fail_all([item.future])
                return
            self._queue.extend(staged)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="openkms-replay-ledger", daemon=True)
                self._thread.start()
            self._ready.notify()

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        connection: psycopg.Connection[tuple[bytes]] | None = None
        while True:
            with self._ready:
                while not self._queue and not self._closed:
                    self._ready.wait()
                if self._closed and not self._queue:
                    break
                batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
            try:
                if connection is None or connection.closed:
                    connection = psycopg.connect(
                        self._conninfo,
                        autocommit=True,
                        options="-c statement_timeout=5000",
                        **CONNECTION_OPTIONS,
                    )
                fresh = _insert(connection, batch)
                self.statements += 1
            except Exception as exc:  # any failure refuses this batch; the thread goes on
                log.warning("the replay ledger cannot reach the database (%s)", type(exc).__name__)
                if connection is not None:
                    connection.close()
                connection = None
                for loop in {item.loop for item in batch}:
                    _tell(loop, _fail_all, [i.future for i in batch if i.loop is loop])
                continue
            answers: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[bool], bool]]] = {}
            for item in batch:
                answers.setdefault(item.loop, []).append((item.future, item.fingerprint in fresh))
                fresh.discard(item.fingerprint)  # the same nonce twice in one batch: the first wins
            for loop, settled in answers.items():  # one wake-up of each loop per batch
                _tell(loop, _settle_all, settled)
        if connection is not None:
            connection.close()


def _tell(loop: asyncio.AbstractEventLoop, callback: Callable[[Any], None], argument: Any) -> None:
    """Run `callback(argument)` on `loop`; a loop that has closed meanwhile has nobody waiting."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, argument)


def _insert(connection: psycopg.Connection[tuple[bytes]], batch: list[_Pending]) -> set[bytes]:
    # Two requests with one nonce in the same batch: send it once.
    unique: dict[bytes, int] = {}
    for item in batch:
        unique.setdefault(item.fingerprint, item.expires_at)
    rows = connection.execute(_SPEND, (list(unique), list(unique.values()))).fetchall()
    return {bytes(row[0]) for row in rows}


def _settle_all(settled: list[tuple[asyncio.Future[bool], bool]]) -> None:
    for future, fresh in settled:
        if not future.done():
            future.set_result(fresh)


def _fail_all(futures: list[asyncio.Future[bool]]) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(errors.Unavailable())


def sweep(database_url: str, *, batch: int = 10_000) -> int:
    """Delete expired rows (a batch at a time, so no long lock); the number deleted."""
    deleted = 0
    with psycopg.connect(psycopg_conninfo(database_url), autocommit=True, **CONNECTION_OPTIONS) as connection:
        while True:
            cursor = connection.execute(_SWEEP, (SWEEP_MARGIN_MS, batch))
            deleted += cursor.rowcount
            if cursor.rowcount < batch:
                return deleted
