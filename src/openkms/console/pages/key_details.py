"""Console pages: a key's details (F5, F6, F7, F8, F9.1): its metadata, the deletion-protection switch,
description, aliases, tags, rotation policy and key policy, the lifecycle buttons, and the tabs Key
Versions, Key Material and Key Associations (`key_details_tabs.py`).

Everything is an action of the API run through `Console.call`: the page reads with DescribeKey and the
listing actions, and each form runs exactly one API action. A refusal is shown in the section the form
belongs to, with the API's status, and changes nothing. Never reads the database, never decides what
the API decides (which keys rotate, which may get a version, who may do what).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from openkms.console.auth import page
from openkms.console.pages import key_details_tabs as tabs
from openkms.console.pages.key_details_tabs import Shown, attempt, key_path, text
from openkms.console.view import ActionFailed, Console
from openkms.domain.specs import SPEC_RULES
from openkms.policy.key_policy import (
    ADMINISTRATORS_SID,
    OTHER_ACCOUNT_USERS_SID,
    USERS_SID,
    custom_key_policy,
)
from openkms.types import KeySpec

TABS = ("versions", "material", "associations")
LIST_SIDS = (ADMINISTRATORS_SID, USERS_SID, OTHER_ACCOUNT_USERS_SID)
# The key policy's three lists as the page shows and edits them: (form field, statement Sid, label).
POLICY_SECTIONS = (
    ("admins", ADMINISTRATORS_SID, "field.admins"),
    ("users", USERS_SID, "field.users"),
    ("others", OTHER_ACCOUNT_USERS_SID, "field.other_accounts"),
)
_FIELD_LIMIT = 65536  # the largest text a form of this page sends (a policy document)


def is_symmetric(spec: str) -> bool:
    try:
        return SPEC_RULES[KeySpec(spec)].symmetric
    except (KeyError, ValueError):
        return False


# --- the page -----------------------------------------------------------------------------------


async def details(console: Console) -> Response:
    return await render(console, Shown())


async def render(console: Console, shown: Shown) -> Response:
    key_id = console.request.path_params["key_id"]
    described = await console.call("DescribeKey", {"KeyId": key_id})
    key: Mapping[str, Any] = described["KeyMetadata"]
    key_id = str(key["KeyId"])
    chosen = shown.tab or console.request.query_params.get("tab", "versions")
    if chosen not in TABS or (chosen == "material" and key.get("Origin") != "EXTERNAL"):
        chosen = "versions"
    aliases, aliases_wire = await attempt(console, "ListAliasesByKeyId", {"KeyId": key_id, "PageSize": "100"})
    tags, tags_wire = await attempt(console, "ListResourceTags", {"KeyId": key_id})
    policy, policy_wire = await attempt(console, "GetKeyPolicy", {"KeyId": key_id})
    document = str(policy.get("Policy", ""))
    values = await tabs.tab_values(console, key, chosen)
    return console.render(
        "key_details/page.html",
        status=shown.status,
        section="keys",
        key=key,
        key_id=key_id,
        tab=chosen,
        symmetric=is_symmetric(str(key["KeySpec"])),
        rotation_days=_days(key.get("RotationInterval")),
        aliases=[row["AliasName"] for row in aliases.get("Aliases", {}).get("Alias", [])],
        aliases_wire=aliases_wire,
        tags=[(row["TagKey"], row["TagValue"]) for row in tags.get("Tags", {}).get("Tag", [])],
        tags_wire=tags_wire,
        policy=_pretty(document),
        policy_lists=policy_lists(document),
        policy_sections=POLICY_SECTIONS,
        policy_wire=policy_wire,
        shown=shown,
        **values,
    )


def _days(interval: object) -> int | None:
    """RotationInterval as DescribeKey answers it ("2592000s") in whole days."""
    if (
        isinstance(interval, str)
        and interval.endswith("s")
        and interval[:-1].isascii()
        and interval[:-1].isdigit()
    ):
        return int(interval[:-1]) // 86400
    return None


def _pretty(document: str) -> str:
    try:
        return json.dumps(json.loads(document), indent=2, ensure_ascii=False)
    except ValueError:
        return document


def policy_lists(document: str) -> dict[str, list[str]]:
    """The key policy's three lists (F4.2): the RAM principals of its Key Administrators, Key Users
    and Other Account Users statements (empty when the policy has none)."""
    lists: dict[str, list[str]] = {sid: [] for sid in LIST_SIDS}
    try:
        parsed = json.loads(document)
    except ValueError:
        return lists
    statements = parsed.get("Statement", []) if isinstance(parsed, dict) else []
    for statement in statements if isinstance(statements, list) else []:
        if not isinstance(statement, dict) or statement.get("Sid") not in lists:
            continue
        principal = statement.get("Principal")
        ram = principal.get("RAM", []) if isinstance(principal, dict) else []
        lists[statement["Sid"]].extend([ram] if isinstance(ram, str) else [str(item) for item in ram])
    return lists


def with_lists(document: str, account_id: str, lists: Mapping[str, list[str]]) -> str:
    """The key policy with its three lists replaced: every other statement is kept as it is (the
    default statement, an instance owner's), the lists' statements are the seed's (F4.2)."""
    built = json.loads(
        custom_key_policy(
            account_id,
            administrators=lists[ADMINISTRATORS_SID],
            users=lists[USERS_SID],
            other_account_users=lists[OTHER_ACCOUNT_USERS_SID],
        )
    )
    try:
        current = json.loads(document)
    except ValueError:
        current = built
    if not isinstance(current, dict) or not isinstance(current.get("Statement"), list):
        current = built
    kept = [
        item
        for item in current["Statement"]
        if not isinstance(item, dict) or item.get("Sid") not in LIST_SIDS
    ]
    added = [item for item in built["Statement"] if item.get("Sid") in LIST_SIDS]
    return json.dumps({**current, "Statement": kept + added}, separators=(",", ":"), ensure_ascii=False)


def lines(typed: str) -> list[str]:
    return [line.strip() for line in typed.splitlines() if line.strip()][:100]


# --- the forms of the page -----------------------------------------------------------------------


async def act(
    console: Console,
    section: str,
    action: str,
    params: Mapping[str, str | None],
    notice: str,
    *,
    form: dict[str, str] | None = None,
    tab: str | None = None,
) -> Response:
    """Run one action on the key in the path; back to the page with a notice, or the page with the
    refusal in the form's section (and the API's status)."""
    key_id = console.request.path_params["key_id"]
    try:
        await console.call(action, params)
    except ActionFailed as failed:
        return await render(console, tabs.refused(section, failed, tab or "", form))
    query = {"tab": tab} if tab else {}
    return console.redirect(key_path(key_id), notice=notice, **query)


async def deletion_protection(console: Console) -> Response:
    form = await console.request.form()
    key_id = console.request.path_params["key_id"]
    if text(form, "enabled") not in ("true", "false"):
        raise HTTPException(400, "The form names no deletion protection state.")
    turn_on = text(form, "enabled") == "true"
    params = {
        "KeyId": key_id,
        "EnableDeletionProtection": "true" if turn_on else "false",
        "DeletionProtectionDescription": text(form, "description") or None if turn_on else None,
    }
    notice = "notice.kd_protection_on" if turn_on else "notice.kd_protection_off"
    return await act(console, "protection", "SetDeletionProtection", params, notice)


async def description(console: Console) -> Response:
    form = await console.request.form()
    typed = text(form, "description", _FIELD_LIMIT)
    params = {"KeyId": console.request.path_params["key_id"], "Description": typed}
    return await act(
        console,
        "description",
        "UpdateKeyDescription",
        params,
        "notice.kd_description_saved",
        form={"description": typed},
    )


async def aliases(console: Console) -> Response:
    """Create an alias for this key, point one of its aliases at another key, or delete one."""
    form = await console.request.form()
    key_id = console.request.path_params["key_id"]
    typed = text(form, "alias").strip()
    name = typed if typed.startswith("alias/") else f"alias/{typed}"
    operation = text(form, "op")
    if operation == "update":
        params = {"AliasName": name, "KeyId": text(form, "target").strip()}
        return await act(console, "aliases", "UpdateAlias", params, "notice.kd_alias_updated")
    if operation == "delete":
        return await act(console, "aliases", "DeleteAlias", {"AliasName": name}, "notice.kd_alias_deleted")
    params = {"AliasName": name, "KeyId": key_id}
    return await act(
        console, "aliases", "CreateAlias", params, "notice.kd_alias_created", form={"alias": typed}
    )


async def tags(console: Console) -> Response:
    """Add one tag (TagResource; the API checks the F3.2 rules) or remove one (UntagResource)."""
    form = await console.request.form()
    key_id = console.request.path_params["key_id"]
    tag_key = text(form, "tag_key")
    if text(form, "op") == "remove":
        params = {"KeyId": key_id, "TagKeys": json.dumps([tag_key])}
        return await act(console, "tags", "UntagResource", params, "notice.kd_tag_removed")
    tag_value = text(form, "tag_value")
    params = {"KeyId": key_id, "Tags": json.dumps([{"TagKey": tag_key, "TagValue": tag_value}])}
    typed = {"tag_key": tag_key, "tag_value": tag_value}
    return await act(console, "tags", "TagResource", params, "notice.kd_tag_added", form=typed)


async def rotation(console: Console) -> Response:
    form = await console.request.form()
    turn_on = text(form, "rotation") == "on"
    days = text(form, "period").strip()
    params = {
        "KeyId": console.request.path_params["key_id"],
        "EnableAutomaticRotation": "true" if turn_on else "false",
        "RotationInterval": f"{days}d" if turn_on and days else None,
    }
    typed = {"period": days, "rotation": "on" if turn_on else ""}
    return await act(
        console, "rotation", "UpdateRotationPolicy", params, "notice.kd_rotation_saved", form=typed
    )


async def key_policy(console: Console) -> Response:
    """SetKeyPolicy from the three lists (every other statement kept) or from the JSON as typed."""
    form = await console.request.form()
    key_id = console.request.path_params["key_id"]
    if text(form, "mode") == "json":
        document = text(form, "policy", _FIELD_LIMIT)
        typed = {"policy": document}
    else:
        current = await console.call("GetKeyPolicy", {"KeyId": key_id})
        described = await console.call("DescribeKey", {"KeyId": key_id})
        account_id = str(described["KeyMetadata"]["Arn"]).split(":")[3]
        chosen = {sid: lines(text(form, name, _FIELD_LIMIT)) for name, sid, _ in POLICY_SECTIONS}
        document = with_lists(str(current["Policy"]), account_id, chosen)
        typed = {name: "\n".join(chosen[sid]) for name, sid, _ in POLICY_SECTIONS}
    params = {"KeyId": key_id, "Policy": document}
    return await act(console, "policy", "SetKeyPolicy", params, "notice.kd_policy_saved", form=typed)


_LIFECYCLE = {
    "enable": ("EnableKey", "notice.kd_enabled"),
    "disable": ("DisableKey", "notice.kd_disabled"),
    "schedule": ("ScheduleKeyDeletion", "notice.kd_deletion_scheduled"),
    "cancel": ("CancelKeyDeletion", "notice.kd_deletion_cancelled"),
}


async def lifecycle(console: Console) -> Response:
    """Enable, Disable, Schedule Key Deletion (with its pre-deletion period) or Cancel Key Deletion."""
    form = await console.request.form()
    operation = text(form, "op")
    if operation not in _LIFECYCLE:
        raise HTTPException(400, "The form names no lifecycle operation.")
    action, notice = _LIFECYCLE[operation]
    params: dict[str, str | None] = {"KeyId": console.request.path_params["key_id"]}
    typed: dict[str, str] = {}
    if operation == "schedule":
        params["PendingWindowInDays"] = typed["days"] = text(form, "days").strip()
    return await act(console, "lifecycle", action, params, notice, form=typed)


def shown_by(
    handler: Callable[[Console], Awaitable[Response | Shown]],
) -> Callable[[Console], Awaitable[Response]]:
    """A tab's handler answers a response, or what the details page must show: render it."""

    async def endpoint(console: Console) -> Response:
        answer = await handler(console)
        return await render(console, answer) if isinstance(answer, Shown) else answer

    return endpoint


_KEY = "/keys/{key_id}"
_VERSION = "/keys/{key_id}/versions/{version_id}"

ROUTES: list[BaseRoute] = [
    Route(_KEY, page(details), methods=["GET"]),
    Route(f"{_KEY}/deletion-protection", page(deletion_protection), methods=["POST"]),
    Route(f"{_KEY}/description", page(description), methods=["POST"]),
    Route(f"{_KEY}/aliases", page(aliases), methods=["POST"]),
    Route(f"{_KEY}/tags", page(tags), methods=["POST"]),
    Route(f"{_KEY}/rotation", page(rotation), methods=["POST"]),
    Route(f"{_KEY}/policy", page(key_policy), methods=["POST"]),
    Route(f"{_KEY}/lifecycle", page(lifecycle), methods=["POST"]),
    Route(f"{_KEY}/versions", page(shown_by(tabs.create_version)), methods=["POST"]),
    Route(f"{_VERSION}/public-key.pem", page(tabs.public_key_file), methods=["GET"]),
    Route(f"{_VERSION}/csr", page(shown_by(tabs.csr)), methods=["POST"]),
    Route(f"{_VERSION}/csr-file", page(shown_by(tabs.csr_file)), methods=["POST"]),
    Route(f"{_KEY}/material/parameters", page(shown_by(tabs.import_parameters)), methods=["POST"]),
    Route(f"{_KEY}/material/token-file", page(tabs.import_token_file), methods=["POST"]),
    Route(f"{_KEY}/material/public-key-file", page(tabs.wrapping_key_file), methods=["POST"]),
    Route(f"{_KEY}/material/import", page(shown_by(tabs.import_material)), methods=["POST"]),
    Route(f"{_KEY}/material/delete", page(shown_by(tabs.delete_material)), methods=["POST"]),
    Route(f"{_KEY}/associations", page(shown_by(tabs.detect)), methods=["POST"]),
    Route(f"{_KEY}/associations", page(tabs.associations), methods=["GET"]),
]
