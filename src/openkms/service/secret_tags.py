"""Tags on secrets, for the tag actions that take `SecretName` or `ResourceType=secret` (seed F3.2's
rules: at most 20 per secret, all or nothing)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from openkms.domain.names import TAG_LIMIT
from openkms.domain.secrets import Secret
from openkms.errors import QuotaExceeded
from openkms.policy.actions import KmsAction
from openkms.repository.database import Database, UnitOfWork
from openkms.resource import Resource
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome, acting_on
from openkms.service.secret_access import open_secret, secret_resource


class SecretTagService:
    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    def _secrets(
        uow: UnitOfWork, ctx: RequestContext, refs: Sequence[str], action: KmsAction, *, lock: bool = False
    ) -> tuple[list[Secret], Resource | None]:
        found: dict[str, Secret] = {}
        resource: Resource | None = None
        for ref in refs:
            secret = open_secret(uow, ctx, ref, action, lock=lock, pending_ok=True)
            resource = secret_resource(secret)
            found.setdefault(secret.secret_id, secret)
        return list(found.values()), resource

    def tag(
        self, ctx: RequestContext, refs: Sequence[str], tags: Mapping[str, str], action: KmsAction
    ) -> Outcome[None]:
        ctx.request_tags = dict(tags)
        with self._db.unit_of_work(write=True) as uow:
            secrets, resource = self._secrets(uow, ctx, refs, action, lock=True)
            for secret in secrets:
                if len(set(uow.secrets.tags(secret.secret_id)) | set(tags)) > TAG_LIMIT:
                    with acting_on(secret_resource(secret)):
                        raise QuotaExceeded(
                            f"A secret has at most {TAG_LIMIT} tags; {secret.name} would have more."
                        )
            for secret in secrets:
                uow.secrets.put_tags(secret.secret_id, tags)
        return Outcome(None, resource)

    def untag(
        self, ctx: RequestContext, refs: Sequence[str], tag_keys: Sequence[str] | None, action: KmsAction
    ) -> Outcome[None]:
        with self._db.unit_of_work(write=True) as uow:
            secrets, resource = self._secrets(uow, ctx, refs, action, lock=True)
            for secret in secrets:
                uow.secrets.remove_tags(secret.secret_id, tag_keys)
        return Outcome(None, resource)

    def tags_of(
        self, ctx: RequestContext, refs: Sequence[str], action: KmsAction
    ) -> Outcome[list[tuple[str, dict[str, str]]]]:
        with self._db.unit_of_work() as uow:
            secrets, resource = self._secrets(uow, ctx, refs, action)
            return Outcome(
                [(secret.name, uow.secrets.tags(secret.secret_id)) for secret in secrets], resource
            )
