"""One process's object graph: the only place that wires keystore, database, services and audit.

`open_runtime` is used by the server's application factory, by every CLI command that touches
state, and by the tests. Never logs secrets; the root of trust is read only when asked to unseal.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from openkms.api.wire_errors import to_wire
from openkms.audit import AuditSink, JsonlAuditSink
from openkms.clock import DEV_CLOCK_FILE, Clock, DevClock, SystemClock
from openkms.config import Settings
from openkms.errors import Sealed
from openkms.keystore import Keystore
from openkms.node.generation import ChangeGeneration, Generation
from openkms.repository.database import Database
from openkms.repository.keyring import DatabaseKeyringStore
from openkms.repository.migrate import upgrade_to_head
from openkms.service.container import Services, build_services, software_providers
from openkms.service.runner import ErrorCode, Runner
from openkms.service.seal import root_of_trust

__all__ = [
    "Runtime",
    "audit_path",
    "build_runtime",
    "build_store",
    "describe_error",
    "open_runtime",
    "upgrade_schema",
]


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    services: Services
    audit: AuditSink
    runner: Runner

    @property
    def db(self) -> Database:
        return self.services.db

    @property
    def keystore(self) -> Keystore:
        return self.services.keystore

    @property
    def clock(self) -> Clock:
        return self.services.clock


def describe_error(error: BaseException) -> ErrorCode:
    """How an error reads in the audit log, whatever the door: the API's code and status. A
    server-side fault's detail stays in the server log."""
    wire = to_wire(error)
    return ErrorCode(wire.code, wire.status, None if wire.status >= 500 else wire.message)


def audit_path(data_dir: Path) -> Path:
    """A new audit log file for this process in the data dir's audit folder."""
    directory = data_dir / "audit"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    # The random part keeps two runtimes of one process (tests, CLI) started in the same second apart.
    return directory / f"audit-{stamp}-{os.getpid()}-{os.urandom(3).hex()}.jsonl"


def build_store(
    settings: Settings, *, clock: Clock | None = None, cache_ttl: float | None = None
) -> Services:
    """Keystore (sealed), database and services, without an audit sink: for steps that serve no
    request (migration and bootstrap before the workers start)."""
    run_dir = settings.data_dir / "run"
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if clock is None:
        clock = DevClock(run_dir / DEV_CLOCK_FILE) if settings.dev_clock else SystemClock()
    db = Database(settings.effective_database_url)
    keystore = Keystore(None, DatabaseKeyringStore(db.engine))
    # Every process on this machine (server workers, admin CLI) shares the change generation, so a
    # change made by one empties the others' caches.
    generation: Generation = ChangeGeneration(run_dir / "generation.shm")
    services = build_services(
        db,
        keystore,
        clock,
        generation,
        settings.cache_ttl_seconds if cache_ttl is None else cache_ttl,
        software_providers(keystore, generation),
        access_quota=settings.access_quota,
        grant_release_seconds=settings.grant_release_seconds,
    )
    return services


def upgrade_schema(services: Services) -> None:
    """Bring the store's schema to the newest version (idempotent)."""
    upgrade_to_head(services.db.engine)


def build_runtime(
    settings: Settings,
    *,
    audit: AuditSink | None = None,
    clock: Clock | None = None,
    cache_ttl: float | None = None,
) -> Runtime:
    """The graph of one process, sealed: the caller unseals (the server at start-up, `open_runtime`)."""
    services = build_store(settings, clock=clock, cache_ttl=cache_ttl)
    if audit is None:
        audit = JsonlAuditSink(audit_path(settings.data_dir), fsync=settings.audit_fsync)
    runner = Runner(services.keystore, audit, services.usage, services.clock, describe_error)
    return Runtime(settings, services, audit, runner)


@contextmanager
def open_runtime(settings: Settings, *, passphrase: str | None = None) -> Iterator[Runtime]:
    """An unsealed runtime for one CLI command; sealed, flushed and closed on exit.

    The root of trust comes from the settings (the key file, or `passphrase`, else
    OPENKMS_UNSEAL_PASSPHRASE); `Sealed` when a passphrase is needed and none was given."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    root = root_of_trust(settings, passphrase=passphrase or settings.unseal_passphrase)
    if root is None:
        raise Sealed("The key store is sealed: set OPENKMS_UNSEAL_PASSPHRASE for this command.")
    # No caches: a CLI command reads each thing once, and must see what the server just wrote.
    runtime = build_runtime(settings, cache_ttl=0.0)
    try:
        runtime.keystore.unseal(root)
        yield runtime
    finally:
        runtime.keystore.seal()
        runtime.services.usage.flush()
        close_audit(runtime.audit)
        runtime.db.dispose()


def close_audit(audit: AuditSink) -> None:
    """Close a sink from synchronous code (the CLI): its last records are made durable first."""
    import asyncio

    asyncio.run(audit.aclose())
