"""Resource > Application Access in Chromium (issue 18): the quick create makes the network rule, the
policy and the access point and answers the client key file, which opens with the typed password and
authenticates on the instance API; a refused step undoes the steps before it; a second client key,
deleting a client key and an access point; both languages."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from playwright.sync_api import Page, expect

from openkms.api.instance import kms_instance_pb2 as pb
from openkms.console.terms import translate
from tests.api.test_instance_wire import signed
from tests.support.sdk import KmsCaller, KmsError
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

PASSWORD = "Console-aap-pass1"


def t(term: str, lang: str = "en") -> str:
    return translate(term, lang)


def kms_of(server: LiveServer) -> KmsCaller:
    return KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)


def download(page: Page, click: Callable[[], None]) -> tuple[str, bytes]:
    with page.expect_download() as caught:
        click()
    got = caught.value
    return got.suggested_filename, Path(got.path()).read_bytes()


def fill_create(page: Page, name: str, resources: str = "key/*", again: str = PASSWORD) -> None:
    form = page.locator("#create")
    form.get_by_label(t("aap.name")).fill(name)
    form.get_by_label(t("aap.resources")).fill(resources)
    form.get_by_label(t("aap.sources")).fill("127.0.0.1, 10.0.0.0/8")
    form.get_by_label(t("aap.password"), exact=True).fill(PASSWORD)
    form.get_by_label(t("aap.password_again")).fill(again)


def test_create_downloads_a_working_client_key_file(
    watched_page: Page, console_server: LiveServer, console_root: Any, sign_in: Any
) -> None:
    kms = kms_of(console_server)
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    key_id = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
    page = watched_page
    sign_in(page, console_server, console_root.name, console_root.password, lang="en")
    page.goto(f"{console_server.url}/console/app-access")
    name = f"app-{uuid.uuid4().hex[:8]}"
    fill_create(page, name)
    filename, content = download(
        page, lambda: page.locator("#create").get_by_role("button", name=t("aap.create_download")).click()
    )
    client_key = json.loads(content)
    assert filename == f"clientKey_{client_key['KeyId']}.json" and set(client_key) == {
        "KeyId",
        "PrivateKeyData",
    }
    private, _, _ = pkcs12.load_key_and_certificates(
        base64.b64decode(client_key["PrivateKeyData"]), PASSWORD.encode()
    )
    assert isinstance(private, rsa.RSAPrivateKey)
    policy = kms.call("DescribePolicy", Name=f"{name}-policy")
    assert policy["KmsInstance"] == instance and policy["Resources"] == ["key/*"]
    rule = kms.call("DescribeNetworkRule", Name=f"{name}-network")
    assert json.loads(rule["SourcePrivateIp"]) == ["127.0.0.1", "10.0.0.0/8"]
    # The file works on the instance API.
    body = pb.AdvanceEncryptRequest(KeyId=key_id, Plaintext=b"from the console's key").SerializeToString()
    answer = httpx.post(
        f"{console_server.url}/",
        headers=signed(client_key["KeyId"], private, "AdvanceEncrypt", body),
        content=body,
    )
    assert answer.status_code == 200 and pb.AdvanceEncryptResponse.FromString(answer.content).KeyId == key_id
    # The list shows it, with its policy and client key; another client key downloads from its row.
    page.goto(f"{console_server.url}/console/app-access")
    row = page.locator(f"tr[data-aap='{name}']")
    expect(row).to_contain_text(f"{name}-policy")
    expect(row).to_contain_text(client_key["KeyId"])
    row.get_by_role("button", name=t("aap.new_client_key")).click()
    dialog = page.get_by_role("dialog", name=t("aap.new_client_key"))
    dialog.get_by_label(t("aap.password"), exact=True).fill(PASSWORD)
    dialog.get_by_label(t("aap.password_again")).fill(PASSWORD)
    _, second = download(page, lambda: dialog.get_by_role("button", name=t("aap.download")).click())
    second_id = json.loads(second)["KeyId"]
    assert second_id != client_key["KeyId"]
    assert {k["ClientKeyId"] for k in kms.call("ListClientKeys", AapName=name)["ClientKeys"]} == {
        client_key["KeyId"],
        second_id,
    }
    # Delete the first client key, then the access point.
    page.goto(f"{console_server.url}/console/app-access")
    page.get_by_role("button", name=f"{t('aap.delete_client_key')} {client_key['KeyId']}").click()
    expect(page.get_by_role("status")).to_be_visible()
    assert [k["ClientKeyId"] for k in kms.call("ListClientKeys", AapName=name)["ClientKeys"]] == [second_id]
    page.on("dialog", lambda confirm: confirm.accept())
    page.get_by_role("button", name=f"{t('aap.delete')} {name}").click()
    expect(page.get_by_role("status")).to_be_visible()
    try:
        kms.call("DescribeApplicationAccessPoint", Name=name)
        raise AssertionError("the access point is still there")
    except KmsError as refused:
        assert refused.status == 404


def test_a_refused_step_undoes_the_steps_before_it(
    watched_page: Page, console_server: LiveServer, console_root: Any, sign_in: Any
) -> None:
    kms = kms_of(console_server)
    page = watched_page
    sign_in(page, console_server, console_root.name, console_root.password, lang="en")
    page.goto(f"{console_server.url}/console/app-access")
    name = f"bad-{uuid.uuid4().hex[:8]}"
    fill_create(page, name, again=PASSWORD + "x")
    page.locator("#create").get_by_role("button", name=t("aap.create_download")).click()
    expect(page.locator("#create [role=alert]")).to_contain_text(t("aap.password_mismatch"))
    fill_create(page, name, resources="not-a-resource")  # CreatePolicy refuses it, after the rule was made
    page.locator("#create").get_by_role("button", name=t("aap.create_download")).click()
    expect(page.locator("#create [role=alert]")).to_contain_text("InvalidParameter")
    rules = [
        rule["Name"] for rule in kms.call("ListNetworkRules", PageSize=100)["NetworkRules"]["NetworkRule"]
    ]
    assert f"{name}-network" not in rules
    points = kms.call("ListApplicationAccessPoints", PageSize=100)["ApplicationAccessPoints"][
        "ApplicationAccessPoint"
    ]
    assert name not in [point["Name"] for point in points]


def test_the_page_in_chinese(
    watched_page: Page, console_server: LiveServer, console_root: Any, sign_in: Any
) -> None:
    page = watched_page
    sign_in(page, console_server, console_root.name, console_root.password, lang="zh")
    page.get_by_role("link", name=t("nav.app_access", "zh")).click()
    expect(page.locator("h1")).to_have_text(t("nav.app_access", "zh"))
    expect(page.locator("#create")).to_contain_text(t("aap.create", "zh"))
