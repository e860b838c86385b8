"""The proxy run for real against a SoftHSM2 token: the spec's request and response shapes, errors,
health, CDIV, size limits, its log; and the client's view of the same."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from openkms.errors import ExternalKeyError, InvalidCiphertext, KeyStoreUnavailable
from openkms.secret import SecretBytes
from openkms.xks import sigv4
from openkms.xks.client import RequestMetadata, XksClient, cdiv
from tests.xks.conftest import ACCESS_KEY_ID, PREFIX, SECRET, LiveProxy

META = {
    "awsPrincipalArn": "acs:ram::1234:user/alice",
    "kmsKeyArn": "acs:kms:cn-hangzhou:1234:key/key-abc",
    "kmsOperation": "Encrypt",
    "kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae",
}
RM = RequestMetadata(META["awsPrincipalArn"], "Encrypt", META["kmsRequestId"], META["kmsKeyArn"])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def post(
    proxy: LiveProxy, path: str, body: Any, *, secret: str = SECRET, raw: bytes | None = None
) -> httpx.Response:
    """A signed POST as AWS KMS would send it."""
    payload = raw if raw is not None else json.dumps(body).encode()
    url = httpx.URL(proxy.endpoint + PREFIX + "/kms/xks/v1" + path)
    headers = {"host": url.netloc.decode(), "content-type": "application/json"}
    credential = sigv4.Credential(ACCESS_KEY_ID, SecretBytes(secret.encode()))
    headers.update(sigv4.sign(credential, "us-east-1", "POST", url.path, headers, payload, datetime.now(UTC)))
    return httpx.post(url, content=payload, headers=headers)


def encrypt_body(
    plaintext: bytes, aad: bytes | None = b"project=nile", cdiv_alg: bool = True
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "requestMetadata": META,
        "plaintext": b64(plaintext),
        "encryptionAlgorithm": "AES_GCM",
    }
    if aad is not None:
        body["additionalAuthenticatedData"] = b64(aad)
    if cdiv_alg:
        body["ciphertextDataIntegrityValueAlgorithm"] = "SHA_256"
    return body


def test_cdiv_matches_the_example_of_appendix_c() -> None:
    value = cdiv(
        b"project=nile,department=marketing",
        b"key_version=1",
        base64.b64decode("HMrlRw85cAJUd5Ax"),
        base64.b64decode("ghxkK1txeDNn3q8Y"),
        base64.b64decode("vBxN2ncH1oEkR8WVXpmyYQ=="),
    )
    assert b64(value) == "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc="


def test_health_has_the_spec_shape(proxy: LiveProxy) -> None:
    answer = post(
        proxy, "/health", {"requestMetadata": {"kmsRequestId": "r", "kmsOperation": "KmsHealthCheck"}}
    )
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {
        "xksProxyFleetSize",
        "xksProxyVendor",
        "xksProxyModel",
        "ekmVendor",
        "ekmFleetDetails",
    }
    assert body["xksProxyFleetSize"] == 1
    assert body["ekmFleetDetails"][0]["healthStatus"] == "ACTIVE"
    assert set(body["ekmFleetDetails"][0]) == {"id", "model", "healthStatus"}


def test_key_metadata_has_the_spec_shape(proxy: LiveProxy) -> None:
    answer = post(proxy, "/keys/key-1/metadata", {"requestMetadata": {**META, "kmsOperation": "CreateKey"}})
    assert answer.status_code == 200
    assert answer.json() == {"keySpec": "AES_256", "keyUsage": ["ENCRYPT", "DECRYPT"], "keyStatus": "ENABLED"}
    disabled = post(proxy, "/keys/off-1/metadata", {"requestMetadata": META})
    assert disabled.json()["keyStatus"] == "DISABLED"


def test_encrypt_then_decrypt_with_aad_and_cdiv(proxy: LiveProxy) -> None:
    answer = post(proxy, "/keys/key-1/encrypt", encrypt_body(b"Hello World!"))
    assert answer.status_code == 200
    out = answer.json()
    assert set(out) == {
        "ciphertext",
        "initializationVector",
        "authenticationTag",
        "ciphertextDataIntegrityValue",
    }
    ct, iv, tag = (
        base64.b64decode(out[k]) for k in ("ciphertext", "initializationVector", "authenticationTag")
    )
    assert (len(ct), len(iv), len(tag)) == (12, 12, 16)
    expected = hashlib.sha256(b"project=nile" + iv + ct + tag).digest()
    assert base64.b64decode(out["ciphertextDataIntegrityValue"]) == expected
    decrypt = {
        "requestMetadata": {**META, "kmsOperation": "Decrypt"},
        "ciphertext": out["ciphertext"],
        "initializationVector": out["initializationVector"],
        "authenticationTag": out["authenticationTag"],
        "additionalAuthenticatedData": b64(b"project=nile"),
        "encryptionAlgorithm": "AES_GCM",
    }
    plain = post(proxy, "/keys/key-1/decrypt", decrypt)
    assert plain.status_code == 200 and plain.json() == {"plaintext": b64(b"Hello World!")}
    # Without a CDIV algorithm there is no CDIV; a fresh IV every time.
    again = post(proxy, "/keys/key-1/encrypt", encrypt_body(b"Hello World!", cdiv_alg=False)).json()
    assert (
        "ciphertextDataIntegrityValue" not in again
        and again["initializationVector"] != out["initializationVector"]
    )
    for field, value in [
        ("additionalAuthenticatedData", b64(b"project=amazon")),
        ("authenticationTag", b64(bytes(16))),
        ("ciphertextMetadata", b64(b"v=1")),
    ]:
        bad = post(proxy, "/keys/key-1/decrypt", {**decrypt, field: value})
        assert (bad.status_code, bad.json()["errorName"]) == (400, "InvalidCiphertextException")
    other_key = post(proxy, "/keys/key-2/decrypt", decrypt)
    assert other_key.json()["errorName"] == "InvalidCiphertextException"


@pytest.mark.parametrize(
    ("path", "body", "status", "name"),
    [
        ("/keys/nope/encrypt", encrypt_body(b"x"), 404, "KeyNotFoundException"),
        ("/keys/off-1/encrypt", encrypt_body(b"x"), 400, "InvalidStateException"),
        (
            "/keys/key-1/encrypt",
            {**encrypt_body(b"x"), "encryptionAlgorithm": "AES_CBC"},
            400,
            "ValidationException",
        ),
        (
            "/keys/key-1/encrypt",
            {**encrypt_body(b"x"), "plaintext": "not base64!"},
            400,
            "ValidationException",
        ),
        (
            "/keys/key-1/encrypt",
            {"plaintext": b64(b"x"), "encryptionAlgorithm": "AES_GCM"},
            400,
            "ValidationException",
        ),
        (
            "/keys/key-1/encrypt",
            {**encrypt_body(b"x"), "requestMetadata": {"kmsOperation": "Encrypt"}},
            400,
            "ValidationException",
        ),
        ("/keys/key-1/encrypt", encrypt_body(bytes(8193)), 501, "UnsupportedOperationException"),
        ("/keys/key-1/sign", encrypt_body(b"x"), 404, "InvalidUriPathException"),
        (
            "/keys/key-1/decrypt",
            {
                "requestMetadata": META,
                "ciphertext": b64(b"x"),
                "encryptionAlgorithm": "AES_GCM",
                "initializationVector": b64(bytes(8)),
                "authenticationTag": b64(bytes(16)),
            },
            400,
            "ValidationException",
        ),
    ],
)
def test_errors_have_the_spec_names_and_statuses(
    proxy: LiveProxy, path: str, body: dict[str, Any], status: int, name: str
) -> None:
    answer = post(proxy, path, body)
    assert (answer.status_code, answer.json()["errorName"]) == (status, name)
    assert answer.json()["errorMessage"].isascii() and len(answer.json()["errorMessage"]) < 512


def test_authentication_path_method_and_size_are_checked_first(proxy: LiveProxy) -> None:
    wrong = post(proxy, "/health", {"requestMetadata": META}, secret="W" * 43)
    assert (wrong.status_code, wrong.json()["errorName"]) == (401, "AuthenticationFailedException")
    unsigned = httpx.post(proxy.endpoint + PREFIX + "/kms/xks/v1/health", json={"requestMetadata": META})
    assert unsigned.status_code == 401
    get = httpx.get(proxy.endpoint + PREFIX + "/kms/xks/v1/keys/key-1/encrypt")
    assert get.status_code == 405
    elsewhere = httpx.post(proxy.endpoint + "/other/kms/xks/v1/health", json={})
    assert (elsewhere.status_code, elsewhere.json()["errorName"]) == (404, "InvalidUriPathException")
    huge = post(proxy, "/health", None, raw=b" " * (64 * 1024 + 1))
    assert (huge.status_code, huge.json()["errorName"]) == (501, "UnsupportedOperationException")
    assert httpx.get(proxy.endpoint + "/ping").text == "ok"


def test_every_call_is_logged_with_its_metadata_and_never_the_plaintext(
    proxy: LiveProxy, caplog: pytest.LogCaptureFixture
) -> None:
    secret_text = b"the plaintext nobody logs"
    with caplog.at_level(logging.INFO, logger="openkms.xks.proxy"):
        post(proxy, "/keys/key-1/encrypt", encrypt_body(secret_text))
        post(proxy, "/keys/nope/encrypt", encrypt_body(secret_text))
    lines = [r.getMessage() for r in caplog.records if r.name == "openkms.xks.proxy"]
    assert len(lines) == 2
    first = json.loads(lines[0].removeprefix("xks "))
    assert first["requestMetadata"]["kmsRequestId"] == META["kmsRequestId"]
    assert first["requestMetadata"]["awsPrincipalArn"] == META["awsPrincipalArn"]
    assert (first["outcome"], first["externalKeyId"], first["accessKeyId"]) == ("OK", "key-1", ACCESS_KEY_ID)
    assert json.loads(lines[1].removeprefix("xks "))["outcome"] == "KeyNotFoundException"
    text = "\n".join(lines)
    assert b64(secret_text) not in text and "plaintext nobody" not in text and SECRET not in text


def test_the_client_speaks_to_the_proxy(proxy: LiveProxy, make_client: Callable[..., XksClient]) -> None:
    client = make_client(proxy.endpoint)
    assert client.get_key_metadata("key-1", RM).key_status == "ENABLED"
    result = client.encrypt("key-1", b"data key bytes", b"aad", RM)
    assert result.ciphertext_metadata is None
    plain = client.decrypt("key-1", result.ciphertext, result.iv, result.tag, b"aad", RM)
    assert plain.reveal() == b"data key bytes"
    with pytest.raises(InvalidCiphertext):
        client.decrypt("key-1", result.ciphertext, result.iv, result.tag, b"aae", RM)
    with pytest.raises(ExternalKeyError, match="not found"):
        client.encrypt("nope", b"x", b"", RM)
    with pytest.raises(ExternalKeyError, match="disabled"):
        client.encrypt("off-1", b"x", b"", RM)
    assert "FYtE5" not in repr(client)


def test_the_client_reports_a_refused_credential_as_unavailable(
    proxy: LiveProxy, make_client: Callable[..., XksClient]
) -> None:
    client = make_client(proxy.endpoint, secret="W" * 43)
    with pytest.raises(KeyStoreUnavailable, match="refused OpenKMS's credential") as caught:
        client.get_health_status(RM)
    assert "W" * 10 not in str(caught.value)
    wrong_prefix = make_client(proxy.endpoint, path_prefix="/elsewhere")
    with pytest.raises(KeyStoreUnavailable, match="path prefix"):
        wrong_prefix.get_health_status(RM)
