"""Fuzzing api/signature.py: the three schemes (RPC HMAC-SHA1, ACS3-HMAC-SHA256, ACS4-HMAC-SHA256).

Requests signed correctly, then changed in one place (a parameter, a header, the Authorization
header, the body, the method): identifying and verifying them either succeeds or ends in a documented
refusal, and a changed request that still verifies carries exactly the signed facts and parameters of
the original (what changed was not covered by the signature and means nothing)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st

from openkms.api.params import parse_request
from openkms.api.signature import check_freshness, identify, verify
from openkms.errors import OpenKMSError
from tests.fuzz.signers import FORM_TYPE, SCHEMES, WireRequest, sign_acs, sign_rpc
from tests.fuzz.strategies import NASTY, mutated_text, wire_text
from tests.fuzz.support import assert_documented_refusal, fuzz_settings, no_hang, refused_or_value

AK = "LTAIfuzzAccessKey"
SECRET = "fuzzSecret0123456789"
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)

params_strategy = st.dictionaries(
    st.one_of(st.sampled_from(["KeyId", "Plaintext", "EncryptionContext", "Tag.1.Key"]), wire_text).filter(
        lambda name: name not in ("Signature", "Action", "Version", "AccessKeyId")
    ),
    wire_text,
    max_size=5,
)


@st.composite
def signed_request(draw: st.DrawFn) -> tuple[str, WireRequest]:
    scheme = draw(st.sampled_from(SCHEMES))
    method = draw(st.sampled_from(["GET", "POST"]))
    params = draw(params_strategy)
    nonce = draw(st.uuids()).hex
    moment = NOW + timedelta(seconds=draw(st.integers(-600, 600)))
    if scheme == "HMAC-SHA1":
        common = {
            "Action": "Encrypt",
            "Version": "2016-01-20",
            "AccessKeyId": AK,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "SignatureNonce": nonce,
            "Timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        return scheme, sign_rpc(
            params | common, SECRET, method, in_body=method == "POST" and draw(st.booleans())
        )
    headers = {
        "host": "kms.cn-hangzhou.aliyuncs.com",
        "x-acs-action": "Encrypt",
        "x-acs-version": "2016-01-20",
        "x-acs-date": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": nonce,
    }
    body = b""
    if method == "POST" and draw(st.booleans()):
        body_params = draw(params_strategy)
        params = {k: v for k, v in params.items() if k not in body_params}
        body = urlencode(body_params).encode()
        headers["content-type"] = FORM_TYPE
    if draw(st.booleans()):
        headers["x-acs-accesskey-id"] = AK
    return scheme, sign_acs(scheme, AK, SECRET, method, params, headers, body)


@st.composite
def one_change(draw: st.DrawFn, wire: WireRequest) -> WireRequest:
    where = draw(
        st.sampled_from(
            [
                "query",
                "query-name",
                "add",
                "drop",
                "header",
                "header-drop",
                "authorization",
                "body",
                "method",
                "raw",
            ]
        )
    )
    query, headers = list(wire.query), list(wire.headers)
    if where == "query" and query:
        at = draw(st.integers(0, len(query) - 1))
        query[at] = (query[at][0], draw(st.one_of(wire_text, st.just(query[at][1] + " "))))
    elif where == "query-name" and query:
        at = draw(st.integers(0, len(query) - 1))
        query[at] = (draw(st.one_of(wire_text, st.just(query[at][0].lower()))), query[at][1])
    elif where == "add":
        query.append(
            (
                draw(st.one_of(st.sampled_from(["Signature", "Action", "RegionId", "x"]), wire_text)),
                draw(wire_text),
            )
        )
    elif where == "drop" and query:
        del query[draw(st.integers(0, len(query) - 1))]
    elif where == "header" and headers:
        at = draw(st.integers(0, len(headers) - 1))
        headers[at] = (headers[at][0], draw(st.one_of(wire_text, st.just(" " + headers[at][1] + "\t"))))
    elif where == "header-drop" and headers:
        del headers[draw(st.integers(0, len(headers) - 1))]
    elif where == "authorization":
        for at, (name, value) in enumerate(headers):
            if name == "authorization":
                headers[at] = (name, draw(mutated_text(value)))
        if not any(name == "authorization" for name, _ in headers):
            headers.append(
                (
                    "authorization",
                    draw(st.one_of(st.sampled_from(NASTY), wire_text)).join(["ACS3-HMAC-SHA256 ", ""]),
                )
            )
    elif where == "body":
        body = bytearray(wire.body or b"x")
        at = draw(st.integers(0, len(body) - 1))
        body[at] ^= draw(st.integers(1, 255))
        return replace(wire, body=bytes(body))
    elif where == "method":
        return replace(wire, method=draw(st.sampled_from(["GET", "POST", "PUT", "post"])))
    elif where == "raw":
        return replace(
            wire,
            extra_raw_query=draw(st.sampled_from([b"&", b"&%", b"&%ff=1", b"&a=%C3%28", b"&&=", b"&+=+"])),
        )
    return replace(wire, query=query, headers=headers)


def secret_of(access_key_id: str) -> str:
    """The secret the server would look up: each access key has its own (ACS3 signs no key id)."""
    return SECRET if access_key_id == AK else f"other-{access_key_id}"


def facts(wire: WireRequest) -> tuple[object, ...]:
    """What a verified request means: its signed facts, its parameters, its method, and for ACS3/ACS4
    its body (an RPC request's body means something only as form parameters)."""
    request = parse_request(wire.method, wire.path, wire.raw_query(), wire.raw_headers(), wire.body)
    signed = identify(request)
    verify(request, signed, secret_of(signed.access_key_id))
    body = request.body if signed.scheme != "HMAC-SHA1" else b""
    claimed = (
        signed.scheme,
        signed.access_key_id,
        signed.nonce,
        signed.timestamp,
        signed.action,
        signed.version,
    )
    return claimed, dict(request.params), request.method, body


@fuzz_settings(400)
@given(signed_request(), st.data())
def test_a_changed_signed_request_verifies_only_if_nothing_signed_changed(
    signed: tuple[str, WireRequest], data: st.DataObject
) -> None:
    scheme, wire = signed
    original = facts(wire)  # what the signers sign, the server accepts
    assert original[0][0] == scheme
    changed = data.draw(one_change(wire))
    outcome = refused_or_value(lambda: facts(changed))
    if isinstance(outcome, OpenKMSError):
        return
    assert outcome == original, "a request that verifies must mean what was signed"


@fuzz_settings(300)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "authorization",
                    "x-acs-date",
                    "x-acs-signature-nonce",
                    "host",
                    "x-acs-action",
                    "content-type",
                ]
            ),
            wire_text,
        ),
        max_size=6,
    ),
    st.dictionaries(
        st.sampled_from(
            [
                "Signature",
                "SignatureMethod",
                "SignatureVersion",
                "Timestamp",
                "AccessKeyId",
                "SignatureNonce",
                "Action",
                "Version",
            ]
        ),
        wire_text,
    ),
)
def test_any_headers_and_signing_parameters_are_identified_or_refused(
    headers: list[tuple[str, str]], params: dict[str, str]
) -> None:
    wire = WireRequest("POST", sorted(params.items()), headers)
    request = refused_or_value(lambda: parse_request("POST", "/", wire.raw_query(), wire.raw_headers(), b""))
    if isinstance(request, OpenKMSError):
        return
    signed = refused_or_value(lambda: identify(request))
    if isinstance(signed, OpenKMSError):
        return
    refused_or_value(lambda: check_freshness(signed, NOW.timestamp()))
    with no_hang():
        try:
            verify(request, signed, SECRET)
        except OpenKMSError as error:
            assert_documented_refusal(error)


