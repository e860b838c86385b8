"""What every console response and form must satisfy: security headers, a body cap, the CSRF token,
same-origin posts, safe redirect targets, and the language and region a request is shown in.

Owns the cookies' names and flags. Never reads a session itself (`console/auth.py` does).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openkms.console.state import PREFIX
from openkms.console.terms import LANGUAGES

SESSION_COOKIE = "openkms_session"
SIGN_IN_COOKIE = "openkms_signin"  # the sign-in form's own CSRF token (double submit), before a session
LANG_COOKIE = "openkms_lang"
REGION_COOKIE = "openkms_region"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

# No inline script or style anywhere; nothing from another origin; no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_STATIC_PREFIX = f"{PREFIX}/static/"


class ConsoleGuard:
    """ASGI middleware around the console: security headers on every response, `no-store` on every
    page (they show keys, policies and once an access key secret), and a cap on request bodies (the
    console's largest form is an import of wrapped key material, far below it)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(_STATIC_PREFIX)  # a mounted app sees the full path
        limit = self.max_body_bytes

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(_HEADERS)
                if static:
                    headers.append((b"cache-control", b"public, max-age=3600"))
                else:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or len(value) > 18 or int(value) > limit):
                await _too_large(scope, receive, guarded_send)
                return
        # The body is read here, whole and capped, before the app sees it (a console form is small):
        # a chunked body past the cap is answered 413 before any page has started to answer.
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > limit:
                await _too_large(scope, receive, guarded_send)
                return
            if not message.get("more_body", False):
                break
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, guarded_send)


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    response = Response("Request body too large.", status_code=413, headers={"connection": "close"})
    await response(scope, receive, send)


def same_token(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a submitted token with the expected one."""
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


def same_origin(request: Request) -> bool:
    """A state-changing request must come from a page of this console: its Origin (sent by every
    current browser on a POST) must be ours when present."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return origin == f"{request.url.scheme}://{request.headers.get('host', '')}"


def safe_next(target: str | None, default: str = f"{PREFIX}/keys") -> str:
    """Only a path of this console may be a redirect target (no open redirect)."""
    if (
        target
        and target.startswith(PREFIX + "/")
        and not target.startswith("//")
        and "\\" not in target
        and all(ord(char) > 31 for char in target)
    ):
        return target
    return default


def language_of(request: Request) -> str:
    """The language chosen with the switch (a cookie), else the best of Accept-Language, else English."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    best, best_q = "en", 0.0
    for position, part in enumerate(request.headers.get("accept-language", "").split(",")[:20]):
        tag, _, options = part.strip().partition(";")
        quality = 1.0
        if options.strip().startswith("q="):
            try:
                quality = float(options.strip()[2:])
            except ValueError:
                quality = 0.0
        quality -= position * 1e-6  # earlier wins among equals
        language = tag.strip().lower()[:2]
        if language in LANGUAGES and quality > best_q:
            best, best_q = language, quality
    return best


def region_of(request: Request, regions: tuple[str, ...]) -> str:
    chosen = request.cookies.get(REGION_COOKIE)
    return chosen if chosen in regions else regions[0]


def set_preference(response: Response, name: str, value: str, request: Request) -> None:
    """A remembered preference (language, region): not a secret, but kept to this console."""
    response.set_cookie(
        name,
        value,
        max_age=365 * 24 * 3600,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def cookie_flags(request: Request) -> Mapping[str, object]:
    """Flags of the session cookie: HttpOnly, SameSite=Strict, Secure over TLS, this console only."""
    return {"path": PREFIX, "httponly": True, "samesite": "strict", "secure": request.url.scheme == "https"}
