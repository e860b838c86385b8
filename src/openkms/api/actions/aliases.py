"""Alias actions: CreateAlias, UpdateAlias, DeleteAlias, ListAliases, ListAliasesByKeyId."""

from __future__ import annotations

from collections.abc import Mapping

from openkms.api.actions.base import Action, page_params
from openkms.api.params import Params
from openkms.domain.alias import Alias
from openkms.service.container import Services
from openkms.service.context import RequestContext


def _listing(found: list[Alias], total: int, page_number: int, page_size: int) -> dict[str, object]:
    return {
        "Aliases": {"Alias": [{"AliasName": a.name, "AliasArn": a.arn, "KeyId": a.key_id} for a in found]},
        "TotalCount": total,
        "PageNumber": page_number,
        "PageSize": page_size,
    }


def create_alias(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    services.aliases.create_alias(ctx, params.required_str("AliasName"), params.required_str("KeyId"))
    return {}


def update_alias(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    services.aliases.update_alias(ctx, params.required_str("AliasName"), params.required_str("KeyId"))
    return {}


def delete_alias(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    services.aliases.delete_alias(ctx, params.required_str("AliasName"))
    return {}


def list_aliases(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    page_number, page_size = page_params(params)
    found, total = services.aliases.list_aliases(ctx, None, page_number, page_size)
    return _listing(found, total, page_number, page_size)


def list_aliases_by_key_id(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    page_number, page_size = page_params(params)
    found, total = services.aliases.list_aliases(ctx, params.required_str("KeyId"), page_number, page_size)
    return _listing(found, total, page_number, page_size)


_ALIAS = frozenset({"AliasName", "KeyId"})
_PAGE = frozenset({"PageNumber", "PageSize"})

ACTIONS = (
    Action("CreateAlias", create_alias, _ALIAS),
    Action("UpdateAlias", update_alias, _ALIAS),
    Action("DeleteAlias", delete_alias, frozenset({"AliasName"})),
    Action("ListAliases", list_aliases, _PAGE),
    Action("ListAliasesByKeyId", list_aliases_by_key_id, _PAGE | {"KeyId"}),
)
