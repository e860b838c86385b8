"""The key details page in Chromium (issue 14 item 7): deletion protection (F5.2) and a deletion the
API refuses, description, aliases and tags, rotation policy, the key policy, Key Versions (public key,
CSR: F6, F7), Key Material (import: F3.5) and Key Associations (F8.1). Every change is checked
through the official SDK, every refusal is the API's own, shown in place. Main flows in both languages.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from playwright.sync_api import Locator, Page, expect

from openkms.console.terms import translate
from tests.support.byok import wrap
from tests.support.products import Caller
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

LANGS = ["en", "zh"]
XSS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')


@pytest.fixture(scope="module")
def kms(console_server: LiveServer) -> Caller:
    return Caller("kms", console_server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)


@pytest.fixture(scope="module")
def instance(kms: Caller) -> str:
    return str(kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"])


def new_key(kms: Caller, instance: str, **params: Any) -> dict[str, Any]:
    meta: dict[str, Any] = kms.call("CreateKey", DKMSInstanceId=instance, **params)["KeyMetadata"]
    return meta


def describe(kms: Caller, key_id: str) -> dict[str, Any]:
    meta: dict[str, Any] = kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"]
    return meta


class Details:
    """The details page of one key, as a user in `lang` finds things on it: by the guide's words."""

    def __init__(self, page: Page, server: LiveServer, lang: str, key_id: str) -> None:
        self.page, self.server, self.lang, self.key_id = page, server, lang, key_id

    def t(self, term: str) -> str:
        return translate(term, self.lang)

    def open(self, tab: str | None = None) -> Details:
        query = f"?tab={tab}" if tab else ""
        self.page.goto(f"{self.server.url}/console/keys/{self.key_id}{query}")
        expect(self.page.get_by_role("heading", level=1)).to_contain_text(self.key_id)
        return self

    def button(self, term: str, within: Page | Locator | None = None) -> Locator:
        return (within or self.page).get_by_role("button", name=self.t(term), exact=True)

    def dialog(self, term: str) -> Locator:
        dialog = self.page.get_by_role("dialog", name=self.t(term))
        expect(dialog).to_be_visible()
        return dialog

    def section(self, css_id: str) -> Locator:
        return self.page.locator(f"#{css_id}")

    def submit(self, term: str, within: Page | Locator | None = None) -> None:
        with self.page.expect_navigation():
            self.button(term, within).click()

    def refused(self, code: str, within: Page | Locator | None = None) -> Locator:
        alert = (within or self.page).get_by_role("alert")
        expect(alert).to_contain_text(code)
        return alert

    def notice(self, term: str) -> None:
        expect(self.page.get_by_role("status")).to_have_text(self.t(term))

    def switch(self) -> Locator:
        return self.page.get_by_role("switch", name=self.t("field.deletion_protection"))


@pytest.fixture
def signed_in(
    watched_page: Page, console_server: LiveServer, console_root: Any, sign_in: Callable[..., None]
) -> Callable[[str], Page]:
    def enter(lang: str) -> Page:
        sign_in(watched_page, console_server, console_root.name, console_root.password, lang)
        return watched_page

    return enter


# --- deletion protection, lifecycle ----------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_deletion_protection_blocks_scheduled_deletion(
    signed_in: Callable[[str], Page], console_server: LiveServer, kms: Caller, instance: str, lang: str
) -> None:
    key_id = new_key(kms, instance)["KeyId"]
    view = Details(signed_in(lang), console_server, lang, key_id).open()

    # on: the switch asks first (F5.2)
    expect(view.switch()).to_have_attribute("aria-checked", "false")
    view.switch().click()
    view.submit("btn.turn_on", view.dialog("dlg.confirm_enable"))
    view.notice("notice.kd_protection_on")
    expect(view.switch()).to_have_attribute("aria-checked", "true")
    assert describe(kms, key_id)["DeletionProtection"] == "Enabled"

    # a protected key cannot be scheduled for deletion: the API's refusal, in place
    view.button("act.schedule_deletion").click()
    dialog = view.dialog("dlg.schedule_deletion")
    dialog.get_by_label(view.t("field.pending_window")).fill("7")
    view.submit("btn.ok", dialog)
    view.refused("Rejected.DeletionProtection", view.section("lifecycle"))
    assert describe(kms, key_id)["KeyState"] == "Enabled"

    # off: at once; then the deletion is scheduled, and protection cannot come back while it is pending
    view.open()
    with view.page.expect_navigation():
        view.switch().click()
    view.notice("notice.kd_protection_off")
    assert describe(kms, key_id)["DeletionProtection"] == "Disabled"
    view.button("act.schedule_deletion").click()
    view.submit("btn.ok", view.dialog("dlg.schedule_deletion"))
    view.notice("notice.kd_deletion_scheduled")
    assert describe(kms, key_id)["KeyState"] == "PendingDeletion"
    view.switch().click()
    view.submit("btn.turn_on", view.dialog("dlg.confirm_enable"))
    view.refused("Forbidden.KeyStateError", view.section("deletion-protection-error"))
    assert describe(kms, key_id)["DeletionProtection"] == "Disabled"

    view.open()
    view.submit("act.cancel_deletion")
    view.notice("notice.kd_deletion_cancelled")
    assert describe(kms, key_id)["KeyState"] == "Enabled"


