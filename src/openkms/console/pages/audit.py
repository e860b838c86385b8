"""Console pages: the audit log of the signed-in principal's account (the latest records, filtered by
key, action, principal and result, newest first, paged) and the log's verification status.

Reading the log has no API action: it runs through `Console.run` with the service that authorizes
the principal and bounds the work (`service/audit_log.py`), audited as `console:LookupEvents` and
`console:VerifyAuditLog`."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from openkms.console.auth import page
from openkms.console.view import ActionFailed, Console
from openkms.service.audit_log import FILTER_LIMIT, AuditPage, AuditQuery, LogVerification
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome

PAGE_SIZE = 20
RESULTS = ("", "Success", "Failure")


async def audit(console: Console) -> Response:
    params = console.request.query_params

    def given(name: str) -> str:
        return params.get(name, "").strip()[:FILTER_LIMIT]

    number = params.get("page", "1")
    query = AuditQuery(
        key_id=given("key_id"),
        action=given("action"),
        principal=given("principal"),
        result=given("result") if given("result") in RESULTS else "",
        page=int(number) if number.isascii() and number.isdigit() and len(number) < 6 else 1,
        page_size=PAGE_SIZE,
    )
    log = console.state.services.audit_log

    def lookup(ctx: RequestContext) -> Outcome[tuple[AuditPage, LogVerification]]:
        found = log.lookup(ctx, query)
        return Outcome((found.value, log.verification(ctx).value), found.resource)

    try:
        found, verified = await console.run("console:LookupEvents", lookup)
    except ActionFailed as failed:
        return console.render(
            "audit/list.html", status=failed.wire.status, section="audit", wire=failed.wire, query=query
        )
    filters = {
        name: value
        for name, value in (
            ("key_id", query.key_id),
            ("action", query.action),
            ("principal", query.principal),
            ("result", query.result),
        )
        if value
    }
    return console.render(
        "audit/list.html",
        section="audit",
        query=query,
        found=found,
        verified=verified,
        filters="&" + urlencode(filters) if filters else "",
        results=RESULTS,
    )


async def verify(console: Console) -> Response:
    log = console.state.services.audit_log
    await console.run("console:VerifyAuditLog", lambda ctx: log.verification(ctx, fresh=True))
    return console.redirect("/audit", notice="notice.audit_verified")


ROUTES: list[BaseRoute] = [
    Route("/audit", page(audit), methods=["GET"]),
    Route("/audit/verify", page(verify), methods=["POST"]),
]
