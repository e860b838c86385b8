"""Console pages: Secrets (issue 19). The secret list with a name search and paging, Create Secret, a
secret's details (its metadata, versions and their stages, tags and secret policy), its value behind an
explicit reveal step, a new version, moving a stage, scheduling deletion (with a recovery window, or
forced after the name is typed again) and restoring.

Everything is an action of the API run through `Console.call`, so the pages get the API's
authorization, validation, codes and audit records: the value is read only by the reveal step's
GetSecretValue, answered on a page of its own (never part of the details page; every console answer
is `no-store`). A refusal is shown in the section its form belongs to, with the API's status, and
changes nothing. Never reads the database, never decides what the API decides.
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
from openkms.console.view import ActionFailed, Answer, Console

PAGE_SIZE = 10
VERSIONS_PAGE_SIZE = 100
DATA_TYPES = ("text", "binary")
CURRENT, PREVIOUS = "ACSCurrent", "ACSPrevious"
_VALUE_LIMIT = 65536  # above SecretData's 30,720-byte limit, so the API is the one that refuses
_FIELD_LIMIT = 4096


@dataclass(slots=True)
class Shown:
    """What a render of the details page adds: a refusal in the section it belongs to, with the
    values typed (never a secret value), and the status to answer with."""

    section: str = ""
    wire: WireError | None = None
    form: dict[str, str] = field(default_factory=dict)
    status: int = 200


def secret_url(name: str) -> str:
    """The details page of a secret (its name, which may hold `/`, in the query)."""
    return f"/secrets/details?{urlencode({'name': name})}"


def _text(form: FormData, name: str, limit: int = _FIELD_LIMIT) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _page(value: str | None) -> int:
    return int(value) if value and value.isascii() and value.isdigit() and 0 < int(value) < 1_000_000 else 1


def _name_of(console: Console, form: FormData | None = None) -> str:
    given = console.request.query_params.get("name", "") if form is None else _text(form, "name")
    return given[:256]


async def _attempt(
    console: Console, action: str, params: Mapping[str, str | None]
) -> tuple[Answer, WireError | None]:
    """A read the page can live without (a user may see a secret but not its policy)."""
    try:
        return await console.call(action, params), None
    except ActionFailed as failed:
        return {}, failed.wire


# --- the list -------------------------------------------------------------------------------------


async def secret_list(console: Console) -> Response:
    query = console.request.query_params
    search = query.get("q", "").strip()[:192]
    page_number = _page(query.get("page"))
    params: dict[str, str | None] = {
        "PageNumber": str(page_number),
        "PageSize": str(PAGE_SIZE),
        "FetchTags": "true",
        "Filters": json.dumps([{"Key": "SecretName", "Values": [search]}]) if search else None,
    }
    listed, wire = await _attempt(console, "ListSecrets", params)
    rows = [
        {**row, "TagList": list(row.get("Tags", {}).get("Tag", []))}
        for row in (listed.get("SecretList", {}).get("Secret", []) if listed else [])
    ]
    return console.render(
        "secrets/list.html",
        status=wire.status if wire else 200,
        section="secrets",
        secrets=rows,
        search=search,
        page_number=page_number,
        page_size=PAGE_SIZE,
        total=int(listed.get("TotalCount", 0)) if listed else 0,
        paging_query="&" + urlencode({"q": search}) if search else "",
        wire=wire,
        secret_url=secret_url,
    )


# --- Create Secret ------------------------------------------------------------------------------


async def usable_keys(console: Console) -> list[dict[str, str]]:
    """The enabled symmetric keys the caller can see, to offer as a secret's encryption key (F2.1:
    only a symmetric key may encrypt secret values; the API checks it again)."""
    listed, wire = await _attempt(console, "ListKeys", {"PageSize": "100"})
    found = []
    for entry in listed.get("Keys", {}).get("Key", []) if wire is None else []:
        described, refused = await _attempt(console, "DescribeKey", {"KeyId": str(entry["KeyId"])})
        key = described.get("KeyMetadata", {})
        if refused is None and key.get("KeyState") == "Enabled" and is_symmetric(str(key.get("KeySpec"))):
            found.append({"KeyId": str(key["KeyId"]), "Description": str(key.get("Description", ""))})
    return found


async def create_form(console: Console) -> Response:
    return await _render_create(console, {"data_type": "text", "version_id": "v1"})


async def _render_create(
    console: Console, form: Mapping[str, str], wire: WireError | None = None, status: int = 200
) -> Response:
    return console.render(
        "secrets/create.html",
        status=status,
        section="secrets",
        form=form,
        keys=await usable_keys(console),
        data_types=DATA_TYPES,
        wire=wire,
    )


async def create(console: Console) -> Response:
    form = await console.request.form()
    given = {
        name: _text(form, name)
        for name in ("SecretName", "VersionId", "EncryptionKeyId", "Description", "data_type")
    }
    data_type = given["data_type"] if given["data_type"] in DATA_TYPES else "text"
    params: dict[str, str | None] = {
        "SecretName": given["SecretName"].strip(),
        "VersionId": given["VersionId"].strip(),
        "SecretData": _text(form, "SecretData", _VALUE_LIMIT),
        "SecretDataType": data_type,
        "EncryptionKeyId": given["EncryptionKeyId"].strip() or None,
        "Description": given["Description"] or None,
    }
    try:
        await console.call("CreateSecret", params)
    except ActionFailed as failed:
        # The form comes back with what was typed, except the value, which is never echoed.
        return await _render_create(console, given, failed.wire, failed.wire.status)
    return console.redirect(
        "/secrets/details", notice="notice.secret.created", name=params["SecretName"] or ""
    )


# --- a secret's details ---------------------------------------------------------------------------


async def details(console: Console) -> Response:
    return await _render_details(console, _name_of(console), Shown())


async def _render_details(console: Console, name: str, shown: Shown) -> Response:
    described = await console.call("DescribeSecret", {"SecretName": name, "FetchTags": "true"})
    versions, versions_wire = await _attempt(
        console,
        "ListSecretVersionIds",
        {"SecretName": name, "IncludeDeprecated": "true", "PageSize": str(VERSIONS_PAGE_SIZE)},
    )
    policy, policy_wire = await _attempt(console, "GetSecretPolicy", {"SecretName": name})
    version_rows = [
        {
            "VersionId": str(version["VersionId"]),
            "CreateTime": str(version.get("CreateTime", "")),
            "Stages": list(version.get("VersionStages", {}).get("VersionStage", [])),
        }
        for version in versions.get("VersionIds", {}).get("VersionId", [])
    ]
    return console.render(
        "secrets/details.html",
        status=shown.status,
        section="secrets",
        secret=described,
        name=str(described["SecretName"]),
        tags=list(described.get("Tags", {}).get("Tag", [])),
        versions=version_rows,
        versions_wire=versions_wire,
        policy=str(policy.get("Policy", "")),
        policy_wire=policy_wire,
        shown=shown,
        data_types=DATA_TYPES,
        secret_url=secret_url,
    )


async def _act(
    console: Console,
    section: str,
    action: str,
    params: dict[str, str | None],
    notice: str,
    form: dict[str, str] | None = None,
) -> Response:
    """Run one action of a details-page form; back to the details with a notice, or the details with
    the refusal in the form's section (and the API's status)."""
    name = str(params["SecretName"])
    try:
        await console.call(action, params)
    except ActionFailed as failed:
        return await _render_details(
            console, name, Shown(section, failed.wire, form or {}, failed.wire.status)
        )
    return console.redirect("/secrets/details", notice=notice, name=name)


async def put_value(console: Console) -> Response:
    """PutSecretValue: a new version, ACSCurrent unless other stages are named (the previous current
    version becomes ACSPrevious, as the API moves it)."""
    form = await console.request.form()
    typed = {name: _text(form, name).strip() for name in ("VersionId", "VersionStages", "data_type")}
    stages = [
        stage.strip() for stage in typed["VersionStages"].replace(",", "\n").splitlines() if stage.strip()
    ]
    params: dict[str, str | None] = {
        "SecretName": _name_of(console, form),
        "VersionId": typed["VersionId"],
        "SecretData": _text(form, "SecretData", _VALUE_LIMIT),
        "SecretDataType": typed["data_type"] if typed["data_type"] in DATA_TYPES else "text",
        "VersionStages": json.dumps(stages) if stages else None,
    }
    return await _act(console, "versions", "PutSecretValue", params, "notice.secret.version_added", typed)


async def move_stage(console: Console) -> Response:
    """UpdateSecretVersionStage: move a stage to a version (and off the one that has it)."""
    form = await console.request.form()
    typed = {
        name: _text(form, name).strip() for name in ("VersionStage", "MoveToVersion", "RemoveFromVersion")
    }
    params: dict[str, str | None] = {
        "SecretName": _name_of(console, form),
        "VersionStage": typed["VersionStage"],
        "MoveToVersion": typed["MoveToVersion"] or None,
        "RemoveFromVersion": typed["RemoveFromVersion"] or None,
    }
    return await _act(
        console, "stages", "UpdateSecretVersionStage", params, "notice.secret.stage_moved", typed
    )


async def set_policy(console: Console) -> Response:
    form = await console.request.form()
    typed = {"policy": _text(form, "policy", 32768)}
    params: dict[str, str | None] = {"SecretName": _name_of(console, form), "Policy": typed["policy"]}
    return await _act(console, "policy", "SetSecretPolicy", params, "notice.secret.policy_saved", typed)


async def schedule_deletion(console: Console) -> Response:
    """DeleteSecret with a recovery window, or forced; a forced deletion needs the name typed again
    (checked here, before the API is asked, since it cannot be undone)."""
    form = await console.request.form()
    name = _name_of(console, form)
    typed = {name: _text(form, name).strip() for name in ("mode", "RecoveryWindowInDays")}
    typed["confirm_name"] = _text(form, "confirm_name", 256)
    if typed["mode"] == "force":
        if typed["confirm_name"] != name:
            wire = WireError(400, "InvalidParameter", console.t("sec.force_confirm_mismatch"))
            return await _render_details(console, name, Shown("deletion", wire, typed, 400))
        params: dict[str, str | None] = {"SecretName": name, "ForceDeleteWithoutRecovery": "true"}
        try:
            await console.call("DeleteSecret", params)
        except ActionFailed as failed:
            return await _render_details(
                console, name, Shown("deletion", failed.wire, typed, failed.wire.status)
            )
        return console.redirect("/secrets", notice="notice.secret.deleted")
    params = {"SecretName": name, "RecoveryWindowInDays": typed["RecoveryWindowInDays"] or None}
    return await _act(console, "deletion", "DeleteSecret", params, "notice.secret.deletion_scheduled", typed)


async def restore(console: Console) -> Response:
    form = await console.request.form()
    params: dict[str, str | None] = {"SecretName": _name_of(console, form)}
    return await _act(console, "deletion", "RestoreSecret", params, "notice.secret.restored")


# --- the reveal step ------------------------------------------------------------------------------


async def reveal(console: Console) -> Response:
    """GetSecretValue of one version (by id) or stage, after the dialog's confirmation: the only
    console answer that carries a secret value, on a page of its own, recorded in the audit log as
    GetSecretValue by the signed-in principal."""
    form = await console.request.form()
    name = _name_of(console, form)
    chosen = _text(form, "version", 128)
    kind, _, value = chosen.partition(":")
    params: dict[str, str | None] = {"SecretName": name}
    if kind == "id" and value:
        params["VersionId"] = value
    else:
        params["VersionStage"] = value if kind == "stage" and value else CURRENT
    try:
        found = await console.call("GetSecretValue", params)
    except ActionFailed as failed:
        return await _render_details(console, name, Shown("reveal", failed.wire, {}, failed.wire.status))
    return console.render(
        "secrets/value.html",
        section="secrets",
        name=name,
        found=found,
        stages=list(found.get("VersionStages", {}).get("VersionStage", [])),
        data_types=DATA_TYPES,
        secret_url=secret_url,
    )


ROUTES: list[BaseRoute] = [
    Route("/secrets", page(secret_list), methods=["GET"]),
    Route("/secrets/create", page(create_form), methods=["GET"]),
    Route("/secrets/create", page(create), methods=["POST"]),
    Route("/secrets/details", page(details), methods=["GET"]),
    Route("/secrets/value", page(reveal), methods=["POST"]),
    Route("/secrets/versions", page(put_value), methods=["POST"]),
    Route("/secrets/stages", page(move_stage), methods=["POST"]),
    Route("/secrets/policy", page(set_policy), methods=["POST"]),
    Route("/secrets/deletion", page(schedule_deletion), methods=["POST"]),
    Route("/secrets/restore", page(restore), methods=["POST"]),
]
