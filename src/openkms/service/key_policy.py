"""Key policy use cases: GetKeyPolicy and SetKeyPolicy (F4). The only policy name is `default`.

A key without a stored policy has the default policy (the owning account, F4.1). Setting a policy
replaces it whole; a malformed document is refused and changes nothing.
"""

from __future__ import annotations

from openkms.clock import Clock
from openkms.errors import InvalidArgument
from openkms.node.generation import Generation
from openkms.policy.document import PolicyKind, parse_policy
from openkms.policy.key_policy import default_key_policy
from openkms.repository.database import Database
from openkms.service.authorization import authorize
from openkms.service.context import RequestContext
from openkms.service.keys import KeyService
from openkms.service.sharing import InstanceAccess

POLICY_NAME = "default"


def _policy_name(name: str | None) -> None:
    if name not in (None, "", POLICY_NAME):
        raise InvalidArgument(f"PolicyName must be {POLICY_NAME!r}.", parameter="PolicyName")


class KeyPolicyService:
    def __init__(
        self, db: Database, keys: KeyService, generation: Generation, access: InstanceAccess, clock: Clock
    ) -> None:
        self._db = db
        self._keys = keys
        self._generation = generation
        self._access = access
        self._clock = clock

    def get(self, ctx: RequestContext, key_ref: str, policy_name: str | None) -> str:
        _policy_name(policy_name)
        key = self._keys.resolve(ctx, key_ref)
        ctx.touched(key.key_id)
        authorize(ctx, "GetKeyPolicy", key)
        return key.policy if key.policy is not None else default_key_policy(key.account_id)

    def set(self, ctx: RequestContext, key_ref: str, policy_name: str | None, document: str) -> None:
        _policy_name(policy_name)
        key = self._keys.resolve(ctx, key_ref)
        ctx.touched(key.key_id)
        authorize(ctx, "SetKeyPolicy", key)
        parse_policy(document, PolicyKind.KEY)
        with self._db.unit_of_work(write=True) as uow:
            self._access.enforce(
                uow, key.instance_id, key.key_id, key.account_id, document, self._clock.now()
            )
            uow.keys.set_policy(key.key_id, document)
        self._keys.key_cache.discard(key.key_id)
        self._generation.bump()  # every worker drops its cached copy of the key
