"""The OpenKMS extension action GenerateCertificateSigningRequest (no SDK model: signed raw RPC) and the
`openkms csr` command. CSRs are parsed locally: signature valid, subject exactly as given, public key
equal to GetPublicKey."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from openkms.cli.main import app
from tests.support.raw import send, signed_params
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

SUBJECT = {
    "CommonName": "signer.example.com",
    "Organization": "Example, Inc. (R&D)",
    "OrganizationalUnit": "Platform / Security",
    "Province": "Zhejiang",
    "Locality": "Hangzhou",
    "Country": "CN",
    "Email": "pki@example.com",
}
_OIDS = {
    "CommonName": NameOID.COMMON_NAME,
    "Organization": NameOID.ORGANIZATION_NAME,
    "OrganizationalUnit": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "Province": NameOID.STATE_OR_PROVINCE_NAME,
    "Locality": NameOID.LOCALITY_NAME,
    "Country": NameOID.COUNTRY_NAME,
    "Email": NameOID.EMAIL_ADDRESS,
}


def _rpc(server: LiveServer, action: str, **params: str) -> httpx.Response:
    return send(
        server.url, signed_params(action, ACCESS_KEY_ID, ACCESS_KEY_SECRET, RegionId="cn-hangzhou", **params)
    )


def _key(server: LiveServer, spec: str, usage: str = "SIGN/VERIFY") -> tuple[str, str]:
    instances = _rpc(server, "ListKmsInstances").json()["KmsInstances"]["KmsInstance"]
    created = _rpc(
        server, "CreateKey", DKMSInstanceId=instances[0]["KmsInstanceId"], KeySpec=spec, KeyUsage=usage
    ).json()["KeyMetadata"]
    return created["KeyId"], created["PrimaryKeyVersion"]


@pytest.fixture(scope="module")
def rsa_key(server: LiveServer) -> tuple[str, str]:
    return _key(server, "RSA_2048")


def _check(
    server: LiveServer, pem: str, key: tuple[str, str], subject: dict[str, str]
) -> x509.CertificateSigningRequest:
    csr = x509.load_pem_x509_csr(pem.encode())
    assert csr.is_signature_valid
    for name, oid in _OIDS.items():
        values = [attribute.value for attribute in csr.subject.get_attributes_for_oid(oid)]
        assert values == ([subject[name]] if name in subject else []), name
    published = _rpc(server, "GetPublicKey", KeyId=key[0], KeyVersionId=key[1]).json()["PublicKey"]
    assert (
        csr.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
        == published
    )
    return csr


@pytest.mark.parametrize("algorithm", ["RSA_PKCS1_SHA_256", "RSA_PSS_SHA_256"])
def test_rsa_csr_is_valid_and_carries_the_exact_subject(
    server: LiveServer, rsa_key: tuple[str, str], algorithm: str
) -> None:
    response = _rpc(
        server,
        "GenerateCertificateSigningRequest",
        KeyId=rsa_key[0],
        KeyVersionId=rsa_key[1],
        Algorithm=algorithm,
        **SUBJECT,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["KeyId"], body["KeyVersionId"]) == rsa_key
    csr = _check(server, body["Csr"], rsa_key, SUBJECT)
    expected = padding.PSS if algorithm == "RSA_PSS_SHA_256" else padding.PKCS1v15
    assert isinstance(csr.signature_algorithm_parameters, expected)


@pytest.mark.parametrize("spec", ["EC_P256", "EC_P256K"])
def test_ec_csr_with_only_a_common_name(server: LiveServer, spec: str) -> None:
    key = _key(server, spec)
    response = _rpc(
        server,
        "GenerateCertificateSigningRequest",
        KeyId=key[0],
        KeyVersionId=key[1],
        Algorithm="ECDSA_SHA_256",
        CommonName="device-42",
    )
    assert response.status_code == 200, response.text
    _check(server, response.json()["Csr"], key, {"CommonName": "device-42"})


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"Country": "XX"}, "InvalidParameter"),
        ({"Country": "cn"}, "InvalidParameter"),
        ({"Country": "CHN"}, "InvalidParameter"),
        ({"CommonName": ""}, "MissingCommonName"),
        ({"CommonName": "x" * 65}, "InvalidParameter"),
        ({"Email": "not-an-email"}, "InvalidParameter"),
        ({"Organization": " padded"}, "InvalidParameter"),
        ({"Algorithm": "ECDSA_SHA_256"}, "InvalidParameter"),
        ({"Algorithm": "RSAES_OAEP_SHA_256"}, "InvalidParameter"),
        ({"Serial": "1"}, "InvalidParameter"),
    ],
)
def test_csr_refusals(
    server: LiveServer, rsa_key: tuple[str, str], override: dict[str, str], code: str
) -> None:
    params = {
        "KeyId": rsa_key[0],
        "KeyVersionId": rsa_key[1],
        "Algorithm": "RSA_PKCS1_SHA_256",
        **SUBJECT,
        **override,
    }
    params = {name: value for name, value in params.items() if value != ""}
    response = _rpc(server, "GenerateCertificateSigningRequest", **params)
    assert (response.status_code, response.json()["Code"]) == (400, code), response.text
    assert "Csr" not in response.json()


def test_csr_needs_a_signing_key(server: LiveServer) -> None:
    key = _key(server, "RSA_2048", "ENCRYPT/DECRYPT")
    response = _rpc(
        server,
        "GenerateCertificateSigningRequest",
        KeyId=key[0],
        KeyVersionId=key[1],
        Algorithm="RSA_PKCS1_SHA_256",
        CommonName="x",
    )
    assert (response.status_code, response.json()["Code"]) == (400, "UnsupportedOperation")


def test_cli_writes_the_csr_to_a_file(server: LiveServer, rsa_key: tuple[str, str], tmp_path: Path) -> None:
    out = tmp_path / "request.csr"
    result = CliRunner().invoke(
        app,
        [
            "csr",
            "--endpoint",
            server.url,
            "--key-id",
            rsa_key[0],
            "--key-version-id",
            rsa_key[1],
            "--algorithm",
            "RSA_PSS_SHA_256",
            "--common-name",
            SUBJECT["CommonName"],
            "--organization",
            SUBJECT["Organization"],
            "--country",
            "CN",
            "--out",
            str(out),
        ],
        env={"OPENKMS_ACCESS_KEY_ID": ACCESS_KEY_ID, "OPENKMS_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET},
    )
    assert result.exit_code == 0, result.output
    _check(
        server,
        out.read_text(),
        rsa_key,
        {name: SUBJECT[name] for name in ("CommonName", "Organization", "Country")},
    )


def test_cli_reports_a_refusal_and_writes_nothing(
    server: LiveServer, rsa_key: tuple[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "request.csr"
    result = CliRunner().invoke(
        app,
        [
            "csr",
            "--endpoint",
            server.url,
            "--key-id",
            rsa_key[0],
            "--key-version-id",
            rsa_key[1],
            "--common-name",
            "x",
            "--country",
            "ZZ",
            "--out",
            str(out),
        ],
        env={"OPENKMS_ACCESS_KEY_ID": ACCESS_KEY_ID, "OPENKMS_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET},
    )
    assert result.exit_code == 1
    assert "InvalidParameter" in result.output
    assert not out.exists()


def test_the_official_sdk_generic_request_reaches_the_extension(
    server: LiveServer, rsa_key: tuple[str, str]
) -> None:
    """The SDK has no model for our action, but its generic CommonRequest signs and sends it as any other."""
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkcore.request import CommonRequest

    request = CommonRequest(
        domain=server.endpoint, version="2016-01-20", action_name="GenerateCertificateSigningRequest"
    )
    request.set_protocol_type("http")
    request.set_method("POST")
    for name, value in {
        "KeyId": rsa_key[0],
        "KeyVersionId": rsa_key[1],
        "Algorithm": "RSA_PKCS1_SHA_256",
        "CommonName": "sdk",
    }.items():
        request.add_query_param(name, value)
    client = AcsClient(ACCESS_KEY_ID, ACCESS_KEY_SECRET, "cn-hangzhou")
    answer = json.loads(client.do_action_with_exception(request))
    _check(server, answer["Csr"], rsa_key, {"CommonName": "sdk"})
