"""Rotation of managed secrets: RotateSecret, UpdateSecretRotationPolicy and the rotation job's step.

Managed secrets are an OpenKMS extension (`OpenKMS.PostgreSQL`, docs/secrets.md); a Generic secret
refuses both actions, as Alibaba's does (it rotates by PutSecretValue). A rotation is crash-safe by
its order, as AWS's rotation is:

1. a new random password is sealed and stored as a new version carrying only `ACSPending`
   (ACSCurrent still names the working password), and the secret is marked due at once;
2. the password is set on the database (`service.postgres_roles`), signing in with the role's
   current password, else its pending one (the change may already have happened), or as the admin
   role of a master secret;
3. ACSCurrent moves to the new version (the old one becomes ACSPrevious), ACSPending goes, and
   LastRotationDate/NextRotationDate are written.

A crash or a refusal between the steps leaves the pending version in place and the secret due: the
next RotateSecret or job step starts again at step 2 with the same password (setting it twice is
harmless), so the working password is never lost. A rotation that fails (the database down, the key
disabled, the master secret gone) puts a due NextRotationDate an hour ahead (RETRY_SECONDS), so the
job does not hammer what refused it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from openkms.clock import Clock
from openkms.domain.random_password import random_password
from openkms.domain.secret_rotation import (
    ACS_PENDING,
    PASSWORD_RULES,
    RETRY_SECONDS,
    Credentials,
    parse_credentials,
    parse_postgres_target,
    render_credentials,
)
from openkms.domain.secrets import (
    ACS_CURRENT,
    Secret,
    SecretDataType,
    SecretType,
    SecretVersion,
    check_version_id,
    stages_after_move,
)
from openkms.errors import (
    AuditUnavailable,
    MissingParameter,
    OpenKMSError,
    RotationFailed,
    SecretInDeleteWindow,
    SecretNotFound,
    Unavailable,
    UnsupportedOperation,
)
from openkms.policy.actions import KmsAction
from openkms.repository.database import Database, UnitOfWork
from openkms.secret import SecretBytes
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome, acting_on
from openkms.service.postgres_roles import PostgresRoles
from openkms.service.secret_access import authorize_secret, open_secret, secret_resource
from openkms.service.secret_values import SecretSealer
from openkms.service.secret_versions import SecretVersionService, ValueRequest

MANAGED_TYPES = tuple(t.value for t in SecretType if t.managed)


@dataclass(frozen=True, slots=True)
class Rotated:
    secret: Secret
    version_id: str


def _refuse_generic(secret: Secret, action: str) -> None:
    if not secret.secret_type.managed:
        raise UnsupportedOperation(
            f"{action} does not apply to a Generic secret: store a new version with PutSecretValue."
        ).about(secret_resource(secret))


def _pending(versions: list[SecretVersion]) -> SecretVersion | None:
    return next((v for v in versions if ACS_PENDING in v.stages), None)


class SecretRotationService:
    def __init__(
        self,
        db: Database,
        sealer: SecretSealer,
        versions: SecretVersionService,
        clock: Clock,
        roles: PostgresRoles,
    ) -> None:
        self._db = db
        self._sealer = sealer
        self._versions = versions
        self._clock = clock
        self._roles = roles

    # -- what a managed secret may name -------------------------------------------------------------
    def check_target(self, ctx: RequestContext, extended_config: str) -> None:
        """CreateSecret's and UpdateSecretRotationPolicy's checks of where a managed secret points:
        a host the operator admits (`managed_secret_hosts`), and a master secret the caller may read
        itself (its GetSecretValue and its key's Decrypt, as a GetSecretValue would ask), holding
        credentials. The rotation job later signs in with that master for the account: only who may
        read it may bind a secret to it."""
        target = parse_postgres_target(extended_config)
        self._roles.check_host(target)
        self._check_master(ctx, target.master_secret)

    def _check_master(self, ctx: RequestContext, master_secret: str | None) -> None:
        """The caller reads the master secret (as GetSecretValue would), and it holds credentials."""
        if master_secret is not None:
            master = self._versions.get_value(ctx, ValueRequest(master_secret)).value
            parse_credentials(master.value, "MasterSecretName")

    # -- the rotation policy ----------------------------------------------------------------------
    def update_policy(
        self, ctx: RequestContext, ref: str, enable: bool, interval: int | None
    ) -> Outcome[Secret]:
        """EnableAutomaticRotation and RotationInterval (seconds). The next rotation is the last
        one (or the secret's creation) plus the interval; one already past is due at once."""
        if enable:
            # Who turns the job on answers for what it signs in with: checked before the locked
            # write (it reads and decrypts the master secret); ExtendedConfig never changes.
            with self._db.unit_of_work() as uow:
                found = open_secret(uow, ctx, ref, KmsAction.UPDATE_SECRET_ROTATION_POLICY)
            if found.extended_config is not None:
                with acting_on(secret_resource(found)):
                    self.check_target(ctx, found.extended_config)
        with self._db.unit_of_work(write=True) as uow:
            secret = open_secret(uow, ctx, ref, KmsAction.UPDATE_SECRET_ROTATION_POLICY, lock=True)
            _refuse_generic(secret, "UpdateSecretRotationPolicy")
            with acting_on(secret_resource(secret)):
                if enable and interval is None:
                    raise MissingParameter("RotationInterval")
                pending = _pending(uow.secrets.versions(secret.secret_id))
                if enable:
                    assert interval is not None
                    start = secret.last_rotation_date or secret.created_at
                    planned: datetime | None = start + timedelta(seconds=interval)
                else:
                    planned = None
                if pending is not None:  # a rotation left half done stays due
                    planned = self._clock.now()
                uow.secrets.touch(
                    secret.secret_id,
                    self._clock.now(),
                    automatic_rotation=enable,
                    rotation_interval=interval if enable else secret.rotation_interval,
                    next_rotation_date=planned,
                )
        return Outcome(secret, secret_resource(secret))

    # -- RotateSecret -----------------------------------------------------------------------------
    def rotate(self, ctx: RequestContext, ref: str, version_id: str) -> Outcome[Rotated]:
        """Rotate now to a new version `version_id`. A version id that exists already answers
        success and changes nothing (Alibaba's idempotence), unless it is a rotation left half
        done, which is finished."""
        check_version_id(version_id)
        with self._db.unit_of_work() as uow:
            secret = open_secret(uow, ctx, ref, KmsAction.ROTATE_SECRET)
            _refuse_generic(secret, "RotateSecret")
        resource = secret_resource(secret)
        with acting_on(resource):
            if secret.extended_config is not None:  # the caller's right to the master, before staging
                self._check_master(ctx, parse_postgres_target(secret.extended_config).master_secret)
            self._rotate(ctx, secret, version_id)
        return Outcome(Rotated(secret, version_id), resource)

    # -- the job ----------------------------------------------------------------------------------
    def due_for_rotation(self, limit: int) -> list[Secret]:
        with self._db.unit_of_work() as uow:
            return uow.secrets.due_for_rotation(self._clock.now(), MANAGED_TYPES, limit)

    def rotate_if_due(self, ctx: RequestContext, secret_id: str) -> Outcome[bool]:
        """Rotate a managed secret whose NextRotationDate passed (or finish a rotation left half
        done); `acted` False when it is no longer due."""
        with self._db.unit_of_work() as uow:
            secret = uow.secrets.by_id(secret_id)
        if secret is None:
            return Outcome(False, acted=False)
        due = (
            secret.next_rotation_date is not None
            and secret.next_rotation_date <= self._clock.now()
            and not secret.pending_deletion
        )
        if not due:
            return Outcome(False, secret_resource(secret), acted=False)
        with acting_on(secret_resource(secret)):
            authorize_secret(ctx, KmsAction.ROTATE_SECRET, secret)
            self._rotate(ctx, secret, None)
        return Outcome(True, secret_resource(secret))

    # -- the steps --------------------------------------------------------------------------------
    def _rotate(self, ctx: RequestContext, secret: Secret, version_id: str | None) -> None:
        try:
            self._steps(ctx, secret, version_id)
        except OpenKMSError as exc:
            if isinstance(exc, Unavailable | AuditUnavailable) and not isinstance(exc, RotationFailed):
                raise  # the server's own trouble (sealed, lease lost): nothing to plan
            self._retry_later(secret)
            raise

    def _steps(self, ctx: RequestContext, secret: Secret, version_id: str | None) -> None:
        if secret.extended_config is not None:  # a host no longer admitted: refused before staging
            self._roles.ensure_admitted(parse_postgres_target(secret.extended_config))
        with self._db.unit_of_work() as uow:
            versions = uow.secrets.versions(secret.secret_id)
        pending = _pending(versions)
        if pending is not None:
            self._finish(ctx, secret, pending.version_id)  # a rotation left half done comes first
            if version_id is None or version_id == pending.version_id:
                return
        if version_id is not None and any(v.version_id == version_id for v in versions):
            return  # rotated to this version already: nothing to do
        new_id = version_id or self._new_version_id()
        self._stage(ctx, secret, new_id)
        self._finish(ctx, secret, new_id)

    def _new_version_id(self) -> str:
        return f"rotation-{self._clock.now():%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"

    def _stage(self, ctx: RequestContext, secret: Secret, version_id: str) -> None:
        """Step 1: the new password, sealed, as a version with ACSPending only."""
        current = self._credentials(ctx, secret, ACS_CURRENT)
        password = SecretBytes(random_password(PASSWORD_RULES).encode("utf-8"))
        value = render_credentials(Credentials(current.account_name, password))
        sealed = self._sealer.seal(ctx, secret.encryption_key_id, secret.arn, version_id, value)
        now = self._clock.now()
        with self._db.unit_of_work(write=True) as uow:
            again = self._locked(uow, secret)
            if _pending(uow.secrets.versions(secret.secret_id)) is not None:
                return  # another rotation staged first; _finish completes whichever is pending
            version = SecretVersion(version_id, (ACS_PENDING,), SecretDataType.TEXT, now)
            uow.secrets.add_version(
                again.secret_id, version, sealed.key_id, sealed.data_key_blob, sealed.sealed_value
            )
            uow.secrets.touch(again.secret_id, now, next_rotation_date=now)

    def _finish(self, ctx: RequestContext, secret: Secret, version_id: str) -> None:
        """Steps 2 and 3 for the pending version `version_id`."""
        target = parse_postgres_target(secret.extended_config)
        pending = self._credentials(ctx, secret, ACS_PENDING)
        if target.master_secret is not None:
            master = self._versions.get_value(ctx, ValueRequest(target.master_secret)).value
            logins = [parse_credentials(master.value, "MasterSecretName")]
        else:
            logins = [self._credentials(ctx, secret, ACS_CURRENT), pending]
        self._roles.set_password(target, logins, pending.password)
        self._promote(secret, version_id)

    def _promote(self, secret: Secret, version_id: str) -> None:
        """Step 3: ACSCurrent to the new version, ACSPending gone, the dates written."""
        now = self._clock.now()
        with self._db.unit_of_work(write=True) as uow:
            again = self._locked(uow, secret)
            versions = uow.secrets.versions(secret.secret_id)
            pending = _pending(versions)
            if pending is None or pending.version_id != version_id:
                return  # finished by another rotation meanwhile
            current = {v.version_id: v.stages for v in versions}
            holder = next((v for v, stages in current.items() if ACS_CURRENT in stages), None)
            moved = stages_after_move(current, ACS_CURRENT, version_id, holder)
            moved[version_id] = [s for s in moved[version_id] if s != ACS_PENDING]
            uow.secrets.set_stages(
                secret.secret_id, {v: s for v, s in moved.items() if list(current[v]) != s}
            )
            interval = again.rotation_interval
            uow.secrets.touch(
                secret.secret_id,
                now,
                last_rotation_date=now,
                next_rotation_date=now + timedelta(seconds=interval)
                if again.automatic_rotation and interval is not None
                else None,
            )

    def _retry_later(self, secret: Secret) -> None:
        """After a failed rotation, a secret the job would take again (scheduled, or with a rotation
        half done) is due an hour from now rather than at the job's next run."""
        with self._db.unit_of_work(write=True) as uow:
            again = uow.secrets.by_id(secret.secret_id)
            if again is None or again.next_rotation_date is None:
                return
            uow.secrets.get(again.account_id, again.region_id, again.name, lock=True)
            uow.secrets.touch(
                secret.secret_id,
                self._clock.now(),
                next_rotation_date=self._clock.now() + timedelta(seconds=RETRY_SECONDS),
            )

    def _locked(self, uow: UnitOfWork, secret: Secret) -> Secret:
        again = uow.secrets.by_id(secret.secret_id)
        if again is None:
            raise SecretNotFound()
        uow.secrets.get(again.account_id, again.region_id, again.name, lock=True)
        if again.pending_deletion:
            raise SecretInDeleteWindow()
        return again

    def _credentials(self, ctx: RequestContext, secret: Secret, stage: str) -> Credentials:
        """The role's credentials at `stage`, opened through the key pipeline as the caller."""
        with self._db.unit_of_work() as uow:
            versions = uow.secrets.versions(secret.secret_id)
            version = next((v for v in versions if stage in v.stages), None)
            sealed = None if version is None else uow.secrets.sealed(secret.secret_id, version.version_id)
        if version is None or sealed is None:
            raise SecretNotFound(f"The secret has no version at stage {stage!r}.")
        opened = self._sealer.open(
            ctx, secret.arn, version.version_id, sealed.data_key_blob, sealed.sealed_value
        )
        return parse_credentials(opened.value)


__all__ = ["MANAGED_TYPES", "Rotated", "SecretRotationService"]