def test_disable_and_enable(
    signed_in: Callable[[str], Page], console_server: LiveServer, kms: Caller, instance: str
) -> None:
    key_id = new_key(kms, instance)["KeyId"]
    view = Details(signed_in("en"), console_server, "en", key_id).open()
    view.button("act.disable").click()
    dialog = view.dialog("dlg.disable")
    expect(dialog.get_by_role("link", name=view.t("link.associations"))).to_be_visible()
    view.submit("btn.ok", dialog)
    view.notice("notice.kd_disabled")
    assert describe(kms, key_id)["KeyState"] == "Disabled"
    view.submit("act.enable")
    assert describe(kms, key_id)["KeyState"] == "Enabled"


# --- description, aliases, tags, rotation, key policy ----------------------------------------------


def _no_script_ran(page: Page) -> list[str]:
    fired: list[str] = []
    page.on("dialog", lambda dialog: (fired.append(dialog.message), dialog.dismiss()))
    return fired


def test_description_aliases_and_tags(
    signed_in: Callable[[str], Page], console_server: LiveServer, kms: Caller, instance: str
) -> None:
    key_id = new_key(kms, instance)["KeyId"]
    other_id = new_key(kms, instance)["KeyId"]
    page = signed_in("en")
    fired = _no_script_ran(page)
    view = Details(page, console_server, "en", key_id).open()

    # description: anything, shown as text
    for text in XSS:
        section = view.section("description")
        section.get_by_text(view.t("kd.description_edit")).click()
        section.get_by_label(view.t("field.description"), exact=True).fill(text)
        view.submit("kd.save", section)
        view.notice("notice.kd_description_saved")
        expect(view.section("description").locator(".description-text")).to_have_text(text)
        assert describe(kms, key_id)["Description"] == text

    # aliases: create, update (bind to another key), delete; a bad name is the API's refusal
    aliases = view.section("aliases")
    aliases.get_by_label(view.t("kd.alias_name"), exact=True).fill("console-details")
    view.submit("kd.alias_create", aliases)
    view.notice("notice.kd_alias_created")
    listed = kms.call("ListAliasesByKeyId", KeyId=key_id)["Aliases"]["Alias"]
    assert [alias["AliasName"] for alias in listed] == ["alias/console-details"]
    aliases = view.section("aliases")
    expect(aliases.get_by_role("cell", name="alias/console-details")).to_be_visible()
    aliases.get_by_text(view.t("kd.alias_update"), exact=True).click()
    aliases.get_by_label(view.t("kd.alias_target")).fill(other_id)
    view.submit("btn.ok", aliases)
    view.notice("notice.kd_alias_updated")
    assert kms.call("ListAliasesByKeyId", KeyId=key_id)["Aliases"]["Alias"] == []
    assert kms.call("ListAliasesByKeyId", KeyId=other_id)["Aliases"]["Alias"][0]["AliasName"] == (
        "alias/console-details"
    )
    Details(page, console_server, "en", other_id).open()
    view.submit("kd.alias_delete", view.section("aliases"))
    view.notice("notice.kd_alias_deleted")
    assert kms.call("ListAliasesByKeyId", KeyId=other_id)["Aliases"]["Alias"] == []
    view.open()
    for text in XSS:
        aliases = view.section("aliases")
        aliases.get_by_label(view.t("kd.alias_name"), exact=True).fill(text)
        view.submit("kd.alias_create", aliases)
        view.refused("InvalidParameter", view.section("aliases"))
        expect(view.section("aliases").get_by_label(view.t("kd.alias_name"), exact=True)).to_have_value(text)

    # tags: add, remove; a tag breaking F3.2 is refused with the API's message
    tags = view.section("tags")
    tags.get_by_label(view.t("kd.tag_key"), exact=True).fill("team")
    tags.get_by_label(view.t("kd.tag_value"), exact=True).fill("pki @ hz")
    view.submit("kd.tag_add", tags)
    view.notice("notice.kd_tag_added")
    assert kms.call("ListResourceTags", KeyId=key_id)["Tags"]["Tag"] == [
        {"KeyId": key_id, "TagKey": "team", "TagValue": "pki @ hz"}
    ]
    for tag_key, tag_value in (("acs:reserved", "x"), ("xss", XSS[1]), (XSS[0], "x")):
        tags = view.section("tags")
        tags.get_by_label(view.t("kd.tag_key"), exact=True).fill(tag_key)
        tags.get_by_label(view.t("kd.tag_value"), exact=True).fill(tag_value)
        view.submit("kd.tag_add", tags)
        alert = view.refused("InvalidParameter", view.section("tags"))
        expect(alert).to_contain_text("tag")
    tags = view.section("tags")
    view.submit("kd.tag_remove", tags.get_by_role("row", name=re.compile("team")))
    view.notice("notice.kd_tag_removed")
    assert kms.call("ListResourceTags", KeyId=key_id)["Tags"]["Tag"] == []

    assert fired == []
    assert view.page.locator("img[src=x]").count() == 0


