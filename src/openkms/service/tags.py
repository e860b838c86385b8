"""Tag use cases on keys, old and new API shapes alike (seed F3.2).

All or nothing: every rule (names, values, the 20-tag limit per key, every key found and allowed) is
checked before the first write, and all writes share one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from openkms.domain.names import TAG_LIMIT
from openkms.errors import KeyNotFound, QuotaExceeded
from openkms.policy.actions import KmsAction
from openkms.repository.database import Database
from openkms.resource import Resource
from openkms.service.authorization import authorize
from openkms.service.context import RequestContext
from openkms.service.keys import KeyService, key_resource
from openkms.service.outcome import Outcome
from openkms.types import KeyId


class TagService:
    def __init__(self, db: Database, keys: KeyService) -> None:
        self._db = db
        self._keys = keys

    def _key_ids(
        self, ctx: RequestContext, key_refs: Sequence[str], action: KmsAction
    ) -> tuple[list[KeyId], Resource | None]:
        """The keys named, each found and allowed; and the resource the request names (the last key:
        one record names one resource)."""
        found: list[KeyId] = []
        resource: Resource | None = None
        for ref in key_refs:
            key = self._keys.read(ctx, ref, action)
            resource = key_resource(key)
            if key.key_id not in found:
                found.append(key.key_id)
        return found, resource

    def tag(
        self, ctx: RequestContext, key_refs: Sequence[str], tags: Mapping[str, str], action: KmsAction
    ) -> Outcome[None]:
        ctx.request_tags = dict(tags)  # policies may condition on them (acs:RequestTag/<key>)
        key_ids, resource = self._key_ids(ctx, key_refs, action)
        with self._db.unit_of_work(write=True) as uow:
            for key_id in key_ids:
                uow.lifecycle.lock_key(key_id)
                if uow.keys.get(key_id) is None:
                    raise KeyNotFound()
                existing = uow.tags.of(key_id)
                if len(set(existing) | set(tags)) > TAG_LIMIT:
                    error = QuotaExceeded(f"A key has at most {TAG_LIMIT} tags; {key_id} would have more.")
                    raise error if resource is None else error.about(resource)
            for key_id in key_ids:
                uow.tags.put(key_id, tags)
        return Outcome(None, resource)

    def untag(
        self, ctx: RequestContext, key_refs: Sequence[str], tag_keys: Sequence[str] | None, action: KmsAction
    ) -> Outcome[None]:
        key_ids, resource = self._key_ids(ctx, key_refs, action)
        with self._db.unit_of_work(write=True) as uow:
            for key_id in key_ids:
                uow.tags.remove(key_id, tag_keys)
        return Outcome(None, resource)

    def current(self, key_id: str) -> dict[str, str]:
        """A key's tags now, for policy conditions (acs:ResourceTag/<key>)."""
        with self._db.unit_of_work() as uow:
            return uow.tags.of(KeyId(key_id))

    def tags_of(
        self, ctx: RequestContext, key_refs: Sequence[str], action: KmsAction
    ) -> Outcome[list[tuple[KeyId, dict[str, str]]]]:
        key_ids, resource = self._key_ids(ctx, key_refs, action)
        with self._db.unit_of_work() as uow:
            return Outcome([(key_id, uow.tags.of(key_id)) for key_id in key_ids], resource)

    def keys_tagged(
        self, ctx: RequestContext, wanted: Sequence[tuple[str, str]], action: KmsAction
    ) -> Outcome[list[tuple[KeyId, dict[str, str]]]]:
        """The caller's keys in its region carrying every wanted tag (an empty value: any value), with
        their tags. Authorized like ListKeys: on the account's keys as a whole."""
        authorize(ctx, action)
        with self._db.unit_of_work() as uow:
            key_ids = uow.tags.keys_with(ctx.principal.account_id, ctx.region_id, wanted)
            return Outcome([(key_id, uow.tags.of(key_id)) for key_id in key_ids])
