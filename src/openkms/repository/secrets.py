"""Secrets, their versions and their tags in the store.

Rows hold a value only sealed (the data key's blob and the value under that data key); this module
never sees a value in clear. Listing filters and paging are done in SQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from openkms.domain.secrets import Secret, SecretDataType, SecretFilter, SecretType, SecretVersion
from openkms.errors import Conflict
from openkms.repository.tables import accounts, as_utc, instances, secret_tags, secret_versions, secrets
from openkms.repository.tag_rows import TagRows
from openkms.types import AccountId, InstanceId, KeyId, RegionId


@dataclass(frozen=True, slots=True)
class SealedVersion:
    """A stored version with its sealed value (for the value use cases only)."""

    version: SecretVersion
    encryption_key_id: str
    data_key_blob: bytes
    sealed_value: bytes


def _secret(row: Any) -> Secret:
    m = row._mapping
    return Secret(
        secret_id=m["secret_id"],
        account_id=AccountId(m["account_id"]),
        region_id=RegionId(m["region_id"]),
        name=m["name"],
        secret_type=SecretType(m["secret_type"]),
        encryption_key_id=KeyId(m["encryption_key_id"]),
        instance_id=None if m["instance_id"] is None else InstanceId(m["instance_id"]),
        description=m["description"],
        creator=m["creator"],
        created_at=as_utc(m["created_at"]),
        updated_at=as_utc(m["updated_at"]),
        policy=m["policy"],
        planned_delete_time=None if m["planned_delete_time"] is None else as_utc(m["planned_delete_time"]),
        extended_config=m["extended_config"],
        automatic_rotation=bool(m["automatic_rotation"]),
        rotation_interval=m["rotation_interval"],
        last_rotation_date=None if m["last_rotation_date"] is None else as_utc(m["last_rotation_date"]),
        next_rotation_date=None if m["next_rotation_date"] is None else as_utc(m["next_rotation_date"]),
    )


def _version(row: Any) -> SecretVersion:
    m = row._mapping
    return SecretVersion(
        m["version_id"],
        tuple(json.loads(m["stages"])),
        SecretDataType(m["data_type"]),
        as_utc(m["created_at"]),
    )


class SecretRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection
        self._tags = TagRows(connection, secret_tags, "secret_id")

    # -- secrets ------------------------------------------------------------------------------------
    def get(self, account_id: str, region_id: str, name: str, *, lock: bool = False) -> Secret | None:
        statement = select(secrets).where(
            secrets.c.account_id == account_id, secrets.c.region_id == region_id, secrets.c.name == name
        )
        if lock:
            statement = statement.with_for_update()
        row = self._c.execute(statement).first()
        return None if row is None else _secret(row)

    def by_id(self, secret_id: str) -> Secret | None:
        row = self._c.execute(select(secrets).where(secrets.c.secret_id == secret_id)).first()
        return None if row is None else _secret(row)

    def add(self, secret: Secret) -> None:
        try:
            with self._c.begin_nested():
                self._c.execute(
                    insert(secrets).values(
                        secret_id=secret.secret_id,
                        account_id=secret.account_id,
                        region_id=secret.region_id,
                        name=secret.name,
                        secret_type=secret.secret_type.value,
                        encryption_key_id=secret.encryption_key_id,
                        instance_id=secret.instance_id,
                        description=secret.description,
                        creator=secret.creator,
                        created_at=secret.created_at,
                        updated_at=secret.updated_at,
                        policy=secret.policy,
                        extended_config=secret.extended_config,
                        automatic_rotation=secret.automatic_rotation,
                        rotation_interval=secret.rotation_interval,
                        next_rotation_date=secret.next_rotation_date,
                    )
                )
        except IntegrityError:
            raise Conflict(f"A secret named {secret.name!r} already exists.") from None

    def touch(self, secret_id: str, now: datetime, **values: object) -> None:
        """Change columns of a secret (description, policy, deletion time) and its update time."""
        self._c.execute(
            update(secrets).where(secrets.c.secret_id == secret_id).values(updated_at=now, **values)
        )

    def count(self, account_id: str, region_id: str, instance_id: str | None) -> int:
        """The secrets that count against a quota: an instance's, or (None) an account's in a region
        outside any instance. Secrets waiting for deletion still count: they can be restored."""
        statement = select(func.count()).select_from(secrets)
        if instance_id is None:
            statement = statement.where(
                secrets.c.instance_id.is_(None),
                secrets.c.account_id == account_id,
                secrets.c.region_id == region_id,
            )
        else:
            statement = statement.where(secrets.c.instance_id == instance_id)
        return int(self._c.execute(statement).scalar_one())

    def lock_quota(self, account_id: str, instance_id: str | None) -> None:
        """Serialise creations against one quota (PostgreSQL row lock; SQLite serialises writers)."""
        if instance_id is None:
            self._c.execute(
                select(accounts.c.account_id).where(accounts.c.account_id == account_id).with_for_update()
            )
        else:
            self._c.execute(
                select(instances.c.instance_id)
                .where(instances.c.instance_id == instance_id)
                .with_for_update()
            )

    def page(
        self, account_id: str, region_id: str, found: SecretFilter, offset: int, limit: int
    ) -> tuple[list[Secret], int]:
        condition = [secrets.c.account_id == account_id, secrets.c.region_id == region_id]
        for column, values in (
            (secrets.c.name, found.names),
            (secrets.c.description, found.descriptions),
            (secrets.c.instance_id, found.instance_ids),
            (secrets.c.secret_type, found.secret_types),
            (secrets.c.creator, found.creators),
        ):
            if values:
                condition.append(column.in_(list(values)))
        for column, values in (
            (secret_tags.c.tag_key, found.tag_keys),
            (secret_tags.c.tag_value, found.tag_values),
        ):
            if values:
                condition.append(
                    exists(
                        select(secret_tags.c.secret_id).where(
                            secret_tags.c.secret_id == secrets.c.secret_id,
                            or_(*(column == v for v in values)),
                        )
                    )
                )
        total = int(self._c.execute(select(func.count()).select_from(secrets).where(*condition)).scalar_one())
        rows = self._c.execute(
            select(secrets)
            .where(*condition)
            .order_by(secrets.c.created_at, secrets.c.name)
            .offset(offset)
            .limit(limit)
        )
        return [_secret(row) for row in rows], total

    def due_for_deletion(self, now: datetime, limit: int) -> list[Secret]:
        rows = self._c.execute(
            select(secrets)
            .where(secrets.c.planned_delete_time.is_not(None), secrets.c.planned_delete_time <= now)
            .order_by(secrets.c.planned_delete_time)
            .limit(limit)
        )
        return [_secret(row) for row in rows]

    def due_for_rotation(self, now: datetime, types: Sequence[str], limit: int) -> list[Secret]:
        """Managed secrets whose NextRotationDate passed (also a rotation left half done, which is
        due at once), not waiting for deletion."""
        rows = self._c.execute(
            select(secrets)
            .where(
                secrets.c.secret_type.in_(list(types)),
                secrets.c.next_rotation_date.is_not(None),
                secrets.c.next_rotation_date <= now,
                secrets.c.planned_delete_time.is_(None),
            )
            .order_by(secrets.c.next_rotation_date)
            .limit(limit)
        )
        return [_secret(row) for row in rows]

    def remove(self, secret_id: str) -> None:
        """Delete a secret with its versions and tags (the sealed values go with them)."""
        self._c.execute(delete(secret_tags).where(secret_tags.c.secret_id == secret_id))
        self._c.execute(delete(secret_versions).where(secret_versions.c.secret_id == secret_id))
        self._c.execute(delete(secrets).where(secrets.c.secret_id == secret_id))

    # -- versions -----------------------------------------------------------------------------------
    def versions(self, secret_id: str) -> list[SecretVersion]:
        rows = self._c.execute(
            select(secret_versions.c.version_id, secret_versions.c.stages, secret_versions.c.data_type,
                   secret_versions.c.created_at)
            .where(secret_versions.c.secret_id == secret_id)
            .order_by(secret_versions.c.seq)
        )  # fmt: skip
        return [_version(row) for row in rows]

    def sealed(self, secret_id: str, version_id: str) -> SealedVersion | None:
        row = self._c.execute(
            select(secret_versions).where(
                secret_versions.c.secret_id == secret_id, secret_versions.c.version_id == version_id
            )
        ).first()
        if row is None:
            return None
        m = row._mapping
        return SealedVersion(
            _version(row), m["encryption_key_id"], bytes(m["data_key_blob"]), bytes(m["sealed_value"])
        )

    def add_version(
        self,
        secret_id: str,
        version: SecretVersion,
        encryption_key_id: str,
        data_key_blob: bytes,
        sealed_value: bytes,
    ) -> None:
        seq = self._c.execute(
            select(func.coalesce(func.max(secret_versions.c.seq), 0)).where(
                secret_versions.c.secret_id == secret_id
            )
        ).scalar_one()
        try:
            with self._c.begin_nested():
                self._c.execute(
                    insert(secret_versions).values(
                        secret_id=secret_id,
                        version_id=version.version_id,
                        seq=int(seq) + 1,
                        stages=json.dumps(list(version.stages)),
                        data_type=version.data_type.value,
                        encryption_key_id=encryption_key_id,
                        data_key_blob=data_key_blob,
                        sealed_value=sealed_value,
                        created_at=version.created_at,
                    )
                )
        except IntegrityError:
            raise Conflict(f"The secret already has a version {version.version_id!r}.") from None

    def set_stages(self, secret_id: str, stages: Mapping[str, Sequence[str]]) -> None:
        """Write each version's stages (only the versions whose stages are given)."""
        for version_id, names in stages.items():
            self._c.execute(
                update(secret_versions)
                .where(secret_versions.c.secret_id == secret_id, secret_versions.c.version_id == version_id)
                .values(stages=json.dumps(list(names)))
            )

    # -- tags ---------------------------------------------------------------------------------------
    def tags(self, secret_id: str) -> dict[str, str]:
        return self._tags.of(secret_id)

    def put_tags(self, secret_id: str, tags: Mapping[str, str]) -> None:
        self._tags.put(secret_id, tags)

    def remove_tags(self, secret_id: str, tag_keys: Iterable[str] | None) -> None:
        self._tags.remove(secret_id, tag_keys)
