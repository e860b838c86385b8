"""Key and KeyVersion: the value objects every layer passes around. No material: only references."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

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
class KeyVersion:
    key_id: KeyId
    version_id: KeyVersionId
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Key:
    key_id: KeyId
    account_id: AccountId
    region_id: RegionId
    instance_id: InstanceId | None  # None: a default key (the region's customer master key slot)
    spec: KeySpec
    usage: KeyUsage
    origin: Origin
    protection_level: ProtectionLevel
    state: KeyState
    description: str
    creator: str
    creator_type: CreatorType
    primary_version_id: KeyVersionId | None
    created_at: datetime
    delete_date: datetime | None = None
    policy: str | None = None  # the key policy as written; None: the default policy
    # Lifecycle: deletion protection and automatic rotation.
    deletion_protection: bool = False
    deletion_protection_description: str = ""
    rotation_interval: int | None = None  # seconds; None: no automatic rotation
    last_rotation_date: datetime | None = None
    next_rotation_date: datetime | None = None
    # Imported material: when it expires; None: never (or no material imported).
    material_expire_time: datetime | None = None
    # Hardware key pairs may carry more than one usage (F2.2): the usages besides `usage`.
    additional_usages: tuple[KeyUsage, ...] = ()
    # Keys of external instances: the id of the key in the external key manager (F1.4).
    external_key_id: str | None = None

    def allows(self, usage: KeyUsage) -> bool:
        """Whether the key may be used for `usage` (its usage, or one of its additional usages)."""
        return usage is self.usage or usage in self.additional_usages

    @property
    def arn(self) -> str:
        return key_arn(self.region_id, self.account_id, self.key_id)


def key_arn(region_id: str, account_id: str, key_id: str) -> str:
    return f"acs:kms:{region_id}:{account_id}:key/{key_id}"


@dataclass(frozen=True, slots=True)
class KeyFilter:
    """ListKeys filters: each field, when set, admits any of its values."""

    states: Sequence[str] = ()
    specs: Sequence[str] = ()
    usages: Sequence[str] = ()
    protection_levels: Sequence[str] = ()
    creator_types: Sequence[str] = ()
    creators: Sequence[str] = ()
    instance_ids: Sequence[str] = ()
    key_ids: Sequence[str] = ()
    alias_names: Sequence[str] = ()
    # A key matches the tag filters when one of its tags has one of `tag_keys` and, when
    # `tag_values` is set too, one of `tag_values` (the same tag).
    tag_keys: Sequence[str] = ()
    tag_values: Sequence[str] = ()
    # Only the keys outside any instance: the region's customer master key and the service keys
    # (the console's Default Keys tab; no wire filter names it).
    default_keys_only: bool = False
