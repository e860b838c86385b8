"""The proxy over TLS (a throwaway CA and certificate made here) and signed by another implementation
of SigV4: curl's --aws-sigv4, as the spec's Appendix D does."""

from __future__ import annotations

import datetime
import ipaddress
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from openkms.errors import KeyStoreUnavailable
from openkms.secret import SecretBytes
from openkms.xks.client import RequestMetadata, XksClient
from openkms.xks.proxy import create_app
from tests.xks.conftest import ACCESS_KEY_ID, PREFIX, SECRET, LiveProxy, proxy_config, serve
from tests.xks.token import SoftToken

META = RequestMetadata("acs:ram::1234:user/alice", "Encrypt", "req-tls", "acs:kms:cn-hangzhou:1234:key/k")


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("OpenKMS test CA"))
        .issuer_name(_name("OpenKMS test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("xks.test"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": folder / "ca.pem", "cert": folder / "proxy.pem", "key": folder / "proxy.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


@pytest.fixture(scope="module")
def tls_proxy(token: SoftToken, pki: dict[str, Path]) -> Iterator[LiveProxy]:
    live = serve(
        create_app(proxy_config(token), token.sessions()),
        ssl_certfile=str(pki["cert"]),
        ssl_keyfile=str(pki["key"]),
    )
    yield live
    live.stop()


def test_over_tls_with_the_ca_of_the_instance(
    tls_proxy: LiveProxy, pki: dict[str, Path], make_client: Callable[..., XksClient]
) -> None:
    assert tls_proxy.endpoint.startswith("https://")
    client = make_client(tls_proxy.endpoint, ca_file=str(pki["ca"]), allow_http=False)
    result = client.encrypt("key-1", b"over tls", b"aad", META)
    assert (
        client.decrypt("key-1", result.ciphertext, result.iv, result.tag, b"aad", META).reveal()
        == b"over tls"
    )
    untrusted = make_client(tls_proxy.endpoint, allow_http=False)  # the system's CAs do not know ours
    with pytest.raises(KeyStoreUnavailable, match="cannot be reached"):
        untrusted.get_health_status(META)


def test_plain_http_needs_the_explicit_flag() -> None:
    with pytest.raises(ValueError, match="https"):
        XksClient("http://127.0.0.1:1", "", ACCESS_KEY_ID, SecretBytes(b"x" * 43), None, False, 1.0)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_sigv4_requests_are_accepted(proxy: LiveProxy) -> None:
    body = {
        "requestMetadata": {
            "awsPrincipalArn": "arn:aws:iam::123456789012:user/Alice",
            "kmsKeyArn": "arn:aws:kms:us-east-2:123456789012:/key/1234abcd",
            "kmsOperation": "GenerateDataKey",
            "kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae",
        },
        "plaintext": "SGVsbG8gV29ybGQh",
        "encryptionAlgorithm": "AES_GCM",
    }

    def curl(secret: str) -> dict[str, str]:
        out = subprocess.run(
            [
                "curl",
                "-s",
                "--aws-sigv4",
                "aws:amz:us-east-1:kms-xks-proxy",
                "--user",
                f"{ACCESS_KEY_ID}:{secret}",
                "-X",
                "POST",
                "-H",
                "Content-Type:application/json",
                "--data",
                json.dumps(body),
                f"{proxy.endpoint}{PREFIX}/kms/xks/v1/keys/key-1/encrypt",
            ],
            check=True,
            capture_output=True,
            timeout=10,
        )
        return json.loads(out.stdout)

    answer = curl(SECRET)
    assert set(answer) == {"ciphertext", "initializationVector", "authenticationTag"}
    assert curl("W" * 43) == {
        "errorName": "AuthenticationFailedException",
        "errorMessage": "The SigV4 signature is not valid.",
    }


def test_the_path_prefix_may_be_given_with_or_without_the_api_path(
    proxy: LiveProxy, make_client: Callable[..., XksClient]
) -> None:
    for prefix in (PREFIX, PREFIX + "/", PREFIX + "/kms/xks/v1"):
        assert (
            make_client(proxy.endpoint, path_prefix=prefix).get_health_status(META)["xksProxyFleetSize"] == 1
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_cli_refuses_a_readable_config_makes_keys_and_serves_over_tls(
    token: SoftToken, pki: dict[str, Path], tmp_path: Path, make_client: Callable[..., XksClient]
) -> None:
    openkms = [sys.executable, "-m", "openkms.cli"]
    config = tmp_path / "xks.toml"
    config.write_text(
        f'path_prefix = "{PREFIX}"\n'
        f'[tls]\ncert = "{pki["cert"]}"\nkey = "{pki["key"]}"\n'
        f'[[credentials]]\naccess_key_id = "{ACCESS_KEY_ID}"\nsecret_access_key = "{SECRET}"\n'
        f"[token]\n" + "".join(f'{k} = "{v}"\n' for k, v in token.settings.items()) + "[keys.cli-key]\n"
        'label = "xks-cli-made"\n'
    )
    config.chmod(0o644)
    refused = subprocess.run(
        [*openkms, "xks-proxy", "keys", "create", "--config", str(config), "--label", "x"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 2 and "chmod 600" in refused.stderr
    config.chmod(0o600)
    create = [*openkms, "xks-proxy", "keys", "create", "--config", str(config), "--label", "xks-cli-made"]
    made = subprocess.run(create, capture_output=True, text=True, timeout=30)
    assert made.returncode == 0, made.stderr
    assert "[keys.<external-key-id>]" in made.stdout
    again = subprocess.run(create, capture_output=True, text=True, timeout=30)
    assert again.returncode == 1 and "already has a key" in again.stderr

    port = _free_port()
    server = subprocess.Popen(
        [*openkms, "xks-proxy", "--config", str(config), "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client = make_client(f"https://127.0.0.1:{port}", ca_file=str(pki["ca"]), allow_http=False)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.get_health_status(META)
                break
            except KeyStoreUnavailable:
                assert server.poll() is None and time.monotonic() < deadline, "the proxy did not start"
                time.sleep(0.1)
        result = client.encrypt("cli-key", b"made by the cli", b"aad", META)
        plain = client.decrypt("cli-key", result.ciphertext, result.iv, result.tag, b"aad", META)
        assert plain.reveal() == b"made by the cli"
    finally:
        server.terminate()  # an idle TLS keep-alive connection holds the shutdown two seconds at most
        _, log = server.communicate(timeout=15)
    assert '"kmsRequestId": "req-tls"' in log and "made by the cli" not in log
