"""The Secrets pages in Chromium (issue 19): the list with its search and paging, Create Secret (text
and binary), the value behind the reveal step (absent from the details page, shown after the
confirmation, audited as GetSecretValue), a new version and a stage moved, the secret policy, a
managed secret's rotation policy, scheduling deletion and restoring, a forced deletion that asks for
the name, a user without permission refused, and both languages (and switching between them). Secrets
are checked through the SDK after each flow."""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from openkms.console.terms import translate
from tests.support.postgres_roles import scratch_role
from tests.support.sdk import KmsCaller, KmsError
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer


def words(lang: str) -> dict[str, str]:
    ids = {
        "create": "btn.create_secret",
        "name": "sec.col.name",
        "value": "sec.value",
        "version_id": "sec.version_id",
        "key": "sec.encryption_key",
        "ok": "btn.ok",
        "reveal": "sec.reveal",
        "show": "sec.reveal_show",
        "which": "sec.reveal_which",
        "binary": "sec.type.binary",
        "new_version": "sec.new_version",
        "stages": "sec.stages",
        "move_stage": "sec.move_stage",
        "stage": "sec.stage",
        "move_to": "sec.move_to",
        "remove_from": "sec.remove_from",
        "policy": "sec.policy",
        "policy_save": "sec.policy_save",
        "policy_edit": "sec.policy_edit",
        "description": "field.description",
        "tag_key": "tag.key",
        "tag_value": "tag.value",
        "instance": "field.instance",
        "title": "sec.title",
        "rotation": "field.rotation",
        "rotation_period": "field.rotation_period",
        "rotation_edit": "sec.rotation_edit",
        "next_rotation": "sec.next_rotation",
        "schedule": "sec.schedule",
        "days": "sec.recovery_days",
        "restore": "sec.restore",
        "force": "sec.force",
        "force_confirm": "sec.force_confirm",
        "pending": "state.PendingDeletion",
        "search": "btn.search",
        "next": "paging.next",
        "details": "act.details",
    }
    return {name: translate(term, lang) for name, term in ids.items()}


@pytest.fixture(scope="module")
def kms(console_server: LiveServer) -> KmsCaller:
    return KmsCaller("tea-acs3", console_server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)


