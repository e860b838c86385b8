"""Key management instances (software now; hardware and external later)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, func, insert, select

from openkms.domain.instance import Instance
from openkms.repository.tables import as_utc, instances, keys
from openkms.types import AccountId, InstanceId, InstanceKind, RegionId


class InstanceRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(
        self,
        instance_id: InstanceId,
        account_id: AccountId,
        region_id: RegionId,
        kind: InstanceKind,
        name: str,
        now: datetime,
    ) -> None:
        self._c.execute(
            insert(instances).values(
                instance_id=instance_id,
                account_id=account_id,
                region_id=region_id,
                kind=kind.value,
                name=name,
                created_at=now,
            )
        )

    def _query(self) -> Select[Any]:
        key_count = (
            select(func.count())
            .where(keys.c.instance_id == instances.c.instance_id)
            .scalar_subquery()
            .label("key_count")
        )
        return select(instances, key_count)

    def get(self, instance_id: str) -> Instance | None:
        row = self._c.execute(self._query().where(instances.c.instance_id == instance_id)).first()
        return None if row is None else _instance(row)

    def in_region(self, account_id: AccountId, region_id: RegionId) -> list[Instance]:
        rows = self._c.execute(
            self._query()
            .where(instances.c.account_id == account_id, instances.c.region_id == region_id)
            .order_by(instances.c.created_at, instances.c.instance_id)
        )
        return [_instance(row) for row in rows]


def _instance(row: Row[Any]) -> Instance:
    return Instance(
        InstanceId(row.instance_id),
        AccountId(row.account_id),
        RegionId(row.region_id),
        InstanceKind(row.kind),
        row.name,
        as_utc(row.created_at),
        int(row.key_count),
    )
