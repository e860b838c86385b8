"""The Instances page in Chromium: an instance's kind, keys and access quota; its owner shares it
with another account, whose root then sees it, and stops sharing; a RAM user without the
permission is refused."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.console.admin_support import other_account, second_page, words
from tests.support.server import LiveServer


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_owner_shares_an_instance_and_the_other_root_sees_it(
    watched_page: Page,
    console_server: LiveServer,
    console_root: Any,
    sign_in: Callable[..., None],
    browser: Browser,
    lang: str,
) -> None:
    t, page, server = words(lang), watched_page, console_server
    guest = other_account(server)
    sign_in(page, server, console_root.name, console_root.password, lang)
    page.get_by_role("link", name=t("nav.instances"), exact=True).click()
    expect(page.get_by_role("heading", name=t("nav.instances"), exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name=t("inst.kind.openkms_software"), exact=True).first).to_be_visible()
    expect(page.get_by_role("cell", name="/ 10").first).to_be_visible()  # access quota: used / total
    instance_id = page.locator("tbody code").first.inner_text()
    assert instance_id.startswith("kst-")

    page.get_by_label(t("inst.account_id"), exact=True).first.fill(guest.account_id)
    page.get_by_role("button", name=t("inst.share"), exact=True).first.click()
    expect(page.get_by_role("status").first).to_contain_text(t("notice.instance_shared"))
    expect(page.get_by_role("listitem").filter(has_text=guest.account_id)).to_be_visible()

    theirs, watch = second_page(browser)
    sign_in(theirs, server, guest.sign_in_name, guest.password, lang)
    theirs.goto(f"{server.url}/console/instances")
    shared = theirs.get_by_role("row").filter(has_text=instance_id)
    expect(shared).to_be_visible()
    expect(shared).to_contain_text(console_root.name)  # the owner's account
    watch.check()

    page.get_by_role("button", name=f"{t('inst.unshare')} {guest.account_id}").click()
    expect(page.get_by_role("status").first).to_contain_text(t("notice.instance_unshared"))
    expect(page.get_by_role("listitem").filter(has_text=guest.account_id)).to_have_count(0)
    theirs.reload()
    expect(theirs.get_by_text(instance_id)).to_have_count(0)
    expect(theirs.get_by_text(t("inst.none_shared_with_me"))).to_be_visible()
    watch.check()
    theirs.context.close()


def test_a_ram_user_without_the_permission_may_not_share(
    watched_page: Page, console_server: LiveServer, console_user: Any, sign_in: Callable[..., None]
) -> None:
    page, server = watched_page, console_server
    user = console_user(f"viewer-{uuid.uuid4().hex[:8]}", ["AliyunKMSReadOnlyAccess"])
    sign_in(page, server, user.name, user.password, "en")
    page.goto(f"{server.url}/console/instances")
    page.get_by_label("Account ID", exact=True).first.fill("1" * 16)
    with page.expect_response(lambda response: response.url.endswith("/share")) as answer:
        page.get_by_role("button", name="Share", exact=True).first.click()
    assert answer.value.status == 403
    alert = page.get_by_role("alert").first
    expect(alert).to_contain_text("kms:ShareKmsInstance")
    expect(alert).to_contain_text("ImplicitDeny")