@pytest.fixture(scope="module")
def key_id(kms: KmsCaller) -> str:
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    return str(kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"])


def new_secret(kms: KmsCaller, key_id: str, value: str = "s3cret-value", **params: Any) -> str:
    name = f"ui/{uuid.uuid4().hex[:10]}"
    kms.call(
        "CreateSecret", SecretName=name, VersionId="v1", SecretData=value, EncryptionKeyId=key_id, **params
    )
    return name


def details_url(server: LiveServer, name: str) -> str:
    return f"{server.url}/console/secrets/details?name={name}"


def audit_text(server: LiveServer) -> str:
    return "\n".join(path.read_text() for path in sorted((server.data_dir / "audit").glob("*.jsonl")))


def signed_in(page: Page, server: LiveServer, root: Any, sign_in: Any, lang: str = "en") -> Page:
    sign_in(page, server, root.name, root.password, lang=lang)
    return page


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_create_text_and_binary_then_reveal(
    watched_page: Page,
    console_server: LiveServer,
    console_root: Any,
    sign_in: Any,
    kms: KmsCaller,
    key_id: str,
    lang: str,
    screenshot: Any,
) -> None:
    w = words(lang)
    page = signed_in(watched_page, console_server, console_root, sign_in, lang)
    page.goto(f"{console_server.url}/console/secrets")
    page.get_by_role("link", name=w["create"]).click()
    name = f"ui/{uuid.uuid4().hex[:10]}"
    page.get_by_label(w["name"]).fill(name)
    page.get_by_label(w["value"]).fill("Pa55-word&=")
    page.get_by_label(w["version_id"]).fill("v1")
    page.get_by_label(w["key"]).select_option(key_id)
    page.get_by_label(w["description"]).fill("db password")
    page.get_by_label(w["tag_key"]).fill("team")
    page.get_by_label(w["tag_value"]).fill("payments")
    page.get_by_role("button", name=w["ok"]).click()
    expect(page.get_by_role("status")).to_be_visible()
    got = kms.call("GetSecretValue", SecretName=name)
    assert (got["SecretData"], got["VersionId"], got["SecretDataType"]) == ("Pa55-word&=", "v1", "text")
    described = kms.call("DescribeSecret", SecretName=name, FetchTags=True)
    assert (described["EncryptionKeyId"], described["Description"]) == (key_id, "db password")
    assert described["Tags"]["Tag"] == [{"TagKey": "team", "TagValue": "payments"}]
    expect(page.locator("#secret-tags")).to_contain_text("payments")

    # The details page never carries the value; the reveal step does, after its confirmation.
    assert "Pa55-word" not in page.content()
    screenshot(page, f"secret-details-{lang}")
    page.get_by_role("button", name=w["reveal"]).click()
    dialog = page.get_by_role("dialog", name=w["reveal"])
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name=w["show"]).click()
    expect(page.locator("#secret-value")).to_have_text("Pa55-word&=")
    expect(page.locator("#value-stages")).to_contain_text("ACSCurrent")

    # A binary secret: base64 in, the same bytes stored, base64 shown.
    binary_name = f"ui/{uuid.uuid4().hex[:10]}"
    raw = b"\x00\x01binary\xff"
    page.goto(f"{console_server.url}/console/secrets/create")
    page.get_by_label(w["name"]).fill(binary_name)
    page.get_by_label(w["binary"]).check()
    page.get_by_label(w["value"]).fill(base64.b64encode(raw).decode())
    page.get_by_label(w["version_id"]).fill("b1")
    page.get_by_label(w["key"]).select_option(key_id)
    page.get_by_role("button", name=w["ok"]).click()
    expect(page.get_by_role("status")).to_be_visible()
    got = kms.call("GetSecretValue", SecretName=binary_name)
    assert got["SecretDataType"] == "binary" and base64.b64decode(got["SecretData"]) == raw
    page.get_by_role("button", name=w["reveal"]).click()
    page.get_by_role("dialog", name=w["reveal"]).get_by_role("button", name=w["show"]).click()
    expect(page.locator("#secret-value")).to_have_text(base64.b64encode(raw).decode())

    # The values typed went to the API only: not into the server's log nor any audit record.
    assert "Pa55-word" not in console_server.log()
    assert "Pa55-word" not in audit_text(console_server)


