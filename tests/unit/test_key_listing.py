"""ListKeys paging in the repository (`KeyRepository.page`): every key exactly once across the pages, in
(created_at, key_id) order, with the right TotalCount, filters applied, on SQLite and PostgreSQL; and the
listing reads its order from the index (migration 0010) instead of sorting every key of the account."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, insert, select

from openkms.domain.key import KeyFilter
from openkms.repository.keys import KeyRepository
from openkms.repository.migrate import upgrade_to_head
from openkms.repository.tables import accounts, keys, regions
from tests.conftest import new_postgres_database

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


def _fill(engine: Engine) -> list[str]:
    """250 keys of the account (ties on created_at in groups of 3, every 5th disabled) and 40 of
    another account; returns the account's key ids in listing order."""
    rows = [
        _key(f"key-{(i * 7919) % 1000:04d}-{i}", ACCOUNT, T0 + dt.timedelta(seconds=i // 3),
             "Disabled" if i % 5 == 0 else "Enabled")
        for i in range(250)
    ]  # fmt: skip
    rows += [_key(f"other-{i:03d}", OTHER, T0 + dt.timedelta(seconds=i)) for i in range(40)]
    with engine.begin() as c:
        c.execute(insert(regions), [{"region_id": REGION, "created_at": T0}])
        c.execute(
            insert(accounts),
            [{"account_id": a, "kms_status": "Enabled", "created_at": T0} for a in (ACCOUNT, OTHER)],
        )
        c.execute(insert(keys), rows)
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
