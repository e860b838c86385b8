"""RAM pages in Chromium: users with access keys (the secret shown once, and working through the
official SDK), disable and delete; console logon for a user and that user's first sign-in; roles with
a trust policy; policies from JSON (a malformed one refused); attach and detach; refusals."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.console.admin_support import second_page, words
from tests.support.products import Caller, DeniedError
from tests.support.server import LiveServer

LANGS = ["en", "zh"]


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _accept_confirm(page: Page) -> None:
    page.once("dialog", lambda dialog: dialog.accept())


@pytest.mark.parametrize("lang", LANGS)
def test_a_user_gets_an_access_key_whose_secret_is_shown_once(
    watched_page: Page, console_server: LiveServer, console_root: Any, sign_in: Callable[..., None], lang: str
) -> None:
    t, page, server = words(lang), watched_page, console_server
    sign_in(page, server, console_root.name, console_root.password, lang)
    page.get_by_role("link", name=t("nav.users"), exact=True).click()
    user = _name("dev")
    page.get_by_label(t("ram.user_name"), exact=True).fill(user)
    page.get_by_label(t("ram.display_name"), exact=True).fill("<script>alert(1)</script>")
    page.get_by_role("button", name=t("ram.create_user"), exact=True).click()
    expect(page.get_by_role("heading", name=user, exact=True)).to_be_visible()
    expect(page.get_by_role("status").first).to_contain_text(t("notice.user_created"))
    expect(page.get_by_text("<script>alert(1)</script>", exact=True)).to_be_visible()  # as text

    page.get_by_role("button", name=t("ram.create_access_key"), exact=True).click()
    expect(page.get_by_text(t("ram.secret_once"))).to_be_visible()
    key_id = page.locator("#new-access-key-id").inner_text()
    secret = page.locator("#new-access-key-secret").inner_text()
    assert key_id and len(secret) >= 20
    expect(page.get_by_role("button", name=t("ram.copy_secret"), exact=True)).to_be_visible()
    sts = Caller("sts", server.endpoint, key_id, secret)
    assert sts.call("GetCallerIdentity")["Arn"].endswith(f":user/{user}")

    page.goto(f"{server.url}/console/ram/users/{user}")  # the user's page again: never shown twice
    expect(page.get_by_text(key_id, exact=True)).to_be_visible()
    assert secret not in page.content()

    page.get_by_role("button", name=f"{t('act.disable')} {key_id}").click()
    expect(page.get_by_role("status").first).to_contain_text(t("notice.access_key_disabled"))
    expect(page.get_by_role("cell", name=t("ram.status.Inactive"), exact=True)).to_be_visible()
    with pytest.raises(DeniedError):
        sts.call("GetCallerIdentity")

    _accept_confirm(page)
    page.get_by_role("button", name=f"{t('btn.delete')} {key_id}").click()
    expect(page.get_by_role("status").first).to_contain_text(t("notice.access_key_deleted"))
    expect(page.get_by_text(key_id, exact=True)).to_have_count(0)

    _accept_confirm(page)
    page.get_by_role("button", name=t("ram.delete_user"), exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text(t("notice.user_deleted"))
    expect(page.get_by_role("cell", name=user, exact=True)).to_have_count(0)


@pytest.mark.parametrize("lang", LANGS)
def test_a_user_with_console_logon_signs_in_and_must_reset_the_password(
    watched_page: Page,
    console_server: LiveServer,
    console_root: Any,
    sign_in: Callable[..., None],
    browser: Browser,
    lang: str,
) -> None:
    t, page, server = words(lang), watched_page, console_server
    sign_in(page, server, console_root.name, console_root.password, lang)
    user = _name("ops")
    page.goto(f"{server.url}/console/ram/users")
    page.get_by_label(t("ram.user_name"), exact=True).fill(user)
    page.get_by_role("button", name=t("ram.create_user"), exact=True).click()
    expect(page.get_by_text(t("ram.profile_off"))).to_be_visible()
    page.get_by_label(t("ram.password"), exact=True).fill("First-Passw0rd-123")
    page.get_by_label(t("ram.reset_required"), exact=True).check()
    page.get_by_role("button", name=t("ram.enable_profile"), exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text(t("notice.login_profile_saved"))
    expect(page.get_by_text(t("ram.profile_on"))).to_be_visible()
    sign_in_name = page.locator("dd code", has_text=f"{user}@").inner_text()
    assert re.fullmatch(rf"{user}@\d{{16}}", sign_in_name)

    other, watch = second_page(browser)
    sign_in(other, server, sign_in_name, "First-Passw0rd-123", lang)
    expect(other).to_have_url(re.compile(r"/console/password$"))
    other.goto(f"{server.url}/console/keys")  # nothing else until the password is changed
    expect(other).to_have_url(re.compile(r"/console/password$"))
    other.get_by_label(t("password.old"), exact=True).fill("First-Passw0rd-123")
    other.get_by_label(t("password.new"), exact=True).fill("Second-Passw0rd-456")
    other.get_by_label(t("password.confirm"), exact=True).fill("Second-Passw0rd-456")
    other.locator("#main").get_by_role("button", name=t("btn.ok"), exact=True).click()
    expect(other).to_have_url(re.compile(r"/console/keys"))
    expect(other.locator(".identity")).to_contain_text(sign_in_name)
    watch.check()
    other.context.close()

    page.reload()
    _accept_confirm(page)
    page.get_by_role("button", name=t("ram.delete_profile"), exact=True).click()
    expect(page.get_by_text(t("ram.profile_off"))).to_be_visible()


@pytest.mark.parametrize("lang", LANGS)
def test_a_role_with_a_trust_policy_and_its_permissions(
    watched_page: Page, console_server: LiveServer, console_root: Any, sign_in: Callable[..., None], lang: str
) -> None:
    t, page, server = words(lang), watched_page, console_server
    sign_in(page, server, console_root.name, console_root.password, lang)
    page.get_by_role("link", name=t("nav.roles"), exact=True).click()
    role = _name("app")
    page.get_by_label(t("ram.role_name"), exact=True).fill(role)
    trust = page.get_by_label(t("ram.trust_policy"), exact=True)
    assert "sts:AssumeRole" in trust.input_value()  # a template trusting the account
    page.get_by_role("button", name=t("ram.create_role"), exact=True).click()
    expect(page.get_by_role("heading", name=role, exact=True)).to_be_visible()
    expect(page.locator("pre.code")).to_contain_text("sts:AssumeRole")

    page.get_by_label(t("ram.policy"), exact=True).select_option("System:AliyunKMSReadOnlyAccess")
    page.get_by_role("button", name=t("ram.attach"), exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text(t("notice.policy_attached"))
    expect(page.get_by_role("link", name="AliyunKMSReadOnlyAccess", exact=True)).to_be_visible()
    page.get_by_role("button", name=f"{t('ram.detach')} AliyunKMSReadOnlyAccess").click()
    expect(page.get_by_role("status").first).to_contain_text(t("notice.policy_detached"))
    expect(page.get_by_role("link", name="AliyunKMSReadOnlyAccess", exact=True)).to_have_count(0)

    _accept_confirm(page)
    page.get_by_role("button", name=t("ram.delete_role"), exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text(t("notice.role_deleted"))


@pytest.mark.parametrize("lang", LANGS)
def test_a_policy_from_json_malformed_refused_then_made_attached_and_deleted(
    watched_page: Page, console_server: LiveServer, console_root: Any, sign_in: Callable[..., None], lang: str
) -> None:
    t, page, server = words(lang), watched_page, console_server
    sign_in(page, server, console_root.name, console_root.password, lang)
    page.get_by_role("link", name=t("nav.policies"), exact=True).click()
    expect(page.get_by_role("cell", name="AliyunKMSFullAccess", exact=True)).to_be_visible()
    name = _name("readers")
    page.get_by_label(t("ram.policy_name"), exact=True).fill(name)
    document = page.get_by_label(t("ram.policy_document"), exact=True)
    document.fill('{"Version": "1", "Statement": [{"Effect": "Maybe"')
    page.get_by_role("button", name=t("ram.create_policy"), exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("MalformedPolicyDocument")
    expect(document).to_have_value('{"Version": "1", "Statement": [{"Effect": "Maybe"')  # kept to fix

    document.fill(
        '{"Version": "1", "Statement": [{"Effect": "Allow", "Action": "kms:List*", "Resource": "*"}]}'
    )
    page.get_by_role("button", name=t("ram.create_policy"), exact=True).click()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    expect(page.locator("pre.code")).to_contain_text("kms:List*")

    page.goto(f"{server.url}/console/ram/users")
    user = _name("reader")
    page.get_by_label(t("ram.user_name"), exact=True).fill(user)
    page.get_by_role("button", name=t("ram.create_user"), exact=True).click()
    page.get_by_label(t("ram.policy"), exact=True).select_option(f"Custom:{name}")
    page.get_by_role("button", name=t("ram.attach"), exact=True).click()
    expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
    page.get_by_role("button", name=f"{t('ram.detach')} {name}").click()
    expect(page.get_by_role("link", name=name, exact=True)).to_have_count(0)

    page.goto(f"{server.url}/console/ram/policies/Custom/{name}")
    _accept_confirm(page)
    page.get_by_role("button", name=t("ram.delete_policy"), exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text(t("notice.policy_deleted"))
    expect(page.get_by_role("cell", name=name, exact=True)).to_have_count(0)


def test_a_user_without_ram_permissions_sees_the_refusal(
    watched_page: Page, console_server: LiveServer, console_user: Any, sign_in: Callable[..., None]
) -> None:
    t, page, server = words("en"), watched_page, console_server
    user = console_user(_name("nobody"), [])
    sign_in(page, server, user.name, user.password, "en")
    response = page.goto(f"{server.url}/console/ram/users")
    assert response is not None and response.status == 403
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("NoPermission")
    expect(alert).to_contain_text("ram:ListUsers")
    expect(alert).to_contain_text(t("error.access_denied"))