def test_rotation_policy(
    signed_in: Callable[[str], Page], console_server: LiveServer, kms: Caller, instance: str
) -> None:
    key_id = new_key(kms, instance)["KeyId"]
    view = Details(signed_in("en"), console_server, "en", key_id).open()
    section = view.section("rotation")
    section.get_by_label(view.t("field.rotation")).check()
    section.get_by_label(view.t("field.rotation_period")).fill("30")
    view.submit("kd.save", section)
    view.notice("notice.kd_rotation_saved")
    meta = describe(kms, key_id)
    assert (meta["AutomaticRotation"], meta["RotationInterval"]) == ("Enabled", "2592000s")

    section = view.section("rotation")
    section.get_by_label(view.t("field.rotation_period")).fill("400")
    view.submit("kd.save", section)
    view.refused("InvalidParameter", view.section("rotation"))
    assert describe(kms, key_id)["RotationInterval"] == "2592000s"

    section = view.section("rotation")
    section.get_by_label(view.t("field.rotation")).uncheck()
    view.submit("kd.save", section)
    assert describe(kms, key_id)["AutomaticRotation"] == "Disabled"

    # key pairs do not rotate automatically: no form
    pair = new_key(kms, instance, KeySpec="EC_P256", KeyUsage="SIGN/VERIFY")["KeyId"]
    Details(view.page, console_server, "en", pair).open()
    expect(view.section("rotation")).to_contain_text(view.t("kd.rotation_symmetric_only"))


def test_key_policy_lists_and_json(
    signed_in: Callable[[str], Page], console_server: LiveServer, kms: Caller, instance: str
) -> None:
    meta = new_key(kms, instance)
    account = meta["Arn"].split(":")[3]
    admin, other = f"acs:ram::{account}:user/alice", "acs:ram::1234567890123456:role/auditor"
    view = Details(signed_in("en"), console_server, "en", meta["KeyId"]).open()
    policy = view.section("policy")
    expect(policy.locator("#policy-json")).to_contain_text(f"acs:ram::{account}:*")
    policy.get_by_text(view.t("kd.policy_edit_lists"), exact=True).click()
    policy.get_by_label(view.t("field.admins"), exact=True).fill(admin)
    policy.get_by_label(view.t("field.other_accounts"), exact=True).fill(other)
    view.submit("kd.policy_save_lists", policy)
    view.notice("notice.kd_policy_saved")
    expect(view.section("policy-admins")).to_have_text(admin)
    expect(view.section("policy-others")).to_have_text(other)
    expect(view.section("policy-json")).to_contain_text(other)
    saved = kms.call("GetKeyPolicy", KeyId=meta["KeyId"])["Policy"]
    assert admin in saved and other in saved and f"acs:ram::{account}:*" in saved

    policy = view.section("policy")
    policy.get_by_text(view.t("kd.policy_edit_json"), exact=True).click()
    policy.get_by_label(view.t("kd.policy_document"), exact=True).fill('{"Version": "1", "Statement": [')
    view.submit("kd.policy_save_json", policy)
    view.refused("MalformedPolicyDocument", view.section("policy"))
    assert kms.call("GetKeyPolicy", KeyId=meta["KeyId"])["Policy"] == saved


