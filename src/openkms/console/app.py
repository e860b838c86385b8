"""The console's ASGI app, mounted at /console by `server/app.py`: routes of every page module, the
static files, the guard (security headers, body cap) and the error pages."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from openkms.api.wire_errors import INTERNAL_FAILURE
from openkms.config import Settings
from openkms.console import auth, pages
from openkms.console.password_lane import PasswordLane
from openkms.console.security import ConsoleGuard
from openkms.console.state import PREFIX, STATIC, ConsoleState, templates
from openkms.console.view import ActionFailed, Console
from openkms.node.rate_limits import SharedRateLimiter
from openkms.service.container import Services
from openkms.service.runner import Runner

log = logging.getLogger("openkms.console")


def build_console(
    services: Services, runner: Runner, settings: Settings, limits: SharedRateLimiter | None = None
) -> ASGIApp:
    """The console app; `limits` are the node's tenant rate limits, which console actions are
    charged to as API requests are (per account, and per signed-in principal)."""
    app = Starlette(
        routes=[*auth.ROUTES, *pages.ROUTES, Mount("/static", StaticFiles(directory=STATIC), name="static")],
        exception_handlers={ActionFailed: _refused, HTTPException: _http_error, 500: _internal},
    )
    app.state.console = ConsoleState(services, runner, settings, templates(), PasswordLane(), limits)
    return ConsoleGuard(app, settings.max_body_bytes)


async def _refused(request: Request, exc: Exception) -> Response:
    """An action a page ran was refused and the page did not handle it: show the API's answer."""
    assert isinstance(exc, ActionFailed)
    console: Console | None = getattr(request.state, "console", None)
    if console is None:
        return PlainTextResponse(f"{exc.wire.code}: {exc.wire.message}", status_code=exc.wire.status)
    return console.render("error.html", status=exc.wire.status, wire=exc.wire)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    console: Console | None = getattr(request.state, "console", None)
    if console is None:
        if exc.status_code in (404, 405) and not request.url.path.startswith(f"{PREFIX}/static/"):
            # A signed-out browser learns nothing about which console pages exist.
            return RedirectResponse(f"{PREFIX}/signin", status_code=303)
        return PlainTextResponse(exc.detail, status_code=exc.status_code)
    return console.render("error.html", status=exc.status_code, status_text=exc.detail)


async def _internal(request: Request, exc: Exception) -> Response:
    """A fault of the server: InternalFailure, never a trace (the log has it)."""
    log.error("console request %s failed: %s", request.url.path, type(exc).__name__)
    console: Console | None = getattr(request.state, "console", None)
    if console is None:
        return PlainTextResponse("InternalFailure", status_code=500)
    return console.render("error.html", status=500, wire=INTERNAL_FAILURE)
