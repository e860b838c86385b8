"""One process's object graph: the only place that wires keystore, database, services and audit.

`open_runtime` is used by the server's application factory, by every CLI command that touches
state, and by the tests. Never logs secrets; the root of trust is read only when asked to unseal.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from openkms.api.actions import PRODUCTS
from openkms.api.wire_errors import to_wire
from openkms.audit import AuditSink, JsonlAuditSink
from openkms.clock import DEV_CLOCK_FILE, Clock, DevClock, SystemClock
from openkms.config import Settings
from openkms.domain.audit_heads import FileLink
from openkms.errors import OpenKMSError, Sealed
from openkms.keystore import Keystore
from openkms.metrics import RequestMeter
from openkms.node.generation import ChangeGeneration, Generation
from openkms.node.rate_limits import Limits, Rate
from openkms.repository.audit_heads import DatabaseHeadStore
from openkms.repository.database import Database
from openkms.repository.keyring import DatabaseKeyringStore
from openkms.repository.migrate import upgrade_to_head
from openkms.server.file_modes import create_sqlite_file
from openkms.service import offload
from openkms.service.container import Services, build_services, key_store_providers
from openkms.service.runner import ErrorCode, Runner
from openkms.service.seal import root_of_trust
from openkms.service.service_secrets import AUDIT_CHAIN_SECRET, service_secret
from openkms.service.sign_in import SignInPolicy

__all__ = [
    "AUDIT_CHAIN_SECRET",
    "WORKER_SLOT_ENV",
    "Runtime",
    "audit_path",
    "audit_sink",
    "build_runtime",
    "build_store",
    "describe_error",
    "head_store",
    "key_audit_chain",
    "open_runtime",
    "tenant_limits",
    "upgrade_schema",
    "worker_slot",
]

log = logging.getLogger("openkms.runtime")

WORKER_SLOT_ENV = "OPENKMS_WORKER_SLOT"  # set by the worker supervisor: the worker's socket index


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


def known_actions() -> frozenset[str]:
    """Every RPC action name as the audit log writes it ("Encrypt", "ram:CreateUser"): the metrics
    label a refused request with its action only if it is one of these."""
    return frozenset(
        name if product.prefix == "kms" else f"{product.prefix}:{name}"
        for product in PRODUCTS.values()
        for name in product.actions
    )


def describe_error(error: BaseException) -> ErrorCode:
    """How an error reads in the audit log, whatever the door: the API's code and status. A
    server-side fault's detail stays in the server log."""
    wire = to_wire(error)
    if wire.status >= 500:
        return ErrorCode(wire.code, wire.status, None)
    if isinstance(error, OpenKMSError) and error.audit_reason != error.message:
        return ErrorCode(wire.code, wire.status, error.audit_reason)
    return ErrorCode(wire.code, wire.status, wire.message)


def audit_path(data_dir: Path) -> Path:
    """A new audit log file for this process in the data dir's audit folder."""
    directory = data_dir / "audit"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    # The random part keeps two runtimes of one process (tests, CLI) started in the same second apart.
    return directory / f"audit-{stamp}-{os.getpid()}-{os.urandom(3).hex()}.jsonl"


def worker_slot() -> str:
    """Which writer this process is, for the audit file's links: the worker's index (0 alone)."""
    return os.environ.get(WORKER_SLOT_ENV, "0")


def head_store(services: Services, data_dir: Path) -> DatabaseHeadStore:
    """The sealed heads of this node's audit files (the node: this host's data dir)."""
    return _head_store(services.db, data_dir)


def _head_store(db: Database, data_dir: Path) -> DatabaseHeadStore:
    return DatabaseHeadStore(db.engine, f"{socket.gethostname()}:{data_dir.resolve()}")


def audit_sink(settings: Settings, services: Services, slot: str) -> JsonlAuditSink:
    """A new audit file for this process, linked to the last file of its slot, publishing its head."""
    heads = head_store(services, settings.data_dir)
    link = None
    try:
        last = heads.last_of_slot(slot)
        link = None if last is None else FileLink(last.file, last.hash)
    except Exception as exc:  # a store not migrated yet: the file starts a new line of its slot
        log.warning("audit: the previous file of slot %s is not known (%s)", slot, type(exc).__name__)
    return JsonlAuditSink(
        audit_path(settings.data_dir), fsync=settings.audit_fsync, slot=slot, link=link, heads=heads
    )


