"""Real services on a real database (SQLite file or a fresh PostgreSQL database), driven by a frozen
clock: the rotation and deletion jobs are tested by moving time, never by sleeping."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from openkms.keystore import Keystore
from openkms.node.generation import LocalGeneration
from openkms.repository.database import Database
from openkms.repository.keyring import DatabaseKeyringStore
from openkms.repository.migrate import upgrade_to_head
from openkms.service.bootstrap import bootstrap_store
from openkms.service.container import Services, build_services, software_providers
from openkms.service.context import Principal, RequestContext
from openkms.testing.clock import FrozenClock
from openkms.testing.keyring import StaticRoot
from openkms.types import AccountId, RegionId
from tests.conftest import POSTGRES_ADMIN_URL, new_postgres_database

REGION = RegionId("cn-hangzhou")


@dataclass
class Stack:
    services: Services
    clock: FrozenClock
    account_id: AccountId
    instance_id: str
    db_path: Path | None  # the SQLite file, None on PostgreSQL

    def ctx(self) -> RequestContext:
        return RequestContext(str(uuid.uuid4()), Principal(self.account_id, "root"), REGION)


def build_stack(url: str, db_path: Path | None) -> Stack:
    db = Database(url)
    upgrade_to_head(db.engine)
    clock = FrozenClock()
    account = bootstrap_store(db, (REGION,), clock)
    keystore = Keystore(StaticRoot(), DatabaseKeyringStore(db.engine))
    keystore.unseal()
    generation = LocalGeneration()
    services = build_services(
        db,
        keystore,
        clock,
        generation,
        cache_ttl=0.0,
        providers=software_providers(keystore, generation),
        managed_secret_hosts=("127.0.0.1",),  # the development PostgreSQL (managed secrets' tests)
    )
    with db.unit_of_work() as uow:
        instance = uow.instances.in_region(account, REGION)
    return Stack(services, clock, account, str(instance[0].instance_id), db_path)


@pytest.fixture(params=["sqlite", "postgres"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    if request.param == "sqlite":
        path = tmp_path / "openkms.db"
        built = build_stack(f"sqlite:///{path}", path)
        name = None
    else:
        url = new_postgres_database()
        name = url.rsplit("/", 1)[1]
        built = build_stack(url, None)
    yield built
    built.services.db.dispose()
    if name is not None:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
