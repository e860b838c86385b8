"""Signing in and out of the console in Chromium: the root and a RAM user, in both languages; a
forced password change; cookie flags; what a signed-out browser reaches; forms without the CSRF token."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from openkms.console.terms import translate
from tests.console.conftest import USER_PASSWORD, ConsoleAccount
from tests.support.server import LiveServer


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_root_signs_in_and_out(
    watched_page: Page,
    console_server: LiveServer,
    console_root: ConsoleAccount,
    sign_in: Callable[..., None],
    lang: str,
) -> None:
    page = watched_page
    sign_in(page, console_server, console_root.name, console_root.password, lang=lang)
    expect(page).to_have_url(re.compile(r"/console/keys$"))
    expect(page.get_by_role("heading", name=translate("nav.keys", lang), exact=True)).to_be_visible()
    expect(page.locator("header.topbar")).to_contain_text(console_root.name)
    cookie = next(c for c in page.context.cookies() if c["name"] == "openkms_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    assert not cookie["secure"]  # plain HTTP on loopback; Secure whenever served over TLS

    page.get_by_role("button", name=translate("top.signout", lang)).click()
    expect(page).to_have_url(re.compile(r"/console/signin$"))
    # The session ended on the server, not only in this browser: the old cookie opens nothing.
    answer = httpx.get(
        f"{console_server.url}/console/keys",
        cookies={"openkms_session": cookie["value"]},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"].startswith("/console/signin")


def test_wrong_password_is_refused_without_saying_which_part(
    watched_page: Page, console_server: LiveServer, console_root: ConsoleAccount, sign_in: Callable[..., None]
) -> None:
    page = watched_page
    sign_in(page, console_server, console_root.name, "not-the-password")
    expect(page.get_by_role("alert")).to_have_text(translate("signin.failed", "en"))
    sign_in(page, console_server, f"nobody@{console_root.account_id}", "not-the-password")
    expect(page.get_by_role("alert")).to_have_text(translate("signin.failed", "en"))
    expect(page.get_by_label(translate("signin.password", "en"))).to_have_value("")


def test_ram_user_must_change_a_password_marked_for_reset(
    watched_page: Page,
    console_server: LiveServer,
    console_user: Callable[..., ConsoleAccount],
    sign_in: Callable[..., None],
) -> None:
    page = watched_page
    user = console_user(unique("reset"), ["AliyunKMSFullAccess"], reset_required=True)
    sign_in(page, console_server, user.name, user.password)
    expect(page).to_have_url(re.compile(r"/console/password$"))
    page.goto(f"{console_server.url}/console/keys")  # nothing else opens before the change
    expect(page).to_have_url(re.compile(r"/console/password$"))
    page.get_by_label(translate("password.old", "en")).fill(USER_PASSWORD)
    page.get_by_label(translate("password.new", "en"), exact=True).fill("Changed-Pass-42")
    page.get_by_label(translate("password.confirm", "en")).fill("Changed-Pass-42")
    page.get_by_role("button", name=translate("btn.ok", "en")).click()
    expect(page).to_have_url(re.compile(r"/console/keys\?notice=notice.password_changed$"))
    expect(page.get_by_role("status")).to_have_text(translate("notice.password_changed", "en"))

    page.get_by_role("button", name=translate("top.signout", "en")).click()
    expect(page).to_have_url(re.compile(r"/console/signin$"))  # before navigating again
    sign_in(page, console_server, user.name, "Changed-Pass-42")
    expect(page).to_have_url(re.compile(r"/console/keys$"))


def test_signed_out_browser_reaches_only_the_sign_in_page(
    browser: Browser, console_server: LiveServer
) -> None:
    context = browser.new_context()
    page = context.new_page()
    for path in ("/console/", "/console/keys", "/console/instances", "/console/ram/users", "/console/audit"):
        page.goto(console_server.url + path)
        expect(page).to_have_url(re.compile(r"/console/signin(\?next=.*)?$"))
        expect(page.get_by_label(translate("signin.password", "en"))).to_be_visible()
    context.close()
    # Without a browser: every state-changing form posted without a session is refused the same way.
    for path in ("/console/signout", "/console/password", "/console/keys"):
        answer = httpx.post(console_server.url + path, data={"x": "1"}, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/console/signin"


def test_forms_need_the_session_csrf_token(
    page: Page, console_server: LiveServer, console_root: ConsoleAccount, sign_in: Callable[..., None]
) -> None:
    sign_in(page, console_server, console_root.name, console_root.password)
    expect(page).to_have_url(re.compile(r"/console/keys$"))
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    session = {"openkms_session": cookies["openkms_session"]}
    forged = httpx.post(
        f"{console_server.url}/console/signout", cookies=session, data={}, follow_redirects=False
    )
    assert forged.status_code == 403
    assert "CSRF" in forged.text
    wrong = httpx.post(
        f"{console_server.url}/console/signout",
        cookies=session,
        data={"csrf_token": "x" * 43},
        follow_redirects=False,
    )
    assert wrong.status_code == 403
    token = page.locator("form.signout input[name=csrf_token]").get_attribute("value")
    other_site = httpx.post(
        f"{console_server.url}/console/signout",
        cookies=session,
        data={"csrf_token": token or ""},
        headers={"Origin": "http://evil.example"},
        follow_redirects=False,
    )
    assert other_site.status_code == 403
    # The session survived all three: the forged sign-outs did nothing.
    page.reload()
    expect(page).to_have_url(re.compile(r"/console/keys$"))


def test_security_headers(console_server: LiveServer) -> None:
    answer = httpx.get(f"{console_server.url}/console/signin")
    headers = answer.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "'unsafe-inline'" not in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"
    static = httpx.get(f"{console_server.url}/console/static/console.css")
    assert static.status_code == 200 and static.headers["x-frame-options"] == "DENY"


def test_language_follows_accept_language_until_the_switch_is_used(
    browser: Browser, console_server: LiveServer
) -> None:
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(f"{console_server.url}/console/signin")
    expect(page.get_by_role("heading", name=translate("signin.title", "zh"))).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name=translate("signin.title", "en"))).to_be_visible()
    page.reload()  # remembered, whatever the browser prefers
    expect(page.get_by_role("heading", name=translate("signin.title", "en"))).to_be_visible()
    context.close()


def _audit_records(server: LiveServer) -> list[dict[str, object]]:
    lines = "".join(path.read_text() for path in sorted((server.data_dir / "audit").glob("*.jsonl")))
    return [json.loads(line) for line in lines.splitlines() if line.strip()]


def test_failed_sign_ins_slow_down_then_lock_and_are_audited(
    console_server: LiveServer,
    console_user: Callable[..., ConsoleAccount],
    console_root: ConsoleAccount,
) -> None:
    user = console_user(unique("locked"), [])
    with httpx.Client(base_url=console_server.url, follow_redirects=False, timeout=30) as client:

        def attempt(password: str) -> httpx.Response:
            form = client.get("/console/signin")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert token is not None
            return client.post(
                "/console/signin",
                data={"csrf_token": token.group(1), "sign_in_name": user.name, "password": password},
            )

        for _ in range(5):  # console_lockout_threshold
            refused = attempt("Wrong-Password-1")
            assert refused.status_code == 401
            assert translate("signin.failed", "en") in refused.text
        locked = attempt(USER_PASSWORD)  # the right password no longer opens it
    # ... answered exactly as a wrong password (status, words), so nobody learns the name exists.
    assert locked.status_code == 401
    assert translate("signin.failed", "en") in locked.text
    assert "openkms_session" not in locked.cookies
    assert "Wrong-Password-1" not in locked.text and USER_PASSWORD not in locked.text

    records = [r for r in _audit_records(console_server) if r.get("action") == "console:SignIn"]
    mine = [r for r in records if user.name.split("@")[0] in str(r.get("principal"))]
    assert [r["result"] for r in mine[-6:]] == ["InvalidSignIn"] * 5 + ["InvalidSignIn.Locked"]
    assert all(r["door"] == "console" and r["http_status"] in (401, 403) for r in mine[-6:])
    text = json.dumps(records)
    assert "Wrong-Password-1" not in text and USER_PASSWORD not in text and console_root.password not in text


def test_a_successful_sign_in_is_audited_as_its_principal(
    page: Page, console_server: LiveServer, console_root: ConsoleAccount, sign_in: Callable[..., None]
) -> None:
    sign_in(page, console_server, console_root.name, console_root.password)
    expect(page).to_have_url(re.compile(r"/console/keys$"))
    records = [r for r in _audit_records(console_server) if r.get("action") == "console:SignIn"]
    assert records[-1]["result"] == "Success"
    assert records[-1]["principal"] == f"acs:ram::{console_root.account_id}:root"
    assert records[-1]["door"] == "console" and records[-1]["http_status"] == 200


def test_odd_requests_get_clear_answers_not_failures(
    page: Page, console_server: LiveServer, console_root: ConsoleAccount, sign_in: Callable[..., None]
) -> None:
    sign_in(page, console_server, console_root.name, console_root.password)
    expect(page).to_have_url(re.compile(r"/console/keys$"))
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    token = page.locator("form.signout input[name=csrf_token]").get_attribute("value") or ""
    with httpx.Client(
        base_url=console_server.url, cookies={"openkms_session": cookies["openkms_session"]}, timeout=30
    ) as client:
        # A page number in other scripts' digits is no page number: the first page.
        assert client.get("/console/keys", params={"page": "²"}).status_code == 200
        assert client.get("/console/audit", params={"page": "٣"}).status_code == 200
        # A form naming no known operation changes nothing and says so (was: enable the key).
        refused = client.post(
            "/console/keys/key-nonexistent00000000000000/lifecycle", data={"csrf_token": token, "op": "x"}
        )
        assert refused.status_code == 400
        # A chunked body past the cap: 413 with the console's headers, before any page answers.
        big = iter([b"csrf_token=" + token.encode() + b"&x=", b"a" * (1024 * 1024 + 1)])
        too_large = client.post(
            "/console/keys/create", content=big, headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert too_large.status_code == 413
        assert too_large.headers["x-frame-options"] == "DENY"
    page.reload()
    expect(page).to_have_url(re.compile(r"/console/keys$"))  # the server is fine


def test_the_first_start_password_must_be_changed_at_the_first_sign_in(
    watched_page: Page, sign_in: Callable[..., None], tmp_path: Path
) -> None:
    server = LiveServer(tmp_path / "data").start()
    try:
        creds = json.loads((server.data_dir / "root-credentials.json").read_text())
        page = watched_page
        sign_in(page, server, creds["ConsoleSignInName"], creds["ConsolePassword"])
        expect(page).to_have_url(re.compile(r"/console/password$"))
        page.goto(f"{server.url}/console/keys")
        expect(page).to_have_url(re.compile(r"/console/password$"))
    finally:
        server.stop()