def key_audit_chain(services: Services, audit: AuditSink) -> None:
    """Key the audit chain once the keystore is unsealed (the key is a server secret)."""
    key = service_secret(
        services.db, services.keystore, services.clock, AUDIT_CHAIN_SECRET, "audit chain HMAC"
    )
    audit.use_chain_key(key.reveal())


def build_store(
    settings: Settings, *, clock: Clock | None = None, cache_ttl: float | None = None
) -> Services:
    """Keystore (sealed), database and services, without an audit sink: for steps that serve no
    request (migration and bootstrap before the workers start)."""
    run_dir = settings.data_dir / "run"
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if clock is None:
        clock = DevClock(run_dir / DEV_CLOCK_FILE) if settings.dev_clock else SystemClock()
    create_sqlite_file(settings.effective_database_url)  # 0600 before SQLite makes it 0644 & ~umask
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
        key_store_providers(db, keystore, generation),
        access_quota=settings.access_quota,
        secret_quota=settings.secret_quota,
        managed_secret_hosts=settings.managed_secret_hosts,
        key_quota=settings.key_quota,
        crypto_rate=settings.rate_crypto_per_account,
        grant_release_seconds=settings.grant_release_seconds,
        sign_in_policy=SignInPolicy(
            idle_seconds=settings.console_session_idle_seconds,
            max_seconds=settings.console_session_max_seconds,
            lockout_threshold=settings.console_lockout_threshold,
            lockout_seconds=settings.console_lockout_seconds,
        ),
        audit_dir=settings.data_dir / "audit",
        audit_heads=_head_store(db, settings.data_dir),
    )
    return services


def tenant_limits(settings: Settings) -> Limits:
    """The request-rate limits of the settings, per account and per access key, by action class."""
    burst = settings.rate_burst_seconds

    def rate(per_second: int) -> Rate:
        return Rate(per_second, per_second * burst)

    return Limits(
        per_account=(
            rate(settings.rate_crypto_per_account),
            rate(settings.rate_management_per_account),
            rate(settings.rate_ram_per_account),
        ),
        per_access_key=(
            rate(settings.rate_crypto_per_access_key),
            rate(settings.rate_management_per_access_key),
            rate(settings.rate_ram_per_access_key),
        ),
    )


def upgrade_schema(services: Services) -> None:
    """Bring the store's schema to the newest version (idempotent)."""
    upgrade_to_head(services.db.engine)


def build_runtime(
    settings: Settings,
    *,
    audit: AuditSink | None = None,
    clock: Clock | None = None,
    cache_ttl: float | None = None,
    slot: str | None = None,
) -> Runtime:
    """The graph of one process, sealed: the caller unseals (the server at start-up, `open_runtime`)."""
    services = build_store(settings, clock=clock, cache_ttl=cache_ttl)
    offload.cold_path_threads(
        offload.COLD_PATH_THREADS_SQLITE if services.db.is_sqlite else offload.COLD_PATH_THREADS
    )
    if audit is None:
        audit = audit_sink(settings, services, worker_slot() if slot is None else slot)
    meter = RequestMeter(known_actions())
    runner = Runner(services.keystore, audit, services.usage, services.clock, describe_error, meter)
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
    runtime = build_runtime(settings, cache_ttl=0.0, slot="cli")
    try:
        runtime.keystore.unseal(root)
        key_audit_chain(runtime.services, runtime.audit)
        yield runtime
    finally:
        runtime.keystore.seal()
        runtime.services.usage.flush()
        close_audit(runtime.audit)
        runtime.services.providers.close()
        runtime.db.dispose()


def close_audit(audit: AuditSink) -> None:
    """Close a sink from synchronous code (the CLI): its last records are made durable first."""
    import asyncio

    asyncio.run(audit.aclose())
