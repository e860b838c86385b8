"""Key usage (F8): batched upserts of who called a key, and the key association detection runs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from openkms.repository.tables import as_utc, key_detections, key_usage


@dataclass(frozen=True, slots=True)
class UsageRow:
    key_id: str
    principal: str
    service: str
    last_used_at: datetime
    call_count: int


@dataclass(frozen=True, slots=True)
class DetectionRow:
    key_id: str
    detection_id: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    result: str | None


class UsageRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(self, rows: Iterable[UsageRow]) -> None:
        """Add counts and move last-use times forward (never back), whatever another worker wrote."""
        batch = [
            {
                "key_id": r.key_id,
                "principal": r.principal,
                "service": r.service,
                "last_used_at": r.last_used_at,
                "call_count": r.call_count,
            }
            # One order for every worker: two upserts on PostgreSQL then lock rows in the same order.
            for r in sorted(rows, key=lambda r: (r.key_id, r.principal, r.service))
        ]
        if not batch:
            return
        dialect = postgresql if self._c.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(key_usage)
        self._c.execute(
            statement.on_conflict_do_update(
                index_elements=[key_usage.c.key_id, key_usage.c.principal, key_usage.c.service],
                set_={
                    "call_count": key_usage.c.call_count + statement.excluded.call_count,
                    "last_used_at": func.max(key_usage.c.last_used_at, statement.excluded.last_used_at)
                    if dialect is sqlite
                    else func.greatest(key_usage.c.last_used_at, statement.excluded.last_used_at),
                },
            ),
            batch,
        )

    def of_key(self, key_id: str, since: datetime) -> list[UsageRow]:
        rows = self._c.execute(
            select(key_usage)
            .where(key_usage.c.key_id == key_id, key_usage.c.last_used_at >= since)
            .order_by(key_usage.c.last_used_at.desc(), key_usage.c.principal)
        )
        return [
            UsageRow(r.key_id, r.principal, r.service, as_utc(r.last_used_at), int(r.call_count))
            for r in rows
        ]

    # -- detection runs -----------------------------------------------------------------------------
    def detection(self, key_id: str) -> DetectionRow | None:
        found = self._c.execute(select(key_detections).where(key_detections.c.key_id == key_id)).first()
        if found is None:
            return None
        return DetectionRow(
            found.key_id,
            found.detection_id,
            found.status,
            as_utc(found.started_at),
            None if found.finished_at is None else as_utc(found.finished_at),
            found.result,
        )

    def start_detection(self, key_id: str, detection_id: str, now: datetime) -> None:
        self._c.execute(delete(key_detections).where(key_detections.c.key_id == key_id))
        self._c.execute(
            key_detections.insert().values(
                key_id=key_id, detection_id=detection_id, status="Running", started_at=now, finished_at=None
            )
        )

    def finish_detection(
        self, key_id: str, detection_id: str, status: str, result: str | None, now: datetime
    ) -> None:
        self._c.execute(
            update(key_detections)
            .where(key_detections.c.key_id == key_id, key_detections.c.detection_id == detection_id)
            .values(status=status, result=result, finished_at=now)
        )
