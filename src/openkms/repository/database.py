"""The engine and the unit of work. One Database per process, built by the application factory.

SQLite runs in WAL mode with synchronous=FULL (a committed key survives power loss) and takes the
write lock at BEGIN for writing units of work, so two worker processes never deadlock upgrading a
read lock. PostgreSQL needs nothing special. Statement parameters never appear in errors or logs
(`hide_parameters`): they can hold wrapped material.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry

from openkms.domain.lease import Fence
from openkms.repository import replay_ledger
from openkms.repository.access_points import AccessPointRepository
from openkms.repository.accounts import AccountRepository
from openkms.repository.aliases import AliasRepository
from openkms.repository.blocking import ensure_may_block
from openkms.repository.change_feed import fold_ended_sessions
from openkms.repository.console import ConsoleRepository
from openkms.repository.identities import IdentityRepository
from openkms.repository.imports import ImportRepository
from openkms.repository.instances import InstanceRepository
from openkms.repository.keyring import KeyringRepository
from openkms.repository.keys import KeyRepository
from openkms.repository.leases import Lease, check_fence, fenced
from openkms.repository.lifecycle import LifecycleRepository
from openkms.repository.secrets import SecretRepository
from openkms.repository.sharing import SharingRepository
from openkms.repository.tags import TagRepository
from openkms.repository.usage import UsageRepository

log = logging.getLogger("openkms.repository")

# How long a scrub's checkpoint waits for readers before it reports busy (the pool's is 30 s).
SCRUB_BUSY_TIMEOUT_MS = 1000


class UnitOfWork:
    """The repositories of one transaction. Commit happens when the `with` block ends cleanly."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.accounts = AccountRepository(connection)
        self.instances = InstanceRepository(connection)
        self.keys = KeyRepository(connection)
        self.keyring = KeyringRepository(connection)
        self.identities = IdentityRepository(connection)
        self.sharing = SharingRepository(connection)
        self.usage = UsageRepository(connection)
        self.aliases = AliasRepository(connection)
        self.tags = TagRepository(connection)
        self.lifecycle = LifecycleRepository(connection)
        self.imports = ImportRepository(connection)
        self.console = ConsoleRepository(connection)
        self.access_points = AccessPointRepository(connection)
        self.secrets = SecretRepository(connection)


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        self.engine = _build_engine(url, self.is_sqlite)
        # A scrub that could not finish (a reader kept the WAL busy): the job runner retries it.
        self.scrub_pending = False

    @contextmanager
    def unit_of_work(self, *, write: bool = False) -> Iterator[UnitOfWork]:
        ensure_may_block()
        with self.engine.connect() as connection:
            connection.info["openkms_write"] = write
            with connection.begin():
                if write:
                    check_fence(connection)  # a jobs step: only while its lease holds
                yield UnitOfWork(connection)

    @contextmanager
    def reading(self) -> Iterator[UnitOfWork]:
        """A unit of work that only reads: what a cache fills itself from on a miss.

        On PostgreSQL its statements run in autocommit, without the BEGIN and COMMIT round trips
        (each statement sees the data committed when it starts, as it would at the default READ
        COMMITTED inside a transaction), so a cold request costs two round trips less per read.
        SQLite keeps the transaction: it gives the reads one snapshot, and costs no round trip."""
        if self.is_sqlite:
            with self.unit_of_work() as uow:
                yield uow
            return
        ensure_may_block()
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.info["openkms_write"] = False
            yield UnitOfWork(connection)

    def scrub(self) -> bool:
        """After destroying key material: make sure no copy of it survives in the database files.
        True when done; False when it must be retried (`scrub_pending` stays set until it is done).

        SQLite: secure_delete already zeroed the freed cells; a TRUNCATE checkpoint moves those pages
        into the main file and empties the WAL, whose old frames still held the rows. A reader with an
        older snapshot keeps the checkpoint from finishing: SQLite answers busy, the WAL keeps its
        frames, and the scrub stays pending. PostgreSQL: VACUUM the tables that held material so dead
        tuples are reclaimed (best effort, P10).
        """
        if self.is_sqlite:
            raw = self.engine.raw_connection()  # autocommit (isolation_level None): no open transaction
            try:
                cursor = raw.cursor()
                cursor.execute(f"PRAGMA busy_timeout={SCRUB_BUSY_TIMEOUT_MS}")
                try:
                    cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    row = cursor.fetchone()
                    busy, wal_frames, checkpointed = (1, -1, -1) if row is None else row
                finally:
                    cursor.execute("PRAGMA busy_timeout=30000")
                    cursor.close()
            finally:
                raw.close()
            if busy:
                log.warning(
                    "scrub pending: the WAL checkpoint was busy (%s of %s frames checkpointed); "
                    "destroyed material may remain in the WAL until the next job run",
                    checkpointed,
                    wal_frames,
                )
                self.scrub_pending = True
                return False
            self.scrub_pending = False
            return True
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM key_versions")
        self.scrub_pending = False
        return True

    def lease(self, name: str, seconds: float) -> Lease:
        """A fenced lease on this store (the jobs leader's: `repository/leases.py`)."""
        return Lease(self.engine, name, seconds)

    def fenced(self, fence: Fence) -> AbstractContextManager[None]:
        """Write units of work opened inside commit only while `fence` holds (else LeaseLost)."""
        return fenced(fence)

    def sweep_shared_state(self) -> int:
        """PostgreSQL: delete the shared replay cache's expired entries (the number deleted) and fold
        the change counter rows of ended sessions."""
        if self.is_sqlite:
            return 0
        fold_ended_sessions(self.url)
        return replay_ledger.sweep(self.url)

    def dispose(self) -> None:
        self.engine.dispose()


def _build_engine(url: str, is_sqlite: bool) -> Engine:
    if not is_sqlite:
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, hide_parameters=True)
    engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy's begin event issue BEGIN itself (pysqlite's implicit BEGIN is too late).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Deleted rows are overwritten with zeros, so destroyed key material leaves no bytes behind (P10).
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.info.get("openkms_write", True)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
