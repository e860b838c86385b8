"""Console pages: Resource > Secrets (issue 19), the list and Create Secret. The list is the region's
secrets (an instance's, when one is chosen) with a name search and paging, each row as DescribeSecret
answers it; Create Secret takes a text or base64 value, the first version's id, one of the caller's
enabled symmetric keys, a description and tags. A secret's own page is `pages/secret_details.py`.

Everything is an action of the API run through `Console.call`, so the pages get the API's
authorization, validation, codes and audit records. A value typed into a refused form is never echoed
back. Never reads the database, never decides what the API decides.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from openkms.api.wire_errors import WireError
from openkms.console.auth import page
from openkms.console.pages.key_details import is_symmetric
from openkms.console.pages.keys import Instance, instances_of
from openkms.console.pages.secret_forms import (
    MAX_TAGS,
    list_filters,
    page_number,
    secret_url,
    tags_of,
    tags_param,
)
from openkms.console.view import ActionFailed, Answer, Console
from openkms.domain.specs import SPEC_RULES
from openkms.types import KeyState

PAGE_SIZE = 10
KEYS_PAGE_SIZE = 100
KEYS_PAGES = 10  # the key select offers at most the first thousand keys the caller may see
# ListKeys narrows the list to enabled symmetric keys; DescribeKey then confirms each one.
USABLE_KEY_FILTERS = json.dumps(
    [
        {"Key": "KeyState", "Values": [KeyState.ENABLED.value]},
        {"Key": "KeySpec", "Values": [rule.spec.value for rule in SPEC_RULES.values() if rule.symmetric]},
    ]
)
FIRST_TAG_ROWS = 1
DATA_TYPES = ("text", "binary")
VALUE_LIMIT = 65536  # above SecretData's 30,720-byte limit, so the API is the one that refuses
FIELD_LIMIT = 4096


def text_of(form: FormData, name: str, limit: int = FIELD_LIMIT) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


async def attempt(
    console: Console, action: str, params: Mapping[str, str | None]
) -> tuple[Answer, WireError | None]:
    """A read the page can live without (a user may list secrets but not describe them)."""
    try:
        return await console.call(action, params), None
    except ActionFailed as failed:
        return {}, failed.wire


async def visible_instances(console: Console) -> list[Instance]:
    """The instances to scope the list by; none when the caller may not list them (the list then
    shows every secret of the region)."""
    try:
        return await instances_of(console)
    except ActionFailed:
        return []


# --- the list -------------------------------------------------------------------------------------


async def secret_list(console: Console) -> Response:
    query = console.request.query_params
    search = query.get("q", "").strip()[:192]
    instances = await visible_instances(console)
    wanted = query.get("instance", "")
    instance_id = wanted if any(one.instance_id == wanted for one in instances) else ""
    number = page_number(query.get("page"))
    params: dict[str, str | None] = {
        "PageNumber": str(number),
        "PageSize": str(PAGE_SIZE),
        "Filters": list_filters(search, instance_id),
    }
    listed, wire = await attempt(console, "ListSecrets", params)
    rows = []
    for entry in listed.get("SecretList", {}).get("Secret", []):
        # ListSecrets answers no key, description or instance: DescribeSecret does, if allowed.
        described, _ = await attempt(console, "DescribeSecret", {"SecretName": str(entry["SecretName"])})
        rows.append({**entry, **described})
    kept = {name: value for name, value in (("q", search), ("instance", instance_id)) if value}
    return console.render(
        "secrets/list.html",
        status=wire.status if wire else 200,
        section="secrets",
        secrets=rows,
        search=search,
        instances=instances,
        instance_id=instance_id,
        page_number=number,
        page_size=PAGE_SIZE,
        total=int(listed.get("TotalCount", 0)) if listed else 0,
        paging_query="&" + urlencode(kept) if kept else "",
        wire=wire,
        secret_url=secret_url,
    )


# --- Create Secret ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UsableKey:
    key_id: str
    instance_id: str
    description: str


async def usable_keys(console: Console) -> list[UsableKey]:
    """The enabled symmetric keys the caller can see, to offer as a secret's encryption key (F2.1:
    only a symmetric key may encrypt secret values; the API checks it again)."""
    found = []
    for number in range(1, KEYS_PAGES + 1):
        listed, wire = await attempt(
            console,
            "ListKeys",
            {"PageNumber": str(number), "PageSize": str(KEYS_PAGE_SIZE), "Filters": USABLE_KEY_FILTERS},
        )
        entries = listed.get("Keys", {}).get("Key", []) if wire is None else []
        for entry in entries:
            described, refused = await attempt(console, "DescribeKey", {"KeyId": str(entry["KeyId"])})
            key = described.get("KeyMetadata", {})
            if refused is None and key.get("KeyState") == "Enabled" and is_symmetric(str(key.get("KeySpec"))):
                found.append(
                    UsableKey(
                        str(key["KeyId"]), str(key.get("DKMSInstanceId", "")), str(key.get("Description", ""))
                    )
                )
        if len(entries) < KEYS_PAGE_SIZE:
            break
    return found


@dataclass(slots=True)
class Typed:
    """What the Create Secret form holds, to show it again when the API refuses it (never the value)."""

    fields: dict[str, str] = field(default_factory=lambda: {"data_type": "text", "VersionId": "v1"})
    tags: list[tuple[str, str]] = field(default_factory=list)


async def create_form(console: Console) -> Response:
    return await _render_create(console, Typed())


async def _render_create(
    console: Console, typed: Typed, wire: WireError | None = None, status: int = 200
) -> Response:
    tags = typed.tags + [("", "")] * max(FIRST_TAG_ROWS - len(typed.tags), 0)
    return console.render(
        "secrets/create.html",
        status=status,
        section="secrets",
        form=typed.fields,
        tags=tags[:MAX_TAGS],
        max_tags=MAX_TAGS,
        keys=await usable_keys(console),
        data_types=DATA_TYPES,
        wire=wire,
    )


async def create(console: Console) -> Response:
    form = await console.request.form()
    given = {
        name: text_of(form, name)
        for name in ("SecretName", "VersionId", "EncryptionKeyId", "Description", "data_type")
    }
    tags = tags_of(
        [value for value in form.getlist("tag_key") if isinstance(value, str)],
        [value for value in form.getlist("tag_value") if isinstance(value, str)],
    )
    params: dict[str, str | None] = {
        "SecretName": given["SecretName"].strip(),
        "VersionId": given["VersionId"].strip(),
        "SecretData": text_of(form, "SecretData", VALUE_LIMIT),
        "SecretDataType": given["data_type"] if given["data_type"] in DATA_TYPES else "text",
        "EncryptionKeyId": given["EncryptionKeyId"].strip() or None,
        "Description": given["Description"] or None,
        "Tags": tags_param(tags),
    }
    try:
        await console.call("CreateSecret", params)
    except ActionFailed as failed:
        return await _render_create(console, Typed(given, tags), failed.wire, failed.wire.status)
    return console.redirect(
        "/secrets/details", notice="notice.secret.created", name=params["SecretName"] or ""
    )


ROUTES: list[BaseRoute] = [
    Route("/secrets", page(secret_list), methods=["GET"]),
    Route("/secrets/create", page(create_form), methods=["GET"]),
    Route("/secrets/create", page(create), methods=["POST"]),
]
