"""SigV4 for the XKS proxy API: known answers, the spec's header format, and every refusal."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from openkms.secret import SecretBytes
from openkms.xks import sigv4

NOW = datetime(2021, 10, 9, 12, 30, 0, tzinfo=UTC)
AKID = "MUBSXM6K3KMXHN6RRCXI7TWQH4NU76HYFKRSESPMTSTIBADXQQXQ"  # the access key id of spec Appendix A
SECRET = SecretBytes(b"FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE")  # the spec's configuration example
PATH = "/example/kms/xks/v1/keys/key-1/encrypt"
BODY = b'{"requestMetadata":{"kmsOperation":"Encrypt","kmsRequestId":"r-1"}}'
HOST = "xks.example.com"

# AWS's published SigV4 test suite (aws-sig-v4-test-suite): secret, date, region and service "service".
AWS_SECRET = SecretBytes(b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
AWS_SCOPE = "20150830/us-east-1/service/aws4_request"


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("GET", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),  # get-vanilla
        ("POST", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),  # post-vanilla
    ],
)
def test_known_answers_of_the_aws_test_suite(method: str, expected: str) -> None:
    headers = {"host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z"}
    request = sigv4.canonical_request(method, "/", "", headers, ["host", "x-amz-date"], b"")
    assert sigv4.signature(AWS_SECRET, "20150830T123600Z", AWS_SCOPE, request) == expected


def _signed(body: bytes = BODY, now: datetime = NOW, region: str = "us-west-2") -> dict[str, str]:
    headers = {"host": HOST, "content-type": "application/json"}
    headers.update(sigv4.sign(sigv4.Credential(AKID, SECRET), region, "POST", PATH, headers, body, now))
    return headers


def _verify(
    headers: dict[str, str], *, body: bytes = BODY, path: str = PATH, now: datetime = NOW, **kw: object
) -> str:
    secrets = kw.get("secrets", {AKID: SECRET})
    regions = kw.get("regions", frozenset({"us-west-2"}))
    return sigv4.verify(secrets, regions, "POST", path, "", list(headers.items()), body, now)  # type: ignore[arg-type]


def test_the_authorization_header_has_the_format_of_appendix_a() -> None:
    headers = _signed()
    assert headers["x-amz-date"] == "20211009T123000Z"
    assert re.fullmatch(
        rf"AWS4-HMAC-SHA256 Credential={AKID}/20211009/us-west-2/kms-xks-proxy/aws4_request, "
        r"SignedHeaders=host;x-amz-date, Signature=[0-9a-f]{64}",
        headers["authorization"],
    )


def test_the_example_header_of_appendix_a_parses_but_our_secret_does_not_match_it() -> None:
    # The spec prints the header but not the secret behind it: it can only be parsed, not reproduced.
    headers = {
        "host": HOST,
        "x-amz-date": "20211009T123000Z",
        "authorization": f"AWS4-HMAC-SHA256 Credential={AKID}/20211009/us-west-2/kms-xks-proxy/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=1164eaa8e79eacaa9c0df54aa42f3b300380d14bedfc08e3b319648d4abfff66",
    }
    with pytest.raises(sigv4.SignatureRejected, match="does not match"):
        _verify(headers)


def test_a_signed_request_verifies_and_names_its_access_key() -> None:
    assert _verify(_signed()) == AKID
    # Header names are case-insensitive and a second credential (rotation) is accepted too.
    upper = {k.title(): v for k, v in _signed().items()}
    assert _verify(upper, secrets={"OTHERKEYID": SecretBytes(b"x" * 43), AKID: SECRET}) == AKID


def test_a_changed_body_path_or_header_is_refused() -> None:
    headers = _signed()
    with pytest.raises(sigv4.SignatureRejected, match="does not match"):
        _verify(headers, body=BODY.replace(b"Encrypt", b"Decrypt"))
    with pytest.raises(sigv4.SignatureRejected, match="does not match"):
        _verify(headers, path=PATH.replace("key-1", "key-2"))
    with pytest.raises(sigv4.SignatureRejected, match="does not match"):
        _verify({**headers, "host": "other.example.com"})
    with pytest.raises(sigv4.SignatureRejected, match="does not match"):
        _verify({**headers, "x-amz-date": "20211009T123001Z"}, now=NOW)


def test_a_stale_or_future_date_is_refused() -> None:
    assert _verify(_signed(now=NOW - timedelta(minutes=4, seconds=59))) == AKID
    with pytest.raises(sigv4.SignatureRejected, match="five minutes"):
        _verify(_signed(now=NOW - timedelta(minutes=5, seconds=1)))
    with pytest.raises(sigv4.SignatureRejected, match="five minutes"):
        _verify(_signed(now=NOW + timedelta(minutes=6)))


def test_an_unknown_access_key_is_refused() -> None:
    with pytest.raises(sigv4.SignatureRejected, match="unknown access key"):
        _verify(_signed(), secrets={"SOMEONEELSE": SECRET})


def test_a_wrong_scope_is_refused() -> None:
    headers = _signed()
    with pytest.raises(sigv4.SignatureRejected, match="region"):
        _verify(_signed(region="eu-west-1"))
    for wrong, reason in [
        ("/kms-xks-proxy/", "/kms/"),
        ("/aws4_request", "/aws4_other"),
        ("/20211009/", "/20211010/"),
    ]:
        bad = {**headers, "authorization": headers["authorization"].replace(wrong, reason)}
        with pytest.raises(sigv4.SignatureRejected, match="scope"):
            _verify(bad)


def test_host_and_date_must_be_signed() -> None:
    headers = _signed()
    bad = {**headers, "authorization": headers["authorization"].replace("host;x-amz-date", "x-amz-date")}
    with pytest.raises(sigv4.SignatureRejected, match="must include host"):
        _verify(bad)
    with pytest.raises(sigv4.SignatureRejected, match="malformed"):
        _verify({k: v for k, v in headers.items() if k != "authorization"})


def test_a_declared_payload_hash_must_match_the_body() -> None:
    headers = {**_signed(), "x-amz-content-sha256": "0" * 64}
    with pytest.raises(sigv4.SignatureRejected, match="x-amz-content-sha256"):
        _verify(headers)


def test_the_secret_is_never_in_a_repr() -> None:
    assert "FYtE5" not in repr(sigv4.Credential(AKID, SECRET))
