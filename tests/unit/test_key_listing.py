"""ListKeys paging in the repository (`KeyRepository.page`): every key exactly once across the pages, in
(created_at, key_id) order, with the right TotalCount, filters applied, on SQLite and PostgreSQL; the
listing reads its order from the index (migration 0010) instead of sorting every key of the account; and
the kept count behind the unfiltered TotalCount (`key_counts`, migration 0010) stays right through the
migration's fill, CreateKey, ScheduleKeyDeletion, the deletion job, and concurrent creates."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, func, insert, select

from openkms.domain.key import KeyFilter
from openkms.repository.key_counts import change_key_count
from openkms.repository.keys import KeyRepository
from openkms.repository.migrate import alembic_config, upgrade_to_head
from openkms.repository.tables import accounts, keys, regions
from openkms.service.keys import CreateKeyRequest
from openkms.testing.jobs import delete_due_keys
from openkms.types import KeyId
from tests.conftest import new_postgres_database
from tests.lifecycle.conftest import Stack, build_stack

ACCOUNT, OTHER, REGION = "1000000000000001", "1000000000000002", "cn-hangzhou"
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'keys.db'}" if request.param == "sqlite" else new_postgres_database()
    made = create_engine(url)
    upgrade_to_head(made)
    yield made
    made.dispose()


def _key(key_id: str, account: str, created: dt.datetime, state: str = "Enabled") -> dict[str, object]:
    return {
        "key_id": key_id, "account_id": account, "region_id": REGION, "instance_id": None,
        "default_slot": None, "spec": "Aliyun_AES_256", "usage": "ENCRYPT/DECRYPT", "origin": "Aliyun_KMS",
        "protection_level": "SOFTWARE", "state": state, "description": "", "creator": account,
        "creator_type": "User", "primary_version_id": None, "created_at": created,
    }  # fmt: skip


def _rows() -> list[dict[str, object]]:
    """250 keys of the account (ties on created_at in groups of 3, every 5th disabled) and 40 of
    another account."""
    rows = [
        _key(f"key-{(i * 7919) % 1000:04d}-{i}", ACCOUNT, T0 + dt.timedelta(seconds=i // 3),
             "Disabled" if i % 5 == 0 else "Enabled")
        for i in range(250)
    ]  # fmt: skip
    return rows + [_key(f"other-{i:03d}", OTHER, T0 + dt.timedelta(seconds=i)) for i in range(40)]


def _insert(engine: Engine, rows: list[dict[str, object]], *, counted: bool) -> None:
    with engine.begin() as c:
        c.execute(insert(regions), [{"region_id": REGION, "created_at": T0}])
        c.execute(
            insert(accounts),
            [{"account_id": a, "kms_status": "Enabled", "created_at": T0} for a in (ACCOUNT, OTHER)],
        )
        c.execute(insert(keys), rows)
        if counted:  # a bulk insert keeps the count as KeyRepository.add does
            for account in (ACCOUNT, OTHER):
                change_key_count(c, account, REGION, sum(r["account_id"] == account for r in rows))


def _fill(engine: Engine) -> list[str]:
    """Inserts `_rows()`; returns the account's key ids in listing order."""
    rows = _rows()
    _insert(engine, rows, counted=True)
    mine = [r for r in rows if r["account_id"] == ACCOUNT]
    return [str(r["key_id"]) for r in sorted(mine, key=lambda r: (r["created_at"], r["key_id"]))]  # type: ignore[arg-type]


def _all_pages(engine: Engine, key_filter: KeyFilter, size: int) -> tuple[list[str], set[int]]:
    listed: list[str] = []
    totals: set[int] = set()
    with engine.connect() as c:
        repo = KeyRepository(c)
        offset = 0
        while True:
            page, total = repo.page(ACCOUNT, REGION, key_filter, offset, size)  # type: ignore[arg-type]
            totals.add(total)
            if not page:
                return listed, totals
            assert len(page) <= size
            listed += [key.key_id for key in page]
            offset += size


@pytest.mark.parametrize("size", [1, 7, 100])
def test_pages_list_every_key_once_in_order_with_the_total(engine: Engine, size: int) -> None:
    expected = _fill(engine)
    listed, totals = _all_pages(engine, KeyFilter(), size)
    assert listed == expected
    assert totals == {250}


def test_a_filter_pages_and_counts_only_its_keys(engine: Engine) -> None:
    expected = _fill(engine)
    disabled = [key_id for key_id in expected if int(key_id.rsplit("-", 1)[1]) % 5 == 0]
    listed, totals = _all_pages(engine, KeyFilter(states=("Disabled",)), 9)
    assert listed == disabled
    assert totals == {50}


def test_a_page_past_the_end_is_empty_and_keeps_the_total(engine: Engine) -> None:
    _fill(engine)
    with engine.connect() as c:
        assert KeyRepository(c).page(ACCOUNT, REGION, KeyFilter(), 10_000, 100) == ([], 250)  # type: ignore[arg-type]


