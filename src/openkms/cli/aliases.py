"""`openkms alias list|create|update|delete` over the Alibaba API (ListAliases, CreateAlias, ...).

A name given without the `alias/` prefix gets it, as every alias name must start with it.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from openkms.cli.connect import AccessKeyId, Endpoint, Json, ProfileName, Region, client, requests
from openkms.cli.output import print_json, print_table

alias_app = typer.Typer(no_args_is_help=True, help="Aliases of keys: list, create, point elsewhere, delete.")

AliasArg = Annotated[str, typer.Argument(help="The alias name (alias/... ; the prefix is added if missing).")]
KeyArg = Annotated[str, typer.Argument(help="The key id the alias points to.")]
_COLUMNS = ("AliasName", "KeyId", "AliasArn")


def _name(alias: str) -> str:
    return alias if alias.startswith("alias/") else f"alias/{alias}"


@alias_app.command("list")
def alias_list(
    key: Annotated[str | None, typer.Option("--key", help="Only the aliases of this key.")] = None,
    profile: ProfileName = None,
    endpoint: Endpoint = None,
    region: Region = None,
    access_key_id: AccessKeyId = None,
    as_json: Json = False,
) -> None:
    """List the aliases (of every key, or of one with --key)."""
    kms = client(profile, endpoint, region, access_key_id)
    aliases: list[dict[str, Any]] = []
    page = 1
    with requests():
        while True:
            if key is None:
                body = kms.call("ListAliases", PageNumber=page, PageSize=100)
            else:
                body = kms.call("ListAliasesByKeyId", KeyId=key, PageNumber=page, PageSize=100)
            aliases += body.get("Aliases", {}).get("Alias", [])
            if page * 100 >= int(body.get("TotalCount", 0)):
                break
            page += 1
    if as_json:
        print_json({"Aliases": aliases, "TotalCount": len(aliases)})
    else:
        print_table(_COLUMNS, [[alias.get(column) for column in _COLUMNS] for alias in aliases])


def _change(action: str, connection: tuple[Any, ...], as_json: bool, **params: Any) -> None:
    kms = client(*connection)
    with requests():
        body = kms.call(action, **params)
    if as_json:
        print_json({"RequestId": body.get("RequestId"), **params})
    else:
        print_table(tuple(params), [tuple(params.values())])


@alias_app.command("create")
def alias_create(
    alias: AliasArg,
    key: KeyArg,
    profile: ProfileName = None,
    endpoint: Endpoint = None,
    region: Region = None,
    access_key_id: AccessKeyId = None,
    as_json: Json = False,
) -> None:
    """Create an alias for a key (CreateAlias)."""
    _change(
        "CreateAlias", (profile, endpoint, region, access_key_id), as_json, AliasName=_name(alias), KeyId=key
    )


@alias_app.command("update")
def alias_update(
    alias: AliasArg,
    key: KeyArg,
    profile: ProfileName = None,
    endpoint: Endpoint = None,
    region: Region = None,
    access_key_id: AccessKeyId = None,
    as_json: Json = False,
) -> None:
    """Point an existing alias at another key (UpdateAlias)."""
    _change(
        "UpdateAlias", (profile, endpoint, region, access_key_id), as_json, AliasName=_name(alias), KeyId=key
    )


@alias_app.command("delete")
def alias_delete(
    alias: AliasArg,
    profile: ProfileName = None,
    endpoint: Endpoint = None,
    region: Region = None,
    access_key_id: AccessKeyId = None,
    as_json: Json = False,
) -> None:
    """Delete an alias; the key stays (DeleteAlias)."""
    _change("DeleteAlias", (profile, endpoint, region, access_key_id), as_json, AliasName=_name(alias))