# --- Key Versions: public key, CSR, new version ---------------------------------------------------


def _download(page: Page, click: Callable[[], None]) -> tuple[str, bytes]:
    with page.expect_download() as caught:
        click()
    download = caught.value
    return download.suggested_filename, Path(download.path()).read_bytes()


@pytest.mark.parametrize("lang", LANGS)
def test_view_and_download_public_key(
    signed_in: Callable[[str], Page],
    console_server: LiveServer,
    kms: Caller,
    instance: str,
    lang: str,
    screenshot: Callable[[Page, str], Path],
) -> None:
    meta = new_key(kms, instance, KeySpec="RSA_2048", KeyUsage="SIGN/VERIFY")
    key_id, version = meta["KeyId"], meta["PrimaryKeyVersion"]
    view = Details(signed_in(lang), console_server, lang, key_id).open()
    expect(view.page.get_by_role("link", name=view.t("tab.versions"))).to_have_attribute(
        "aria-current", "page"
    )
    if lang == "en":
        screenshot(view.page, "key-details")
    row = view.page.get_by_role("row", name=re.compile(version))
    with view.page.expect_navigation():
        row.get_by_role("link", name=view.t("act.view_public_key")).click()
    dialog = view.dialog("kd.public_key")
    expected = kms.call("GetPublicKey", KeyId=key_id, KeyVersionId=version)["PublicKey"]
    expect(dialog.locator("pre")).to_have_text(expected.strip())
    name, body = _download(view.page, dialog.get_by_role("link", name=view.t("btn.download")).click)
    assert name == f"{key_id}-{version}.pem"
    assert body.decode() == expected


def _subject(csr: x509.CertificateSigningRequest) -> dict[str, str]:
    return {attribute.oid.dotted_string: str(attribute.value) for attribute in csr.subject}


@pytest.mark.parametrize(
    ("lang", "spec", "algorithm"),
    [("en", "RSA_2048", "RSA_PSS_SHA_256"), ("zh", "EC_P256", "ECDSA_SHA_256")],
)
def test_generate_and_download_csr(
    signed_in: Callable[[str], Page],
    console_server: LiveServer,
    kms: Caller,
    instance: str,
    lang: str,
    spec: str,
    algorithm: str,
    screenshot: Callable[[Page, str], Path],
) -> None:
    meta = new_key(kms, instance, KeySpec=spec, KeyUsage="SIGN/VERIFY")
    key_id, version = meta["KeyId"], meta["PrimaryKeyVersion"]
    view = Details(signed_in(lang), console_server, lang, key_id).open()
    row = view.page.get_by_role("row", name=re.compile(version))
    row.get_by_role("button", name=view.t("act.generate_csr")).click()
    dialog = view.dialog("act.generate_csr")
    subject = {
        "field.csr_cn": "signer.example.com",
        "field.csr_o": "Example, Inc. (R&D)",
        "field.csr_ou": "Platform / Security",
        "field.csr_s": "Zhejiang",
        "field.csr_l": "Hangzhou",
        "field.csr_c": "CN",
        "field.csr_e": "pki@example.com",
    }
    for term, value in subject.items():
        dialog.get_by_label(view.t(term), exact=True).fill(value)
    offered = dialog.get_by_label(view.t("field.csr_alg")).locator("option").all_text_contents()
    assert offered == (
        ["RSA_PKCS1_SHA_256", "RSA_PSS_SHA_256"] if spec.startswith("RSA") else ["ECDSA_SHA_256"]
    )
    dialog.get_by_label(view.t("field.csr_alg")).select_option(algorithm)
    if lang == "en":
        screenshot(view.page, "csr-dialog")
    view.submit("btn.ok", dialog)
    dialog = view.dialog("act.generate_csr")
    shown = x509.load_pem_x509_csr(dialog.locator("#csr-pem").inner_text().encode())
    name, body = _download(view.page, view.button("btn.download_csr", dialog).click)
    assert name == f"{key_id}.csr"
    downloaded = x509.load_pem_x509_csr(body)

    public_pem = kms.call("GetPublicKey", KeyId=key_id, KeyVersionId=version)["PublicKey"]
    public = serialization.load_pem_public_key(public_pem.encode())
    for csr in (shown, downloaded):
        assert csr.is_signature_valid
        assert csr.public_key() == public
        assert _subject(csr) == {
            NameOID.COMMON_NAME.dotted_string: "signer.example.com",
            NameOID.ORGANIZATION_NAME.dotted_string: "Example, Inc. (R&D)",
            NameOID.ORGANIZATIONAL_UNIT_NAME.dotted_string: "Platform / Security",
            NameOID.STATE_OR_PROVINCE_NAME.dotted_string: "Zhejiang",
            NameOID.LOCALITY_NAME.dotted_string: "Hangzhou",
            NameOID.COUNTRY_NAME.dotted_string: "CN",
            NameOID.EMAIL_ADDRESS.dotted_string: "pki@example.com",
        }
        digest = csr.tbs_certrequest_bytes
        if isinstance(public, rsa.RSAPublicKey):
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
            public.verify(csr.signature, digest, pss, hashes.SHA256())
        else:
            assert isinstance(public, ec.EllipticCurvePublicKey)
            public.verify(csr.signature, digest, ec.ECDSA(hashes.SHA256()))


