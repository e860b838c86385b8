"""Key policy actions: GetKeyPolicy, SetKeyPolicy."""

from __future__ import annotations

from collections.abc import Mapping

from openkms.api.actions.base import Action
from openkms.api.params import Params
from openkms.service.container import Services
from openkms.service.context import RequestContext


def get_key_policy(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    policy = services.key_policies.get(ctx, params.required_str("KeyId"), params.optional_str("PolicyName"))
    return {"Policy": policy}


def set_key_policy(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    services.key_policies.set(
        ctx, params.required_str("KeyId"), params.optional_str("PolicyName"), params.required_str("Policy")
    )
    return {}


ACTIONS = (
    Action("GetKeyPolicy", get_key_policy, frozenset({"KeyId", "PolicyName"})),
    Action("SetKeyPolicy", set_key_policy, frozenset({"KeyId", "PolicyName", "Policy"})),
)
