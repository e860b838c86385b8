"""Alias actions: CreateAlias, UpdateAlias, DeleteAlias, ListAliases, ListAliasesByKeyId."""

from __future__ import annotations

from collections.abc import Mapping

from openkms.api.actions.base import Action, empty, page_params
from openkms.api.params import Params
from openkms.domain.alias import Alias
from openkms.service.container import Services
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome


def _listing(
    listed: Outcome[tuple[list[Alias], int]], page_number: int, page_size: int
) -> Outcome[Mapping[str, object]]:
    return listed.map(lambda page: _page(*page, page_number, page_size))


def _page(found: list[Alias], total: int, page_number: int, page_size: int) -> Mapping[str, object]:
    return {
        "Aliases": {"Alias": [{"AliasName": a.name, "AliasArn": a.arn, "KeyId": a.key_id} for a in found]},
        "TotalCount": total,
        "PageNumber": page_number,
        "PageSize": page_size,
    }


def create_alias(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    return empty(
        services.aliases.create_alias(ctx, params.required_str("AliasName"), params.required_str("KeyId"))
    )


def update_alias(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    return empty(
        services.aliases.update_alias(ctx, params.required_str("AliasName"), params.required_str("KeyId"))
    )


def delete_alias(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    return empty(services.aliases.delete_alias(ctx, params.required_str("AliasName")))


def list_aliases(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    page_number, page_size = page_params(params)
    return _listing(services.aliases.list_aliases(ctx, None, page_number, page_size), page_number, page_size)


def list_aliases_by_key_id(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    page_number, page_size = page_params(params)
    listed = services.aliases.list_aliases(ctx, params.required_str("KeyId"), page_number, page_size)
    return _listing(listed, page_number, page_size)


_ALIAS = frozenset({"AliasName", "KeyId"})
_PAGE = frozenset({"PageNumber", "PageSize"})

ACTIONS = (
    Action("CreateAlias", create_alias, _ALIAS),
    Action("UpdateAlias", update_alias, _ALIAS),
    Action("DeleteAlias", delete_alias, frozenset({"AliasName"})),
    Action("ListAliases", list_aliases, _PAGE),
    Action("ListAliasesByKeyId", list_aliases_by_key_id, _PAGE | {"KeyId"}),
)
