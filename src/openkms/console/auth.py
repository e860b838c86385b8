"""Who is signed in: the sign-in and sign-out pages, the forced password change, and `page`, the
wrapper every other console page goes through.

`page` refuses what a signed-out browser asks for (a redirect to the sign-in page), checks the CSRF
token and the origin of every state-changing request, sends a principal whose password must be reset
to the password page, and hands the endpoint a `Console` (`console/view.py`). Sign-in attempts,
sign-outs and refused forms are audited through the runner like every other request (door `console`).
Passwords are checked by the sign-in service (`service/sign_in.py`); they never reach a log or a record.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from openkms import errors
from openkms.api.wire_errors import to_wire
from openkms.console.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    LANG_COOKIE,
    REGION_COOKIE,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    cookie_flags,
    language_of,
    region_of,
    safe_next,
    same_origin,
    same_token,
    set_preference,
)
from openkms.console.state import PREFIX, ConsoleState
from openkms.console.terms import LANGUAGES, translate
from openkms.console.view import ActionFailed, Console
from openkms.service.context import Door, RequestContext
from openkms.service.ids import new_request_id
from openkms.service.outcome import Outcome
from openkms.service.runner import Attempt
from openkms.service.sign_in import ConsoleSession
from openkms.types import RegionId

Endpoint = Callable[[Console], Awaitable[Response]]

_SAFE_METHODS = frozenset({"GET", "HEAD"})


def state_of(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


def page(endpoint: Endpoint, *, during_reset: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a console endpoint: signed in, CSRF and origin checked on anything but GET, password
    change forced when the profile says so."""

    async def wrapped(request: Request) -> Response:
        state = state_of(request)
        session = await _session_of(request, state)
        if session is None:
            return _to_sign_in(request)
        lang = language_of(request)
        console = Console(
            request,
            state,
            session.principal,
            session.sign_in_name,
            session.csrf_token,
            lang,
            region_of(request, state.settings.regions),
        )
        request.state.console = console
        if request.method not in _SAFE_METHODS:
            form = await request.form()
            given = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
            if not same_origin(request) or not same_token(
                given if isinstance(given, str) else None, session.csrf_token
            ):
                return await _forged(console)
        if session.password_reset_required and not during_reset:
            return console.redirect("/password")
        return await endpoint(console)

    return wrapped


async def _session_of(request: Request, state: ConsoleState) -> ConsoleSession | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 256:
        return None
    return await asyncio.to_thread(state.services.sign_in.session, token)


def _to_sign_in(request: Request) -> Response:
    target = f"{PREFIX}/signin"
    if request.method in _SAFE_METHODS:
        path = request.url.path
        if path.startswith(PREFIX + "/") and path != target:
            query = f"?{request.url.query}" if request.url.query else ""
            target += "?" + _query(next=path + query)
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


def _query(**values: str) -> str:
    return urlencode(values)


async def _forged(console: Console) -> Response:
    """A state-changing request without this session's CSRF token, or from another origin."""
    error = errors.AccessDenied(
        "The form was not sent by this console (missing or wrong CSRF token, or another origin); "
        "reload the page and try again."
    )
    principal = console.principal
    attempt = Attempt(
        Door.CONSOLE,
        new_request_id(),
        "console:Form",
        _client(console.request),
        principal.arn,
        principal.account_id,
        console.region,
    )
    await console.state.runner.refuse(attempt, error)
    return console.render("error.html", status=403, wire=to_wire(error))


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


# --- sign in, sign out, password -------------------------------------------------------------------


def _sign_in_page(
    request: Request, *, error: str | None = None, status: int = 200, name: str = ""
) -> Response:
    state = state_of(request)
    lang = language_of(request)
    token = request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(24)
    html = state.templates.get_template("signin.html").render(
        t=lambda term: translate(term, lang),
        lang=lang,
        prefix=PREFIX,
        csrf=token,
        error=error,
        name=name,
        next=safe_next(request.query_params.get("next")),
        languages=LANGUAGES,
    )
    response = HTMLResponse(html, status_code=status)
    response.set_cookie(SIGN_IN_COOKIE, token, max_age=3600, **cookie_flags(request))  # type: ignore[arg-type]
    return response


async def sign_in_form(request: Request) -> Response:
    return _sign_in_page(request)


