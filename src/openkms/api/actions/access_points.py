"""Application access actions (2016-01-20): CreateApplicationAccessPoint, DescribeApplicationAccessPoint,
ListApplicationAccessPoints, UpdateApplicationAccessPoint, DeleteApplicationAccessPoint;
CreatePolicy, DescribePolicy, ListPolicies, UpdatePolicy, DeletePolicy; CreateNetworkRule,
DescribeNetworkRule, ListNetworkRules, UpdateNetworkRule, DeleteNetworkRule.

Response fields follow the SDK's models: where a model declares a string (Policies, Permissions and
Resources of CreatePolicy, SourcePrivateIp, AccessControlRules) the list is rendered as JSON text,
where it declares a list (DescribePolicy's Permissions and Resources) it is a JSON array.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from openkms.api.actions.base import Action, empty
from openkms.api.params import Params
from openkms.domain.access_points import AccessPoint, AccessPolicy, NetworkRule
from openkms.service.container import Services
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome


def _text(values: Sequence[str]) -> str:
    return json.dumps(list(values), separators=(",", ":"))


def page_of(params: Params) -> tuple[int, int]:
    """PageNumber (default 1) and PageSize (1 to 100, default 20, as Alibaba documents these lists)."""
    page_number = params.optional_int("PageNumber", 1, minimum=1, maximum=1_000_000)
    page_size = params.optional_int("PageSize", 20, minimum=1, maximum=100)
    return page_number, page_size


def _paged(
    outer: str, inner: str, items: list[Mapping[str, object]], total: int, page: tuple[int, int]
) -> Mapping[str, object]:
    return {outer: {inner: items}, "TotalCount": total, "PageNumber": page[0], "PageSize": page[1]}


# -- network rules ---------------------------------------------------------------------------------
def _rule(rule: NetworkRule) -> Mapping[str, object]:
    return {
        "Arn": rule.arn,
        "Name": rule.name,
        "Description": rule.description,
        "Type": rule.network_type,
        "SourcePrivateIp": _text(rule.source_addresses),
    }


def create_network_rule(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    return services.access_points.create_network_rule(
        ctx,
        params.required_str("Name"),
        params.required_str("Type"),
        params.optional_str("SourcePrivateIp"),
        params.optional_str("Description"),
    ).map(_rule)


def describe_network_rule(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    found = services.access_points.describe_network_rule(ctx, params.required_str("Name"))
    return found.map(lambda rule: {key: value for key, value in _rule(rule).items() if key != "Name"})


def list_network_rules(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    page = page_of(params)
    return services.access_points.list_network_rules(ctx, *page).map(
        lambda found: _paged(
            "NetworkRules",
            "NetworkRule",
            [{"Name": rule.name, "Type": rule.network_type} for rule in found[0]],
            found[1],
            page,
        )
    )


def update_network_rule(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    return empty(
        services.access_points.update_network_rule(
            ctx,
            params.required_str("Name"),
            params.optional_str("SourcePrivateIp"),
            params.optional_str("Description"),
        )
    )


def delete_network_rule(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    return empty(services.access_points.delete_network_rule(ctx, params.required_str("Name")))


# -- permission policies ---------------------------------------------------------------------------
def _policy_created(policy: AccessPolicy) -> Mapping[str, object]:
    return {
        "Arn": policy.arn,
        "Name": policy.name,
        "Description": policy.description,
        "KmsInstance": policy.kms_instance,
        "Permissions": _text(policy.permissions),
        "Resources": _text(policy.resources),
        "AccessControlRules": policy.access_control_rules,
    }


def _policy_described(policy: AccessPolicy) -> Mapping[str, object]:
    return {
        **_policy_created(policy),
        "Permissions": list(policy.permissions),
        "Resources": list(policy.resources),
    }


def create_policy(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    return services.access_points.create_policy(
        ctx,
        params.required_str("Name"),
        params.optional_str("KmsInstance"),
        params.required_str("Permissions"),
        params.required_str("Resources"),
        params.optional_str("AccessControlRules"),
        params.optional_str("Description"),
    ).map(_policy_created)


def describe_policy(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    return services.access_points.describe_policy(ctx, params.required_str("Name")).map(_policy_described)


def list_policies(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    page = page_of(params)
    return services.access_points.list_policies(ctx, *page).map(
        lambda found: _paged("Policies", "Policy", [{"Name": p.name} for p in found[0]], found[1], page)
    )


def update_policy(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    return empty(
        services.access_points.update_policy(
            ctx,
            params.required_str("Name"),
            params.optional_str("Permissions"),
            params.optional_str("Resources"),
            params.optional_str("AccessControlRules"),
            params.optional_str("Description"),
        )
    )


def delete_policy(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    return empty(services.access_points.delete_policy(ctx, params.required_str("Name")))


# -- application access points --------------------------------------------------------------------
def _access_point(point: AccessPoint) -> Mapping[str, object]:
    return {
        "Arn": point.arn,
        "Name": point.name,
        "Description": point.description,
        "AuthenticationMethod": point.authentication_method,
        "Policies": _text(point.policies),
    }


def create_access_point(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    return services.access_points.create_access_point(
        ctx,
        params.required_str("Name"),
        params.required_str("Policies"),
        params.optional_str("AuthenticationMethod"),
        params.optional_str("Description"),
    ).map(_access_point)


def describe_access_point(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    return services.access_points.describe_access_point(ctx, params.required_str("Name")).map(_access_point)


def list_access_points(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    page = page_of(params)
    return services.access_points.list_access_points(ctx, *page).map(
        lambda found: _paged(
            "ApplicationAccessPoints",
            "ApplicationAccessPoint",
            [{"Name": p.name, "AuthenticationMethod": p.authentication_method} for p in found[0]],
            found[1],
            page,
        )
    )


def update_access_point(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    return empty(
        services.access_points.update_access_point(
            ctx,
            params.required_str("Name"),
            params.optional_str("Policies"),
            params.optional_str("Description"),
        )
    )


def delete_access_point(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    return empty(services.access_points.delete_access_point(ctx, params.required_str("Name")))


_NAME = frozenset({"Name"})
_PAGE = frozenset({"PageNumber", "PageSize"})

ACTIONS = (
    Action(
        "CreateNetworkRule",
        create_network_rule,
        frozenset({"Name", "Type", "SourcePrivateIp", "Description"}),
    ),
    Action("DescribeNetworkRule", describe_network_rule, _NAME),
    Action("ListNetworkRules", list_network_rules, _PAGE),
    Action("UpdateNetworkRule", update_network_rule, frozenset({"Name", "SourcePrivateIp", "Description"})),
    Action("DeleteNetworkRule", delete_network_rule, _NAME),
    Action(
        "CreatePolicy",
        create_policy,
        frozenset({"Name", "KmsInstance", "Permissions", "Resources", "AccessControlRules", "Description"}),
    ),
    Action("DescribePolicy", describe_policy, _NAME),
    Action("ListPolicies", list_policies, _PAGE),
    Action(
        "UpdatePolicy",
        update_policy,
        frozenset({"Name", "Permissions", "Resources", "AccessControlRules", "Description"}),
    ),
    Action("DeletePolicy", delete_policy, _NAME),
    Action(
        "CreateApplicationAccessPoint",
        create_access_point,
        frozenset({"Name", "Policies", "AuthenticationMethod", "Description"}),
    ),
    Action("DescribeApplicationAccessPoint", describe_access_point, _NAME),
    Action("ListApplicationAccessPoints", list_access_points, _PAGE),
    Action(
        "UpdateApplicationAccessPoint", update_access_point, frozenset({"Name", "Policies", "Description"})
    ),
    Action("DeleteApplicationAccessPoint", delete_access_point, _NAME),
)