def test_reveal_is_audited_and_not_cached(
    watched_page: Page,
    console_server: LiveServer,
    console_root: Any,
    sign_in: Any,
    kms: KmsCaller,
    key_id: str,
) -> None:
    name = new_secret(kms, key_id, "audited-value")
    page = signed_in(watched_page, console_server, console_root, sign_in)
    page.goto(details_url(console_server, name))
    page.get_by_role("button", name=words("en")["reveal"]).click()
    with page.expect_response(lambda answer: answer.url.endswith("/console/secrets/value")) as caught:
        page.get_by_role("dialog").get_by_role("button", name=words("en")["show"]).click()
    answer = caught.value
    assert answer.status == 200 and "no-store" in answer.headers.get("cache-control", "")
    expect(page.locator("#secret-value")).to_have_text("audited-value")
    lines = [
        line
        for path in sorted((console_server.data_dir / "audit").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    reads = [
        json.loads(line)
        for line in lines
        if '"GetSecretValue"' in line and name in line and '"console"' in line
    ]
    assert reads, "the reveal is recorded as GetSecretValue through the console door"
    assert all("audited-value" not in json.dumps(record) for record in reads)


def test_new_version_and_stage_move(
    watched_page: Page,
    console_server: LiveServer,
    console_root: Any,
    sign_in: Any,
    kms: KmsCaller,
    key_id: str,
) -> None:
    w = words("en")
    name = new_secret(kms, key_id, "first")
    page = signed_in(watched_page, console_server, console_root, sign_in)
    page.goto(details_url(console_server, name))
    page.get_by_text(w["new_version"]).click()
    form = page.locator("#new-version")
    form.get_by_label(w["version_id"]).fill("v2")
    form.get_by_label(w["value"]).fill("second")
    form.get_by_role("button", name=w["ok"]).click()
    expect(page.get_by_role("status")).to_be_visible()
    expect(page.locator("tr[data-version=v2]")).to_contain_text("ACSCurrent")
    expect(page.locator("tr[data-version=v1]")).to_contain_text("ACSPrevious")
    assert kms.call("GetSecretValue", SecretName=name)["SecretData"] == "second"

    # Roll back: ACSCurrent moves to v1 (and off v2).
    page.get_by_text(w["move_stage"]).click()
    move = page.locator("#move-stage")
    move.get_by_label(w["stage"]).fill("ACSCurrent")
    move.get_by_label(w["move_to"]).select_option("v1")
    move.get_by_label(w["remove_from"]).select_option("v2")
    move.get_by_role("button", name=w["ok"]).click()
    expect(page.get_by_role("status")).to_be_visible()
    expect(page.locator("tr[data-version=v1]")).to_contain_text("ACSCurrent")
    assert kms.call("GetSecretValue", SecretName=name)["SecretData"] == "first"

    # A version id that exists is refused in place, with the API's answer, and changes nothing.
    page.get_by_text(w["new_version"]).click()
    form.get_by_label(w["version_id"]).fill("v2")
    form.get_by_label(w["value"]).fill("third")
    with page.expect_response(lambda answer: answer.url.endswith("/console/secrets/versions")) as caught:
        form.get_by_role("button", name=w["ok"]).click()
    assert caught.value.status >= 400
    expect(page.locator("#versions [role=alert]")).to_be_visible()
    assert "third" not in page.content()  # a value typed is never echoed back
    versions = kms.call("ListSecretVersionIds", SecretName=name)["VersionIds"]["VersionId"]
    assert sorted(version["VersionId"] for version in versions) == ["v1", "v2"]


def test_policy_edit(
    watched_page: Page,
    console_server: LiveServer,
    console_root: Any,
    sign_in: Any,
    kms: KmsCaller,
    key_id: str,
) -> None:
    w = words("en")
    name = new_secret(kms, key_id)
    account = console_root.account_id
    policy = {
        "Version": "1",
        "Statement": [
            {
                "Sid": "console-test",
                "Effect": "Allow",
                "Principal": {"RAM": [f"acs:ram::{account}:root"]},
                "Action": ["kms:*"],
                "Resource": ["*"],
            }
        ],
    }
    page = signed_in(watched_page, console_server, console_root, sign_in)
    page.goto(details_url(console_server, name))
    page.get_by_text(w["policy_edit"]).click()
    page.get_by_role("textbox", name=w["policy"]).fill(json.dumps(policy))
    page.get_by_role("button", name=w["policy_save"]).click()
    expect(page.get_by_role("status")).to_be_visible()
    saved = json.loads(kms.call("GetSecretPolicy", SecretName=name)["Policy"])
    assert saved["Statement"][0]["Sid"] == "console-test"
    expect(page.locator("#policy-document")).to_contain_text("console-test")

    page.get_by_text(w["policy_edit"]).click()
    page.get_by_role("textbox", name=w["policy"]).fill("{not json")
    page.get_by_role("button", name=w["policy_save"]).click()
    expect(page.locator("#policy [role=alert]")).to_contain_text("MalformedPolicyDocument")
    assert (
        json.loads(kms.call("GetSecretPolicy", SecretName=name)["Policy"])["Statement"][0]["Sid"]
        == "console-test"
    )


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_schedule_deletion_restore_and_force(
    watched_page: Page,
    console_server: LiveServer,
    console_root: Any,
    sign_in: Any,
    kms: KmsCaller,
    key_id: str,
    lang: str,
) -> None:
    w = words(lang)
    name = new_secret(kms, key_id)
    page = signed_in(watched_page, console_server, console_root, sign_in, lang)
    page.goto(details_url(console_server, name))
    page.get_by_role("button", name=w["schedule"]).click()
    dialog = page.get_by_role("dialog", name=w["schedule"])
    days = dialog.get_by_label(w["days"])
    expect(days).to_have_value("30")
    days.fill("7")
    dialog.get_by_role("button", name=w["ok"]).click()
    expect(page.get_by_role("status").first).to_be_visible()
    assert kms.call("DescribeSecret", SecretName=name).get("PlannedDeleteTime")
    with pytest.raises(KmsError):
        kms.call("GetSecretValue", SecretName=name)
    page.goto(f"{console_server.url}/console/secrets?q={name}")
    expect(page.get_by_role("row").filter(has_text=name)).to_contain_text(w["pending"])

    page.goto(details_url(console_server, name))
    page.get_by_role("button", name=w["restore"]).click()
    expect(page.get_by_role("status")).to_be_visible()
    assert "PlannedDeleteTime" not in kms.call("DescribeSecret", SecretName=name)
    assert kms.call("GetSecretValue", SecretName=name)["SecretData"] == "s3cret-value"

    # A forced deletion asks for the name again: a wrong one deletes nothing.
    page.get_by_role("button", name=w["force"]).click()
    force = page.get_by_role("dialog", name=w["force"])
    force.get_by_label(w["force_confirm"]).fill(name + "x")
    force.get_by_role("button", name=w["ok"]).click()
    expect(page.locator("#deletion [role=alert]")).to_be_visible()
    assert kms.call("DescribeSecret", SecretName=name)["SecretName"] == name
    page.get_by_role("button", name=w["force"]).click()
    force.get_by_label(w["force_confirm"]).fill(name)
    force.get_by_role("button", name=w["ok"]).click()
    expect(page.get_by_role("status")).to_be_visible()
    with pytest.raises(KmsError) as caught:
        kms.call("DescribeSecret", SecretName=name)
    assert caught.value.status == 404


def test_list_search_and_paging(
    watched_page: Page,
    console_server: LiveServer,
    console_root: Any,
    sign_in: Any,
    kms: KmsCaller,
    key_id: str,
) -> None:
    w = words("en")
    batch = uuid.uuid4().hex[:8]
    names = []
    for number in range(12):
        name = f"list-{batch}/{number:02d}"
        kms.call("CreateSecret", SecretName=name, VersionId="v1", SecretData="x", EncryptionKeyId=key_id)
        names.append(name)
    page = signed_in(watched_page, console_server, console_root, sign_in)
    page.goto(f"{console_server.url}/console/secrets")
    page.get_by_role("searchbox", name=w["name"]).fill(names[3])
    page.get_by_role("button", name=w["search"]).click()
    rows = page.locator("#secrets tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(names[3])
    rows.first.get_by_role("link", name=w["details"]).click()
    expect(page.locator("h1")).to_contain_text(names[3])
    expect(page.locator("tr[data-version=v1]")).to_be_visible()

    page.goto(f"{console_server.url}/console/secrets?page=1")
    total = kms.call("ListSecrets", PageSize=1)["TotalCount"]
    expect(rows).to_have_count(min(10, total))
    expect(page.locator("nav.paging")).to_contain_text(f"1 / {(total + 9) // 10}")


def test_a_user_without_permission_is_refused(
    watched_page: Page,
    console_server: LiveServer,
    console_user: Any,
    sign_in: Any,
    kms: KmsCaller,
    key_id: str,
) -> None:
    """A RAM user who may list and describe secrets but not read them: the reveal step answers the
    API's refusal in place, and nothing of the value reaches the page."""
    name = new_secret(kms, key_id, "not-for-you")
    reader = console_user(
        f"sec-{uuid.uuid4().hex[:8]}",
        policies=[
            {
                "Version": "1",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["kms:ListSecrets", "kms:DescribeSecret", "kms:ListSecretVersionIds"],
                        "Resource": ["*"],
                    }
                ],
            }
        ],
    )
    page = watched_page
    sign_in(page, console_server, reader.name, reader.password, lang="en")
    page.goto(details_url(console_server, name))
    page.get_by_role("button", name=words("en")["reveal"]).click()
    with page.expect_response(lambda answer: answer.url.endswith("/console/secrets/value")) as caught:
        page.get_by_role("dialog").get_by_role("button", name=words("en")["show"]).click()
    assert caught.value.status == 403
    expect(page.locator("#metadata [role=alert]")).to_contain_text("Forbidden.NoPermission")
    assert "not-for-you" not in page.content()

    # Scheduling deletion is refused in its section, and the secret is untouched.
    w = words("en")
    page.get_by_role("button", name=w["schedule"]).click()
    with page.expect_response(lambda answer: answer.url.endswith("/console/secrets/deletion")) as caught:
        page.get_by_role("dialog", name=w["schedule"]).get_by_role("button", name=w["ok"]).click()
    assert caught.value.status == 403
    expect(page.locator("#deletion [role=alert]")).to_contain_text("Forbidden.NoPermission")
    assert "PlannedDeleteTime" not in kms.call("DescribeSecret", SecretName=name)

    # So is Create Secret: the form comes back without the value, and no secret is made.
    made = f"ui/{uuid.uuid4().hex[:10]}"
    page.goto(f"{console_server.url}/console/secrets/create")
    page.get_by_label(w["name"]).fill(made)
    page.get_by_label(w["value"]).fill("typed-by-reader")
    with page.expect_response(lambda answer: answer.url.endswith("/console/secrets/create")) as caught:
        page.get_by_role("button", name=w["ok"]).click()
    assert caught.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text("Forbidden.NoPermission")
    expect(page.get_by_label(w["name"])).to_have_value(made)
    assert "typed-by-reader" not in page.content()
    with pytest.raises(KmsError) as missing:
        kms.call("DescribeSecret", SecretName=made)
    assert missing.value.status == 404


def test_the_key_select_offers_enabled_symmetric_keys_only(
    watched_page: Page,
    console_server: LiveServer,
    console_root: Any,
    sign_in: Any,
    kms: KmsCaller,
    key_id: str,
) -> None:
    """F2.1: a secret's key is symmetric. The select offers the enabled symmetric keys (and the
    secrets service key by default); an asymmetric key or a disabled one is not offered."""
    instance = kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["DKMSInstanceId"]
    rsa = kms.call("CreateKey", DKMSInstanceId=instance, KeySpec="RSA_2048", KeyUsage="SIGN/VERIFY")
    disabled = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
    kms.call("DisableKey", KeyId=disabled)
    w = words("en")
    page = signed_in(watched_page, console_server, console_root, sign_in)
    page.goto(f"{console_server.url}/console/secrets/create")
    offered = page.get_by_label(w["key"]).locator("option").evaluate_all("all => all.map(o => o.value)")
    assert offered[0] == "" and key_id in offered
    assert rsa["KeyMetadata"]["KeyId"] not in offered and disabled not in offered

    # The default: the secrets service key, which the API picks.
    name = f"ui/{uuid.uuid4().hex[:10]}"
    page.get_by_label(w["name"]).fill(name)
    page.get_by_label(w["value"]).fill("under-the-service-key")
    page.get_by_role("button", name=w["ok"]).click()
    expect(page.get_by_role("status")).to_be_visible()
    chosen = kms.call("DescribeSecret", SecretName=name)["EncryptionKeyId"]
    assert chosen and chosen != key_id
    expect(page.locator("#secret-key")).to_have_text(chosen)


def test_list_columns_and_instance_scope(
    watched_page: Page,
    console_server: LiveServer,
    console_root: Any,
    sign_in: Any,
    kms: KmsCaller,
    key_id: str,
) -> None:
    w = words("en")
    name = new_secret(kms, key_id, Description="listed with its key")
    instance = kms.call("DescribeSecret", SecretName=name)["DKMSInstanceId"]
    page = signed_in(watched_page, console_server, console_root, sign_in)
    page.goto(f"{console_server.url}/console/secrets")
    page.get_by_label(w["instance"]).select_option(instance)  # the choice submits itself
    expect(page).to_have_url(re.compile(f"instance={instance}"))
    page.get_by_role("searchbox", name=w["name"]).fill(name)
    page.get_by_role("button", name=w["search"]).click()
    row = page.locator(f'#secrets tr[data-secret="{name}"]')
    expect(row).to_contain_text(key_id)
    expect(row).to_contain_text("listed with its key")
    expect(row).to_contain_text("Generic")
    expect(page.get_by_label(w["instance"])).to_have_value(instance)
    in_instance = kms.call(
        "ListSecrets", PageSize=1, Filters=json.dumps([{"Key": "DKMSInstanceId", "Values": [instance]}])
    )["TotalCount"]
    page.goto(f"{console_server.url}/console/secrets?instance={instance}")
    expect(page.locator("#secrets tbody tr")).to_have_count(min(10, in_instance))
    expect(page.locator("nav.paging")).to_contain_text(f"1 / {(in_instance + 9) // 10}")


def test_switching_the_language_keeps_the_secret(
    watched_page: Page,
    console_server: LiveServer,
    console_root: Any,
    sign_in: Any,
    kms: KmsCaller,
    key_id: str,
) -> None:
    name = new_secret(kms, key_id)
    page = signed_in(watched_page, console_server, console_root, sign_in, "en")
    page.goto(details_url(console_server, name))
    expect(page.locator("h1")).to_have_text(f"{words('en')['title']}: {name}")
    page.get_by_role("link", name="中文").click()
    expect(page.locator("h1")).to_have_text(f"{words('zh')['title']}: {name}")
    expect(page.get_by_role("button", name=words("zh")["reveal"])).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("button", name=words("en")["reveal"])).to_be_visible()


