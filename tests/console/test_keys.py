"""The Keys page in Chromium: the key list with its filters and paging, the Disable Key and Schedule
Key Deletion dialogs, Enable and Cancel Key Deletion, the Default Keys tab, and a key user refused
(F5.1, F5.3, F1.1, F9.1). Keys are made quickly through the SDK; the console does the flow under test.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from openkms.console.terms import translate
from openkms.policy.key_policy import custom_key_policy
from tests.support.sdk import KmsCaller
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

TERMS = {
    "disable": "act.disable",
    "enable": "act.enable",
    "schedule": "act.schedule_deletion",
    "dlg_schedule": "dlg.schedule_deletion",
    "cancel_deletion": "act.cancel_deletion",
    "dlg_disable": "dlg.disable",
    "associations": "link.associations",
    "ok": "btn.ok",
    "days": "field.pending_window",
    "disabled": "state.Disabled",
    "pending": "state.PendingDeletion",
    "enabled": "state.Enabled",
}
WORDS = {lang: {name: translate(term, lang) for name, term in TERMS.items()} for lang in ("en", "zh")}


@pytest.fixture(scope="module")
def kms(console_server: LiveServer) -> KmsCaller:
    return KmsCaller("tea-acs3", console_server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)


@pytest.fixture(scope="module")
def instance(kms: KmsCaller) -> str:
    return str(kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"])


def new_key(kms: KmsCaller, instance: str, **params: Any) -> tuple[str, str]:
    """A key with a fresh alias: (key id, alias name without the prefix)."""
    key_id = str(kms.call("CreateKey", DKMSInstanceId=instance, **params)["KeyMetadata"]["KeyId"])
    alias = f"ui-{uuid.uuid4().hex[:10]}"
    kms.call("CreateAlias", KeyId=key_id, AliasName=f"alias/{alias}")
    return key_id, alias


def state_of(kms: KmsCaller, key_id: str) -> str:
    return str(kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["KeyState"])


def signed_in(page: Page, server: LiveServer, root: Any, sign_in: Any, lang: str) -> Page:
    sign_in(page, server, root.name, root.password, lang=lang)
    return page


def test_list_filters_paging_and_screenshot(
    watched_page: Page,
    console_server: LiveServer,
    console_root: Any,
    sign_in: Any,
    kms: KmsCaller,
    instance: str,
    screenshot: Any,
) -> None:
    batch = uuid.uuid4().hex[:12]
    made = []
    for number in range(12):
        key_id = str(
            kms.call(
                "CreateKey",
                DKMSInstanceId=instance,
                KeySpec="RSA_2048" if number % 4 == 3 else "Aliyun_AES_256",
                Tags=json.dumps([{"TagKey": "batch", "TagValue": batch}]),
            )["KeyMetadata"]["KeyId"]
        )
        made.append(key_id)
    kms.call("DisableKey", KeyId=made[1])
    kms.call("ScheduleKeyDeletion", KeyId=made[2], PendingWindowInDays=7)
    kms.call("CreateAlias", KeyId=made[0], AliasName=f"alias/list-{batch}")
    page = signed_in(watched_page, console_server, console_root, sign_in, "en")

    page.goto(f"{console_server.url}/console/keys?instance={instance}&tag_key=batch&tag_value={batch}")
    rows = page.locator("table.grid tbody tr")
    expect(rows).to_have_count(10)
    expect(page.locator("nav.paging")).to_contain_text("1 / 2")
    expect(page.get_by_role("row").filter(has_text=made[1])).to_contain_text("Disabled")
    expect(page.get_by_role("row").filter(has_text=made[2])).to_contain_text("Pending Deletion")
    expect(page.get_by_role("row").filter(has_text=made[0])).to_contain_text(f"alias/list-{batch}")
    screenshot(page, "key-list")
    page.get_by_role("link", name="中文").click()  # the same list in the guide's Chinese words
    expect(page.get_by_role("row").filter(has_text=made[2])).to_contain_text(
        translate("state.PendingDeletion", "zh")
    )
    screenshot(page, "key-list-zh")
    page.get_by_role("link", name="English").click()
    page.get_by_role("link", name=translate("paging.next", "en")).click()
    expect(rows).to_have_count(2)
    expect(page.locator("nav.paging")).to_contain_text("2 / 2")

    page.get_by_label(translate("col.state", "en")).select_option("Disabled")
    page.get_by_role("button", name=translate("btn.search", "en")).click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(made[1])

    page.get_by_label(translate("col.state", "en")).select_option("")
    page.get_by_label(translate("field.key_spec", "en")).select_option("RSA_2048")
    page.get_by_role("button", name=translate("btn.search", "en")).click()
    expect(rows).to_have_count(3)

    page.get_by_label(translate("field.key_spec", "en")).select_option("")
    page.get_by_label("Tag Key").fill("")
    page.get_by_label("Tag Value").fill("")
    page.get_by_label("Key ID or Alias").fill(f"list-{batch}")
    page.get_by_role("button", name=translate("btn.search", "en")).click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(made[0])
    page.get_by_label("Key ID or Alias").fill(made[5])
    page.get_by_role("button", name=translate("btn.search", "en")).click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(made[5])


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_disable_with_the_dialog_then_enable(
    watched_page: Page,
    console_server: LiveServer,
    console_root: Any,
    sign_in: Any,
    kms: KmsCaller,
    instance: str,
    lang: str,
) -> None:
    words = WORDS[lang]
    key_id, alias = new_key(kms, instance)
    page = signed_in(watched_page, console_server, console_root, sign_in, lang)
    page.goto(f"{console_server.url}/console/keys?instance={instance}&q={alias}")
    row = page.get_by_role("row").filter(has_text=key_id)
    row.get_by_role("button", name=words["disable"], exact=True).click()
    dialog = page.get_by_role("dialog", name=words["dlg_disable"])
    expect(dialog).to_be_visible()
    link = dialog.get_by_role("link", name=words["associations"])
    expect(link).to_have_attribute("href", f"/console/keys/{key_id}?tab=associations")
    dialog.get_by_role("button", name=words["ok"]).click()
    expect(page.get_by_role("status")).to_be_visible()
    assert state_of(kms, key_id) == "Disabled"
    row = page.get_by_role("row").filter(has_text=key_id)
    expect(row).to_contain_text(words["disabled"])
    row.get_by_role("button", name=words["enable"], exact=True).click()
    expect(page.get_by_role("row").filter(has_text=key_id)).to_contain_text(words["enabled"])
    assert state_of(kms, key_id) == "Enabled"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_schedule_deletion_range_then_cancel(
    watched_page: Page,
    console_server: LiveServer,
    console_root: Any,
    sign_in: Any,
    kms: KmsCaller,
    instance: str,
    lang: str,
) -> None:
    words = WORDS[lang]
    key_id, alias = new_key(kms, instance)
    page = signed_in(watched_page, console_server, console_root, sign_in, lang)
    page.goto(f"{console_server.url}/console/keys?instance={instance}&q={alias}")
    row = page.get_by_role("row").filter(has_text=key_id)
    row.get_by_role("button", name=words["schedule"]).click()
    dialog = page.get_by_role("dialog", name=words["dlg_schedule"])
    days = dialog.get_by_label(words["days"])
    expect(days).to_have_value("30")
    days.fill("400")
    dialog.get_by_role("button", name=words["ok"]).click()
    assert days.evaluate("input => input.validity.rangeOverflow")
    days.fill("6")
    dialog.get_by_role("button", name=words["ok"]).click()
    assert days.evaluate("input => input.validity.rangeUnderflow")
    assert state_of(kms, key_id) == "Enabled"

    # The server refuses it too (a form sent without the browser's check): the API's answer, in place.
    token = dialog.locator("input[name=csrf_token]").input_value()
    answer = page.request.post(
        f"{console_server.url}/console/keys/{key_id}/schedule-deletion",
        form={"csrf_token": token, "PendingWindowInDays": "400", "back": f"q={alias}"},
    )
    assert answer.status == 400
    assert "InvalidParameter" in answer.text()
    assert state_of(kms, key_id) == "Enabled"

    days.fill("7")
    dialog.get_by_role("button", name=words["ok"]).click()
    row = page.get_by_role("row").filter(has_text=key_id)
    expect(row).to_contain_text(words["pending"])
    assert state_of(kms, key_id) == "PendingDeletion"
    row.get_by_role("button", name=words["cancel_deletion"]).click()
    expect(page.get_by_role("row").filter(has_text=key_id)).to_contain_text(words["enabled"])
    assert state_of(kms, key_id) == "Enabled"


def test_key_user_cannot_schedule_deletion(
    watched_page: Page,
    console_server: LiveServer,
    console_user: Any,
    sign_in: Any,
    kms: KmsCaller,
    instance: str,
) -> None:
    reader = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["kms:List*", "kms:Describe*", "kms:Get*"],
                "Resource": ["*"],
            }
        ],
    }
    user_name = f"keyuser{uuid.uuid4().hex[:6]}"
    user = console_user(user_name, [reader])
    account = user.account_id
    policy = custom_key_policy(account, users=[f"acs:ram::{account}:user/{user_name}"])
    key_id, alias = new_key(kms, instance, Policy=policy)
    sign_in(watched_page, console_server, user.name, user.password)
    page = watched_page
    page.goto(f"{console_server.url}/console/keys?instance={instance}&q={alias}")
    row = page.get_by_role("row").filter(has_text=key_id)
    row.get_by_role("button", name="Schedule Key Deletion").click()
    page.get_by_role("dialog", name="Schedule Key Deletion").get_by_role("button", name="OK").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Forbidden")
    expect(alert).to_contain_text("ScheduleKeyDeletion")
    expect(alert.locator("dl.denied")).to_be_visible()
    assert state_of(kms, key_id) == "Enabled"


def test_a_ram_policy_alone_lets_a_user_of_the_account_disable_the_key(
    watched_page: Page,
    console_server: LiveServer,
    console_user: Any,
    sign_in: Any,
    kms: KmsCaller,
    instance: str,
) -> None:
    """The console decides as the API (Alibaba's same-account rule): the key policy names neither the
    user nor the account, and the user's RAM policy allows DisableKey on this key: allowed."""
    words = WORDS["en"]
    user_name = f"ramonly{uuid.uuid4().hex[:6]}"
    account = kms.call("DescribeKey", KeyId=new_key(kms, instance)[0])["KeyMetadata"]["Arn"].split(":")[3]
    others_only = json.loads(custom_key_policy(account, users=[f"acs:ram::{account}:user/someone-else"]))
    others_only["Statement"] = [s for s in others_only["Statement"] if s["Sid"] != "kms default key policy"]
    key_id, alias = new_key(kms, instance, Policy=json.dumps(others_only))
    key_arn = f"acs:kms:*:{account}:key/{key_id}"
    reader = {"Effect": "Allow", "Action": ["kms:List*", "kms:Describe*", "kms:Get*"], "Resource": ["*"]}
    disabler = {"Effect": "Allow", "Action": ["kms:DisableKey"], "Resource": [key_arn]}
    user = console_user(user_name, [{"Version": "1", "Statement": [reader, disabler]}])
    sign_in(watched_page, console_server, user.name, user.password)
    page = watched_page
    page.goto(f"{console_server.url}/console/keys?instance={instance}&q={alias}")
    row = page.get_by_role("row").filter(has_text=key_id)
    row.get_by_role("button", name=words["disable"], exact=True).click()
    page.get_by_role("dialog", name=words["dlg_disable"]).get_by_role("button", name=words["ok"]).click()
    expect(page.get_by_role("status")).to_be_visible()
    assert state_of(kms, key_id) == "Disabled"


def test_default_key_external_needs_the_acknowledgement(
    watched_page: Page,
    console_server: LiveServer,
    console_root: Any,
    sign_in: Any,
    kms: KmsCaller,
) -> None:
    page = signed_in(watched_page, console_server, console_root, sign_in, "en")
    page.goto(f"{console_server.url}/console/keys")
    page.get_by_role("link", name="Default Keys").click()
    expect(page.get_by_role("heading", name="Service Keys")).to_be_visible()
    alias = f"cmk-{uuid.uuid4().hex[:8]}"
    page.get_by_label("Key Alias").fill(alias)
    page.get_by_label("Description").fill("the region's key")
    page.get_by_text("Advanced Settings").click()
    page.get_by_label("External (Import Key Material)").check()
    ack = page.get_by_label("I understand the implications of using the external key materials")
    expect(ack).to_be_visible()
    page.get_by_role("button", name="Enable", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Tick the acknowledgement")
    # Nothing was made: the form is still there, with what was typed.
    expect(page.get_by_label("Key Alias")).to_have_value(alias)
    page.get_by_label("I understand the implications of using the external key materials").check()
    page.get_by_role("button", name="Enable", exact=True).click()
    expect(page.get_by_role("status")).to_be_visible()
    row = page.get_by_role("row").filter(has_text=f"alias/{alias}")
    expect(row).to_contain_text("Pending Import")
    key_id = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", row.inner_text())
    assert key_id is not None
    meta = kms.call("DescribeKey", KeyId=key_id.group(0))["KeyMetadata"]
    assert (meta["Origin"], meta["KeyState"], "DKMSInstanceId" in meta) == (
        "EXTERNAL",
        "PendingImport",
        False,
    )
