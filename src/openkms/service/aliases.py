"""Alias use cases: create, re-point, delete and list aliases (seed F3.1).

Names follow `domain.names`; `alias/acs/` belongs to service keys and only services may use it.
Users cannot alias a service key either. Every change drops the alias caches node-wide.

An alias lives in its caller's account and can only point at a key of that account: another
account's key is Forbidden.KeyNotFound whatever its key policy says. Changing an alias is authorized
on every key it touches (UpdateAlias: the key it points at now and the new one) and, for callers other
than the account's root, on the alias ARN as well, as Alibaba's RAM does.
"""

from __future__ import annotations

from openkms.clock import Clock
from openkms.domain.alias import Alias
from openkms.domain.key import Key
from openkms.domain.names import check_alias_name, is_service_alias
from openkms.errors import AliasNotFound, KeyNotFound, UnsupportedOperation
from openkms.node.generation import Generation
from openkms.policy.actions import KmsAction
from openkms.repository.database import Database
from openkms.resource import Resource
from openkms.service.authorization import authorize, decide
from openkms.service.context import RequestContext
from openkms.service.keys import KeyService, key_resource, refuse_service_key
from openkms.service.outcome import Outcome, acting_on
from openkms.types import CreatorType, KeyId


class AliasService:
    def __init__(self, db: Database, keys: KeyService, clock: Clock, generation: Generation) -> None:
        self._db = db
        self._keys = keys
        self._clock = clock
        self._generation = generation

    def _check_name(self, ctx: RequestContext, name: str) -> str:
        check_alias_name(name)
        if is_service_alias(name) and ctx.principal.is_user:
            raise UnsupportedOperation("Aliases under alias/acs/ are reserved for service keys.")
        return name

    def _own_key(self, ctx: RequestContext, key_ref: str) -> Key:
        """The key an alias is to point at: of the caller's account, else KeyNotFound (before any
        authorization, so the answer says nothing about another account's keys)."""
        if key_ref.startswith("alias/") or ":alias/" in key_ref:
            raise UnsupportedOperation("An alias points at a key id or key ARN, not at another alias.")
        key = self._keys.resolve(ctx, key_ref)
        if key.account_id != ctx.principal.account_id:
            raise KeyNotFound()
        return key

    def create_alias(self, ctx: RequestContext, name: str, key_ref: str) -> Outcome[Alias]:
        self._check_name(ctx, name)
        key = self._own_key(ctx, key_ref)
        resource = key_resource(key)
        with acting_on(resource):
            authorize(ctx, KmsAction.CREATE_ALIAS, key)
            alias = Alias(ctx.principal.account_id, ctx.region_id, name, key.key_id)
            _authorize_alias(ctx, KmsAction.CREATE_ALIAS, alias)
            if key.creator_type is CreatorType.SERVICE:
                refuse_service_key(ctx, key, KmsAction.CREATE_ALIAS)
            with self._db.unit_of_work(write=True) as uow:
                uow.aliases.add(alias, self._clock.now())
        self._generation.bump()
        return Outcome(alias, resource)

    def update_alias(self, ctx: RequestContext, name: str, key_ref: str) -> Outcome[Alias]:
        self._check_name(ctx, name)
        key = self._own_key(ctx, key_ref)
        resource = key_resource(key)
        with acting_on(resource):
            authorize(ctx, KmsAction.UPDATE_ALIAS, key)
            if key.creator_type is CreatorType.SERVICE:
                refuse_service_key(ctx, key, KmsAction.UPDATE_ALIAS)
            with self._db.unit_of_work(write=True) as uow:
                existing = uow.aliases.get(ctx.principal.account_id, ctx.region_id, name)
                if existing is None:
                    raise AliasNotFound()
                current = uow.keys.get(existing.key_id)
                if current is not None:
                    # Re-pointing takes the alias away from the key it names now: that key must allow it too.
                    authorize(ctx, KmsAction.UPDATE_ALIAS, current)
                _authorize_alias(ctx, KmsAction.UPDATE_ALIAS, existing)
                alias = Alias(ctx.principal.account_id, ctx.region_id, name, key.key_id)
                uow.aliases.repoint(alias)
        self._generation.bump()
        return Outcome(alias, resource)

    def delete_alias(self, ctx: RequestContext, name: str) -> Outcome[None]:
        self._check_name(ctx, name)
        with self._db.unit_of_work(write=True) as uow:
            existing = uow.aliases.get(ctx.principal.account_id, ctx.region_id, name)
            if existing is None:
                raise AliasNotFound()
            resource = Resource.key(existing.region_id, existing.account_id, existing.key_id)
            with acting_on(resource):
                authorize(ctx, KmsAction.DELETE_ALIAS, uow.keys.get(existing.key_id))
                _authorize_alias(ctx, KmsAction.DELETE_ALIAS, existing)
                uow.aliases.remove(existing)
        self._generation.bump()
        return Outcome(None, resource)

    def list_aliases(
        self, ctx: RequestContext, key_ref: str | None, page_number: int, page_size: int
    ) -> Outcome[tuple[list[Alias], int]]:
        key_id: KeyId | None = None
        resource: Resource | None = None
        if key_ref is None:
            authorize(ctx, KmsAction.LIST_ALIASES)
        else:
            key = self._keys.read(ctx, key_ref, KmsAction.LIST_ALIASES_BY_KEY_ID)
            key_id, resource = key.key_id, key_resource(key)
        with self._db.unit_of_work() as uow:
            found = uow.aliases.page(
                ctx.principal.account_id, ctx.region_id, key_id, (page_number - 1) * page_size, page_size
            )
        return Outcome(found, resource)


def _authorize_alias(ctx: RequestContext, action: str, alias: Alias) -> None:
    """The second check of an alias change: `kms:<action>` on the alias ARN, by the caller's identity
    policies. The root of the account (aliases always live in the caller's account) is always allowed."""
    principal = ctx.principal
    if principal.name == "root" and principal.actor == "user":
        return
    decide(ctx, f"kms:{action}", alias.arn, alias.account_id, None)
