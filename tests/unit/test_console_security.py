"""The console guard's pure rules: cookie flags by transport, redirect targets, language choice."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from openkms.console.security import cookie_flags, language_of, safe_next


def request(scheme: str = "http", headers: dict[str, str] | None = None) -> Request:
    raw = [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    return Request(
        {"type": "http", "scheme": scheme, "method": "GET", "path": "/console/keys", "headers": raw,
         "query_string": b"", "server": ("127.0.0.1", 9600), "root_path": ""}
    )  # fmt: skip


def test_the_session_cookie_is_secure_over_tls() -> None:
    assert cookie_flags(request("https")) == {
        "path": "/console",
        "httponly": True,
        "samesite": "strict",
        "secure": True,
    }
    assert cookie_flags(request("http"))["secure"] is False


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/console/keys",
        "//evil.example/console/",
        "/console\\..\\x",
        "/elsewhere",
        "/console/keys\r\nSet-Cookie: x=1",
        "",
        None,
    ],
)
def test_only_console_paths_are_redirect_targets(target: str | None) -> None:
    assert safe_next(target) == "/console/keys"


def test_a_console_path_is_a_redirect_target() -> None:
    assert safe_next("/console/keys/default?notice=x") == "/console/keys/default?notice=x"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("fr-FR,zh-TW;q=0.5,en;q=0.4", "zh"),
        ("fr-FR", "en"),
        ("en;q=0.1,zh;q=0.2", "zh"),
        ("zh;q=banana", "en"),
        ("", "en"),
    ],
)
def test_language_from_accept_language(header: str, expected: str) -> None:
    assert language_of(request(headers={"Accept-Language": header})) == expected


def test_the_switch_wins_over_accept_language() -> None:
    chosen = request(headers={"Accept-Language": "zh-CN", "Cookie": "openkms_lang=en"})
    assert language_of(chosen) == "en"
