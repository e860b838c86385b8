"""Console pages: a secret's details (issue 19): its metadata, rotation settings, tags, versions and
their stages, and secret policy; storing a new version, moving a stage, the rotation policy of a
managed secret, scheduling deletion (with a recovery window, or forced after the name is typed
again), restoring, and the value behind an explicit reveal step.

Everything is an action of the API run through `Console.call`. The value is read only by the reveal
step's GetSecretValue, answered on a page of its own: never part of the details page, never echoed
back from a refused form (every console answer is `no-store`). A refusal is shown in the section its
form belongs to, with the API's status, and changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from openkms.api.wire_errors import WireError
from openkms.console.auth import page
from openkms.console.pages.secret_forms import (
    CURRENT,
    PREVIOUS,
    is_managed,
    rotation_rows,
    secret_url,
    stages_of,
    value_request,
)
from openkms.console.pages.secrets import DATA_TYPES, VALUE_LIMIT, attempt, text_of
from openkms.console.view import ActionFailed, Console

VERSIONS_PAGE_SIZE = 100
POLICY_LIMIT = 32768


@dataclass(slots=True)
class Shown:
    """What a render of the details page adds: a refusal in the section it belongs to, with the
    values typed (never a secret value), and the status to answer with."""

    section: str = ""
    wire: WireError | None = None
    form: dict[str, str] = field(default_factory=dict)
    status: int = 200


async def _name_of(console: Console) -> str:
    if console.request.method == "GET":
        return console.request.query_params.get("name", "")[:256]
    return text_of(await console.request.form(), "name", 256)


async def details(console: Console) -> Response:
    return await _render_details(console, await _name_of(console), Shown())


async def _render_details(console: Console, name: str, shown: Shown) -> Response:
    described = await console.call("DescribeSecret", {"SecretName": name, "FetchTags": "true"})
    versions, versions_wire = await attempt(
        console,
        "ListSecretVersionIds",
        {"SecretName": name, "IncludeDeprecated": "true", "PageSize": str(VERSIONS_PAGE_SIZE)},
    )
    policy, policy_wire = await attempt(console, "GetSecretPolicy", {"SecretName": name})
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
        rotation=rotation_rows(described),
        managed=is_managed(described.get("SecretType")),
        versions=version_rows,
        versions_wire=versions_wire,
        fixed_stages=(CURRENT, PREVIOUS),
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
    typed = {field: text_of(form, field).strip() for field in ("VersionId", "VersionStages", "data_type")}
    stages = stages_of(typed["VersionStages"])
    params: dict[str, str | None] = {
        "SecretName": await _name_of(console),
        "VersionId": typed["VersionId"],
        "SecretData": text_of(form, "SecretData", VALUE_LIMIT),
        "SecretDataType": typed["data_type"] if typed["data_type"] in DATA_TYPES else "text",
        "VersionStages": json.dumps(stages) if stages else None,
    }
    return await _act(console, "versions", "PutSecretValue", params, "notice.secret.version_added", typed)


async def move_stage(console: Console) -> Response:
    """UpdateSecretVersionStage: move a stage to a version (and off the one that has it)."""
    form = await console.request.form()
    typed = {
        field: text_of(form, field).strip()
        for field in ("VersionStage", "MoveToVersion", "RemoveFromVersion")
    }
    params: dict[str, str | None] = {
        "SecretName": await _name_of(console),
        "VersionStage": typed["VersionStage"],
        "MoveToVersion": typed["MoveToVersion"] or None,
        "RemoveFromVersion": typed["RemoveFromVersion"] or None,
    }
    return await _act(
        console, "stages", "UpdateSecretVersionStage", params, "notice.secret.stage_moved", typed
    )


async def set_policy(console: Console) -> Response:
    form = await console.request.form()
    typed = {"policy": text_of(form, "policy", POLICY_LIMIT)}
    params: dict[str, str | None] = {"SecretName": await _name_of(console), "Policy": typed["policy"]}
    return await _act(console, "policy", "SetSecretPolicy", params, "notice.secret.policy_saved", typed)


async def set_rotation(console: Console) -> Response:
    """UpdateSecretRotationPolicy of a managed secret (the API refuses it for a generic one)."""
    form = await console.request.form()
    typed = {"enabled": "true" if text_of(form, "enabled") else "", "interval": text_of(form, "interval")}
    params: dict[str, str | None] = {
        "SecretName": await _name_of(console),
        "EnableAutomaticRotation": "true" if typed["enabled"] else "false",
        "RotationInterval": typed["interval"].strip() or None,
    }
    return await _act(
        console, "rotation", "UpdateSecretRotationPolicy", params, "notice.secret.rotation_saved", typed
    )


async def schedule_deletion(console: Console) -> Response:
    """DeleteSecret with a recovery window, or forced; a forced deletion needs the name typed again
    (checked here, before the API is asked, since it cannot be undone)."""
    form = await console.request.form()
    name = await _name_of(console)
    typed = {field: text_of(form, field).strip() for field in ("mode", "RecoveryWindowInDays")}
    typed["confirm_name"] = text_of(form, "confirm_name", 256)
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
    params: dict[str, str | None] = {"SecretName": await _name_of(console)}
    return await _act(console, "deletion", "RestoreSecret", params, "notice.secret.restored")


async def reveal(console: Console) -> Response:
    """GetSecretValue of one version (by id) or stage, after the dialog's confirmation: the only
    console answer that carries a secret value, on a page of its own, recorded in the audit log as
    GetSecretValue by the signed-in principal."""
    form = await console.request.form()
    name = await _name_of(console)
    params: dict[str, str | None] = {"SecretName": name, **value_request(text_of(form, "version", 128))}
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
    Route("/secrets/details", page(details), methods=["GET"]),
    Route("/secrets/value", page(reveal), methods=["POST"]),
    Route("/secrets/versions", page(put_value), methods=["POST"]),
    Route("/secrets/stages", page(move_stage), methods=["POST"]),
    Route("/secrets/policy", page(set_policy), methods=["POST"]),
    Route("/secrets/rotation", page(set_rotation), methods=["POST"]),
    Route("/secrets/deletion", page(schedule_deletion), methods=["POST"]),
    Route("/secrets/restore", page(restore), methods=["POST"]),
]
