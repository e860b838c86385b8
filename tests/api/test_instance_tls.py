"""HTTPS with the deployment's own CA (`serve --tls-instance-ca`): the official SDK verifies the server
against the CA that `openkms instance ca` writes (and GetKmsInstance answers), without turning
verification off, by IP and by DNS name; the CA survives restarts; a client that does not trust it
is refused by its own TLS check."""

from __future__ import annotations

import ssl
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.support.sdk import KmsCaller
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer


def _write_ca(data_dir: Path, out: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "openkms.cli",
            "instance",
            "ca",
            "--out",
            str(out),
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("instance-tls")
    first = LiveServer(folder / "data").start()  # the first start makes the CA
    first.stop()
    ca = folder / "ca.pem"
    _write_ca(first.data_dir, ca)
    server = LiveServer(
        folder / "data", extra_args=["--tls-instance-ca", "--tls-names", "localhost,127.0.0.1"], tls_ca=ca
    )
    server.start()  # its readiness check already verifies the certificate against ca.pem
    yield server
    server.stop()


def test_the_sdk_verifies_the_server_against_the_instance_ca(https_server: LiveServer) -> None:
    assert https_server.tls_ca is not None
    ca = str(https_server.tls_ca)
    kms = KmsCaller("tea-acs3", https_server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET, ca=ca)
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    answered = kms.call("GetKmsInstance", KmsInstanceId=instance)["KmsInstance"]["CaCertificateChainPem"]
    assert answered == Path(ca).read_text()
    key_id = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
    blob = kms.call("Encrypt", KeyId=key_id, Plaintext="aGVsbG8=")["CiphertextBlob"]
    assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "aGVsbG8="

    by_name = KmsCaller("tea-rpc", f"localhost:{https_server.port}", ACCESS_KEY_ID, ACCESS_KEY_SECRET, ca=ca)
    assert by_name.call("DescribeRegions")["Regions"]["Region"]


def test_a_client_that_does_not_trust_the_ca_is_refused_by_its_tls_check(https_server: LiveServer) -> None:
    with pytest.raises(httpx.ConnectError) as caught:
        httpx.get(f"{https_server.url}/healthz", timeout=5.0)  # certifi's public roots only
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert isinstance(https_server.verify, ssl.SSLContext)
    assert (
        httpx.get(f"{https_server.url}/healthz", timeout=5.0, verify=https_server.verify).status_code == 200
    )


def test_the_server_certificate_names_the_configured_names_and_its_key_is_private(
    https_server: LiveServer,
) -> None:
    assert https_server.tls_ca is not None
    ca = x509.load_pem_x509_certificate(https_server.tls_ca.read_bytes())
    folder = https_server.data_dir / "tls"
    chain = x509.load_pem_x509_certificates((folder / "instance-server.pem").read_bytes())
    server_cert = chain[0]
    assert server_cert.issuer == ca.subject and chain[1] == ca
    names = server_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    usage = server_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert server_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert stat.S_IMODE((folder / "instance-server.key").stat().st_mode) == 0o600
    assert "https://" in https_server.log()


def test_instance_ca_and_own_files_exclude_each_other(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "openkms.cli",
            "serve",
            "--data-dir",
            str(tmp_path / "data"),
            "--tls-instance-ca",
            "--tls-cert",
            __file__,
            "--tls-key",
            __file__,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "choose one" in done.stdout + done.stderr
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "openkms.cli",
            "serve",
            "--data-dir",
            str(tmp_path / "data"),
            "--tls-instance-ca",
            "--tls-names",
            "localhost,not a name",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and "tls_names" in bad.stdout + bad.stderr
