"""One console request as a page sees it: who is signed in, in which language and region, and how
to run an action for them.

`Console.call` is the console's only way to do anything: it runs an entry of the RPC action table
(`api/actions`) through the one runner with door `console` and the signed-in principal, so a page gets
exactly the API's authorization, validation, error codes and audit record. A refusal comes back as
`ActionFailed` carrying the API's wire error (Code, message, HTTP status, AccessDeniedDetail).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from openkms import errors
from openkms.api.actions import ACTIONS, PRODUCTS
from openkms.api.actions.base import Action
from openkms.api.params import Params
from openkms.api.wire_errors import WireError, to_wire
from openkms.console.state import PREFIX, ConsoleState
from openkms.console.terms import translate
from openkms.node.rate_limits import RateClass
from openkms.policy.actions import USAGE_ACTIONS
from openkms.service.context import Door, Principal, RequestContext
from openkms.service.ids import new_request_id
from openkms.service.outcome import Outcome
from openkms.types import RegionId

Answer = Mapping[str, Any]
T = TypeVar("T")


class ActionFailed(Exception):
    """An action the console ran was refused; `wire` is what the API would have answered."""

    def __init__(self, action: str, wire: WireError) -> None:
        super().__init__(f"{action}: {wire.code}")
        self.action = action
        self.wire = wire


def find_action(name: str) -> tuple[Action, str]:
    """("Encrypt" | "ram:CreateUser") -> (the action, its audit name, as the RPC door records it)."""
    prefix, _, bare = name.rpartition(":")
    if not prefix or prefix == "kms":
        return ACTIONS[bare], bare
    for product in PRODUCTS.values():
        if product.prefix == prefix:
            return product.actions[bare], f"{prefix}:{bare}"
    raise KeyError(name)


def _rate_class(audit_name: str) -> RateClass:
    if ":" in audit_name:
        return RateClass.RAM  # ram:..., sts:...
    return RateClass.CRYPTO if audit_name in USAGE_ACTIONS else RateClass.MANAGEMENT


@dataclass(slots=True)
class Console:
    request: Request
    state: ConsoleState
    principal: Principal
    sign_in_name: str
    csrf_token: str
    lang: str
    region: str
    notices: list[str] = field(default_factory=list)

    def t(self, term_id: str) -> str:
        return translate(term_id, self.lang)

    @property
    def here(self) -> str:
        """Where the language and region switches come back to: this page, or for a form's answer
        the page the form was on (a POST URL cannot be reloaded by a GET)."""
        request = self.request
        if request.method in ("GET", "HEAD"):
            query = request.url.query
            return request.url.path + (f"?{query}" if query else "")
        referer = urlsplit(request.headers.get("referer", ""))
        if referer.netloc == request.headers.get("host") and referer.path.startswith(PREFIX + "/"):
            return referer.path + (f"?{referer.query}" if referer.query else "")
        return PREFIX + "/keys"

    @property
    def secure(self) -> bool:
        return self.request.url.scheme == "https"

    def context(self) -> RequestContext:
        client = self.request.client
        services = self.state.services
        return RequestContext(
            new_request_id(),
            self.principal,
            RegionId(self.region),
            client.host if client else None,
            door=Door.CONSOLE,
            received_at=services.clock.timestamp(),
            secure_transport=self.secure,
            tags_of=services.tags.current,
        )

    async def call(self, name: str, params: Mapping[str, str | None] | None = None) -> Answer:
        """Run one action of the API for the signed-in principal. Parameters given as None are left
        out (an empty form field that means "not given"); every other value is sent as typed."""
        action, audit_name = find_action(name)
        given = {key: value for key, value in (params or {}).items() if value is not None}
        services = self.state.services
        ctx = self.context()

        limits = self.state.limits
        rate_class = _rate_class(audit_name)

        def use_case() -> Outcome[Answer]:
            if limits is not None:
                # Charged like an API request of the same class: to the account, and to the
                # signed-in principal in place of an access key. Over a limit: Rejected.Throttling.
                principal = self.principal
                limits.admit(principal.account_id, f"console:{principal.arn}", rate_class, ctx.received_at)
            action.check_parameters(given)
            answer = action.handler(Params(given), ctx, services)
            return answer if isinstance(answer, Outcome) else Outcome(answer)

        try:
            return await self.state.runner.run(ctx, audit_name, use_case, blocking=True)
        except errors.OpenKMSError as exc:
            raise ActionFailed(audit_name, to_wire(exc)) from exc

    async def run(self, audit_name: str, use_case: Callable[[RequestContext], Outcome[T]]) -> T:
        """Run a use case that has no API action (e.g. sharing an instance) through the runner, for
        the signed-in principal; the use case authorizes, as every service method does."""
        ctx = self.context()
        try:
            return await self.state.runner.run(ctx, audit_name, lambda: use_case(ctx), blocking=True)
        except errors.OpenKMSError as exc:
            raise ActionFailed(audit_name, to_wire(exc)) from exc

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        page = self.state.templates.get_template(template)
        html = page.render(console=self, t=self.t, lang=self.lang, prefix=PREFIX, **values)
        return HTMLResponse(html, status_code=status)

    def redirect(self, path: str, notice: str | None = None, **query: str) -> Response:
        """303 to a console path (after a form post), with a notice term to show there."""
        if notice is not None:
            query["notice"] = notice
        target = PREFIX + path + (f"?{urlencode(query)}" if query else "")
        if self.request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)
