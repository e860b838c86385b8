"""Service keys (seed F1.1): one default key per integrated cloud service, account and region, named
`alias/acs/<service>`, Creator the service, CreatorType Service.

Made by the admin CLI (`openkms service-key create <service>`) or, as an explicit step of the
key-operation pipeline (`service.key_ops`), when a service's own principal first names its missing
service key. Key resolution never makes one. Idempotent and race-safe: the alias is the key's
unique name, so of two concurrent creators one commits and the other returns the winner's key.
Users cannot disable, schedule for deletion or re-alias these keys (`service.keys.refuse_service_key`).
"""

from __future__ import annotations

import re

from openkms.clock import Clock
from openkms.domain.alias import Alias
from openkms.domain.key import Key, KeyVersion
from openkms.domain.specs import SPEC_RULES
from openkms.errors import Conflict, InvalidArgument, KeyNotFound
from openkms.node.generation import Generation
from openkms.policy.actions import KmsAction
from openkms.providers.base import NewVersion
from openkms.providers.registry import ProviderRegistry
from openkms.repository.database import Database
from openkms.service import ids
from openkms.service.authorization import authorize
from openkms.service.backend_material import NewMaterial
from openkms.service.context import RequestContext
from openkms.service.keys import key_resource
from openkms.service.outcome import Outcome
from openkms.types import CreatorType, KeySpec, KeyState, Origin, ProtectionLevel

_SERVICE = re.compile(r"^[a-z][a-z0-9-]{0,31}\Z")


def service_alias(service: str) -> str:
    return f"alias/acs/{service}"


def own_service_alias(ctx: RequestContext, key_ref: str) -> str | None:
    """The service whose own service key `key_ref` names, when an integrated service names it."""
    principal = ctx.principal
    if principal.actor == "service" and key_ref == service_alias(principal.name):
        return principal.name
    return None


def check_service_name(service: str) -> str:
    if not _SERVICE.match(service):
        raise InvalidArgument(
            "A service name is 1 to 32 lower-case letters, digits and -, starting with a letter.",
            parameter="Service",
        )
    return service


class ServiceKeyService:
    def __init__(
        self, db: Database, providers: ProviderRegistry, clock: Clock, generation: Generation
    ) -> None:
        self._db = db
        self._providers = providers
        self._clock = clock
        self._generation = generation

    def find(self, ctx: RequestContext, service: str) -> Key | None:
        with self._db.unit_of_work() as uow:
            alias = uow.aliases.get(ctx.principal.account_id, ctx.region_id, service_alias(service))
            return None if alias is None else uow.keys.get(alias.key_id)

    def ensure(self, ctx: RequestContext, service: str) -> Outcome[Key]:
        """The service key of `service` in the caller's account and region; `acted` when it was made
        now (an existing key is handed back and nothing is recorded)."""
        check_service_name(service)
        authorize(ctx, KmsAction.CREATE_KEY)
        existing = self.find(ctx, service)
        if existing is not None:
            return _found(existing)
        spec = KeySpec.ALIYUN_AES_256
        rule = SPEC_RULES[spec]
        now = self._clock.now()
        key_id = ids.new_default_key_id()
        version_id = ids.new_version_id()
        # Service keys live in the default key store, outside any instance: software.
        wrapped = NewMaterial(self._providers, None, NewVersion(key_id, version_id, spec)).keep()
        key = Key(
            key_id=key_id,
            account_id=ctx.principal.account_id,
            region_id=ctx.region_id,
            instance_id=None,
            spec=spec,
            usage=rule.usages[0],
            origin=Origin.ALIYUN_KMS,
            protection_level=ProtectionLevel.SOFTWARE,
            state=KeyState.ENABLED,
            description=f"Default key of the {service} service",
            creator=service,
            creator_type=CreatorType.SERVICE,
            primary_version_id=version_id,
            created_at=now,
            last_rotation_date=now,
        )
        try:
            with self._db.unit_of_work(write=True) as uow:
                uow.keys.add(key, customer_master_key=False)
                uow.keys.add_version(KeyVersion(key_id, version_id, now), 1, wrapped)
                uow.aliases.add(
                    Alias(ctx.principal.account_id, ctx.region_id, service_alias(service), key_id), now
                )
        except Conflict:
            winner = self.find(ctx, service)
            if winner is None:  # pragma: no cover - the alias that conflicted was deleted meanwhile
                raise KeyNotFound() from None
            return _found(winner)
        self._generation.bump()
        return Outcome(key, key_resource(key, version_id))


def _found(key: Key) -> Outcome[Key]:
    return Outcome(key, key_resource(key, key.primary_version_id), acted=False)