@fuzz_settings(200)
@given(
    st.one_of(
        wire_text,
        st.datetimes().map(lambda d: d.isoformat()),
        st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    )
)
def test_any_timestamp_is_read_or_refused(timestamp: str) -> None:
    wire = sign_rpc(
        {
            "Action": "Encrypt",
            "Version": "2016-01-20",
            "AccessKeyId": AK,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "SignatureNonce": "n",
            "Timestamp": timestamp,
        },
        SECRET,
        "GET",
        in_body=False,
    )
    request = parse_request("GET", "/", wire.raw_query(), wire.raw_headers(), b"")
    signed = refused_or_value(lambda: identify(request))
    if not isinstance(signed, OpenKMSError):
        refused_or_value(lambda: check_freshness(signed, NOW.timestamp()))


def test_padded_signed_headers_are_read_as_they_are_signed() -> None:
    """The canonical headers strip each value, so " n1\t" and "n1" sign alike: they must also be read
    alike, or one signed request could spend two nonces (or name two actions)."""
    headers = {
        "host": "kms.cn-hangzhou.aliyuncs.com",
        "x-acs-action": "Encrypt",
        "x-acs-version": "2016-01-20",
        "x-acs-date": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": "n1",
    }
    wire = sign_acs("ACS3-HMAC-SHA256", AK, SECRET, "GET", {}, headers, b"")
    padded = [(name, f" {value}\t" if name.startswith("x-acs-") else value) for name, value in wire.headers]
    request = parse_request("GET", "/", b"", WireRequest("GET", [], padded).raw_headers(), b"")
    signed = identify(request)
    verify(request, signed, SECRET)
    assert (signed.nonce, signed.action, signed.version) == ("n1", "Encrypt", "2016-01-20")
