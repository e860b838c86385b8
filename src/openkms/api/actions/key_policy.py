"""Key policy actions: GetKeyPolicy, SetKeyPolicy."""

from __future__ import annotations

from collections.abc import Mapping

from openkms.api.actions.base import Action, empty
from openkms.api.params import Params
from openkms.service.container import Services
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome


def get_key_policy(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    policy = services.key_policies.get(ctx, params.required_str("KeyId"), params.optional_str("PolicyName"))
    return policy.map(lambda document: {"Policy": document})


def set_key_policy(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    return empty(
        services.key_policies.set(
            ctx,
            params.required_str("KeyId"),
            params.optional_str("PolicyName"),
            params.required_str("Policy"),
        )
    )


ACTIONS = (
    Action("GetKeyPolicy", get_key_policy, frozenset({"KeyId", "PolicyName"})),
    Action("SetKeyPolicy", set_key_policy, frozenset({"KeyId", "PolicyName", "Policy"})),
)
