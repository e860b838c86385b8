"""Key policy use cases: GetKeyPolicy and SetKeyPolicy (F4). The only policy name is `default`.

A key without a stored policy has the default policy (the owning account, F4.1). Setting a policy
replaces it whole; a malformed document is refused and changes nothing.
"""

from __future__ import annotations

from openkms.clock import Clock
from openkms.errors import InvalidArgument
from openkms.policy.actions import KmsAction
from openkms.policy.document import PolicyKind, parse_policy
from openkms.policy.key_policy import default_key_policy
from openkms.service.context import RequestContext
from openkms.service.keys import KeyService, key_resource
from openkms.service.outcome import Outcome
from openkms.service.sharing import InstanceAccess

POLICY_NAME = "default"


def _policy_name(name: str | None) -> None:
    if name not in (None, "", POLICY_NAME):
        raise InvalidArgument(f"PolicyName must be {POLICY_NAME!r}.", parameter="PolicyName")


class KeyPolicyService:
    def __init__(self, keys: KeyService, access: InstanceAccess, clock: Clock) -> None:
        self._keys = keys
        self._access = access
        self._clock = clock

    def get(self, ctx: RequestContext, key_ref: str, policy_name: str | None) -> Outcome[str]:
        _policy_name(policy_name)
        key = self._keys.read(ctx, key_ref, KmsAction.GET_KEY_POLICY)
        policy = key.policy if key.policy is not None else default_key_policy(key.account_id)
        return Outcome(policy, key_resource(key))

    def set(self, ctx: RequestContext, key_ref: str, policy_name: str | None, document: str) -> Outcome[None]:
        _policy_name(policy_name)
        with self._keys.locked(ctx, key_ref, KmsAction.SET_KEY_POLICY) as (uow, key):
            parse_policy(document, PolicyKind.KEY)
            self._access.enforce(
                uow, key.instance_id, key.key_id, key.account_id, document, self._clock.now()
            )
            uow.keys.set_policy(key.key_id, document)
        return Outcome(None, key_resource(key))
