"""Lifecycle writes on keys and their versions: description, deletion protection, rotation policy,
scheduled deletion, new primary versions, the due lists of the jobs, and destruction.

Every method runs inside the caller's unit of work; none commits.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, func, select, update

from openkms.domain.key import KeyVersion
from openkms.repository.key_counts import change_key_count
from openkms.repository.material import wipe_versions
from openkms.repository.tables import (
    aliases,
    as_utc,
    import_tokens,
    key_detections,
    key_imports,
    key_tags,
    key_usage,
    key_versions,
    keys,
)
from openkms.types import KeyId, KeyState, KeyVersionId


class LifecycleRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def lock_key(self, key_id: KeyId) -> None:
        """Take the key row's write lock for the rest of the transaction (PostgreSQL; SQLite's
        BEGIN IMMEDIATE already serialises writers)."""
        if self._c.dialect.name == "postgresql":
            self._c.execute(select(keys.c.key_id).where(keys.c.key_id == key_id).with_for_update())

    def set_description(self, key_id: KeyId, description: str) -> None:
        self._c.execute(update(keys).where(keys.c.key_id == key_id).values(description=description))

    def set_deletion_protection(self, key_id: KeyId, enabled: bool, description: str) -> None:
        self._c.execute(
            update(keys)
            .where(keys.c.key_id == key_id)
            .values(deletion_protection=enabled, deletion_protection_description=description)
        )

    def set_rotation(self, key_id: KeyId, interval: int | None, next_rotation: datetime | None) -> None:
        self._c.execute(
            update(keys)
            .where(keys.c.key_id == key_id)
            .values(rotation_interval=interval, next_rotation_date=next_rotation)
        )

    def set_state_and_delete_date(self, key_id: KeyId, state: KeyState, delete_date: datetime | None) -> None:
        self._c.execute(
            update(keys).where(keys.c.key_id == key_id).values(state=state.value, delete_date=delete_date)
        )

    def next_seq(self, key_id: KeyId) -> int:
        current = self._c.execute(
            select(func.max(key_versions.c.seq)).where(key_versions.c.key_id == key_id)
        ).scalar_one()
        return 1 if current is None else int(current) + 1

    def promote(
        self,
        version: KeyVersion,
        seq: int,
        wrapped_material: bytes,
        expected_primary: KeyVersionId | None,
        next_rotation: datetime | None,
    ) -> bool:
        """Add `version` and make it the primary, only if the primary is still `expected_primary`.

        False (and nothing written) when another rotation got there first. Both rows change in the
        caller's transaction, so a crash leaves either the old primary or the complete new one (P19).
        """
        changed = self._c.execute(
            update(keys)
            .where(keys.c.key_id == version.key_id, keys.c.primary_version_id == expected_primary)
            .values(
                primary_version_id=version.version_id,
                last_rotation_date=version.created_at,
                next_rotation_date=next_rotation,
            )
        ).rowcount
        if changed != 1:
            return False
        self._c.execute(
            key_versions.insert().values(
                version_id=version.version_id,
                key_id=version.key_id,
                seq=seq,
                wrapped_material=wrapped_material,
                created_at=version.created_at,
            )
        )
        return True

    def count_versions(self, key_id: KeyId) -> int:
        return int(
            self._c.execute(
                select(func.count()).select_from(key_versions).where(key_versions.c.key_id == key_id)
            ).scalar_one()
        )

    def versions_page(self, key_id: KeyId, offset: int, limit: int) -> list[KeyVersion]:
        rows = self._c.execute(
            select(key_versions.c.key_id, key_versions.c.version_id, key_versions.c.created_at)
            .where(key_versions.c.key_id == key_id)
            .order_by(key_versions.c.seq)
            .offset(offset)
            .limit(limit)
        )
        return [KeyVersion(KeyId(r.key_id), KeyVersionId(r.version_id), as_utc(r.created_at)) for r in rows]

    def due_for_rotation(self, now: datetime, limit: int) -> list[KeyId]:
        rows = self._c.execute(
            select(keys.c.key_id)
            .where(
                keys.c.next_rotation_date.is_not(None),
                keys.c.next_rotation_date <= now,
                keys.c.state == KeyState.ENABLED.value,
            )
            .order_by(keys.c.next_rotation_date)
            .limit(limit)
        )
        return [KeyId(row.key_id) for row in rows]

    def due_for_deletion(self, now: datetime, limit: int) -> list[KeyId]:
        rows = self._c.execute(
            select(keys.c.key_id)
            .where(keys.c.state == KeyState.PENDING_DELETION.value, keys.c.delete_date <= now)
            .order_by(keys.c.delete_date)
            .limit(limit)
        )
        return [KeyId(row.key_id) for row in rows]

    def destroy(self, key_id: KeyId) -> list[KeyVersionId]:
        """Delete the key, every version's wrapped material, its aliases, tags and usage. Returns the
        destroyed version ids (so caches can forget them)."""
        versions = wipe_versions(self._c, key_id)
        self._c.execute(delete(aliases).where(aliases.c.key_id == key_id))
        self._c.execute(delete(key_tags).where(key_tags.c.key_id == key_id))
        self._c.execute(delete(key_usage).where(key_usage.c.key_id == key_id))
        self._c.execute(delete(key_detections).where(key_detections.c.key_id == key_id))
        # Imported material: the wrapping keys of its tokens (overwritten first too), its import record.
        self._c.execute(
            update(import_tokens).where(import_tokens.c.key_id == key_id).values(wrapped_private_key=b"")
        )
        self._c.execute(delete(import_tokens).where(import_tokens.c.key_id == key_id))
        self._c.execute(delete(key_imports).where(key_imports.c.key_id == key_id))
        gone = self._c.execute(
            delete(keys).where(keys.c.key_id == key_id).returning(keys.c.account_id, keys.c.region_id)
        ).first()
        if gone is not None:  # the kept count of ListKeys' TotalCount, in this transaction
            change_key_count(self._c, gone.account_id, gone.region_id, -1)
        return versions
