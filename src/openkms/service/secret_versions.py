"""Secret use cases on versions: GetSecretValue, BatchGetSecretValue, PutSecretValue,
ListSecretVersionIds and UpdateSecretVersionStage.

A value is opened only after the secret was found and the caller authorized for it, and then only
through the key pipeline (`service.secret_values`). New versions are sealed before the write unit of
work, which then re-reads the secret under its lock and moves the stages (`domain.secrets`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from openkms.clock import Clock
from openkms.domain.secrets import (
    ACS_CURRENT,
    Secret,
    SecretDataType,
    SecretVersion,
    check_stage,
    check_version_id,
    stages_after_move,
    stages_after_put,
)
from openkms.errors import (
    InvalidArgument,
    OpenKMSError,
    SecretInDeleteWindow,
    SecretNotFound,
    UnsupportedOperation,
)
from openkms.policy.actions import KmsAction
from openkms.repository.database import Database
from openkms.resource import Resource
from openkms.secret import SecretBytes
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome, acting_on
from openkms.service.secret_access import open_secret, secret_resource
from openkms.service.secret_values import SecretSealer
from openkms.service.secrets import check_data

BATCH_LIMIT = 20


@dataclass(frozen=True, slots=True)
class SecretValue:
    secret: Secret
    version: SecretVersion
    value: SecretBytes


@dataclass(frozen=True, slots=True)
class ValueRequest:
    """One secret of a GetSecretValue or BatchGetSecretValue, and which of its versions."""

    secret: str
    version_id: str | None = None
    stage: str | None = None


def pick_version(
    versions: Sequence[SecretVersion], version_id: str | None, stage: str | None
) -> SecretVersion:
    """The version named by id and/or stage (neither: ACSCurrent). Both given must agree."""
    if version_id is None and stage is None:
        stage = ACS_CURRENT
    for version in versions:
        if version_id is not None and version.version_id != version_id:
            continue
        if stage is not None and stage not in version.stages:
            if version_id is not None:
                raise InvalidArgument(
                    f"The version {version_id!r} does not carry the stage {stage!r}.",
                    parameter="VersionStage",
                )
            continue
        return version
    what = f"version {version_id!r}" if version_id is not None else f"version at stage {stage!r}"
    raise SecretNotFound(f"The secret has no {what}.")


def refuse_managed(secret: Secret, action: str) -> None:
    """A managed secret's versions are made and staged by its rotation only (Alibaba allows
    PutSecretValue on generic secrets only): otherwise ACSCurrent and the database could disagree."""
    if secret.secret_type.managed:
        raise UnsupportedOperation(
            f"{action} does not apply to a {secret.secret_type} secret: OpenKMS makes its versions "
            "(RotateSecret)."
        )


class SecretVersionService:
    def __init__(self, db: Database, sealer: SecretSealer, clock: Clock) -> None:
        self._db = db
        self._sealer = sealer
        self._clock = clock

    # -- values -----------------------------------------------------------------------------------
    def get_value(self, ctx: RequestContext, request: ValueRequest) -> Outcome[SecretValue]:
        with self._db.unit_of_work() as uow:
            secret = open_secret(uow, ctx, request.secret, KmsAction.GET_SECRET_VALUE)
            with acting_on(secret_resource(secret)):
                version = pick_version(
                    uow.secrets.versions(secret.secret_id), request.version_id, request.stage
                )
                sealed = uow.secrets.sealed(secret.secret_id, version.version_id)
        if sealed is None:  # deleted between the two reads of one snapshot: cannot happen
            raise SecretNotFound().about(secret_resource(secret))
        opened = self._sealer.open(
            ctx, secret.arn, version.version_id, sealed.data_key_blob, sealed.sealed_value
        )
        return Outcome(
            SecretValue(secret, version, opened.value),
            secret_resource(secret, opened.key_id, opened.key_version_id),
        )

    def batch_get(
        self, ctx: RequestContext, requests: Sequence[ValueRequest]
    ) -> Outcome[list[tuple[str, SecretValue | OpenKMSError]]]:
        """Each secret's value or the error it met; one failing does not fail the others."""
        if not requests or len(requests) > BATCH_LIMIT:
            raise InvalidArgument(f"SecretsList names 1 to {BATCH_LIMIT} secrets.", parameter="SecretsList")
        names = [request.secret for request in requests]
        if len(set(names)) != len(names):
            raise InvalidArgument("SecretsList names a secret more than once.", parameter="SecretsList")
        results: list[tuple[str, SecretValue | OpenKMSError]] = []
        parts: list[tuple[Resource | None, OpenKMSError | None]] = []
        for request in requests:
            try:
                got = self.get_value(ctx, request)
            except OpenKMSError as error:
                results.append((request.secret, error))
                parts.append((error.resource, error))
            else:
                results.append((request.secret, got.value))
                parts.append((got.resource, None))
        # The audit log names each secret read (and the key that opened it) or refused, one record
        # apiece after the request's own.
        return Outcome(results, parts=tuple(parts))

    def put_value(
        self,
        ctx: RequestContext,
        ref: str,
        version_id: str,
        data: SecretBytes,
        data_type: SecretDataType,
        stages: Sequence[str] | None,
    ) -> Outcome[tuple[Secret, SecretVersion]]:
        check_version_id(version_id)
        check_data(data)
        with self._db.unit_of_work() as uow:
            secret = open_secret(uow, ctx, ref, KmsAction.PUT_SECRET_VALUE)
            with acting_on(secret_resource(secret)):
                refuse_managed(secret, "PutSecretValue")
                stages_after_put({v.version_id: v.stages for v in uow.secrets.versions(secret.secret_id)},
                                 version_id, stages)  # fmt: skip
        sealed = self._sealer.seal(ctx, secret.encryption_key_id, secret.arn, version_id, data)
        resource = secret_resource(secret, sealed.key_id, sealed.key_version_id)
        now = self._clock.now()
        with acting_on(resource), self._db.unit_of_work(write=True) as uow:
            again = uow.secrets.by_id(secret.secret_id)
            if again is None:
                raise SecretNotFound()
            uow.secrets.get(again.account_id, again.region_id, again.name, lock=True)
            if again.pending_deletion:
                raise SecretInDeleteWindow()
            current = {v.version_id: v.stages for v in uow.secrets.versions(secret.secret_id)}
            moved = stages_after_put(current, version_id, stages)
            version = SecretVersion(version_id, tuple(moved[version_id]), data_type, now)
            uow.secrets.add_version(secret.secret_id, version, sealed.key_id, sealed.data_key_blob,
                                    sealed.sealed_value)  # fmt: skip
            uow.secrets.set_stages(
                secret.secret_id,
                {v: s for v, s in moved.items() if v != version_id and list(current[v]) != s},
            )
            uow.secrets.touch(secret.secret_id, now)
        return Outcome((again, version), resource)

    # -- versions and stages ----------------------------------------------------------------------
    def list_versions(
        self, ctx: RequestContext, ref: str, include_deprecated: bool
    ) -> Outcome[tuple[Secret, list[SecretVersion]]]:
        with self._db.unit_of_work() as uow:
            secret = open_secret(uow, ctx, ref, KmsAction.LIST_SECRET_VERSION_IDS, pending_ok=True)
            versions = uow.secrets.versions(secret.secret_id)
        if not include_deprecated:
            versions = [version for version in versions if version.stages]
        return Outcome((secret, versions), secret_resource(secret))

    def move_stage(
        self, ctx: RequestContext, ref: str, stage: str, move_to: str | None, remove_from: str | None
    ) -> Outcome[Secret]:
        check_stage(stage)
        with self._db.unit_of_work(write=True) as uow:
            secret = open_secret(uow, ctx, ref, KmsAction.UPDATE_SECRET_VERSION_STAGE, lock=True)
            with acting_on(secret_resource(secret)):
                refuse_managed(secret, "UpdateSecretVersionStage")
                current = {v.version_id: v.stages for v in uow.secrets.versions(secret.secret_id)}
                moved = stages_after_move(current, stage, move_to, remove_from)
                uow.secrets.set_stages(
                    secret.secret_id, {v: s for v, s in moved.items() if list(current[v]) != s}
                )
                uow.secrets.touch(secret.secret_id, self._clock.now())
        return Outcome(secret, secret_resource(secret))
