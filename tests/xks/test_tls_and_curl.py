"""The proxy over TLS (a throwaway CA and certificate made here) and signed by another implementation
of SigV4: curl's --aws-sigv4, as the spec's Appendix D does."""

from __future__ import annotations

import datetime
import ipaddress
import json
import shutil
import subprocess
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