def test_a_managed_secret_shows_and_edits_its_rotation(
    watched_page: Page,
    console_server: LiveServer,
    console_root: Any,
    sign_in: Any,
    kms: KmsCaller,
    key_id: str,
) -> None:
    """An OpenKMS.PostgreSQL secret on the real PostgreSQL: its rotation settings, and the rotation
    policy edited (a bad interval refused in place, changing nothing)."""
    w = words("en")
    with scratch_role() as role:
        name = f"pg/{uuid.uuid4().hex[:10]}"
        kms.call(
            "CreateSecret",
            SecretName=name,
            VersionId="v1",
            SecretType="OpenKMS.PostgreSQL",
            EncryptionKeyId=key_id,
            SecretData=json.dumps({"AccountName": role.role, "AccountPassword": role.password}),
            ExtendedConfig={
                "Host": "127.0.0.1",
                "Port": 5432,
                "DBName": role.database,
                "AccountName": role.role,
            },
        )
        page = signed_in(watched_page, console_server, console_root, sign_in)
        page.goto(details_url(console_server, name))
        rotation = page.locator("#rotation")
        expect(rotation).to_contain_text(w["rotation"])
        expect(rotation).to_contain_text(translate("sec.rotation.Disabled", "en"))
        assert role.password not in page.content()

        rotation.get_by_text(w["rotation_edit"]).click()
        rotation.get_by_label(w["rotation"]).check()
        rotation.get_by_label(w["rotation_period"]).fill("1s")
        with page.expect_response(lambda answer: answer.url.endswith("/console/secrets/rotation")) as caught:
            rotation.get_by_role("button", name=w["ok"]).click()
        assert caught.value.status == 400
        expect(page.locator("#rotation [role=alert]")).to_contain_text("RotationInterval")
        assert kms.call("DescribeSecret", SecretName=name)["AutomaticRotation"] == "Disabled"

        rotation.get_by_label(w["rotation_period"]).fill("7d")
        rotation.get_by_role("button", name=w["ok"]).click()
        expect(page.get_by_role("status")).to_be_visible()
        described = kms.call("DescribeSecret", SecretName=name)
        assert (described["AutomaticRotation"], described["RotationInterval"]) == ("Enabled", "604800s")
        expect(rotation).to_contain_text("604800s")
        expect(rotation).to_contain_text(w["next_rotation"])
        kms.call("DeleteSecret", SecretName=name, ForceDeleteWithoutRecovery="true")


def test_a_generic_secret_rotates_by_new_versions(
    watched_page: Page,
    console_server: LiveServer,
    console_root: Any,
    sign_in: Any,
    kms: KmsCaller,
    key_id: str,
) -> None:
    name = new_secret(kms, key_id)
    page = signed_in(watched_page, console_server, console_root, sign_in)
    page.goto(details_url(console_server, name))
    expect(page.locator("#rotation")).to_contain_text(translate("sec.rotation_generic", "en"))
    expect(page.locator("#rotation form")).to_have_count(0)
