"""Hardware and external instances in the console (F1.3, F1.4, F2.2), in Chromium: the Create Key
panel offers a hardware key pair's additional usages and asks an external key for its external key
id (both OpenKMS extensions), key details show them, and the instances page shows each backend's
health. The instances are made by the operator's CLI on the session's SoftHSM2 token and proxy."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from openkms.console.terms import translate
from openkms.testing.softhsm import SoftHsmToken
from tests.keystores.conftest import XKS_ACCESS_KEY_ID, XKS_PREFIX, extension_call, start_proxy
from tests.support.server import LiveServer

WORDS = {
    lang: {
        name: translate(term, lang)
        for name, term in {
            "asymmetric": "opt.asymmetric",
            "spec": "field.key_spec",
            "usage": "field.key_usage",
            "additional": "keys.additional_usages",
            "external_id": "keys.external_key_id",
            "ok": "btn.ok",
            "healthy": "inst.health.Healthy",
            "additional_meta": "kd.meta.OpenKMSAdditionalKeyUsages",
            "external_meta": "kd.meta.OpenKMSExternalKeyId",
            "import": "opt.origin_external",
            "external_level": "kd.value.EXTERNAL",
        }.items()
    }
    for lang in ("en", "zh")
}


def _cli(server: LiveServer, token: SoftHsmToken, *args: str, stdin: str | None = None) -> str:
    env = {name: value for name, value in os.environ.items() if not name.startswith("OPENKMS_")}
    done = subprocess.run(
        [sys.executable, "-m", "openkms.cli", *args, "--data-dir", str(server.data_dir)],
        env={**env, **token.env()},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[0]


@pytest.fixture(scope="module")
def instances(
    console_server: LiveServer, softhsm: SoftHsmToken, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    settings = softhsm.settings()
    hardware = _cli(
        console_server,
        softhsm,
        "instance",
        "create",
        "--kind",
        "hsm",
        "--name",
        "console-hsm",
        "--module",
        settings["module"],
        "--token-label",
        softhsm.label,
        "--pin-source",
        settings["pin_source"],
    )
    secret = base64.b64encode(os.urandom(33)).decode()
    softhsm.add_aes_key("openkms-xks-console")
    folder: Path = tmp_path_factory.mktemp("console-xks")
    proxy, url, _ = start_proxy(folder, softhsm, secret, keys={"ext-console": "openkms-xks-console"})
    try:
        external = _cli(
            console_server,
            softhsm,
            "instance",
            "create",
            "--kind",
            "external",
            "--name",
            "console-xks",
            "--endpoint",
            url,
            "--path-prefix",
            XKS_PREFIX,
            "--access-key-id",
            XKS_ACCESS_KEY_ID,
            "--allow-http",
            "--secret-stdin",
            stdin=secret + "\n",
        )
        yield {"hardware": hardware, "external": external}
    finally:
        proxy.terminate()
        proxy.wait(10)


def _panel(page: Page, server: LiveServer, instance: str) -> None:
    page.goto(f"{server.url}/console/keys/create?instance={instance}")


def _created(page: Page, server: LiveServer, words: dict[str, str]) -> dict[str, Any]:
    page.get_by_role("main").get_by_role("button", name=words["ok"], exact=True).click()
    expect(page.get_by_role("status")).to_be_visible()
    key_id = page.url.split("q=")[1].split("&")[0]
    described = extension_call(server, "DescribeKey", KeyId=key_id)["KeyMetadata"]
    assert isinstance(described, dict)
    return described


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_hardware_and_external_keys_from_the_create_key_panel(
    watched_page: Page,
    console_server: LiveServer,
    console_root: Any,
    sign_in: Any,
    instances: dict[str, str],
    lang: str,
) -> None:
    page, words = watched_page, WORDS[lang]
    sign_in(page, console_server, console_root.name, console_root.password, lang=lang)

    _panel(page, console_server, instances["hardware"])
    page.get_by_label(words["asymmetric"], exact=True).check()
    expect(page.get_by_role("group", name=words["additional"])).to_be_visible()
    additional = page.get_by_role("group", name=words["additional"])
    page.get_by_label(words["spec"]).select_option("EC_P256")
    expect(additional).to_be_hidden()  # EC keys only sign: nothing to add
    page.get_by_label(words["spec"]).select_option("RSA_2048")
    page.get_by_label(words["usage"]).select_option("ENCRYPT/DECRYPT")
    expect(additional.get_by_label("SIGN/VERIFY")).to_be_visible()
    expect(additional.get_by_label("ENCRYPT/DECRYPT")).to_be_hidden()  # the chosen usage is not offered again
    page.get_by_label(words["usage"]).select_option("SIGN/VERIFY")
    expect(additional.get_by_label("SIGN/VERIFY")).to_be_hidden()
    additional.get_by_label("ENCRYPT/DECRYPT").check()
    pair = _created(page, console_server, words)
    assert (pair["ProtectionLevel"], pair["KeyUsage"], pair["OpenKMSAdditionalKeyUsages"]) == (
        "HSM",
        "SIGN/VERIFY",
        "ENCRYPT/DECRYPT",
    )
    page.goto(f"{console_server.url}/console/keys/{pair['KeyId']}")
    expect(page.get_by_text(words["additional_meta"], exact=True)).to_be_visible()

    _panel(page, console_server, instances["external"])
    expect(page.get_by_label(words["external_id"])).to_be_visible()
    expect(page.get_by_label(words["import"], exact=True)).to_have_count(0)  # no imported material here
    page.get_by_label(words["external_id"]).fill("ext-console")
    external = _created(page, console_server, words)
    assert (external["ProtectionLevel"], external["OpenKMSExternalKeyId"]) == ("EXTERNAL", "ext-console")
    page.goto(f"{console_server.url}/console/keys/{external['KeyId']}")
    expect(page.get_by_text(words["external_meta"], exact=True)).to_be_visible()
    expect(page.get_by_text(words["external_level"], exact=True)).to_be_visible()

    page.goto(f"{console_server.url}/console/instances")
    for instance in instances.values():
        row = page.get_by_role("row").filter(has_text=instance)
        expect(row.get_by_text(words["healthy"], exact=True)).to_be_visible()
