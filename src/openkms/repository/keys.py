"""Keys and their versions. Versions carry only wrapped material."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from openkms.domain.key import Key, KeyFilter, KeyVersion
from openkms.errors import Conflict
from openkms.repository.key_counts import change_key_count, key_count
from openkms.repository.tables import aliases, as_utc, key_tags, key_versions, keys
from openkms.types import (
    AccountId,
    CreatorType,
    InstanceId,
    KeyId,
    KeySpec,
    KeyState,
    KeyUsage,
    KeyVersionId,
    Origin,
    ProtectionLevel,
    RegionId,
)


@dataclass(frozen=True, slots=True)
class StoredVersion:
    version: KeyVersion
    seq: int
    wrapped_material: bytes


class KeyRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(self, key: Key, *, customer_master_key: bool) -> None:
        """Insert a key. A second customer master key in the same account and region is a Conflict."""
        try:
            with self._c.begin_nested():
                self._c.execute(
                    insert(keys).values(
                        key_id=key.key_id,
                        account_id=key.account_id,
                        region_id=key.region_id,
                        instance_id=key.instance_id,
                        default_slot="cmk" if customer_master_key else None,
                        spec=key.spec.value,
                        usage=key.usage.value,
                        origin=key.origin.value,
                        protection_level=key.protection_level.value,
                        state=key.state.value,
                        description=key.description,
                        creator=key.creator,
                        creator_type=key.creator_type.value,
                        primary_version_id=key.primary_version_id,
                        created_at=key.created_at,
                        delete_date=key.delete_date,
                        policy=key.policy,
                        deletion_protection=key.deletion_protection,
                        deletion_protection_description=key.deletion_protection_description,
                        rotation_interval=key.rotation_interval,
                        last_rotation_date=key.last_rotation_date,
                        next_rotation_date=key.next_rotation_date,
                        material_expire_time=key.material_expire_time,
                        additional_usages=",".join(usage.value for usage in key.additional_usages),
                        external_key_id=key.external_key_id,
                    )
                )
                change_key_count(self._c, key.account_id, key.region_id, 1)
        except IntegrityError as exc:
            raise Conflict(
                "This region already has its customer master key (at most one per region); "
                "create more keys in a key management instance (DKMSInstanceId)."
            ) from exc

    def add_version(self, version: KeyVersion, seq: int, wrapped_material: bytes) -> None:
        self._c.execute(
            insert(key_versions).values(
                version_id=version.version_id,
                key_id=version.key_id,
                seq=seq,
                wrapped_material=wrapped_material,
                created_at=version.created_at,
            )
        )

    def get(self, key_id: str) -> Key | None:
        row = self._c.execute(select(keys).where(keys.c.key_id == key_id)).first()
        return None if row is None else _key(row)

    def set_policy(self, key_id: KeyId, policy: str) -> None:
        self._c.execute(update(keys).where(keys.c.key_id == key_id).values(policy=policy))

    def set_state(self, key_id: KeyId, state: KeyState) -> None:
        self._c.execute(update(keys).where(keys.c.key_id == key_id).values(state=state.value))

    def page(
        self,
        account_id: AccountId,
        region_id: RegionId,
        key_filter: KeyFilter,
        offset: int,
        limit: int,
    ) -> tuple[list[Key], int]:
        """One page of keys, oldest first, and the total count matching the filter (without filters,
        the kept count of `key_counts`; with one, a COUNT over the account's matching keys)."""
        conditions = [keys.c.account_id == account_id, keys.c.region_id == region_id]
        for column, values in (
            (keys.c.state, key_filter.states),
            (keys.c.spec, key_filter.specs),
            (keys.c.usage, key_filter.usages),
            (keys.c.protection_level, key_filter.protection_levels),
            (keys.c.creator_type, key_filter.creator_types),
            (keys.c.creator, key_filter.creators),
            (keys.c.instance_id, key_filter.instance_ids),
            (keys.c.key_id, key_filter.key_ids),
        ):
            if values:
                conditions.append(column.in_(list(values)))
        if key_filter.default_keys_only:
            conditions.append(keys.c.instance_id.is_(None))
        if key_filter.alias_names:
            conditions.append(
                exists().where(
                    aliases.c.key_id == keys.c.key_id,
                    aliases.c.alias_name.in_(list(key_filter.alias_names)),
                )
            )
        if key_filter.tag_keys or key_filter.tag_values:
            tagged = [key_tags.c.key_id == keys.c.key_id]
            if key_filter.tag_keys:
                tagged.append(key_tags.c.tag_key.in_(list(key_filter.tag_keys)))
            if key_filter.tag_values:
                tagged.append(key_tags.c.tag_value.in_(list(key_filter.tag_values)))
            conditions.append(exists().where(*tagged))
        if len(conditions) == 2:  # no filter: the kept count of the account's keys (migration 0010)
            total = key_count(self._c, account_id, region_id)
        else:  # a filter: counted, over the account's keys that match it
            total = self._c.execute(select(func.count()).select_from(keys).where(*conditions)).scalar_one()
        # The page's key ids first, then their rows: the offset is skipped in the listing index
        # (account_id, region_id, created_at, key_id) without reading the rows it passes over.
        page = (
            select(keys.c.key_id, keys.c.created_at)
            .where(*conditions)
            .order_by(keys.c.created_at, keys.c.key_id)
            .offset(offset)
            .limit(limit)
            .subquery()
        )
        rows = self._c.execute(
            select(keys).join(page, page.c.key_id == keys.c.key_id).order_by(page.c.created_at, page.c.key_id)
        )
        return [_key(row) for row in rows], int(total)

    def version(self, version_id: str) -> StoredVersion | None:
        row = self._c.execute(select(key_versions).where(key_versions.c.version_id == version_id)).first()
        return None if row is None else _version(row)

    def versions(self, key_id: KeyId) -> list[StoredVersion]:
        rows = self._c.execute(
            select(key_versions).where(key_versions.c.key_id == key_id).order_by(key_versions.c.seq)
        )
        return [_version(row) for row in rows]


def _key(row: Row[Any]) -> Key:
    return Key(
        key_id=KeyId(row.key_id),
        account_id=AccountId(row.account_id),
        region_id=RegionId(row.region_id),
        instance_id=None if row.instance_id is None else InstanceId(row.instance_id),
        spec=KeySpec(row.spec),
        usage=KeyUsage(row.usage),
        origin=Origin(row.origin),
        protection_level=ProtectionLevel(row.protection_level),
        state=KeyState(row.state),
        description=row.description,
        creator=row.creator,
        creator_type=CreatorType(row.creator_type),
        primary_version_id=(None if row.primary_version_id is None else KeyVersionId(row.primary_version_id)),
        created_at=as_utc(row.created_at),
        delete_date=None if row.delete_date is None else as_utc(row.delete_date),
        policy=row.policy,
        deletion_protection=bool(row.deletion_protection),
        deletion_protection_description=row.deletion_protection_description,
        rotation_interval=row.rotation_interval,
        last_rotation_date=None if row.last_rotation_date is None else as_utc(row.last_rotation_date),
        next_rotation_date=None if row.next_rotation_date is None else as_utc(row.next_rotation_date),
        material_expire_time=(None if row.material_expire_time is None else as_utc(row.material_expire_time)),
        additional_usages=tuple(KeyUsage(usage) for usage in row.additional_usages.split(",") if usage),
        external_key_id=row.external_key_id,
    )


def _version(row: Row[Any]) -> StoredVersion:
    return StoredVersion(
        KeyVersion(KeyId(row.key_id), KeyVersionId(row.version_id), as_utc(row.created_at)),
        int(row.seq),
        bytes(row.wrapped_material),
    )
