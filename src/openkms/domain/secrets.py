"""Secrets as values: what a secret and its versions are, the rules of their names, and how version
stages move (ACSCurrent, ACSPrevious, custom stages).

Pure: no I/O, no crypto. A secret's value never appears here; versions carry only their ids, stages
and data type. The stage rules are Alibaba's: a new version put with ACSCurrent takes it, and the
version that held it becomes ACSPrevious; ACSCurrent and ACSPrevious are never removed outright,
only moved; a stage names at most one version of a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from openkms.errors import InvalidArgument
from openkms.types import AccountId, InstanceId, KeyId, RegionId

ACS_CURRENT = "ACSCurrent"
ACS_PREVIOUS = "ACSPrevious"
SYSTEM_STAGES = frozenset({ACS_CURRENT, ACS_PREVIOUS})

SECRET_NAME_LIMIT = 192
VERSION_ID_LIMIT = 64
STAGE_LIMIT = 64
STAGES_PER_VERSION = 10
SECRET_DATA_LIMIT = 30720  # bytes of a value (30 KiB), as CreateSecret documents
RECOVERY_WINDOW_MIN_DAYS = 7
RECOVERY_WINDOW_MAX_DAYS = 30
RECOVERY_WINDOW_DEFAULT_DAYS = 30

_NAME = re.compile(r"^[A-Za-z0-9_/+=.@-]{1,192}\Z")
_VERSION = re.compile(r"^[A-Za-z0-9_/+=.@-]{1,64}\Z")
_STAGE = re.compile(r"^[A-Za-z0-9_/+=.@-]{1,64}\Z")


class SecretType(StrEnum):
    """What a secret holds and who changes its value: Generic (the caller, by PutSecretValue), or
    the OpenKMS extension OpenKMS.PostgreSQL (a PostgreSQL role's password that OpenKMS rotates)."""

    GENERIC = "Generic"
    POSTGRESQL = "OpenKMS.PostgreSQL"

    @property
    def managed(self) -> bool:
        """True when OpenKMS, not the caller, makes the secret's new versions (RotateSecret)."""
        return self is not SecretType.GENERIC


class SecretDataType(StrEnum):
    TEXT = "text"
    BINARY = "binary"  # SecretData is base64; the stored value is the decoded bytes


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret's metadata (never its value). `planned_delete_time` is set while it waits for deletion."""

    secret_id: str
    account_id: AccountId
    region_id: RegionId
    name: str
    secret_type: SecretType
    encryption_key_id: KeyId
    instance_id: InstanceId | None
    description: str
    creator: str
    created_at: datetime
    updated_at: datetime
    policy: str | None = None  # the secret policy as written; None: the default policy
    planned_delete_time: datetime | None = None
    extended_config: str | None = None
    # Rotation of managed secret types (a generic secret rotates by PutSecretValue).
    automatic_rotation: bool = False
    rotation_interval: int | None = None  # seconds
    last_rotation_date: datetime | None = None
    next_rotation_date: datetime | None = None

    @property
    def arn(self) -> str:
        return secret_arn(self.region_id, self.account_id, self.name)

    @property
    def pending_deletion(self) -> bool:
        return self.planned_delete_time is not None


@dataclass(frozen=True, slots=True)
class SecretVersion:
    """One version of a secret: its id, the stages that mark it, and how its value is typed."""

    version_id: str
    stages: tuple[str, ...]
    data_type: SecretDataType
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SecretFilter:
    """ListSecrets' Filters: each field a set of accepted values (OR); fields combine with AND."""

    names: tuple[str, ...] = ()
    descriptions: tuple[str, ...] = ()
    tag_keys: tuple[str, ...] = ()
    tag_values: tuple[str, ...] = ()
    instance_ids: tuple[str, ...] = ()
    secret_types: tuple[str, ...] = ()
    creators: tuple[str, ...] = ()


def secret_arn(region_id: str, account_id: str, name: str) -> str:
    return f"acs:kms:{region_id}:{account_id}:secret/{name}"


_ARN = re.compile(r"^acs:kms:(?P<region>[a-z0-9-]+):(?P<account>\d+):secret/(?P<name>.+)\Z")


def parse_secret_ref(ref: str) -> tuple[str, str | None, str | None]:
    """(name, region, account) of a secret name or ARN; region and account are None for a bare name."""
    if ref.startswith("acs:"):
        match = _ARN.match(ref)
        if match is None:
            raise InvalidArgument(f"{ref!r} is not a secret ARN.", parameter="SecretName")
        return match["name"], match["region"], match["account"]
    return ref, None, None


def check_secret_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidArgument(
            f"SecretName has 1 to {SECRET_NAME_LIMIT} letters, digits and _/+=.@- characters.",
            parameter="SecretName",
        )
    if name.startswith("acs/"):
        raise InvalidArgument("SecretName may not start with acs/.", parameter="SecretName")
    return name


def check_version_id(version_id: str) -> str:
    if not _VERSION.match(version_id):
        raise InvalidArgument(
            f"VersionId has 1 to {VERSION_ID_LIMIT} letters, digits and _/+=.@- characters.",
            parameter="VersionId",
        )
    return version_id


def check_stage(stage: str, parameter: str = "VersionStage") -> str:
    if not _STAGE.match(stage):
        raise InvalidArgument(
            f"{parameter} has 1 to {STAGE_LIMIT} letters, digits and _/+=.@- characters.",
            parameter=parameter,
        )
    return stage


def check_recovery_window(days: int) -> int:
    if not RECOVERY_WINDOW_MIN_DAYS <= days <= RECOVERY_WINDOW_MAX_DAYS:
        raise InvalidArgument(
            f"RecoveryWindowInDays must be between {RECOVERY_WINDOW_MIN_DAYS} and "
            f"{RECOVERY_WINDOW_MAX_DAYS}.",
            parameter="RecoveryWindowInDays",
        )
    return days


Stages = Mapping[str, Sequence[str]]  # version id -> its stages


def stages_after_put(
    current: Stages, new_version: str, requested: Sequence[str] | None
) -> dict[str, list[str]]:
    """Every version's stages once `new_version` is stored with `requested` stages (default:
    ACSCurrent). A stage the new version takes leaves the version that had it; when ACSCurrent moves,
    the version that had it becomes ACSPrevious (and the old ACSPrevious loses it)."""
    wanted = list(dict.fromkeys(requested)) if requested else [ACS_CURRENT]
    if len(wanted) > STAGES_PER_VERSION:
        raise InvalidArgument(
            f"A version has at most {STAGES_PER_VERSION} stages.", parameter="VersionStages"
        )
    for stage in wanted:
        check_stage(stage, "VersionStages")
    result = {version: [s for s in stages if s not in wanted] for version, stages in current.items()}
    if ACS_CURRENT in wanted:
        old_current = next((v for v, stages in current.items() if ACS_CURRENT in stages), None)
        if old_current is not None and ACS_PREVIOUS not in wanted:
            for stages in result.values():
                if ACS_PREVIOUS in stages:
                    stages.remove(ACS_PREVIOUS)
            result[old_current].append(ACS_PREVIOUS)
    result[new_version] = wanted
    return result


def stages_after_move(
    current: Stages, stage: str, move_to: str | None, remove_from: str | None
) -> dict[str, list[str]]:
    """UpdateSecretVersionStage's rules: attach `stage` to `move_to` (taking it from whichever version
    had it), remove it from `remove_from`, or both. ACSCurrent and ACSPrevious can only be moved;
    moving ACSCurrent makes the version that had it ACSPrevious. Raises InvalidArgument when the
    versions named do not fit."""
    check_stage(stage)
    if move_to is None and remove_from is None:
        raise InvalidArgument("Give MoveToVersion, RemoveFromVersion or both.", parameter="MoveToVersion")
    if stage in SYSTEM_STAGES and move_to is None:
        raise InvalidArgument(
            f"{stage} cannot be removed, only moved to another version: give MoveToVersion.",
            parameter="MoveToVersion",
        )
    for version in (move_to, remove_from):
        if version is not None and version not in current:
            raise InvalidArgument(f"The secret has no version {version!r}.", parameter="VersionId")
    holder = next((v for v, stages in current.items() if stage in stages), None)
    if remove_from is not None and holder != remove_from:
        raise InvalidArgument(
            f"The stage {stage} is not attached to version {remove_from!r}.", parameter="RemoveFromVersion"
        )
    if move_to is not None and holder is not None and holder != move_to and remove_from is None:
        # Alibaba asks for the version that holds a stage before moving it away from it.
        raise InvalidArgument(
            f"The stage {stage} is attached to version {holder!r}: give it as RemoveFromVersion.",
            parameter="RemoveFromVersion",
        )
    result = {version: [s for s in stages if s != stage] for version, stages in current.items()}
    if move_to is not None:
        if stage == ACS_CURRENT and holder is not None and holder != move_to:
            for stages in result.values():
                if ACS_PREVIOUS in stages:
                    stages.remove(ACS_PREVIOUS)
            result[holder].append(ACS_PREVIOUS)
        if len(result[move_to]) >= STAGES_PER_VERSION:
            raise InvalidArgument(
                f"A version has at most {STAGES_PER_VERSION} stages.", parameter="VersionStage"
            )
        result[move_to].append(stage)
    return result
