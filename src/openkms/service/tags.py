"""Tag use cases on keys, old and new API shapes alike (seed F3.2).

All or nothing: every rule (names, values, the 20-tag limit per key, every key found and allowed) is
checked before the first write, and all writes share one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from openkms.domain.names import TAG_LIMIT
from openkms.errors import KeyNotFound, QuotaExceeded
from openkms.repository.database import Database
from openkms.service.authorization import authorize
from openkms.service.context import RequestContext
from openkms.service.keys import KeyService
from openkms.types import KeyId


class TagService:
    def __init__(self, db: Database, keys: KeyService) -> None:
        self._db = db
        self._keys = keys

    def _key_ids(self, ctx: RequestContext, key_refs: Sequence[str], action: str) -> list[KeyId]:
        found: list[KeyId] = []
        for ref in key_refs:
            key = self._keys.resolve(ctx, ref)
            ctx.touched(key.key_id)
            authorize(ctx, action, key)
            if key.key_id not in found:
                found.append(key.key_id)
        return found

    def tag(self, ctx: RequestContext, key_refs: Sequence[str], tags: Mapping[str, str], action: str) -> None:
        ctx.request_tags = dict(tags)  # policies may condition on them (acs:RequestTag/<key>)
        key_ids = self._key_ids(ctx, key_refs, action)
        with self._db.unit_of_work(write=True) as uow:
            for key_id in key_ids:
                uow.lifecycle.lock_key(key_id)
                if uow.keys.get(key_id) is None:
                    raise KeyNotFound()
                existing = uow.tags.of(key_id)
                if len(set(existing) | set(tags)) > TAG_LIMIT:
                    raise QuotaExceeded(f"A key has at most {TAG_LIMIT} tags; {key_id} would have more.")
            for key_id in key_ids:
                uow.tags.put(key_id, tags)

    def untag(
        self, ctx: RequestContext, key_refs: Sequence[str], tag_keys: Sequence[str] | None, action: str
    ) -> None:
        key_ids = self._key_ids(ctx, key_refs, action)
        with self._db.unit_of_work(write=True) as uow:
            for key_id in key_ids:
                uow.tags.remove(key_id, tag_keys)

    def current(self, key_id: str) -> dict[str, str]:
        """A key's tags now, for policy conditions (acs:ResourceTag/<key>)."""
        with self._db.unit_of_work() as uow:
            return uow.tags.of(KeyId(key_id))

    def tags_of(
        self, ctx: RequestContext, key_refs: Sequence[str], action: str
    ) -> list[tuple[KeyId, dict[str, str]]]:
        key_ids = self._key_ids(ctx, key_refs, action)
        with self._db.unit_of_work() as uow:
            return [(key_id, uow.tags.of(key_id)) for key_id in key_ids]

    def keys_tagged(
        self, ctx: RequestContext, wanted: Sequence[tuple[str, str]], action: str
    ) -> list[tuple[KeyId, dict[str, str]]]:
        """The caller's keys in its region carrying every wanted tag (an empty value: any value), with
        their tags. Authorized like ListKeys: on the account's keys as a whole."""
        authorize(ctx, action)
        with self._db.unit_of_work() as uow:
            key_ids = uow.tags.keys_with(ctx.principal.account_id, ctx.region_id, wanted)
            return [(key_id, uow.tags.of(key_id)) for key_id in key_ids]
