"""`openkms profile add|list|show` (the connection profiles of `cli/profiles.py`) and
`openkms account list` (who the profile's access key is, and the RAM users of its account).

The secret of `profile add` comes from stdin (--secret-stdin) or a hidden prompt (--secret-prompt),
never a flag; without either the profile stores none and commands take $OPENKMS_ACCESS_KEY_SECRET.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from openkms.cli.client import RAM_VERSION, STS_VERSION, ApiError
from openkms.cli.connect import AccessKeyId, Endpoint, Json, ProfileName, Region, client, requests
from openkms.cli.output import fail, note, print_fields, print_json, print_table
from openkms.cli.profiles import Profile, ProfileError, ProfileFile, normalise_endpoint, read_credentials

profile_app = typer.Typer(no_args_is_help=True, help="Connection profiles of the client commands.")


def _file_call(action: Any) -> Any:
    try:
        return action()
    except ProfileError as exc:
        fail(exc.code, exc.message, exc.hint)


@profile_app.command("add")
def profile_add(
    name: Annotated[str, typer.Argument(help="The profile's name.")],
    endpoint: Annotated[
        str, typer.Option("--endpoint", help="The server: host:port or http(s)://host:port.")
    ],
    access_key_id: Annotated[
        str | None, typer.Option("--access-key-id", help="The access key id that signs.")
    ] = None,
    region: Annotated[
        str, typer.Option("--region", help="The region (default cn-hangzhou).")
    ] = "cn-hangzhou",
    ca_file: Annotated[
        str | None, typer.Option("--ca-file", help="PEM CA the server's certificate chains to (HTTPS).")
    ] = None,
    secret_stdin: Annotated[
        bool, typer.Option("--secret-stdin", help="Store the access key secret read from stdin's first line.")
    ] = False,
    secret_prompt: Annotated[
        bool, typer.Option("--secret-prompt", help="Store the access key secret typed at a hidden prompt.")
    ] = False,
    credentials_file: Annotated[
        Path | None,
        typer.Option(
            "--credentials-file",
            help="Take the access key id and secret from a 0600 JSON file with AccessKeyId and "
            "AccessKeySecret (as the server's root-credentials.json).",
        ),
    ] = None,
    make_default: Annotated[bool, typer.Option("--default", help="Make it the default profile.")] = False,
    as_json: Json = False,
) -> None:
    """Add or replace a profile (the first one becomes the default)."""
    secret = None
    if credentials_file is not None:
        access_key_id, secret = _file_call(lambda: read_credentials(credentials_file))
    elif secret_stdin:
        secret = sys.stdin.readline().strip() or None
    elif secret_prompt:
        secret = typer.prompt("Access key secret", hide_input=True).strip() or None
    if (secret_stdin or secret_prompt) and secret is None:
        fail(
            "NoSecret",
            "an empty secret was given",
            "leave out --secret-stdin to use $OPENKMS_ACCESS_KEY_SECRET",
        )
    if not access_key_id:
        fail("MissingOption", "no access key id", "give --access-key-id or --credentials-file")
    file = ProfileFile()
    profile = Profile(
        name=name,
        endpoint=_file_call(lambda: normalise_endpoint(endpoint)),
        region=region,
        access_key_id=access_key_id,
        access_key_secret=secret,
        ca_file=ca_file,
    )
    _file_call(lambda: file.save(profile, make_default=make_default))
    shown = {**profile.public(), "Default": _file_call(file.default_name) == name, "File": str(file.path)}
    if as_json:
        print_json(shown)
    else:
        print_fields(shown.items())


@profile_app.command("list")
def profile_list(as_json: Json = False) -> None:
    """List the profiles (never a secret)."""
    file = ProfileFile()
    profiles = _file_call(file.profiles)
    default = _file_call(file.default_name)
    rows = [{**profile.public(), "Default": name == default} for name, profile in sorted(profiles.items())]
    if as_json:
        print_json({"Profiles": rows, "File": str(file.path)})
        return
    columns = ("Name", "Endpoint", "Region", "AccessKeyId", "Secret", "Default")
    print_table(columns, [[row.get(column) for column in columns] for row in rows])


@profile_app.command("show")
def profile_show(
    name: Annotated[str | None, typer.Argument(help="The profile; default: the default one.")] = None,
    as_json: Json = False,
) -> None:
    """Show one profile (never its secret)."""
    file = ProfileFile()
    profiles = _file_call(file.profiles)
    chosen = name or _file_call(file.default_name)
    if chosen is None or chosen not in profiles:
        fail(
            "ProfileNotFound", f"no profile {chosen or '(default)'} in {file.path}", "`openkms profile list`"
        )
    shown = {**profiles[chosen].public(), "Default": chosen == _file_call(file.default_name)}
    if as_json:
        print_json(shown)
    else:
        print_fields(shown.items())


def account_list(
    profile: ProfileName = None,
    endpoint: Endpoint = None,
    region: Region = None,
    access_key_id: AccessKeyId = None,
    as_json: Json = False,
) -> None:
    """Who this access key is (STS GetCallerIdentity) and the RAM users of its account it may list
    (RAM ListUsers): the identities the caller may see. Main accounts are made by the operator
    (`openkms account create`)."""
    kms = client(profile, endpoint, region, access_key_id)
    with requests():
        caller = kms.call_any(STS_VERSION, "GetCallerIdentity")
    users: list[dict[str, Any]] | None = []
    try:
        marker = None
        while users is not None:
            body = kms.call_any(RAM_VERSION, "ListUsers", Marker=marker, MaxItems=100)
            users += body.get("Users", {}).get("User", [])
            if not body.get("IsTruncated"):
                break
            marker = body.get("Marker")
    except ApiError as exc:
        if not exc.code.startswith("Forbidden") and exc.code != "NoPermission":
            fail(exc.code, exc.message, exc.hint)
        users = None  # this access key may not list the account's users
    caller = {name: caller.get(name) for name in ("AccountId", "IdentityType", "Arn", "PrincipalId")}
    if as_json:
        print_json({"Caller": caller, "Users": users})
        return
    rows = [("caller", caller["IdentityType"], caller["PrincipalId"], caller["Arn"], caller["AccountId"])]
    for user in users or []:
        arn = f"acs:ram::{caller['AccountId']}:user/{user.get('UserName')}"
        rows.append(("RAM user", user.get("DisplayName"), user.get("UserName"), arn, user.get("UserId")))
    print_table(("Who", "Type / display name", "Name", "Arn", "Id"), rows)
    if users is None:
        note("this access key may not list the account's RAM users (ram:ListUsers)")