async def sign_in(request: Request) -> Response:
    state = state_of(request)
    form = await request.form()
    name = _field(form, "sign_in_name").strip()[:256]
    password = _field(form, "password")[:1024]
    if not same_origin(request) or not same_token(
        _field(form, CSRF_FIELD), request.cookies.get(SIGN_IN_COOKIE, "")
    ):
        return _sign_in_page(request, error="signin.expired", status=403, name=name)
    service = state.services.sign_in
    request_id = new_request_id()
    attempt = Attempt(
        Door.CONSOLE,
        request_id,
        "console:SignIn",
        _client(request),
        f"acs:ram::unknown:sign-in/{name}",
        None,
        state.settings.regions[0],
    )
    try:
        if state.services.keystore.sealed:
            raise errors.Sealed()
        session = await state.passwords.run(lambda: service.sign_in(name, password))
    except errors.SignInFailed as exc:
        # Locked or not, known name or not: the same wait and the same answer (the record tells
        # the operator which). Only the audit log says the name is locked.
        await asyncio.sleep(service.failure_delay(name))
        await state.runner.refuse(attempt, exc)
        return _sign_in_page(request, error="signin.failed", status=401, name=name)
    except errors.Throttled as exc:
        await state.runner.refuse(attempt, exc)
        return _sign_in_page(request, error="signin.busy", status=429, name=name)
    except errors.Sealed as exc:
        await state.runner.refuse(attempt, exc)
        return _sign_in_page(request, error="signin.sealed", status=503, name=name)
    ctx = RequestContext(
        request_id,
        session.principal,
        RegionId(state.settings.regions[0]),
        _client(request),
        door=Door.CONSOLE,
        received_at=state.services.clock.timestamp(),
    )
    await state.runner.run(ctx, "console:SignIn", lambda: Outcome({}), blocking=False)
    response = RedirectResponse(safe_next(_field(form, "next") or None), status_code=303)
    response.set_cookie(SESSION_COOKIE, session.token, **cookie_flags(request))  # type: ignore[arg-type]
    response.delete_cookie(SIGN_IN_COOKIE, path=PREFIX)
    return response


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def _sign_out(console: Console) -> Response:
    token = console.request.cookies.get(SESSION_COOKIE, "")
    state = console.state
    await asyncio.to_thread(state.services.sign_in.sign_out, token)
    await state.runner.run(console.context(), "console:SignOut", lambda: Outcome({}), blocking=False)
    response = RedirectResponse(f"{PREFIX}/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


async def _password(console: Console) -> Response:
    if console.request.method in _SAFE_METHODS:
        return console.render("password.html")
    form = await console.request.form()
    old, new = _field(form, "old_password"), _field(form, "new_password")
    if new != _field(form, "confirm_password"):
        return console.render("password.html", status=400, error="password.mismatch")
    token = console.request.cookies.get(SESSION_COOKIE, "")
    service = console.state.services.sign_in

    def change() -> Outcome[object]:
        service.change_password(token, old, new)
        return Outcome({})

    try:
        await console.state.runner.run(console.context(), "console:ChangePassword", change)
    except errors.OpenKMSError as exc:
        return console.render("password.html", status=to_wire(exc).status, wire=to_wire(exc))
    return console.redirect("/keys", notice="notice.password_changed")


async def _home(console: Console) -> Response:
    return console.redirect("/keys")


async def choose_language(request: Request) -> Response:
    lang = request.path_params["lang"]
    response = RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    if lang in LANGUAGES:
        set_preference(response, LANG_COOKIE, lang, request)
    return response


async def choose_region(request: Request) -> Response:
    region = request.query_params.get("region", "")
    response = RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    if region in state_of(request).settings.regions:
        set_preference(response, REGION_COOKIE, region, request)
    return response


def error_page(console: Console, failed: ActionFailed) -> Response:
    return console.render("error.html", status=failed.wire.status, wire=failed.wire)


ROUTES = [
    Route("/", page(_home), methods=["GET"]),
    Route("/signin", sign_in_form, methods=["GET"]),
    Route("/signin", sign_in, methods=["POST"]),
    Route("/signout", page(_sign_out, during_reset=True), methods=["POST"]),
    Route("/password", page(_password, during_reset=True), methods=["GET", "POST"]),
    Route("/lang/{lang}", choose_language, methods=["GET"]),
    Route("/region", choose_region, methods=["GET"]),
]
