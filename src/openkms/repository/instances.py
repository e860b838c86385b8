"""Key management instances of the three kinds: their settings, sealed secret, revision and health."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, func, insert, select, update

from openkms.domain.instance import Instance, InstanceHealth
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
        settings: Mapping[str, str] | None = None,
        sealed_secret: bytes | None = None,
    ) -> None:
        self._c.execute(
            insert(instances).values(
                instance_id=instance_id,
                account_id=account_id,
                region_id=region_id,
                kind=kind.value,
                name=name,
                created_at=now,
                settings=json.dumps(dict(settings or {}), sort_keys=True),
                sealed_secret=sealed_secret,
                revision=0,
            )
        )

    def change_settings(
        self, instance_id: str, settings: Mapping[str, str], sealed_secret: bytes | None
    ) -> None:
        """New settings (and secret): the revision grows, so providers made from the old ones go."""
        self._c.execute(
            update(instances)
            .where(instances.c.instance_id == instance_id)
            .values(
                settings=json.dumps(dict(settings), sort_keys=True),
                sealed_secret=sealed_secret,
                revision=instances.c.revision + 1,
            )
        )

    def sealed_secret(self, instance_id: str) -> bytes | None:
        row = self._c.execute(
            select(instances.c.sealed_secret).where(instances.c.instance_id == instance_id)
        ).first()
        return None if row is None or row.sealed_secret is None else bytes(row.sealed_secret)

    def record_health(self, instance_id: str, health: InstanceHealth) -> None:
        self._c.execute(
            update(instances)
            .where(instances.c.instance_id == instance_id)
            .values(health_ok=health.ok, health_detail=health.detail, health_checked_at=health.checked_at)
        )

    def of_kind(self, kinds: tuple[InstanceKind, ...]) -> list[Instance]:
        """Every instance of these kinds, in any account (for the health-check job)."""
        rows = self._c.execute(
            self._query()
            .where(instances.c.kind.in_([kind.value for kind in kinds]))
            .order_by(instances.c.instance_id)
        )
        return [_instance(row) for row in rows]

    def _query(self) -> Select[Any]:
        key_count = (
            select(func.count())
            .where(keys.c.instance_id == instances.c.instance_id)
            .scalar_subquery()
            .label("key_count")
        )
        return select(*(c for c in instances.c if c.name != "sealed_secret"), key_count)

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
        settings=json.loads(row.settings or "{}"),
        revision=int(row.revision),
        health=(
            None
            if row.health_ok is None
            else InstanceHealth(bool(row.health_ok), row.health_detail or "", as_utc(row.health_checked_at))
        ),
    )
