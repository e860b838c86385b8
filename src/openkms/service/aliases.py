"""Alias use cases: create, re-point, delete and list aliases (seed F3.1).

Names follow `domain.names`; `alias/acs/` belongs to service keys and only services may use it.
Users cannot alias a service key either. Every change drops the alias caches node-wide.
"""

from __future__ import annotations

from openkms.clock import Clock
from openkms.domain.names import check_alias_name, is_service_alias
from openkms.errors import AliasNotFound, UnsupportedOperation
from openkms.node.generation import Generation
from openkms.repository.aliases import Alias
from openkms.repository.database import Database
from openkms.service.authorization import authorize
from openkms.service.context import RequestContext
from openkms.service.keys import KeyService, refuse_service_key
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

    def create_alias(self, ctx: RequestContext, name: str, key_ref: str) -> Alias:
        self._check_name(ctx, name)
        if key_ref.startswith("alias/") or ":alias/" in key_ref:
            raise UnsupportedOperation("An alias points at a key id or key ARN, not at another alias.")
        key = self._keys.resolve(ctx, key_ref)
        ctx.touched(key.key_id)
        authorize(ctx, "CreateAlias", key)
        if key.creator_type is CreatorType.SERVICE:
            refuse_service_key(ctx, key, "CreateAlias")
        alias = Alias(ctx.principal.account_id, ctx.region_id, name, key.key_id)
        with self._db.unit_of_work(write=True) as uow:
            uow.aliases.add(alias, self._clock.now())
        self._generation.bump()
        return alias

    def update_alias(self, ctx: RequestContext, name: str, key_ref: str) -> Alias:
        self._check_name(ctx, name)
        if key_ref.startswith("alias/") or ":alias/" in key_ref:
            raise UnsupportedOperation("An alias points at a key id or key ARN, not at another alias.")
        key = self._keys.resolve(ctx, key_ref)
        ctx.touched(key.key_id)
        authorize(ctx, "UpdateAlias", key)
        if key.creator_type is CreatorType.SERVICE:
            refuse_service_key(ctx, key, "UpdateAlias")
        with self._db.unit_of_work(write=True) as uow:
            existing = uow.aliases.get(ctx.principal.account_id, ctx.region_id, name)
            if existing is None:
                raise AliasNotFound()
            alias = Alias(ctx.principal.account_id, ctx.region_id, name, key.key_id)
            uow.aliases.repoint(alias)
        self._generation.bump()
        return alias

    def delete_alias(self, ctx: RequestContext, name: str) -> None:
        self._check_name(ctx, name)
        with self._db.unit_of_work(write=True) as uow:
            existing = uow.aliases.get(ctx.principal.account_id, ctx.region_id, name)
            if existing is None:
                raise AliasNotFound()
            key = uow.keys.get(existing.key_id)
            ctx.touched(existing.key_id)
            authorize(ctx, "DeleteAlias", key)
            uow.aliases.remove(existing)
        self._generation.bump()

    def list_aliases(
        self, ctx: RequestContext, key_ref: str | None, page_number: int, page_size: int
    ) -> tuple[list[Alias], int]:
        key_id: KeyId | None = None
        if key_ref is None:
            authorize(ctx, "ListAliases")
        else:
            key = self._keys.resolve(ctx, key_ref)
            ctx.touched(key.key_id)
            authorize(ctx, "ListAliasesByKeyId", key)
            key_id = key.key_id
        with self._db.unit_of_work() as uow:
            return uow.aliases.page(
                ctx.principal.account_id, ctx.region_id, key_id, (page_number - 1) * page_size, page_size
            )
