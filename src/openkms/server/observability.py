"""What a node tells its operators about itself: `/readyz` and `/metrics`.

`/healthz` (in `server/app.py`) is liveness: the process answers. `/readyz` says whether this process
can serve requests now: unsealed, its database answers a trivial query within `DATABASE_TIMEOUT`
seconds, its audit sink is not broken. `/metrics` is the Prometheus text of the node (`metrics.py`);
gauges that are cheap to read but not worth keeping up to date on the hot path are set here, just
before the exposition. Neither endpoint needs credentials and neither shows a secret, a key id, an
account or an error's text: a failed check is named, its cause goes to the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from starlette.responses import JSONResponse, Response

from openkms import metrics
from openkms.audit import AuditSink
from openkms.errors import AuditUnavailable
from openkms.repository.database import Database
from openkms.service.container import Services

log = logging.getLogger("openkms.server")

DATABASE_TIMEOUT = 2.0  # seconds a readiness probe waits for the database's answer
FLUSH_SECONDS = 1.0  # how often the metrics tallies of this process are added to the node's counters


class Readiness:
    """The checks of `/readyz`. At most one database probe runs at a time: a probe still waiting on
    a database that hangs is awaited again by the next request, never stacked."""

    def __init__(self, services: Services, audit: AuditSink, timeout: float = DATABASE_TIMEOUT) -> None:
        self._services = services
        self._audit = audit
        self._timeout = timeout
        self._probe: asyncio.Future[None] | None = None
        self._last_database_failure: str | None = None

    async def checks(self) -> dict[str, str]:
        """Each check's state: "ok", or a one-word reason."""
        return {
            "unsealed": "sealed" if self._services.keystore.sealed else "ok",
            "database": await self._database(),
            "audit": self._audit_state(),
        }

    def _audit_state(self) -> str:
        try:
            self._audit.check()
        except AuditUnavailable:
            return "unavailable"
        return "ok"

    async def _database(self) -> str:
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(asyncio.to_thread(_select_one, self._services.db))
        try:
            await asyncio.wait_for(asyncio.shield(self._probe), self._timeout)
        except TimeoutError:
            self._note_database("timeout", "the database did not answer within %.1f s", self._timeout)
            return "timeout"
        except Exception as exc:
            # The exception's text may name the DSN; only its class is logged.
            self._note_database("unreachable", "the database cannot be reached (%s)", type(exc).__name__)
            return "unreachable"
        if self._last_database_failure is not None:
            log.info("the database answers again")
            self._last_database_failure = None
        return "ok"

    def _note_database(self, state: str, message: str, detail: object) -> None:
        """Log a failed probe once per change of state, not once per probe."""
        if self._last_database_failure != state:
            log.warning("readiness: " + message, detail)
            self._last_database_failure = state


def _select_one(db: Database) -> None:
    # A reading unit of work: on SQLite a deferred BEGIN, never the write lock; on PostgreSQL autocommit.
    with db.reading() as uow:
        uow.connection.exec_driver_sql("SELECT 1")


async def readyz(readiness: Readiness) -> JSONResponse:
    checks = await readiness.checks()
    ready = all(state == "ok" for state in checks.values())
    document = {"status": "ready" if ready else "not ready", "checks": checks}
    return JSONResponse(document, status_code=200 if ready else 503)


async def metrics_response(
    services: Services, replay_entries: Callable[[], int] | None, slots: int
) -> Response:
    """The node's metrics, after setting the gauges read at scrape time (off the event loop: the
    multiprocess exposition reads a file per process)."""

    def collect() -> tuple[bytes, str]:
        metrics.SEALED.set(1 if services.keystore.sealed else 0)
        if replay_entries is not None:
            metrics.REPLAY_CACHE_ENTRIES.set(replay_entries())
            metrics.REPLAY_CACHE_SLOTS.set(slots)
        return metrics.exposition()

    metrics.flush()  # on the event loop, where requests are recorded
    body, content_type = await asyncio.to_thread(collect)
    return Response(body, media_type=content_type)


async def flush_metrics_periodically() -> None:
    """Add this process's metrics tallies to the node's counters every `FLUSH_SECONDS`."""
    while True:
        await asyncio.sleep(FLUSH_SECONDS)
        try:
            metrics.flush()
        except Exception:  # the node's metrics folder may be gone: requests must not care
            log.exception("metrics could not be added to the node's values; retried in a second")