def test_csr_refusal_is_shown_in_the_dialog(
    signed_in: Callable[[str], Page], console_server: LiveServer, kms: Caller, instance: str
) -> None:
    meta = new_key(kms, instance, KeySpec="EC_P256", KeyUsage="SIGN/VERIFY")
    view = Details(signed_in("en"), console_server, "en", meta["KeyId"]).open()
    view.button("act.generate_csr").click()
    dialog = view.dialog("act.generate_csr")
    dialog.get_by_label(view.t("field.csr_cn"), exact=True).fill("x.example.com")
    dialog.get_by_label(view.t("field.csr_c"), exact=True).fill("zz")
    view.submit("btn.ok", dialog)
    dialog = view.dialog("act.generate_csr")
    view.refused("InvalidParameter", dialog)
    expect(dialog.get_by_label(view.t("field.csr_c"), exact=True)).to_have_value("zz")


def test_create_key_version(
    signed_in: Callable[[str], Page], console_server: LiveServer, kms: Caller, instance: str
) -> None:
    key_id = new_key(kms, instance, KeySpec="EC_P256", KeyUsage="SIGN/VERIFY")["KeyId"]
    view = Details(signed_in("en"), console_server, "en", key_id).open()
    view.submit("kd.create_version")
    view.notice("notice.kd_version_created")
    versions = kms.call("ListKeyVersions", KeyId=key_id)["KeyVersions"]["KeyVersion"]
    assert len(versions) == 2
    for version in versions:
        expect(view.page.get_by_role("row", name=re.compile(version["KeyVersionId"]))).to_be_visible()

    # a key that allows no new version: the API says so
    external = new_key(kms, instance, Origin="EXTERNAL")["KeyId"]
    Details(view.page, console_server, "en", external).open()
    view.submit("kd.create_version")
    view.refused("UnsupportedOperation", view.section("versions"))


# --- Key Material ----------------------------------------------------------------------------------


