"""Console pages: Resource > Instances (F4.1, F4.3): each instance of the account with its kind, key
count, access quota and the units in use, the accounts it is shared with and, for its owner, share
and unshare; and the instances other accounts share with this one.

The instances come from ListKmsInstances and GetKmsInstance; sharing has no API action, so it runs
through `Console.run` with the service that authorizes the signed-in principal
(`service/instance_sharing.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from openkms.api.wire_errors import WireError
from openkms.console.auth import page
from openkms.console.view import ActionFailed, Console
from openkms.domain.instance import Instance
from openkms.service.context import RequestContext
from openkms.service.instance_sharing import InstanceSharing
from openkms.service.outcome import Outcome

_LISTED = "100"  # instances per account and region are few (one per kind)


@dataclass(frozen=True, slots=True)
class _Row:
    instance: dict[str, Any]  # GetKmsInstance's KmsInstance
    sharing: InstanceSharing | None  # None: the principal may not see its sharing
    refused: WireError | None


async def instance_list(console: Console) -> Response:
    return await _render(console)


async def _render(console: Console, wire: WireError | None = None, status: int = 200) -> Response:
    listed = await console.call("ListKmsInstances", {"PageNumber": "1", "PageSize": _LISTED})
    services = console.state.services
    rows = []
    for entry in listed["KmsInstances"]["KmsInstance"]:
        instance_id = str(entry["KmsInstanceId"])
        described = await console.call("GetKmsInstance", {"KmsInstanceId": instance_id})

        def sharing(ctx: RequestContext, instance_id: str = instance_id) -> Outcome[InstanceSharing]:
            return services.instance_sharing.sharing(ctx, instance_id)

        try:
            view: InstanceSharing | None = await console.run("console:GetInstanceSharing", sharing)
            refused = None
        except ActionFailed as failed:
            view, refused = None, failed.wire
        rows.append(_Row(described["KmsInstance"], view, refused))

    def shared(ctx: RequestContext) -> Outcome[list[Instance]]:
        return Outcome(services.instance_sharing.shared_with_me(ctx))

    shared_with_me = await console.run("console:ListSharedInstances", shared)
    return console.render(
        "instances/list.html",
        status=status,
        section="instances",
        rows=rows,
        shared_with_me=shared_with_me,
        wire=wire,
    )


async def share(console: Console) -> Response:
    return await _change(console, "console:ShareInstance", "notice.instance_shared")


async def unshare(console: Console) -> Response:
    return await _change(console, "console:UnshareInstance", "notice.instance_unshared")


async def _change(console: Console, action: str, notice: str) -> Response:
    instance_id = console.request.path_params["instance_id"]
    form = await console.request.form()
    account = form.get("account_id")
    account_id = account.strip()[:64] if isinstance(account, str) else ""
    service = console.state.services.instance_sharing
    change = service.share if action == "console:ShareInstance" else service.unshare
    try:
        await console.run(action, lambda ctx: change(ctx, instance_id, account_id))
    except ActionFailed as failed:
        return await _render(console, failed.wire, failed.wire.status)
    return console.redirect("/instances", notice=notice)


ROUTES: list[BaseRoute] = [
    Route("/instances", page(instance_list), methods=["GET"]),
    Route("/instances/{instance_id}/share", page(share), methods=["POST"]),
    Route("/instances/{instance_id}/unshare", page(unshare), methods=["POST"]),
]