def test_the_listing_order_comes_from_the_index_not_a_sort(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    upgrade_to_head(engine)
    query = (
        select(keys.c.key_id, keys.c.created_at)
        .where(keys.c.account_id == ACCOUNT, keys.c.region_id == REGION)
        .order_by(keys.c.created_at, keys.c.key_id)
        .offset(500)
        .limit(100)
    )
    with engine.connect() as c:
        compiled = query.compile(c, compile_kwargs={"literal_binds": True})
        plan = " ".join(str(row[-1]) for row in c.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))
    engine.dispose()
    assert "COVERING INDEX ix_keys_account_id_region_id_created_at_key_id" in plan
    assert "TEMP B-TREE" not in plan


# ----------------------------------------------------------------------------------------------------
# the kept count behind the unfiltered TotalCount


def _total(engine: Engine, account: str = ACCOUNT) -> int:
    with engine.connect() as c:
        return KeyRepository(c).page(account, REGION, KeyFilter(), 0, 1)[1]  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'keys.db'}" if request.param == "sqlite" else new_postgres_database()


def test_the_migration_counts_the_keys_that_were_there(url: str) -> None:
    engine = create_engine(url)
    config = alembic_config()
    with engine.begin() as c:
        config.attributes["connection"] = c
        command.upgrade(config, "0008")
    _insert(engine, _rows(), counted=False)
    upgrade_to_head(engine)
    try:
        assert (_total(engine), _total(engine, OTHER)) == (250, 40)
        assert _total(engine, "1000000000000003") == 0
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    path = tmp_path / "openkms.db"
    built = (
        build_stack(f"sqlite:///{path}", path)
        if request.param == "sqlite"
        else build_stack(new_postgres_database(), None)
    )
    yield built
    built.services.db.dispose()


def _listed_total(stack: Stack, key_filter: KeyFilter | None = None) -> int:
    return stack.services.keys.list_keys(stack.ctx(), key_filter or KeyFilter(), 1, 10).value[1]


def _counted(stack: Stack) -> int:
    """What a COUNT(*) over the account's keys says."""
    with stack.services.db.engine.connect() as c:
        return int(
            c.execute(
                select(func.count()).select_from(keys).where(keys.c.account_id == stack.account_id)
            ).scalar_one()
        )


def test_total_count_follows_create_schedule_deletion_and_the_deletion_job(stack: Stack) -> None:
    before = _listed_total(stack)
    assert before == _counted(stack)
    made = [
        stack.services.keys.create_key(stack.ctx(), CreateKeyRequest(instance_id=stack.instance_id)).value
        for _ in range(3)
    ]
    assert _listed_total(stack) == before + 3
    stack.services.lifecycle.schedule_deletion(stack.ctx(), made[0].key_id, 7)
    stack.services.lifecycle.schedule_deletion(stack.ctx(), made[1].key_id, 30)
    assert _listed_total(stack) == before + 3  # pending deletion: still listed
    assert _listed_total(stack, KeyFilter(states=("PendingDeletion",))) == 2  # a filter: counted
    stack.clock.advance(dt.timedelta(days=8))
    assert [e.key_id for e in delete_due_keys(stack.services) if e.action == "DeleteKey"] == [made[0].key_id]
    assert _listed_total(stack) == before + 2 == _counted(stack)
    assert delete_due_keys(stack.services) == []  # nothing due: the count stays
    stack.clock.advance(dt.timedelta(days=30))
    delete_due_keys(stack.services)
    assert _listed_total(stack) == before + 1 == _counted(stack)


@pytest.mark.usefixtures("postgres_url")
def test_concurrent_creates_on_postgres_all_count() -> None:
    """Two threads add keys at the same moments, each in its own transaction on its own connection. (The
    service's CreateKey in one instance already queues on the instance's row lock; here nothing else
    orders the two, so only the upsert's increment keeps both counts.)"""
    stack = build_stack(new_postgres_database(), None)
    try:
        template = stack.services.keys.create_key(
            stack.ctx(), CreateKeyRequest(instance_id=stack.instance_id)
        ).value
        before = _listed_total(stack)
        start = threading.Barrier(2)
        failures: list[BaseException] = []

        def add_many(thread: int) -> None:
            try:
                for i in range(25):
                    start.wait(timeout=30)
                    with stack.services.db.engine.begin() as c:
                        key = replace(template, key_id=KeyId(f"key-concurrent-{thread}-{i:02d}"))
                        KeyRepository(c).add(key, customer_master_key=False)
            except BaseException as exc:  # reported by the test below
                failures.append(exc)

        threads = [threading.Thread(target=add_many, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert _listed_total(stack) == before + 50 == _counted(stack)
    finally:
        stack.services.db.dispose()
