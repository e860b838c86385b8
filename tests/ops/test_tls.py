"""HTTPS: `openkms serve --tls-cert/--tls-key` with two workers, the official SDKs over HTTPS with a CA
of the test's own (verification on), `acs:SecureTransport` seen by RAM policies, and bad TLS settings
refused with one line."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from openkms.config import ConfigError, load_settings
from tests.support.products import Caller, DeniedError
from tests.support.sdk import KmsCaller
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer
from tests.support.tls import TlsFiles, make_tls_files


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def _tls_args(files: TlsFiles) -> list[str]:
    return ["--tls-cert", str(files.cert), "--tls-key", str(files.key)]


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory, tls: TlsFiles) -> Iterator[LiveServer]:
    server = LiveServer(
        tmp_path_factory.mktemp("https") / "data", workers=2, extra_args=_tls_args(tls), tls_ca=tls.ca
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


# The legacy SDK's vendored urllib3 uses ssl.PROTOCOL_TLS and ssl.match_hostname (deprecated).
_LEGACY = pytest.param("legacy", marks=pytest.mark.filterwarnings("ignore::DeprecationWarning"))


@pytest.mark.parametrize("mode", ["tea-acs3", "tea-rpc", _LEGACY])
def test_the_sdks_encrypt_and_decrypt_over_https_with_a_custom_ca(
    https_server: LiveServer, tls: TlsFiles, mode: str
) -> None:
    kms = KmsCaller(mode, https_server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET, ca=str(tls.ca))
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    key_id = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
    blob = kms.call("Encrypt", KeyId=key_id, Plaintext="over tls")["CiphertextBlob"]
    assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "over tls"


def test_a_certificate_from_an_unknown_ca_is_refused_by_the_sdk(https_server: LiveServer) -> None:
    """Verification is on: with only its own trust store (certifi) the SDK does not trust the server."""
    from alibabacloud_kms20160120.client import Client
    from alibabacloud_tea_openapi.models import Config

    # The SDK pools connections per host across its clients: `localhost` (also in the certificate)
    # makes sure this client shakes hands itself rather than reusing a connection verified earlier.
    config = Config(
        access_key_id=ACCESS_KEY_ID,
        access_key_secret=ACCESS_KEY_SECRET,
        endpoint=f"localhost:{https_server.port}",
        protocol="https",
        region_id="cn-hangzhou",
    )
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        Client(config).describe_regions()


def test_plain_http_is_not_served_on_a_tls_port(https_server: LiveServer) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://{https_server.endpoint}/healthz", timeout=5)
    assert httpx.get(f"{https_server.url}/readyz", verify=https_server.verify, timeout=5).status_code == 200


def test_the_listening_message_says_https(https_server: LiveServer) -> None:
    assert f"listening on https://{https_server.endpoint}" in https_server.log()


def test_secure_transport_conditions_deny_over_http_and_allow_over_https(
    tmp_path: Path, tls: TlsFiles
) -> None:
    """One data dir served first over HTTP, then over HTTPS: a RAM policy that allows Encrypt only
    with `acs:SecureTransport` true refuses the user on HTTP and lets it through on HTTPS."""
    server = LiveServer(tmp_path / "data")
    server.start()
    try:
        root_ram = Caller("ram", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        root_kms = KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        instance = root_kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
        key_id = root_kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
        user, policy = f"tls-{uuid.uuid4().hex[:8]}", f"only-tls-{uuid.uuid4().hex[:8]}"
        root_ram.call("CreateUser", UserName=user)
        access = root_ram.call("CreateAccessKey", UserName=user)["AccessKey"]
        document = {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["kms:Encrypt", "kms:Decrypt"],
                    "Resource": "*",
                    "Condition": {"Bool": {"acs:SecureTransport": "true"}},
                }
            ],
        }
        root_ram.call("CreatePolicy", PolicyName=policy, PolicyDocument=json.dumps(document))
        root_ram.call("AttachPolicyToUser", UserName=user, PolicyType="Custom", PolicyName=policy)
        over_http = Caller("kms", server.endpoint, access["AccessKeyId"], access["AccessKeySecret"])
        with pytest.raises(DeniedError) as caught:
            over_http.call("Encrypt", KeyId=key_id, Plaintext="plain")
        assert caught.value.code == "Forbidden.NoPermission"
    finally:
        server.stop()

    server = LiveServer(tmp_path / "data", extra_args=_tls_args(tls), tls_ca=tls.ca)
    server.start()
    try:
        over_https = Caller(
            "kms", server.endpoint, access["AccessKeyId"], access["AccessKeySecret"], ca=str(tls.ca)
        )
        blob = over_https.call("Encrypt", KeyId=key_id, Plaintext="secure")["CiphertextBlob"]
        assert over_https.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "secure"
    finally:
        server.stop()


def test_tls_settings_name_both_files(tls: TlsFiles, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="give both"):
        load_settings(environ={}, overrides={"tls_cert": str(tls.cert)})
    with pytest.raises(ConfigError, match="not a readable file"):
        load_settings(environ={}, overrides={"tls_cert": str(tls.cert), "tls_key": str(tmp_path / "none")})
    settings = load_settings(environ={}, overrides={"tls_cert": str(tls.cert), "tls_key": str(tls.key)})
    assert settings.tls_cert == tls.cert and settings.redacted()["tls_key"] == str(tls.key)


def test_a_key_that_does_not_match_the_certificate_is_refused_in_one_line(
    tls: TlsFiles, tmp_path: Path
) -> None:
    other = make_tls_files(tmp_path / "other")
    result = subprocess.run(
        [sys.executable, "-m", "openkms.cli", "serve", "--data-dir", str(tmp_path / "data"),
         "--tls-cert", str(tls.cert), "--tls-key", str(other.key)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "configuration error" in output and "key values mismatch" in output
    assert "Traceback" not in output
    assert other.key.read_text().splitlines()[1] not in output


def test_a_tls_server_stops_promptly_with_an_idle_client_connected(tmp_path: Path, tls: TlsFiles) -> None:
    """An idle keep-alive connection would hold a graceful TLS close for 30 s (asyncio's TLS shutdown
    timeout): the server aborts idle TLS connections when it stops."""
    server = LiveServer(tmp_path / "data", extra_args=_tls_args(tls), tls_ca=tls.ca)
    server.start()
    try:
        with httpx.Client(verify=server.verify) as idle:
            assert idle.get(f"{server.url}/healthz").status_code == 200
            assert server.process is not None
            server.process.terminate()
            # uvicorn re-raises the SIGTERM once it has shut down gracefully: -15, not a timeout.
            assert server.process.wait(timeout=15) in (0, -15)
    finally:
        server.stop()