def test_import_and_delete_key_material(
    signed_in: Callable[[str], Page], console_server: LiveServer, kms: Caller, instance: str, tmp_path: Path
) -> None:
    key_id = new_key(kms, instance, Origin="EXTERNAL")["KeyId"]
    view = Details(signed_in("en"), console_server, "en", key_id).open()
    with view.page.expect_navigation():
        view.page.get_by_role("link", name=view.t("kd.tab_material")).click()
    view.page.get_by_label(view.t("kd.wrapping_algorithm")).select_option("RSAES_OAEP_SHA_256")
    view.submit("kd.material_step_parameters")

    name, public_pem = _download(view.page, view.button("kd.download_wrapping_key").click)
    assert name == f"{key_id}-wrapping-public-key.pem"
    name, token = _download(view.page, view.button("kd.download_token").click)
    assert name == f"{key_id}-import-token.txt"
    assert view.page.get_by_label(view.t("kd.import_token")).input_value() == token.decode().strip()

    public = serialization.load_pem_public_key(public_pem)
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    wrapped = wrap(base64.b64encode(der).decode(), "RSAES_OAEP_SHA_256", bytes(range(32)))
    material = tmp_path / "material.bin"
    material.write_bytes(base64.b64decode(wrapped))
    view.page.get_by_label(view.t("kd.material_file")).set_input_files(material)
    view.page.get_by_label(view.t("kd.material_expires")).fill("2099-12-31")
    view.submit("kd.material_step_import", view.page.locator("#material form[enctype]"))
    view.notice("notice.kd_material_imported")
    meta = describe(kms, key_id)
    assert meta["KeyState"] == "Enabled"
    assert meta["MaterialExpireTime"].startswith("2099-12-31")
    blob = kms.call("Encrypt", KeyId=key_id, Plaintext="aGk=")["CiphertextBlob"]
    assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "aGk="

    view.page.get_by_role("button", name=view.t("kd.material_delete")).click()
    view.submit("btn.ok", view.dialog("kd.material_delete"))
    view.notice("notice.kd_material_deleted")
    assert describe(kms, key_id)["KeyState"] == "PendingImport"

    # a token that is not one: the API's refusal, in place
    view.page.get_by_label(view.t("kd.material_text")).fill(wrapped)
    view.page.get_by_label(view.t("kd.import_token")).fill("OKI1.not.a-token")
    view.submit("kd.material_step_import", view.page.locator("#material form[enctype]"))
    view.refused("InvalidImportToken")
    assert describe(kms, key_id)["KeyState"] == "PendingImport"


# --- Key Associations ------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_detect_associations(
    signed_in: Callable[[str], Page], console_server: LiveServer, kms: Caller, instance: str, lang: str
) -> None:
    key_id = new_key(kms, instance)["KeyId"]
    kms.call("Encrypt", KeyId=key_id, Plaintext="aGk=")
    view = Details(signed_in(lang), console_server, lang, key_id).open()
    with view.page.expect_navigation():
        view.page.get_by_role("link", name=view.t("tab.associations")).click()
    expect(view.page.locator("#detect-status")).to_have_text(view.t("kd.status.NotStarted"))
    view.submit("btn.detect")
    view.notice("notice.kd_detection_started")
    # the section refreshes itself while the detection runs (about ten seconds)
    expect(view.page.locator("#detect-status")).to_have_text(view.t("kd.status.Succeeded"), timeout=40_000)
    table = view.section("associations").get_by_role("table")
    for column in ("col.service", "col.last_call", "col.lookup"):
        expect(table.get_by_role("columnheader", name=view.t(column), exact=True)).to_be_visible()
    row = table.get_by_role("row", name=re.compile(r":root"))
    expect(row).to_contain_text(view.t("kd.assoc_self_built"))
    expect(row.get_by_role("cell").nth(2)).to_have_text(re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"))
    # where to look it up: the audit log, filtered to this key and this caller
    with view.page.expect_navigation():
        row.get_by_role("link", name=view.t("kd.assoc_lookup_audit")).click()
    expect(view.page.locator("input[name=key_id]")).to_have_value(key_id)
    expect(view.page.locator("input[name=principal]")).to_have_value(re.compile(r"^acs:ram::\d+:root$"))
    expect(view.page.get_by_role("cell", name=key_id, exact=True).first).to_be_visible()


# --- who may do what: the API decides, the page shows it -------------------------------------------


def test_a_key_user_sees_management_refused(
    watched_page: Page,
    console_server: LiveServer,
    kms: Caller,
    instance: str,
    sign_in: Callable[..., None],
    console_user: Callable[..., Any],
) -> None:
    """A RAM user with only the crypto-user policy opens a key's details (reads it may not do are
    refused in their section) and cannot schedule its deletion: AccessDeniedDetail, nothing changes."""
    name = f"kd-user-{uuid.uuid4().hex[:8]}"
    user = console_user(name, policies=("AliyunKMSCryptoUserAccess",))
    key_id = new_key(kms, instance)["KeyId"]
    sign_in(watched_page, console_server, user.name, user.password, "en")
    view = Details(watched_page, console_server, "en", key_id).open()
    view.refused("Forbidden.NoPermission", view.section("policy"))
    view.button("act.schedule_deletion").click()
    view.submit("btn.ok", view.dialog("dlg.schedule_deletion"))
    alert = view.refused("Forbidden.NoPermission", view.section("lifecycle"))
    expect(alert).to_contain_text("kms:ScheduleKeyDeletion")
    expect(alert).to_contain_text(f"user/{name}")
    assert describe(kms, key_id)["KeyState"] == "Enabled"
