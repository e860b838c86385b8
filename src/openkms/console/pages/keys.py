"""Console pages: Resource > Keys, the Customer Master Keys and Default Keys tabs, and the row actions
(Enable, Disable, Schedule Key Deletion, Cancel Key Deletion). The Create Key panel is
`pages/create_key.py`.

Everything goes through the API's actions (`Console.call`); filters and search are ListKeys `Filters`,
so paging counts what the server filtered. The Default Keys tab lists the keys outside any instance
through the key service (`console.run`), which authorizes ListKeys itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import FormData
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from openkms import errors
from openkms.api.wire_errors import WireError, to_wire
from openkms.console.auth import page
from openkms.console.view import ActionFailed, Console
from openkms.domain.key import Key, KeyFilter
from openkms.domain.names import check_alias_name, is_service_alias
from openkms.domain.specs import SPEC_RULES
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome
from openkms.types import CreatorType, KeyState, Origin

PAGE_SIZE = 10
STATES = tuple(state.value for state in KeyState)
SPECS = tuple(spec.value for spec in SPEC_RULES)
# The query of the key list a row action returns to (its filters and page), nothing else.
LIST_QUERY = ("instance", "state", "spec", "tag_key", "tag_value", "q", "page")


@dataclass(frozen=True, slots=True)
class Instance:
    instance_id: str
    name: str
    kind: str  # software | hardware | external


async def instances_of(console: Console) -> list[Instance]:
    """The instances the signed-in account may put keys in, with their kind (GetKmsInstance)."""
    listed = await console.call("ListKmsInstances", {"PageSize": "100"})
    found = []
    for entry in listed["KmsInstances"]["KmsInstance"]:
        got = (await console.call("GetKmsInstance", {"KmsInstanceId": entry["KmsInstanceId"]}))["KmsInstance"]
        kind = str(got.get("ProductType", "")).removeprefix("openkms_")
        found.append(Instance(str(got["InstanceId"]), str(got.get("InstanceName", "")), kind))
    return found


def chosen_instance(instances: list[Instance], wanted: str | None) -> Instance | None:
    for instance in instances:
        if instance.instance_id == wanted:
            return instance
    return instances[0] if instances else None


async def aliases_of(console: Console, key_id: str) -> list[str]:
    listed = await console.call("ListAliasesByKeyId", {"KeyId": key_id, "PageSize": "100"})
    return [str(alias["AliasName"]) for alias in listed["Aliases"]["Alias"]]


# --- the Customer Master Keys tab ----------------------------------------------------------------


async def key_list(console: Console) -> Response:
    return await _render_list(console, console.request.query_params)


async def _render_list(
    console: Console, query: Mapping[str, str], wire: WireError | None = None, status: int = 200
) -> Response:
    instances = await instances_of(console)
    instance = chosen_instance(instances, query.get("instance"))
    chosen = {name: query.get(name, "").strip()[:256] for name in LIST_QUERY}
    page_number = _page(chosen["page"])
    rows: list[dict[str, object]] = []
    total = 0
    if instance is not None:
        filters = _filters(instance.instance_id, chosen)
        listed = await console.call(
            "ListKeys",
            {"PageNumber": str(page_number), "PageSize": str(PAGE_SIZE), "Filters": json.dumps(filters)},
        )
        total = int(listed["TotalCount"])
        for entry in listed["Keys"]["Key"]:
            described = (await console.call("DescribeKey", {"KeyId": entry["KeyId"]}))["KeyMetadata"]
            rows.append({**described, "Aliases": await aliases_of(console, str(entry["KeyId"]))})
    kept = {name: value for name, value in chosen.items() if value and name != "page"}
    if instance is not None:
        kept["instance"] = instance.instance_id
    return console.render(
        "keys/list.html",
        status=status,
        section="keys",
        keys=rows,
        instances=instances,
        instance=instance,
        chosen=chosen,
        states=STATES,
        specs=SPECS,
        page_number=page_number,
        page_size=PAGE_SIZE,
        total=total,
        paging_query="&" + urlencode(kept) if kept else "",
        back=urlencode({**kept, "page": str(page_number)}),
        wire=wire,
    )


def _filters(instance_id: str, chosen: Mapping[str, str]) -> list[dict[str, object]]:
    """ListKeys Filters for the page's choices: the instance, state, spec, tag and the search, which
    is a key id (`key-...`) or an alias (with or without `alias/`)."""
    filters: list[dict[str, object]] = [{"Key": "DKMSInstanceId", "Values": [instance_id]}]
    for name, key in (
        ("state", "KeyState"),
        ("spec", "KeySpec"),
        ("tag_key", "TagKey"),
        ("tag_value", "TagValue"),
    ):
        if chosen[name]:
            filters.append({"Key": key, "Values": [chosen[name]]})
    search = chosen["q"]
    if search.startswith("key-") or search.startswith("acs:kms:"):
        filters.append({"Key": "keyId", "Values": [search.rpartition("/")[2]]})
    elif search:
        filters.append(
            {"Key": "AliasName", "Values": [search if search.startswith("alias/") else f"alias/{search}"]}
        )
    return filters


def _page(value: str | None) -> int:
    return int(value) if value and value.isascii() and value.isdigit() and 0 < int(value) < 1_000_000 else 1


# --- row actions -------------------------------------------------------------------------------


async def enable(console: Console) -> Response:
    return await _act(console, "EnableKey", "notice.keys.enabled")


async def disable(console: Console) -> Response:
    return await _act(console, "DisableKey", "notice.keys.disabled")


async def schedule_deletion(console: Console) -> Response:
    form = await console.request.form()
    days = _text(form, "PendingWindowInDays").strip()
    return await _act(
        console, "ScheduleKeyDeletion", "notice.keys.deletion_scheduled", PendingWindowInDays=days
    )


async def cancel_deletion(console: Console) -> Response:
    return await _act(console, "CancelKeyDeletion", "notice.keys.deletion_cancelled")


async def _act(console: Console, action: str, notice: str, **params: str) -> Response:
    """Run one row action on the key in the path; back to the list the form was on, or that list
    with the refusal in place (and the API's status)."""
    form = await console.request.form()
    back = _back(_text(form, "back"))
    key_id = console.request.path_params["key_id"]
    try:
        await console.call(action, {"KeyId": key_id, **params})
    except ActionFailed as failed:
        return await _render_list(console, back, failed.wire, failed.wire.status)
    return console.redirect("/keys", notice=notice, **back)


def _back(query: str) -> dict[str, str]:
    return {name: value[:256] for name, value in parse_qsl(query[:2048]) if name in LIST_QUERY}


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


# --- the Default Keys tab ----------------------------------------------------------------------


async def default_keys(console: Console) -> Response:
    return await _render_default(console)


async def _render_default(
    console: Console,
    *,
    wire: WireError | None = None,
    error: str | None = None,
    form: Mapping[str, str] | None = None,
    status: int = 200,
) -> Response:
    services = console.state.services

    def listing(ctx: RequestContext) -> Outcome[tuple[list[Key], int]]:
        return services.keys.list_keys(ctx, KeyFilter(default_keys_only=True), 1, 100)

    found, _ = await console.run("console:ListDefaultKeys", listing)
    master = None
    service_keys = []
    for key in found:
        # What is shown of a key is what DescribeKey answers the caller (ListKeys grants only ids).
        described = await console.call("DescribeKey", {"KeyId": key.key_id})
        row = {"key": described["KeyMetadata"], "aliases": await aliases_of(console, key.key_id)}
        if key.creator_type is CreatorType.SERVICE:
            service_keys.append(row)
        else:
            master = row
    return console.render(
        "keys/default.html",
        status=status,
        section="keys",
        master=master,
        service_keys=service_keys,
        wire=wire,
        error=error,
        form=form or {"origin": Origin.ALIYUN_KMS.value},
    )


async def enable_default(console: Console) -> Response:
    """Enable the region's customer master key (F1.1): CreateKey without an instance, then its alias.
    External material needs the acknowledgement ticked."""
    form = await console.request.form()
    given = {
        "alias": _text(form, "alias").strip(),
        "description": _text(form, "description"),
        "origin": _text(form, "origin") or Origin.ALIYUN_KMS.value,
        "ack": _text(form, "external_ack"),
    }
    if given["origin"] == Origin.EXTERNAL.value and not given["ack"]:
        return await _render_default(console, error="keys.error_external_ack", form=given, status=400)
    refused = alias_refusal(given["alias"])
    if refused is not None:
        return await _render_default(console, wire=refused, form=given, status=refused.status)
    try:
        made = await console.call(
            "CreateKey", {"Description": given["description"] or None, "Origin": given["origin"]}
        )
    except ActionFailed as failed:
        return await _render_default(console, wire=failed.wire, form=given, status=failed.wire.status)
    key_id = str(made["KeyMetadata"]["KeyId"])
    if given["alias"]:
        try:
            await console.call("CreateAlias", {"KeyId": key_id, "AliasName": alias_name(given["alias"])})
        except ActionFailed as failed:
            return await _render_default(
                console, wire=failed.wire, error="keys.error_alias_after_create", status=failed.wire.status
            )
    return console.redirect("/keys/default", notice="notice.keys.default_enabled")


def alias_name(typed: str) -> str:
    return typed if typed.startswith("alias/") else f"alias/{typed}"


def alias_refusal(typed: str) -> WireError | None:
    """CreateAlias's answer to a name it would refuse, known before the key is made (so a typo in
    the alias does not leave a key without one); None when the name is fine or empty."""
    if not typed:
        return None
    name = alias_name(typed)
    try:
        check_alias_name(name)
        if is_service_alias(name):
            raise errors.UnsupportedOperation("Aliases under alias/acs/ are reserved for service keys.")
    except errors.OpenKMSError as exc:
        return to_wire(exc)
    return None


ROUTES: list[BaseRoute] = [
    Route("/keys", page(key_list), methods=["GET"]),
    Route("/keys/default", page(default_keys), methods=["GET"]),
    Route("/keys/default", page(enable_default), methods=["POST"]),
    Route("/keys/{key_id}/enable", page(enable), methods=["POST"]),
    Route("/keys/{key_id}/disable", page(disable), methods=["POST"]),
    Route("/keys/{key_id}/schedule-deletion", page(schedule_deletion), methods=["POST"]),
    Route("/keys/{key_id}/cancel-deletion", page(cancel_deletion), methods=["POST"]),
]
