"""The Audit page in Chromium: what the console did is there with door console, newest first;
filters; the log's verification; a RAM user without actiontrail:LookupEvents is refused; another
account's records never show."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.console.admin_support import other_account, second_page, words
from tests.support.server import LiveServer


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_console_action_is_in_the_audit_page_and_filters_find_it(
    watched_page: Page, console_server: LiveServer, console_root: Any, sign_in: Callable[..., None], lang: str
) -> None:
    t, page, server = words(lang), watched_page, console_server
    sign_in(page, server, console_root.name, console_root.password, lang)
    user = f"audited-{uuid.uuid4().hex[:8]}"
    page.goto(f"{server.url}/console/ram/users")
    page.get_by_label(t("ram.user_name"), exact=True).fill(user)
    page.get_by_role("button", name=t("ram.create_user"), exact=True).click()
    page.wait_for_url(f"**/console/ram/users/{user}?notice=notice.user_created")
    page.goto(f"{server.url}/console/ram/users/no-such-user-{uuid.uuid4().hex[:6]}")  # a refusal

    page.get_by_role("link", name=t("nav.audit"), exact=True).click()
    expect(page.get_by_text(t("audit.verified_ok"))).to_be_visible()
    page.get_by_label(t("audit.action"), exact=True).fill("ram:CreateUser")
    page.get_by_role("button", name=t("btn.search"), exact=True).click()
    row = page.get_by_role("row").filter(has_text=f"user/{user}")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("console")
    expect(row).to_contain_text(t("audit.result.Success"))
    assert all(
        "ram:CreateUser" in text for text in page.locator("tbody tr td:nth-child(2)").all_inner_texts()
    )

    page.get_by_label(t("audit.action"), exact=True).fill("ram:GetUser")
    page.get_by_label(t("audit.result"), exact=True).select_option("Failure")
    page.get_by_role("button", name=t("btn.search"), exact=True).click()
    expect(page.get_by_role("cell").filter(has_text="EntityNotExist.User").first).to_be_visible()
    assert t("audit.result.Success") not in page.locator("tbody").inner_text()

    page.get_by_label(t("audit.action"), exact=True).fill("")
    page.get_by_label(t("audit.result"), exact=True).select_option("")
    page.get_by_label(t("audit.principal"), exact=True).fill("no-such-principal")
    page.get_by_role("button", name=t("btn.search"), exact=True).click()
    expect(page.get_by_text(t("audit.none"))).to_be_visible()

    page.get_by_role("button", name=t("audit.verify_now"), exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text(t("notice.audit_verified"))


def test_a_ram_user_without_lookup_events_is_refused(
    watched_page: Page, console_server: LiveServer, console_user: Any, sign_in: Callable[..., None]
) -> None:
    page, server = watched_page, console_server
    user = console_user(f"noaudit-{uuid.uuid4().hex[:8]}", ["AliyunKMSFullAccess"])
    sign_in(page, server, user.name, user.password, "en")
    response = page.goto(f"{server.url}/console/audit")
    assert response is not None and response.status == 403
    expect(page.get_by_role("alert")).to_contain_text("actiontrail:LookupEvents")
    expect(page.locator("tbody")).to_have_count(0)


def test_another_accounts_records_never_show(
    watched_page: Page,
    console_server: LiveServer,
    console_root: Any,
    sign_in: Callable[..., None],
    browser: Browser,
) -> None:
    page, server = watched_page, console_server
    sign_in(page, server, console_root.name, console_root.password, "en")
    page.goto(f"{server.url}/console/ram/users")  # the owner's account leaves records
    other = other_account(server)
    theirs, watch = second_page(browser)
    sign_in(theirs, server, other.sign_in_name, other.password, "en")
    theirs.goto(f"{server.url}/console/audit")
    principals = theirs.locator("tbody tr td:nth-child(3)").all_inner_texts()
    assert principals and all(f"::{other.account_id}:" in text for text in principals)
    assert console_root.name not in theirs.locator("tbody").inner_text()
    watch.check()
    theirs.context.close()
