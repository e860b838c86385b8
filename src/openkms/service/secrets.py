"""Secret use cases on a secret as a whole: CreateSecret, DescribeSecret, ListSecrets, UpdateSecret,
DeleteSecret and RestoreSecret (with the deletion job's step), GetSecretPolicy and SetSecretPolicy,
and the instance accounting (how many secrets an instance holds, against `secret_quota`).

Values are sealed and opened by `service.secret_values`; versions and stages are
`service.secret_versions`. Every change is one write unit of work; a refusal changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta

from openkms.clock import Clock
from openkms.domain.key import Key
from openkms.domain.names import DESCRIPTION_LIMIT
from openkms.domain.secret_rotation import check_managed
from openkms.domain.secrets import (
    ACS_CURRENT,
    SECRET_DATA_LIMIT,
    Secret,
    SecretDataType,
    SecretFilter,
    SecretType,
    SecretVersion,
    check_secret_name,
    check_version_id,
    secret_arn,
)
from openkms.domain.specs import SPEC_RULES
from openkms.errors import Conflict, InvalidArgument, QuotaExceeded, SecretNotFound, UnsupportedOperation
from openkms.policy.actions import KmsAction
from openkms.policy.document import PolicyKind, parse_policy
from openkms.policy.secret_policy import default_secret_policy
from openkms.repository.database import Database
from openkms.secret import SecretBytes
from openkms.service.authorization import authorize, decide
from openkms.service.context import RequestContext, service_principal
from openkms.service.keys import KeyService
from openkms.service.outcome import Outcome, acting_on
from openkms.service.secret_access import authorize_secret, open_secret, secret_resource
from openkms.service.secret_values import SecretSealer
from openkms.service.service_keys import ServiceKeyService
from openkms.types import AccountId, InstanceId, RegionId

SECRETS_SERVICE = "secretsmanager"  # the service key of secrets: alias/acs/secretsmanager
DEFAULT_SECRET_QUOTA = 1000
POLICY_NAME = "default"


@dataclass(frozen=True, slots=True)
class NewSecret:
    name: str
    version_id: str
    data: SecretBytes
    data_type: SecretDataType
    encryption_key_id: str | None
    instance_id: str | None
    description: str
    secret_type: SecretType
    policy: str | None
    tags: Mapping[str, str]
    # Managed types only (OpenKMS.PostgreSQL): ignored for Generic, as Alibaba ignores them.
    extended_config: str | None = None
    automatic_rotation: bool = False
    rotation_interval: int | None = None  # seconds


@dataclass(frozen=True, slots=True)
class Created:
    secret: Secret
    version_id: str


@dataclass(frozen=True, slots=True)
class Described:
    secret: Secret
    tags: Mapping[str, str] | None  # None: not asked for


def check_description(description: str) -> str:
    if len(description) > DESCRIPTION_LIMIT:
        raise InvalidArgument(
            f"Description is longer than {DESCRIPTION_LIMIT} characters.", parameter="Description"
        )
    return description


def check_data(data: SecretBytes) -> SecretBytes:
    if len(data) > SECRET_DATA_LIMIT:
        raise InvalidArgument(f"SecretData is longer than {SECRET_DATA_LIMIT} bytes.", parameter="SecretData")
    return data


def _policy_name(name: str | None) -> None:
    if name not in (None, "", POLICY_NAME):
        raise InvalidArgument(f"PolicyName must be {POLICY_NAME!r}.", parameter="PolicyName")


class SecretService:
    def __init__(
        self,
        db: Database,
        keys: KeyService,
        service_keys: ServiceKeyService,
        sealer: SecretSealer,
        clock: Clock,
        quota: int = DEFAULT_SECRET_QUOTA,
        check_target: Callable[[RequestContext, str], None] | None = None,
    ) -> None:
        self._check_target = check_target  # `SecretRotationService.check_target`; None: managed types off
        self._db = db
        self._keys = keys
        self._service_keys = service_keys
        self._sealer = sealer
        self._clock = clock
        self._quota = quota

    # -- accounting -------------------------------------------------------------------------------
    def count(self, account_id: str, region_id: str, instance_id: str | None) -> int:
        """The secrets an instance holds (None: an account's in a region outside any instance),
        those waiting for deletion included: GetKmsInstance's SecretNum."""
        with self._db.unit_of_work() as uow:
            return uow.secrets.count(account_id, region_id, instance_id)

    @property
    def quota(self) -> int:
        """The secrets an instance may hold (`secret_quota`), as GetKmsInstance's SecretNumLimit."""
        return self._quota

    # -- create -----------------------------------------------------------------------------------
    def _encryption_key(self, ctx: RequestContext, key_ref: str | None) -> Key:
        """The key named, which must be symmetric (F2.1); or the region's service key of secrets,
        made on first use by the secrets service itself."""
        if key_ref is None:
            service_ctx = replace(ctx, principal=service_principal(ctx.principal.account_id, SECRETS_SERVICE))
            existing = self._service_keys.find(service_ctx, SECRETS_SERVICE)
            if existing is not None:
                return existing
            return self._service_keys.ensure(service_ctx, SECRETS_SERVICE).value
        key = self._keys.resolve(ctx, key_ref)
        if not SPEC_RULES[key.spec].symmetric:
            raise InvalidArgument(
                f"EncryptionKeyId must name a symmetric key; {key.key_id} is {key.spec}.",
                parameter="EncryptionKeyId",
            )
        return key

    def create(self, ctx: RequestContext, request: NewSecret) -> Outcome[Created]:
        name = check_secret_name(request.name)
        arn = secret_arn(ctx.region_id, ctx.principal.account_id, name)
        ctx.request_tags = dict(request.tags)
        decide(ctx, f"kms:{KmsAction.CREATE_SECRET}", arn, ctx.principal.account_id, None)
        check_version_id(request.version_id)
        check_description(request.description)
        check_data(request.data)
        managed = check_managed(
            request.secret_type,
            request.data,
            request.data_type,
            request.extended_config,
            request.automatic_rotation,
            request.rotation_interval,
        )
        if request.policy is not None:
            parse_policy(request.policy, PolicyKind.KEY)
            # A policy given at creation is a SetSecretPolicy: sharing the secret is its own right.
            decide(ctx, f"kms:{KmsAction.SET_SECRET_POLICY}", arn, ctx.principal.account_id, None)
        if managed.extended_config is not None:
            if self._check_target is None:
                raise UnsupportedOperation(f"{request.secret_type} secrets are off on this server.")
            self._check_target(ctx, managed.extended_config)
        with self._db.unit_of_work() as uow:
            if uow.secrets.get(ctx.principal.account_id, ctx.region_id, name) is not None:
                raise Conflict(f"A secret named {name!r} already exists.")
        key = self._encryption_key(ctx, request.encryption_key_id)
        if request.instance_id is not None and request.instance_id != key.instance_id:
            raise InvalidArgument(
                "The key and the secret must belong to the same KMS instance: "
                f"{key.key_id} is not in {request.instance_id}.",
                parameter="DKMSInstanceId",
            )
        sealed = self._sealer.seal(ctx, key.key_id, arn, request.version_id, request.data)
        now = self._clock.now()
        secret = Secret(
            secret_id=str(uuid.uuid4()),
            account_id=AccountId(ctx.principal.account_id),
            region_id=RegionId(ctx.region_id),
            name=name,
            secret_type=request.secret_type,
            encryption_key_id=key.key_id,
            instance_id=None if key.instance_id is None else InstanceId(key.instance_id),
            description=request.description,
            creator=ctx.principal.account_id,
            created_at=now,
            updated_at=now,
            policy=request.policy,
            extended_config=managed.extended_config,
            automatic_rotation=managed.automatic_rotation,
            rotation_interval=managed.rotation_interval,
            next_rotation_date=None
            if managed.rotation_interval is None or not managed.automatic_rotation
            else now + timedelta(seconds=managed.rotation_interval),
        )
        resource = secret_resource(secret, sealed.key_id, sealed.key_version_id)
        with acting_on(resource), self._db.unit_of_work(write=True) as uow:
            uow.secrets.lock_quota(secret.account_id, secret.instance_id)
            held = uow.secrets.count(secret.account_id, secret.region_id, secret.instance_id)
            if held >= self._quota:
                where = secret.instance_id or f"the default key store of {secret.region_id}"
                raise QuotaExceeded(f"{where} holds its quota of {self._quota} secrets.")
            uow.secrets.add(secret)
            version = SecretVersion(request.version_id, (ACS_CURRENT,), request.data_type, now)
            uow.secrets.add_version(
                secret.secret_id, version, sealed.key_id, sealed.data_key_blob, sealed.sealed_value
            )
            if request.tags:
                uow.secrets.put_tags(secret.secret_id, request.tags)
        return Outcome(Created(secret, request.version_id), resource)

    # -- read -------------------------------------------------------------------------------------
    def describe(self, ctx: RequestContext, ref: str, fetch_tags: bool) -> Outcome[Described]:
        with self._db.unit_of_work() as uow:
            secret = open_secret(uow, ctx, ref, KmsAction.DESCRIBE_SECRET, pending_ok=True)
            tags = uow.secrets.tags(secret.secret_id) if fetch_tags else None
        return Outcome(Described(secret, tags), secret_resource(secret))

    def list_secrets(
        self, ctx: RequestContext, found: SecretFilter, fetch_tags: bool, page_number: int, page_size: int
    ) -> Outcome[tuple[list[Described], int]]:
        authorize(ctx, KmsAction.LIST_SECRETS)
        with self._db.unit_of_work() as uow:
            page, total = uow.secrets.page(
                ctx.principal.account_id, ctx.region_id, found, (page_number - 1) * page_size, page_size
            )
            listed = [
                Described(secret, uow.secrets.tags(secret.secret_id) if fetch_tags else None)
                for secret in page
            ]
        return Outcome((listed, total))

    # -- change -----------------------------------------------------------------------------------
    def update(self, ctx: RequestContext, ref: str, description: str | None) -> Outcome[Secret]:
        with self._db.unit_of_work(write=True) as uow:
            secret = open_secret(uow, ctx, ref, KmsAction.UPDATE_SECRET, lock=True)
            if description is not None:
                uow.secrets.touch(
                    secret.secret_id, self._clock.now(), description=check_description(description)
                )
        return Outcome(secret, secret_resource(secret))

    def delete(self, ctx: RequestContext, ref: str, window_days: int | None, force: bool) -> Outcome[Secret]:
        """Schedule the secret's deletion `window_days` from now, or (force) delete it now."""
        now = self._clock.now()
        with self._db.unit_of_work(write=True) as uow:
            secret = open_secret(uow, ctx, ref, KmsAction.DELETE_SECRET, lock=True, pending_ok=force)
            if force:
                uow.secrets.remove(secret.secret_id)
                return Outcome(replace(secret, planned_delete_time=now), secret_resource(secret))
            planned = now + timedelta(days=window_days or 30)
            uow.secrets.touch(secret.secret_id, now, planned_delete_time=planned)
        return Outcome(replace(secret, planned_delete_time=planned), secret_resource(secret))

    def restore(self, ctx: RequestContext, ref: str) -> Outcome[Secret]:
        """End a secret's wait for deletion (a secret not waiting is left as it is)."""
        with self._db.unit_of_work(write=True) as uow:
            secret = open_secret(uow, ctx, ref, KmsAction.RESTORE_SECRET, lock=True, pending_ok=True)
            if secret.pending_deletion:
                uow.secrets.touch(secret.secret_id, self._clock.now(), planned_delete_time=None)
        return Outcome(secret, secret_resource(secret))

    # -- policy -----------------------------------------------------------------------------------
    def get_policy(self, ctx: RequestContext, ref: str, policy_name: str | None) -> Outcome[str]:
        _policy_name(policy_name)
        with self._db.unit_of_work() as uow:
            secret = open_secret(uow, ctx, ref, KmsAction.GET_SECRET_POLICY, pending_ok=True)
        policy = secret.policy if secret.policy is not None else default_secret_policy(secret.account_id)
        return Outcome(policy, secret_resource(secret))

    def set_policy(
        self, ctx: RequestContext, ref: str, policy_name: str | None, document: str
    ) -> Outcome[None]:
        _policy_name(policy_name)
        with self._db.unit_of_work(write=True) as uow:
            secret = open_secret(uow, ctx, ref, KmsAction.SET_SECRET_POLICY, lock=True)
            with acting_on(secret_resource(secret)):
                parse_policy(document, PolicyKind.KEY)
            uow.secrets.touch(secret.secret_id, self._clock.now(), policy=document)
        return Outcome(None, secret_resource(secret))

    # -- the deletion job -------------------------------------------------------------------------
    def due_for_deletion(self, limit: int) -> list[Secret]:
        with self._db.unit_of_work() as uow:
            return uow.secrets.due_for_deletion(self._clock.now(), limit)

    def destroy_if_due(self, ctx: RequestContext, secret_id: str) -> Outcome[bool]:
        """Delete a secret whose recovery window ended; `acted` False when it is no longer due."""
        now = self._clock.now()
        with self._db.unit_of_work(write=True) as uow:
            secret = uow.secrets.by_id(secret_id)
            if secret is None:
                return Outcome(False, acted=False)
            uow.secrets.get(secret.account_id, secret.region_id, secret.name, lock=True)
            due = secret.planned_delete_time is not None and secret.planned_delete_time <= now
            if not due:
                return Outcome(False, secret_resource(secret), acted=False)
            with acting_on(secret_resource(secret)):
                authorize_secret(ctx, KmsAction.DELETE_SECRET, secret)
            uow.secrets.remove(secret.secret_id)
        return Outcome(True, secret_resource(secret))


def not_found_version(version_id: str | None, stage: str | None) -> SecretNotFound:
    what = f"version {version_id!r}" if version_id else f"stage {stage!r}"
    return SecretNotFound(f"The secret has no {what}.")


__all__ = [
    "DEFAULT_SECRET_QUOTA",
    "SECRETS_SERVICE",
    "Created",
    "Described",
    "NewSecret",
    "SecretService",
    "check_data",
    "not_found_version",
]
