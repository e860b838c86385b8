"""The Create Key panel in Chromium (F1.2, F2, F3, F4): symmetric and asymmetric keys in both
languages, the tag rules as you type and on the server, a custom key policy (checked through the SDK),
and what a user typed rendered as text when the server refuses it."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from openkms.console.terms import translate
from tests.support.sdk import KmsCaller
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

TERMS = {
    "create": "btn.create_key",
    "panel": "panel.create_key",
    "symmetric": "opt.symmetric",
    "asymmetric": "opt.asymmetric",
    "spec": "field.key_spec",
    "usage": "field.key_usage",
    "alias": "field.alias",
    "tag_key": "tag.key",
    "tag_value": "tag.value",
    "rotation": "field.rotation",
    "period": "field.rotation_period",
    "description": "field.description",
    "ok": "btn.ok",
}
WORDS = {lang: {name: translate(term, lang) for name, term in TERMS.items()} for lang in ("en", "zh")}
XSS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


@pytest.fixture(scope="module")
def kms(console_server: LiveServer) -> KmsCaller:
    return KmsCaller("tea-acs3", console_server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)


@pytest.fixture(scope="module")
def instance(kms: KmsCaller) -> str:
    return str(kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"])


def key_with_alias(kms: KmsCaller, alias: str) -> dict[str, Any]:
    filters = json.dumps([{"Key": "AliasName", "Values": [f"alias/{alias}"]}])
    [found] = kms.call("ListKeys", Filters=filters)["Keys"]["Key"]
    return dict(kms.call("DescribeKey", KeyId=found["KeyId"])["KeyMetadata"])


def open_panel(page: Page, server: LiveServer, root: Any, sign_in: Any, lang: str) -> dict[str, str]:
    sign_in(page, server, root.name, root.password, lang=lang)
    words = WORDS[lang]
    page.goto(f"{server.url}/console/keys")
    page.get_by_role("link", name=words["create"]).click()
    expect(page.get_by_role("heading", name=words["panel"])).to_be_visible()
    return words


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_create_symmetric_key(
    watched_page: Page,
    console_server: LiveServer,
    console_root: Any,
    sign_in: Any,
    kms: KmsCaller,
    lang: str,
) -> None:
    page = watched_page
    words = open_panel(page, console_server, console_root, sign_in, lang)
    alias = f"sym-{uuid.uuid4().hex[:10]}"
    expect(page.get_by_label(words["symmetric"], exact=True)).to_be_checked()
    page.get_by_label(words["spec"]).select_option("Aliyun_AES_256")
    page.get_by_label(words["alias"]).fill(alias)
    page.get_by_label(words["tag_key"]).first.fill("team")
    page.get_by_label(words["tag_value"]).first.fill("blue")
    expect(page.get_by_label(words["rotation"])).to_be_checked()
    page.get_by_label(words["period"]).fill("30")
    page.get_by_label(words["description"]).fill("orders")
    page.get_by_role("main").get_by_role("button", name=words["ok"], exact=True).click()
    expect(page.get_by_role("status")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=f"alias/{alias}")).to_be_visible()

    meta = key_with_alias(kms, alias)
    assert (meta["KeySpec"], meta["KeyUsage"], meta["Description"]) == (
        "Aliyun_AES_256",
        "ENCRYPT/DECRYPT",
        "orders",
    )
    assert (meta["AutomaticRotation"], meta["RotationInterval"]) == ("Enabled", f"{30 * 86400}s")
    tags = kms.call("ListResourceTags", KeyId=meta["KeyId"])["Tags"]["Tag"]
    assert [(tag["TagKey"], tag["TagValue"]) for tag in tags] == [("team", "blue")]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_create_asymmetric_key(
    watched_page: Page,
    console_server: LiveServer,
    console_root: Any,
    sign_in: Any,
    kms: KmsCaller,
    lang: str,
) -> None:
    page = watched_page
    words = open_panel(page, console_server, console_root, sign_in, lang)
    alias = f"asym-{uuid.uuid4().hex[:10]}"
    page.get_by_label(words["asymmetric"], exact=True).check()
    spec = page.get_by_label(words["spec"])
    expect(spec.locator("option[value=RSA_2048]")).to_have_count(1)
    expect(spec.locator("option[value=Aliyun_AES_256]")).to_have_count(0)
    expect(page.get_by_label(words["rotation"])).to_have_count(0)
    spec.select_option("EC_P256")
    page.get_by_label(words["usage"]).select_option("SIGN/VERIFY")
    page.get_by_label(words["alias"]).fill(alias)
    page.get_by_role("main").get_by_role("button", name=words["ok"], exact=True).click()
    expect(page.get_by_role("status")).to_be_visible()
    meta = key_with_alias(kms, alias)
    assert (meta["KeySpec"], meta["KeyUsage"], meta["AutomaticRotation"]) == (
        "EC_P256",
        "SIGN/VERIFY",
        "Disabled",
    )


def test_tag_rules_as_you_type_and_on_the_server(
    watched_page: Page,
    console_server: LiveServer,
    console_root: Any,
    sign_in: Any,
    kms: KmsCaller,
) -> None:
    page = watched_page
    words = open_panel(page, console_server, console_root, sign_in, "en")
    alias = f"tags-{uuid.uuid4().hex[:10]}"
    page.get_by_label(words["alias"]).fill(alias)
    tag_key = page.get_by_label(words["tag_key"]).first
    tag_key.fill("aliyun:owner")
    assert tag_key.evaluate("input => input.validationMessage") == translate("tag.msg_reserved", "en")
    value = page.get_by_label(words["tag_value"]).first
    value.fill("a*b")
    assert value.evaluate("input => input.validationMessage") == translate("tag.msg_chars", "en")
    page.get_by_role("main").get_by_role("button", name=words["ok"], exact=True).click()
    expect(page.get_by_role("heading", name=words["panel"])).to_be_visible()  # not sent

    # More rows come from the Add Tag button.
    rows = page.get_by_label(words["tag_key"])
    before = rows.count()
    page.get_by_role("button", name=translate("tag.add", "en")).click()
    expect(rows).to_have_count(before + 1)

    # Without the browser's check, the server refuses the same tag with the API's answer, in place.
    tag_key.evaluate("input => { delete input.dataset.tagKey; input.setCustomValidity(''); }")
    value.evaluate("input => { delete input.dataset.tagValue; input.setCustomValidity(''); }")
    value.fill("fine")
    page.get_by_role("main").get_by_role("button", name=words["ok"], exact=True).click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("InvalidParameter")
    expect(page.get_by_label(words["tag_key"]).first).to_have_value("aliyun:owner")
    filters = json.dumps([{"Key": "AliasName", "Values": [f"alias/{alias}"]}])
    assert kms.call("ListKeys", Filters=filters)["TotalCount"] == 0

    # The language switch on a refused form's answer goes back to the panel, not to the POST URL.
    page.get_by_role("link", name="中文").click()
    expect(page).to_have_url(re.compile(r"/console/keys/create(\?instance=[\w-]+)?$"))
    expect(page.get_by_role("heading", name=WORDS["zh"]["panel"])).to_be_visible()


def test_custom_policy_and_screenshot(
    watched_page: Page,
    console_server: LiveServer,
    console_root: Any,
    sign_in: Any,
    kms: KmsCaller,
    console_user: Any,
    screenshot: Any,
) -> None:
    admin, user = f"admin{uuid.uuid4().hex[:6]}", f"user{uuid.uuid4().hex[:6]}"
    console_user(admin)
    console_user(user)
    page = watched_page
    words = open_panel(page, console_server, console_root, sign_in, "en")
    alias = f"policy-{uuid.uuid4().hex[:10]}"
    page.get_by_label(words["symmetric"], exact=True).check()
    page.get_by_label(words["alias"]).fill(alias)
    page.get_by_label(words["tag_key"]).first.fill("team")
    page.get_by_label(words["tag_value"]).first.fill("payments")
    page.get_by_label(words["description"]).fill("payments ledger")
    page.get_by_text("Advanced Settings").click()
    page.get_by_label("Custom Policy").check()
    page.get_by_role("group", name="Key Administrators").get_by_label(f"user/{admin}", exact=True).check()
    page.get_by_role("group", name="Key Users").get_by_label(f"user/{user}", exact=True).check()
    page.get_by_label("Users of Other Accounts").fill(
        "acs:ram::1111222233334444:user/partner\nacs:ram::1111222233334444:role/ops"
    )
    expect(page.locator("#quota")).to_have_text(re.compile(r"\b1$"))
    page.get_by_label("Users of Other Accounts").fill(
        "acs:ram::1111222233334444:user/partner\nacs:ram::5555666677778888:role/ops"
    )
    expect(page.locator("#quota")).to_have_text(re.compile(r"\b2$"))
    screenshot(page, "create-key")
    page.get_by_role("main").get_by_role("button", name=words["ok"], exact=True).click()
    expect(page.get_by_role("status")).to_be_visible()

    meta = key_with_alias(kms, alias)
    policy = json.loads(kms.call("GetKeyPolicy", KeyId=meta["KeyId"], PolicyName="default")["Policy"])
    by_sid = {statement["Sid"]: statement for statement in policy["Statement"]}
    account = meta["Arn"].split(":")[3]
    assert by_sid["Key Administrators"]["Principal"]["RAM"] == [f"acs:ram::{account}:user/{admin}"]
    assert "kms:ScheduleKeyDeletion" in by_sid["Key Administrators"]["Action"]
    assert by_sid["Key Users"]["Principal"]["RAM"] == [f"acs:ram::{account}:user/{user}"]
    assert "kms:Encrypt" in by_sid["Key Users"]["Action"]
    assert by_sid["Other Account Users"]["Principal"]["RAM"] == [
        "acs:ram::1111222233334444:user/partner",
        "acs:ram::5555666677778888:role/ops",
    ]


def test_typed_markup_renders_as_text(
    watched_page: Page,
    console_server: LiveServer,
    console_root: Any,
    sign_in: Any,
) -> None:
    page = watched_page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    words = open_panel(page, console_server, console_root, sign_in, "en")
    page.get_by_label(words["alias"]).fill(XSS[1])
    page.get_by_label(words["description"]).fill(XSS[0])
    page.get_by_text("Advanced Settings").click()
    page.get_by_label("Custom Policy").check()
    page.get_by_label("Users of Other Accounts").fill(XSS[1])
    page.get_by_role("main").get_by_role("button", name=words["ok"], exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("InvalidParameter")  # the alias, refused
    expect(page.get_by_label(words["alias"])).to_have_value(XSS[1])
    expect(page.get_by_label(words["description"])).to_have_value(XSS[0])
    expect(page.get_by_label("Users of Other Accounts")).to_have_value(XSS[1])
    assert page.locator("img[src=x]").count() == 0
    assert page.locator("main script").count() == 0
    assert dialogs == []
