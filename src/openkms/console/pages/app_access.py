"""Console pages: Resource > Application Access (issue 18): the application access points of the
account and region with their policies and client keys, a quick Create Application Access Point that
makes a network rule, a permission policy and the access point (as `openkms aap create` does), and a
client key for an access point, answered as the client key file the instance SDKs load
(`clientKey_<KeyId>.json`); deleting access points and client keys.

The client key's password is the user's (typed twice, never stored, never shown back): the private key
leaves OpenKMS once, inside that file, as the answer to the form that made it. Everything is an action
of the API run through `Console.call` (authorized, validated and audited as the API does them); if a
step of the quick create is refused, the steps already done are undone, so nothing half-made stays.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import FormData
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from openkms.api.wire_errors import WireError
from openkms.console.auth import page
from openkms.console.pages.key_details_tabs import download
from openkms.console.pages.keys import instances_of
from openkms.console.view import ActionFailed, Console
from openkms.domain.access_points import InstancePermission

# (form field, permission template): the domain's InstancePermission values.
PERMISSIONS = (
    ("key_user", InstancePermission.KEY_USER.value),
    ("secret_user", InstancePermission.SECRET_USER.value),
)
_LISTED = "100"


def _text(form: FormData, name: str, limit: int = 2048) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _items(text: str) -> list[str]:
    """Comma- or newline-separated entries, trimmed, empty ones dropped."""
    return [item.strip() for item in text.replace("\n", ",").split(",") if item.strip()]


async def app_access(console: Console) -> Response:
    return await _render(console, {"resources": "key/*", "key_user": "on"})


async def _render(
    console: Console,
    form: Mapping[str, str],
    wire: WireError | None = None,
    status: int = 200,
    section: str = "",
) -> Response:
    listed = await console.call("ListApplicationAccessPoints", {"PageSize": _LISTED})
    points: list[dict[str, Any]] = []
    for entry in listed.get("ApplicationAccessPoints", {}).get("ApplicationAccessPoint", []):
        name = str(entry["Name"])
        described = await console.call("DescribeApplicationAccessPoint", {"Name": name})
        keys = await console.call("ListClientKeys", {"AapName": name})
        points.append(
            {
                "name": name,
                "policies": _policy_names(described.get("Policies", "[]")),
                "description": described.get("Description", ""),
                "client_keys": list(keys.get("ClientKeys", [])),
            }
        )
    return console.render(
        "app_access/list.html",
        status=status,
        section="app_access",
        points=points,
        instances=await instances_of(console),
        form=form,
        wire=wire,
        section_error=section,
    )


def _policy_names(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(item) for item in value]
    try:
        parsed = json.loads(str(value))
    except ValueError:
        return []
    return [str(item) for item in parsed] if isinstance(parsed, list) else []


def _client_key_file(answer: Mapping[str, Any]) -> Response:
    key_id = str(answer["ClientKeyId"])
    body = json.dumps({"KeyId": key_id, "PrivateKeyData": answer["PrivateKeyData"]})
    return download(body, f"clientKey_{key_id}.json", "application/json")


def _password(form: FormData) -> tuple[str, str | None]:
    """The typed password, or the term of what is wrong with it (the API checks its rules)."""
    password = _text(form, "password", 128)
    if password != _text(form, "password_again", 128):
        return password, "aap.password_mismatch"
    return password, None


async def create(console: Console) -> Response:
    """Network rule `<name>-network`, policy `<name>-policy`, access point `<name>`, then a client
    key, answered as its file. A refusal undoes the steps already done, in reverse."""
    form = await console.request.form()
    typed = {name: _text(form, name).strip() for name in ("name", "instance", "sources", "resources")}
    typed.update({field: _text(form, field) for field, _ in PERMISSIONS})
    password, problem = _password(form)
    if problem is not None:
        return await _render(
            console, typed, WireError(400, "InvalidParameter", console.t(problem)), 400, "create"
        )
    name = typed["name"]
    permissions = [template for field, template in PERMISSIONS if typed[field]]
    steps: list[tuple[str, dict[str, str | None], tuple[str, dict[str, str | None]]]] = [
        (
            "CreateNetworkRule",
            {
                "Name": f"{name}-network",
                "Type": "Private",
                "SourcePrivateIp": json.dumps(_items(typed["sources"])),
            },
            ("DeleteNetworkRule", {"Name": f"{name}-network"}),
        ),
        (
            "CreatePolicy",
            {
                "Name": f"{name}-policy",
                "KmsInstance": typed["instance"],
                "Permissions": json.dumps(permissions),
                "Resources": json.dumps(_items(typed["resources"])),
                "AccessControlRules": json.dumps({"NetworkRules": [f"{name}-network"]}),
            },
            ("DeletePolicy", {"Name": f"{name}-policy"}),
        ),
        (
            "CreateApplicationAccessPoint",
            {"Name": name, "Policies": json.dumps([f"{name}-policy"])},
            ("DeleteApplicationAccessPoint", {"Name": name}),
        ),
    ]
    done: list[tuple[str, dict[str, str | None]]] = []
    try:
        for action, params, undo in steps:
            await console.call(action, params)
            done.append(undo)
        answer = await console.call("CreateClientKey", {"AapName": name, "Password": password})
    except ActionFailed as failed:
        for action, params in reversed(done):
            try:
                await console.call(action, params)
            except ActionFailed:  # shown as is: the user sees what stayed in the list
                break
        return await _render(console, typed, failed.wire, failed.wire.status, "create")
    return _client_key_file(answer)


async def new_client_key(console: Console) -> Response:
    form = await console.request.form()
    name = _text(form, "name", 256)
    password, problem = _password(form)
    if problem is not None:
        return await _render(console, {}, WireError(400, "InvalidParameter", console.t(problem)), 400, name)
    try:
        answer = await console.call("CreateClientKey", {"AapName": name, "Password": password})
    except ActionFailed as failed:
        return await _render(console, {}, failed.wire, failed.wire.status, name)
    return _client_key_file(answer)


async def delete_client_key(console: Console) -> Response:
    form = await console.request.form()
    try:
        await console.call("DeleteClientKey", {"ClientKeyId": _text(form, "client_key_id", 128)})
    except ActionFailed as failed:
        return await _render(console, {}, failed.wire, failed.wire.status, _text(form, "name", 256))
    return console.redirect("/app-access", notice="notice.aap.client_key_deleted")


async def delete_access_point(console: Console) -> Response:
    form = await console.request.form()
    name = _text(form, "name", 256)
    try:
        await console.call("DeleteApplicationAccessPoint", {"Name": name})
    except ActionFailed as failed:
        return await _render(console, {}, failed.wire, failed.wire.status, name)
    return console.redirect("/app-access", notice="notice.aap.deleted")


ROUTES: list[BaseRoute] = [
    Route("/app-access", page(app_access), methods=["GET"]),
    Route("/app-access/create", page(create), methods=["POST"]),
    Route("/app-access/client-key", page(new_client_key), methods=["POST"]),
    Route("/app-access/client-key/delete", page(delete_client_key), methods=["POST"]),
    Route("/app-access/delete", page(delete_access_point), methods=["POST"]),
]
