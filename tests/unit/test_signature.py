"""api/signature.py: the three Alibaba signature schemes, checked against the official SDKs' own signing code.

Three sources of truth: (1) requests captured from the real SDK clients (Tea V3, Tea RPC, Tea ACS4, legacy
aliyunsdkcore) talking to a throwaway HTTP server on 127.0.0.1; (2) the SDK signing functions called directly
on generated inputs; (3) fixed requests captured independently (docs: alibaba-kms-api.md section 3.4).
"""
# ruff: noqa: E501  (captured requests are kept verbatim, their lines are long)

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import pytest
from alibabacloud_gateway_pop.client import Client as PopGateway
from alibabacloud_kms20160120 import models as kms
from alibabacloud_kms20160120.client import Client as KmsClient
from alibabacloud_openapi_util.client import Client as OpenApiUtil
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils import Utils as TeaUtils
from alibabacloud_tea_openapi.utils_models import Config, OpenApiRequest
from alibabacloud_tea_openapi.utils_models import Params as ApiParams
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.auth.composer import rpc_signature_composer
from aliyunsdkcore.auth.credentials import StsTokenCredential
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest
from aliyunsdkkms.request.v20160120.DescribeKeyRequest import DescribeKeyRequest
from aliyunsdkkms.request.v20160120.EncryptRequest import EncryptRequest
from aliyunsdkkms.request.v20160120.TagResourcesRequest import TagResourcesRequest
from darabonba.request import DaraRequest
from darabonba.runtime import RuntimeOptions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openkms.api.params import Params, RpcRequest, parse_request
from openkms.api.signature import Scheme, SignedRequest, check_freshness, identify, verify
from openkms.errors import (
    ExpiredTimestamp,
    IncompleteSignature,
    InvalidArgument,
    InvalidTimestamp,
    MissingParameter,
    SignatureMismatch,
)

AK = "LTAI5tDummyAccessKeyId"
SECRET = "dummySecretKey0123456789"
TOKEN = "CAIS+sts/token==with spaces&stuff"
TRICKY = "hello world ~*'()!+&=%/?#;:@$,[]{}\"\\ 中文 é 😀\t"


def legacy_string_to_sign(method: str, params: dict[str, str]) -> str:
    """aliyunsdkcore's own RPC string to sign (a module-private function, so fetched by name)."""
    compose: Callable[[str, dict[str, str]], str] = getattr(
        rpc_signature_composer, "__compose_string_to_sign"
    )
    return compose(method, {k: v for k, v in params.items() if k != "Signature"})


def assert_mismatch(request: RpcRequest, signed: SignedRequest, secret: str) -> SignatureMismatch:
    with pytest.raises(SignatureMismatch) as caught:
        verify(request, signed, secret)
    error = caught.value
    assert error.message.endswith(":" + error.string_to_sign)
    assert error.message.split(":")[1] == error.string_to_sign  # exactly how aliyunsdkcore reads it
    assert SECRET not in error.message
    if signed.scheme is Scheme.RPC_HMAC_SHA1:
        assert error.string_to_sign == legacy_string_to_sign(request.method, dict(request.params))
    else:
        assert error.string_to_sign.startswith(signed.scheme + "\n")
    return error


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------- capture server


@dataclass
class Captured:
    method: str
    path: str
    query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def request(self) -> RpcRequest:
        return parse_request(self.method, self.path, self.query, self.headers, self.body)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.decode().lower() == name:
                return value.decode("latin-1")
        return None


@dataclass
class Capture:
    port: int = 0
    requests: list[Captured] = field(default_factory=list)
    verify_with: str | None = None  # when set, the server verifies with this secret and answers errors

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def only(self) -> Captured:
        assert len(self.requests) == 1, self.requests
        return self.requests[0]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        captured = Captured(
            self.command,
            path,
            query.encode("latin-1"),
            [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()],
            body,
        )
        capture = self.server.capture
        capture.requests.append(captured)
        status, answer = 200, {"RequestId": "4C467B38-3910-447D-87BC-AC049166F216"}
        if capture.verify_with is not None:
            try:
                request = captured.request()
                verify(request, identify(request), capture.verify_with)
            except SignatureMismatch as error:
                status = 400
                answer = {
                    "RequestId": "4C467B38-3910-447D-87BC-AC049166F216",
                    "HostId": capture.endpoint,
                    "Code": "SignatureDoesNotMatch",
                    "Message": error.message,
                }
        out = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    capture: Capture


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.capture = Capture(port=srv.server_address[1])
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join()


@pytest.fixture
def capture(server: _Server) -> Capture:
    server.capture = Capture(port=server.server_address[1])
    return server.capture


# ---------------------------------------------------------------------------------------------- SDK drivers

TEA_MODES: dict[str, dict[str, str]] = {
    "tea-v3": {},
    "tea-rpc": {"signature_algorithm": "v2"},
    "tea-v4": {"signature_version": "v4"},
}
EXPECTED_SCHEME = {
    "tea-v3": Scheme.ACS3_HMAC_SHA256,
    "tea-rpc": Scheme.RPC_HMAC_SHA1,
    "tea-v4": Scheme.ACS4_HMAC_SHA256,
    "legacy": Scheme.RPC_HMAC_SHA1,
}


def tea_client(capture: Capture, mode: str, secret: str = SECRET, token: str | None = None) -> KmsClient:
    config = Config(
        access_key_id=AK,
        access_key_secret=secret,
        security_token=token,
        endpoint=capture.endpoint,
        protocol="http",
        region_id="cn-hangzhou",
        **TEA_MODES[mode],
    )
    return KmsClient(config)


def legacy_client(secret: str = SECRET, token: str | None = None) -> AcsClient:
    if token is None:
        return AcsClient(AK, secret, "cn-hangzhou", auto_retry=False)
    return AcsClient(
        region_id="cn-hangzhou", credential=StsTokenCredential(AK, secret, token), auto_retry=False
    )


def legacy_call(client: AcsClient, capture: Capture, request: Any) -> Any:
    request.set_endpoint(capture.endpoint)
    request.set_protocol_type("http")
    client.do_action_with_exception(request)
    return request


def tea_call(action: str) -> Callable[[KmsClient], Any]:
    def encrypt(client: KmsClient) -> Any:
        return client.encrypt(
            kms.EncryptRequest(
                key_id="alias/my-app", plaintext=TRICKY, encryption_context={"purpose": "tést", "n": "1"}
            )
        )

    def create_key(client: KmsClient) -> Any:
        return client.create_key(
            kms.CreateKeyRequest(
                description="my key ~*'()!",
                key_spec="Aliyun_AES_256",
                key_usage="ENCRYPT/DECRYPT",
                enable_automatic_rotation=True,
                rotation_interval="604800s",
                tags='[{"TagKey":"env","TagValue":"dev"}]',
            )
        )

    def list_keys(client: KmsClient) -> Any:
        return client.list_keys(kms.ListKeysRequest(page_number=1, page_size=20))

    def tag_resources(client: KmsClient) -> Any:
        return client.tag_resources(
            kms.TagResourcesRequest(
                region_id="cn-hangzhou",
                resource_id=["key-1", "key 2/é"],
                resource_type="key",
                tag=[
                    kms.TagResourcesRequestTag(key="env", value="dev prod"),
                    kms.TagResourcesRequestTag(key="a+b", value=""),
                ],
            )
        )

    def form_body(client: KmsClient) -> Any:
        # A generic call with a form body, so query and body parameters are both present.
        params = ApiParams(
            action="Encrypt",
            version="2016-01-20",
            protocol="HTTP",
            pathname="/",
            method="POST",
            auth_type="AK",
            style="RPC",
            req_body_type="formData",
            body_type="json",
        )
        request = OpenApiRequest(
            query={"KeyId": "alias/my-app"}, body={"Plaintext": TRICKY, "EncryptionContext": '{"a":"b c"}'}
        )
        return client.call_api(params, request, RuntimeOptions())

    return {
        "Encrypt": encrypt,
        "CreateKey": create_key,
        "ListKeys": list_keys,
        "TagResources": tag_resources,
        "FormBody": form_body,
    }[action]


TEA_ACTIONS = ["Encrypt", "CreateKey", "ListKeys", "TagResources", "FormBody"]


def legacy_request(action: str) -> Any:
    if action == "Encrypt":
        encrypt = EncryptRequest()
        encrypt.set_KeyId("alias/my-app")
        encrypt.set_Plaintext(TRICKY)
        encrypt.set_EncryptionContext(json.dumps({"purpose": "tést", "n": "1"}))
        return encrypt
    if action == "DescribeKey":
        describe = DescribeKeyRequest()
        describe.set_KeyId("0b9f7a3c-5d1e-4f2a-9c8b-7e6d5c4b3a21")
        return describe
    if action == "TagResources":
        tag = TagResourcesRequest()
        tag.set_ResourceIds(["key-1", "key 2/é"])
        tag.set_ResourceType("key")
        tag.set_Tags([{"Key": "env", "Value": "dev prod"}])
        return tag
    common = CommonRequest(domain="kms.cn-hangzhou.aliyuncs.com", version="2016-01-20", action_name="Encrypt")
    common.set_method("POST")
    common.add_query_param("KeyId", "alias/my-app")
    common.add_body_params("Plaintext", TRICKY)
    common.add_body_params("Note", "a+b c")
    return common


LEGACY_ACTIONS = ["Encrypt", "DescribeKey", "TagResources", "FormBody"]


# ---------------------------------------------------------------------------------------------- real SDK clients


def tamper_query(query: bytes) -> bytes:
    """Append one character to the first non-Signature parameter value."""
    pieces = query.split(b"&")
    for index, piece in enumerate(pieces):
        if piece and not piece.startswith(b"Signature="):
            pieces[index] = piece + b"x"
            return b"&".join(pieces)
    raise AssertionError("nothing to tamper with")


def tamper_header(captured: Captured, name: str) -> Captured:
    headers = [(k, v + b"x" if k.decode().lower() == name else v) for k, v in captured.headers]
    assert headers != captured.headers
    return replace(captured, headers=headers)


def check_captured(
    captured: Captured, scheme: Scheme, action: str, token: str | None = None
) -> SignedRequest:
    request = captured.request()
    signed = identify(request)
    assert signed.scheme is scheme
    assert signed.access_key_id == AK
    assert signed.action == action
    assert signed.version == "2016-01-20"
    assert signed.security_token == token
    assert signed.nonce
    check_freshness(signed, time.time())
    verify(request, signed, SECRET)

    assert_mismatch(request, signed, SECRET + "x")
    assert_mismatch(request, signed, "")

    tampered = replace(captured, query=tamper_query(captured.query)).request()
    assert_mismatch(tampered, identify(tampered), SECRET)

    if scheme is not Scheme.RPC_HMAC_SHA1:
        for name in ("x-acs-signature-nonce", "host", "x-acs-date"):
            if name == "x-acs-date":  # keep it parseable: move the time by changing the seconds' last digit
                date = captured.header("x-acs-date")
                assert date is not None
                other = date[:-2] + ("1" if date[-2] != "1" else "2") + "Z"
                headers = [
                    (k, other.encode() if k.lower() == b"x-acs-date" else v) for k, v in captured.headers
                ]
                changed = replace(captured, headers=headers).request()
            else:
                changed = tamper_header(captured, name).request()
            assert_mismatch(changed, identify(changed), SECRET)
    if captured.body:
        changed = replace(captured, body=captured.body + b"x").request()
        assert_mismatch(changed, identify(changed), SECRET)
    return signed


@pytest.mark.parametrize("action", TEA_ACTIONS)
@pytest.mark.parametrize("mode", list(TEA_MODES))
def test_tea_sdk_requests_verify(capture: Capture, mode: str, action: str) -> None:
    tea_call(action)(tea_client(capture, mode))
    captured = capture.only()
    expected_action = "Encrypt" if action == "FormBody" else action
    signed = check_captured(captured, EXPECTED_SCHEME[mode], expected_action)
    request = captured.request()
    if action == "FormBody":
        assert captured.body
        assert request.params["Plaintext"] == TRICKY
        assert request.params["KeyId"] == "alias/my-app"
    if action == "Encrypt":
        assert request.params["Plaintext"] == TRICKY
        assert Params(request.params).json_object("EncryptionContext") == {"purpose": "tést", "n": "1"}
    if action == "TagResources":
        params = Params(request.params)
        assert params.repeat_list("ResourceId") == ["key-1", "key 2/é"]
        assert params.repeat_records("Tag", ["Key", "Value"]) == [
            {"Key": "env", "Value": "dev prod"},
            {"Key": "a+b", "Value": ""},
        ]
    if mode == "tea-v4":
        assert signed.region == "cn-hangzhou"
    if mode == "tea-v3":
        # tea-openapi signs every header it sets, accept and user-agent included
        signed_headers = (captured.header("authorization") or "").split("SignedHeaders=")[1].split(",")[0]
        assert {"accept", "user-agent", "host"} <= set(signed_headers.split(";"))
        changed = tamper_header(captured, "user-agent").request()
        assert_mismatch(changed, identify(changed), SECRET)


@pytest.mark.parametrize("mode", list(TEA_MODES))
def test_tea_sdk_sts_token(capture: Capture, mode: str) -> None:
    tea_call("Encrypt")(tea_client(capture, mode, token=TOKEN))
    captured = capture.only()
    check_captured(captured, EXPECTED_SCHEME[mode], "Encrypt", token=TOKEN)
    if mode != "tea-rpc":
        changed = tamper_header(captured, "x-acs-security-token").request()
        assert_mismatch(changed, identify(changed), SECRET)


@pytest.mark.parametrize("action", LEGACY_ACTIONS)
def test_legacy_sdk_requests_verify(capture: Capture, action: str) -> None:
    sent = legacy_call(legacy_client(), capture, legacy_request(action))
    captured = capture.only()
    signed = check_captured(captured, Scheme.RPC_HMAC_SHA1, "Encrypt" if action == "FormBody" else action)
    assert signed.region == "cn-hangzhou"
    request = captured.request()
    assert request.params["SignatureType"] == ""
    with pytest.raises(SignatureMismatch) as caught:
        verify(request, signed, "wrong")
    inner = getattr(sent, "request", None) or sent  # CommonRequest signs through an inner request object
    assert caught.value.string_to_sign == inner.string_to_sign  # the legacy SDK's own string to sign
    if action == "FormBody":
        assert request.params["Note"] == "a+b c"
        assert request.params["Plaintext"] == TRICKY


def test_legacy_sdk_sts_token(capture: Capture) -> None:
    legacy_call(legacy_client(token=TOKEN), capture, legacy_request("Encrypt"))
    check_captured(capture.only(), Scheme.RPC_HMAC_SHA1, "Encrypt", token=TOKEN)


def test_legacy_sdk_reads_our_mismatch_message(capture: Capture) -> None:
    """aliyunsdkcore compares our string to sign with its own and turns a match into InvalidAccessKeySecret."""
    capture.verify_with = SECRET
    with pytest.raises(ServerException) as caught:
        legacy_call(legacy_client(secret="not-the-secret"), capture, legacy_request("Encrypt"))
    assert caught.value.get_error_code() == "InvalidAccessKeySecret"
    assert caught.value.get_http_status() == 400


@pytest.mark.parametrize("mode", list(TEA_MODES))
def test_tea_sdk_gets_mismatch_error(capture: Capture, mode: str) -> None:
    capture.verify_with = SECRET
    with pytest.raises(Exception) as caught:  # ClientException (v3/rpc) or a wrapped TeaException (v4)
        tea_call("Encrypt")(tea_client(capture, mode, secret="not-the-secret"))
    text = str(caught.value)
    assert "SignatureDoesNotMatch" in text or "not matched" in text
    assert len(capture.requests) == 1
    if mode != "tea-v4":
        assert isinstance(caught.value, ClientException)
        assert caught.value.code == "SignatureDoesNotMatch"


def test_good_secret_passes_the_verifying_server(capture: Capture) -> None:
    capture.verify_with = SECRET
    legacy_call(legacy_client(), capture, legacy_request("DescribeKey"))
    for mode in TEA_MODES:
        tea_call("CreateKey")(tea_client(capture, mode))
    assert len(capture.requests) == 4


# ---------------------------------------------------------------------------------------------- SDK signers called directly

rpc_names = st.text(min_size=1, max_size=12)
rpc_values = st.text(max_size=30)
COMMON = {
    "Action",
    "Version",
    "AccessKeyId",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "Timestamp",
    "Signature",
    "Format",
    "SignatureType",
    "RegionId",
}


def rpc_base(nonce: str = "n1") -> dict[str, str]:
    return {
        "Action": "Encrypt",
        "Version": "2016-01-20",
        "Format": "json",
        "AccessKeyId": AK,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": nonce,
        "Timestamp": now_iso(),
    }


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(rpc_names, rpc_values, max_size=8), st.sampled_from(["GET", "POST"]))
def test_rpc_signers_property(extra: dict[str, str], method: str) -> None:
    params = rpc_base() | {k: v for k, v in extra.items() if k not in COMMON}
    for signer in (TeaUtils.get_rpcsignature, OpenApiUtil.get_rpcsignature):
        query = urlencode(
            params | {"Signature": signer(dict(params), method, SECRET)}
        )  # Tea puts '+' for space
        request = parse_request(method, "/", query.encode(), [], b"")
        signed = identify(request)
        verify(request, signed, SECRET)
        error = assert_mismatch(request, signed, "other")
        assert error.string_to_sign == legacy_string_to_sign(method, params)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(rpc_names, rpc_values, max_size=8), st.dictionaries(rpc_names, rpc_values, max_size=4))
def test_legacy_signer_property(query_extra: dict[str, str], body_extra: dict[str, str]) -> None:
    query = {k: v for k, v in query_extra.items() if k not in COMMON} | {
        "Action": "Encrypt",
        "Version": "2016-01-20",
    }
    body = {k: v for k, v in body_extra.items() if k not in COMMON and k not in query}
    url, string_to_sign = rpc_signature_composer.get_signed_url(
        dict(query), AK, SECRET, "JSON", "POST", dict(body)
    )
    assert url.startswith("/?")
    request = parse_request(
        "POST",
        "/",
        url[2:].encode(),
        [(b"content-type", b"application/x-www-form-urlencoded")],
        urlencode(body).encode(),
    )
    signed = identify(request)
    verify(request, signed, SECRET)
    assert assert_mismatch(request, signed, "other").string_to_sign == string_to_sign


header_values = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=20
)
# Python tea-openapi leaves names raw in its V3 canonical query (see the test below), so names are unreserved here.
unreserved_names = st.text(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~", min_size=1, max_size=12
).filter(lambda name: name not in ("Action", "Version"))


def acs_headers(date: str, extra: dict[str, str]) -> dict[str, str]:
    return {
        "host": "kms.cn-hangzhou.aliyuncs.com",
        "x-acs-version": "2016-01-20",
        "x-acs-action": "Encrypt",
        "x-acs-date": date,
        "x-acs-signature-nonce": "3439e514241a8c2e75b9e86b9abe037c",
        "accept": "application/json",
        "user-agent": "AlibabaCloud (Linux; x86_64) Python/3.11 Core/0.4.3 TeaDSL/2",
    } | extra


def wire(method: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> RpcRequest:
    """What an HTTP server hands over for a request the Tea SDK sends (urlencode query, header values trimmed)."""
    raw_headers = [(k.encode(), v.strip(" \t").encode("latin-1")) for k, v in headers.items()]
    return parse_request(method, "/", urlencode(query).encode(), raw_headers, body)


def tea_acs3(query: dict[str, str], headers: dict[str, str], body: bytes, method: str = "POST") -> str:
    request = DaraRequest()
    request.method = method
    request.pathname = "/"
    request.query = dict(query)
    request.headers = dict(headers)
    return str(
        TeaUtils.get_authorization(request, "ACS3-HMAC-SHA256", hashlib.sha256(body).hexdigest(), AK, SECRET)
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(unreserved_names, st.text(max_size=30), max_size=8),
    st.dictionaries(
        st.sampled_from(["x-acs-meta", "x-custom", "content-md5", "x-acs-credentials-provider"]),
        header_values,
    ),
    st.one_of(st.just(b""), st.binary(max_size=40)),
    st.sampled_from(["GET", "POST"]),
)
def test_acs3_signer_property(query: dict[str, str], extra: dict[str, str], body: bytes, method: str) -> None:
    headers = acs_headers(now_iso(), extra) | {"x-acs-content-sha256": hashlib.sha256(body).hexdigest()}
    if body:
        headers["content-type"] = "application/octet-stream"
    headers["Authorization"] = tea_acs3(query, headers, body, method)
    request = wire(method, query, headers, body)
    signed = identify(request)
    assert signed.scheme is Scheme.ACS3_HMAC_SHA256
    verify(request, signed, SECRET)
    assert_mismatch(request, signed, "other")


def test_acs3_form_body_is_covered_by_hash_not_query(capture: Capture) -> None:
    body = urlencode({"Plaintext": "a b", "KeyId": "k"}).encode()
    query = {"EncryptionContext": "{}"}
    headers = acs_headers(now_iso(), {"content-type": "application/x-www-form-urlencoded"})
    headers["x-acs-content-sha256"] = hashlib.sha256(body).hexdigest()
    headers["Authorization"] = tea_acs3(query, headers, body)
    request = wire("POST", query, headers, body)
    assert request.params == {"EncryptionContext": "{}", "Plaintext": "a b", "KeyId": "k"}
    verify(request, identify(request), SECRET)


def pop_authorization(
    query: dict[str, str],
    headers: dict[str, str],
    body: bytes,
    region: str,
    product: str,
    method: str = "POST",
) -> str:
    gateway = PopGateway()
    date = headers["x-acs-date"][:10].replace("-", "")
    key = gateway.get_signingkey("ACS4-HMAC-SHA256", SECRET, product, region, date)
    payload = hashlib.sha256(body).hexdigest()
    return str(
        gateway.get_authorization(
            "/", method, query, headers, "ACS4-HMAC-SHA256", payload, AK, key, product, region, date
        )
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=12).filter(lambda n: n not in ("Action", "Version")),
        st.text(max_size=30),
        max_size=8,
    ),
    st.dictionaries(
        st.sampled_from(["x-acs-meta", "user-agent", "accept", "x-acs-credentials-provider"]), header_values
    ),
    st.one_of(st.just(b""), st.binary(max_size=40)),
    st.sampled_from(["cn-hangzhou", "center", "ap-southeast-1"]),
    st.sampled_from(["Kms", "Ram", "Sts"]),
)
def test_acs4_signer_property(
    query: dict[str, str], extra: dict[str, str], body: bytes, region: str, product: str
) -> None:
    headers = acs_headers(now_iso(), extra) | {"x-acs-content-sha256": hashlib.sha256(body).hexdigest()}
    if body:
        headers["content-type"] = "application/octet-stream"
    headers["Authorization"] = pop_authorization(query, headers, body, region, product)
    request = wire("POST", query, headers, body)
    signed = identify(request)
    assert signed.scheme is Scheme.ACS4_HMAC_SHA256
    assert signed.region == region
    verify(request, signed, SECRET)
    assert_mismatch(request, signed, "other")


def test_acs4_scope_product_and_region_are_signed() -> None:
    date = now_iso()
    headers = acs_headers(date, {})
    headers["x-acs-content-sha256"] = hashlib.sha256(b"").hexdigest()
    headers["Authorization"] = pop_authorization({}, headers, b"", "cn-hangzhou", "Kms")
    good = wire("POST", {}, headers, b"")
    verify(good, identify(good), SECRET)
    for old, new in (("/cn-hangzhou/", "/cn-shanghai/"), ("/Kms/", "/Ram/")):
        changed = wire(
            "POST", {}, headers | {"Authorization": headers["Authorization"].replace(old, new)}, b""
        )
        assert_mismatch(changed, identify(changed), SECRET)


def test_acs3_key_names_are_percent_encoded_in_the_canonical_query() -> None:
    """Python tea-openapi leaves names raw in its V3 canonical query; we encode them like ACS4 and the other SDKs.

    The two agree for every name made of unreserved characters (all Alibaba parameter names are); a name with a
    space, signed by Python tea-openapi, does not verify.
    """
    headers = acs_headers(now_iso(), {}) | {"x-acs-content-sha256": hashlib.sha256(b"").hexdigest()}
    headers["Authorization"] = tea_acs3({"My Name": "x"}, headers, b"")
    request = wire("POST", {"My Name": "x"}, headers, b"")
    with pytest.raises(SignatureMismatch):
        verify(request, identify(request), SECRET)


def test_acs3_claimed_payload_hash_must_match_body() -> None:
    body = b'{"a":1}'
    headers = acs_headers(now_iso(), {"content-type": "application/json"})
    headers["Authorization"] = tea_acs3({}, headers, body)  # x-acs-content-sha256 not signed ...
    headers["x-acs-content-sha256"] = hashlib.sha256(b"something else").hexdigest()  # ... and wrong
    request = wire("POST", {}, headers, body)
    assert_mismatch(request, identify(request), SECRET)
    headers["x-acs-content-sha256"] = hashlib.sha256(body).hexdigest()
    request = wire("POST", {}, headers, body)
    verify(request, identify(request), SECRET)


# ---------------------------------------------------------------------------------------------- fixed vectors (section 3.4)


@dataclass(frozen=True)
class Vector:
    action: str
    method: str
    target: str
    header_lines: tuple[str, ...]

    def request(self) -> RpcRequest:
        path, _, query = self.target.partition("?")
        headers = [
            tuple(part.encode("latin-1") for part in line.split(": ", 1)) for line in self.header_lines
        ]
        return parse_request(self.method, path, query.encode(), headers, b"")  # type: ignore[arg-type]


VECTORS: list[Vector] = [
    Vector(
        "CreateKey",
        "POST",
        "/?Description=my+key&EnableAutomaticRotation=True&KeySpec=Aliyun_AES_256&KeyUsage=ENCRYPT%2FDECRYPT&Origin=Aliyun_KMS&ProtectionLevel=SOFTWARE&RotationInterval=604800s&Tags=%5B%7B%22TagKey%22%3A%22env%22%2C%22TagValue%22%3A%22dev%22%7D%5D",
        (
            "Accept-Encoding: identity",
            "host: 127.0.0.1:18765",
            "x-acs-version: 2016-01-20",
            "x-acs-action: CreateKey",
            "user-agent: AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2",
            "x-acs-date: 2026-11-28T15:16:12Z",
            "x-acs-signature-nonce: 8682e096a1c11cb48f7f34fb76707c74",
            "accept: application/json",
            "x-acs-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "x-acs-credentials-provider: static_ak",
            "Authorization: ACS3-HMAC-SHA256 Credential=LTAI5tDummyAccessKeyId,SignedHeaders=accept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=4b8a3eee551bf8f2876371ee8e77799d149a2425f24f7c098c7b0ef74aa7ce06",
            "Content-Length: 0",
        ),
    ),
    Vector(
        "Encrypt",
        "POST",
        "/?EncryptionContext=%7B%22purpose%22%3A%22test%22%2C%22n%22%3A%221%22%7D&KeyId=alias%2Fmy-app&Plaintext=hello+world",
        (
            "Accept-Encoding: identity",
            "host: 127.0.0.1:18765",
            "x-acs-version: 2016-01-20",
            "x-acs-action: Encrypt",
            "user-agent: AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2",
            "x-acs-date: 2026-11-28T15:16:12Z",
            "x-acs-signature-nonce: d2639e9a9249d1dc7926ac274d16b4e1",
            "accept: application/json",
            "x-acs-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "x-acs-credentials-provider: static_ak",
            "Authorization: ACS3-HMAC-SHA256 Credential=LTAI5tDummyAccessKeyId,SignedHeaders=accept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=c5e54569bc8a036c66deceaa92478958f27d08f33fb7d3bc8f6f4ed4179c6b01",
            "Content-Length: 0",
        ),
    ),
    Vector(
        "Decrypt",
        "POST",
        "/?CiphertextBlob=ZmFrZS1jaXBoZXJ0ZXh0LWJsb2I%3D&EncryptionContext=%7B%22purpose%22%3A%22test%22%2C%22n%22%3A%221%22%7D",
        (
            "Accept-Encoding: identity",
            "host: 127.0.0.1:18765",
            "x-acs-version: 2016-01-20",
            "x-acs-action: Decrypt",
            "user-agent: AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2",
            "x-acs-date: 2026-11-28T15:16:12Z",
            "x-acs-signature-nonce: 3439e514241a8c2e75b9e86b9abe037c",
            "accept: application/json",
            "x-acs-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "x-acs-credentials-provider: static_ak",
            "Authorization: ACS3-HMAC-SHA256 Credential=LTAI5tDummyAccessKeyId,SignedHeaders=accept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=58aa2a0f2e237bf4ffd0d7f9c7b3567e61af6427cf7b3b2adcc09a6d005889d6",
            "Content-Length: 0",
        ),
    ),
    Vector(
        "DescribeKey",
        "POST",
        "/?KeyId=0b9f7a3c-5d1e-4f2a-9c8b-7e6d5c4b3a21",
        (
            "Accept-Encoding: identity",
            "host: 127.0.0.1:18765",
            "x-acs-version: 2016-01-20",
            "x-acs-action: DescribeKey",
            "user-agent: AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2",
            "x-acs-date: 2026-11-28T15:16:12Z",
            "x-acs-signature-nonce: c71aed6bc36102d9395fc085d96ad766",
            "accept: application/json",
            "x-acs-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "x-acs-credentials-provider: static_ak",
            "Authorization: ACS3-HMAC-SHA256 Credential=LTAI5tDummyAccessKeyId,SignedHeaders=accept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=7be4a637131d3d3732e552985351062995032aa2b92aff4078355be151d5bc86",
            "Content-Length: 0",
        ),
    ),
    Vector(
        "CreateKey",
        "POST",
        "/?Action=CreateKey&Format=json&Version=2016-01-20&Timestamp=2026-11-28T15%3A16%3A12Z&SignatureNonce=7973f0f07f5e3787ba501a845e6778be&Description=my+key&EnableAutomaticRotation=True&KeySpec=Aliyun_AES_256&KeyUsage=ENCRYPT%2FDECRYPT&Origin=Aliyun_KMS&ProtectionLevel=SOFTWARE&RotationInterval=604800s&Tags=%5B%7B%22TagKey%22%3A%22env%22%2C%22TagValue%22%3A%22dev%22%7D%5D&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&AccessKeyId=LTAI5tDummyAccessKeyId&Signature=zMzdjiCKan4H%2BBQzh5fUO4QvAGI%3D",
        (
            "Accept-Encoding: identity",
            "host: 127.0.0.1:18765",
            "x-acs-version: 2016-01-20",
            "x-acs-action: CreateKey",
            "user-agent: AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2",
            "x-acs-credentials-provider: static_ak",
            "Content-Length: 0",
        ),
    ),
    Vector(
        "Encrypt",
        "POST",
        "/?Action=Encrypt&Format=json&Version=2016-01-20&Timestamp=2026-11-28T15%3A16%3A12Z&SignatureNonce=54572f5b3ae695d3721c3fc09c141c46&EncryptionContext=%7B%22purpose%22%3A%22test%22%2C%22n%22%3A%221%22%7D&KeyId=alias%2Fmy-app&Plaintext=hello+world&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&AccessKeyId=LTAI5tDummyAccessKeyId&Signature=9kqOhmyvNDlMmiBfXq7TUtcDrys%3D",
        (
            "Accept-Encoding: identity",
            "host: 127.0.0.1:18765",
            "x-acs-version: 2016-01-20",
            "x-acs-action: Encrypt",
            "user-agent: AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2",
            "x-acs-credentials-provider: static_ak",
            "Content-Length: 0",
        ),
    ),
    Vector(
        "CreateKey",
        "POST",
        "/?Description=my+key&EnableAutomaticRotation=True&KeySpec=Aliyun_AES_256&KeyUsage=ENCRYPT%2FDECRYPT&Origin=Aliyun_KMS&ProtectionLevel=SOFTWARE&RotationInterval=604800s&Tags=%5B%7B%22TagKey%22%3A%22env%22%2C%22TagValue%22%3A%22dev%22%7D%5D",
        (
            "Accept-Encoding: identity",
            "host: 127.0.0.1:18765",
            "x-acs-version: 2016-01-20",
            "user-agent: AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2",
            "x-acs-date: 2026-11-28T15:16:13Z",
            "x-acs-signature-nonce: decd2148203860a27bd8be7c85e7d83f",
            "accept: application/json",
            "x-acs-action: CreateKey",
            "x-acs-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "x-acs-credentials-provider: static_ak",
            "Authorization: ACS4-HMAC-SHA256 Credential=LTAI5tDummyAccessKeyId/20261128/cn-hangzhou/Kms/aliyun_v4_request,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=1b5a6a1f7950ad08c760aa4e7ded53c0aa7f6a9cc17e93f0541e9f152ae6f2e1",
            "Content-Length: 0",
        ),
    ),
    Vector(
        "Encrypt",
        "POST",
        "/?EncryptionContext=%7B%22purpose%22%3A%22test%22%2C%22n%22%3A%221%22%7D&KeyId=alias%2Fmy-app&Plaintext=hello+world",
        (
            "Accept-Encoding: identity",
            "host: 127.0.0.1:18765",
            "x-acs-version: 2016-01-20",
            "user-agent: AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2",
            "x-acs-date: 2026-11-28T15:16:13Z",
            "x-acs-signature-nonce: 7c6d2e7e5f15bfa770329c43b2cfe3a8",
            "accept: application/json",
            "x-acs-action: Encrypt",
            "x-acs-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "x-acs-credentials-provider: static_ak",
            "Authorization: ACS4-HMAC-SHA256 Credential=LTAI5tDummyAccessKeyId/20261128/cn-hangzhou/Kms/aliyun_v4_request,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=166fe873f5aed38f92c57a6848a2e5f12b83ba37d3f04d9901c32ef82bee10d7",
            "Content-Length: 0",
        ),
    ),
    Vector(
        "CreateKey",
        "POST",
        "/?Description=my%20key&KeySpec=Aliyun_AES_256&KeyUsage=ENCRYPT%2FDECRYPT&Origin=Aliyun_KMS&ProtectionLevel=SOFTWARE&EnableAutomaticRotation=True&RotationInterval=604800s&Tags=%5B%7B%22TagKey%22%3A%22env%22%2C%22TagValue%22%3A%22dev%22%7D%5D&Version=2016-01-20&Action=CreateKey&Format=JSON&RegionId=cn-hangzhou&Timestamp=2026-11-28T15%3A16%3A24Z&SignatureMethod=HMAC-SHA1&SignatureType=&SignatureVersion=1.0&SignatureNonce=81e1dfa9d5e685b809c7d6b39144fffd&AccessKeyId=LTAI5tDummyAccessKeyId&Signature=1KP%2FXbyC1ZLUw4z4Ns64lwjO%2BvU%3D",
        (
            "Host: 127.0.0.1:18765",
            "User-Agent: AlibabaCloud (Linux 6.18.44-fc-v657;x86_64) Python/3.11.7 Core/2.16.1 python-requests/2.18.3",
            "Accept-Encoding: identity",
            "Accept: */*",
            "Connection: keep-alive",
            "x-acs-action: CreateKey",
            "x-acs-version: 2016-01-20",
            "x-sdk-invoke-type: normal",
            "x-sdk-client: python/2.0.0",
            "Content-Length: 0",
        ),
    ),
    Vector(
        "Encrypt",
        "POST",
        "/?KeyId=alias%2Fmy-app&Plaintext=hello%20world&EncryptionContext=%7B%22purpose%22%3A%20%22test%22%2C%20%22n%22%3A%20%221%22%7D&Version=2016-01-20&Action=Encrypt&Format=JSON&RegionId=cn-hangzhou&Timestamp=2026-11-28T15%3A16%3A24Z&SignatureMethod=HMAC-SHA1&SignatureType=&SignatureVersion=1.0&SignatureNonce=5e3801d6a3e477dc7fc62cdca0e6c018&AccessKeyId=LTAI5tDummyAccessKeyId&Signature=jZZ4IVEkpi7ZcBqkwKD0IyTzP7I%3D",
        (
            "Host: 127.0.0.1:18765",
            "User-Agent: AlibabaCloud (Linux 6.18.44-fc-v657;x86_64) Python/3.11.7 Core/2.16.1 python-requests/2.18.3",
            "Accept-Encoding: identity",
            "Accept: */*",
            "Connection: keep-alive",
            "x-acs-action: Encrypt",
            "x-acs-version: 2016-01-20",
            "x-sdk-invoke-type: normal",
            "x-sdk-client: python/2.0.0",
            "Content-Length: 0",
        ),
    ),
    Vector(
        "Decrypt",
        "POST",
        "/?CiphertextBlob=ZmFrZS1jaXBoZXJ0ZXh0LWJsb2I%3D&EncryptionContext=%7B%22purpose%22%3A%20%22test%22%2C%20%22n%22%3A%20%221%22%7D&Version=2016-01-20&Action=Decrypt&Format=JSON&RegionId=cn-hangzhou&Timestamp=2026-11-28T15%3A16%3A24Z&SignatureMethod=HMAC-SHA1&SignatureType=&SignatureVersion=1.0&SignatureNonce=9b914dd8ee4d4ba0dd5effe77e45d765&AccessKeyId=LTAI5tDummyAccessKeyId&Signature=UD86Rc6yOpz%2FAS%2B3PLD9%2FImAL2g%3D",
        (
            "Host: 127.0.0.1:18765",
            "User-Agent: AlibabaCloud (Linux 6.18.44-fc-v657;x86_64) Python/3.11.7 Core/2.16.1 python-requests/2.18.3",
            "Accept-Encoding: identity",
            "Accept: */*",
            "Connection: keep-alive",
            "x-acs-action: Decrypt",
            "x-acs-version: 2016-01-20",
            "x-sdk-invoke-type: normal",
            "x-sdk-client: python/2.0.0",
            "Content-Length: 0",
        ),
    ),
    Vector(
        "DescribeKey",
        "POST",
        "/?KeyId=0b9f7a3c-5d1e-4f2a-9c8b-7e6d5c4b3a21&Version=2016-01-20&Action=DescribeKey&Format=JSON&RegionId=cn-hangzhou&Timestamp=2026-11-28T15%3A16%3A24Z&SignatureMethod=HMAC-SHA1&SignatureType=&SignatureVersion=1.0&SignatureNonce=2c9e920f9701b431c88718124a2aa78f&AccessKeyId=LTAI5tDummyAccessKeyId&Signature=8fZYdJjEhEqjTS2kwuOUtQuo8%2FQ%3D",
        (
            "Host: 127.0.0.1:18765",
            "User-Agent: AlibabaCloud (Linux 6.18.44-fc-v657;x86_64) Python/3.11.7 Core/2.16.1 python-requests/2.18.3",
            "Accept-Encoding: identity",
            "Accept: */*",
            "Connection: keep-alive",
            "x-acs-action: DescribeKey",
            "x-acs-version: 2016-01-20",
            "x-sdk-invoke-type: normal",
            "x-sdk-client: python/2.0.0",
            "Content-Length: 0",
        ),
    ),
]


VECTOR_NOW = datetime(2026, 11, 28, 15, 16, 20, tzinfo=UTC).timestamp()
VECTOR_SCHEMES = (
    [Scheme.ACS3_HMAC_SHA256] * 4
    + [Scheme.RPC_HMAC_SHA1] * 2
    + [Scheme.ACS4_HMAC_SHA256] * 2
    + [Scheme.RPC_HMAC_SHA1] * 4
)


@pytest.mark.parametrize(
    ("vector", "scheme"),
    list(zip(VECTORS, VECTOR_SCHEMES, strict=True)),
    ids=lambda v: getattr(v, "action", str(v)),
)
def test_captured_vectors_verify(vector: Vector, scheme: Scheme) -> None:
    request = vector.request()
    signed = identify(request)
    assert signed.scheme is scheme
    assert signed.access_key_id == AK
    assert signed.action == vector.action
    assert signed.version == "2016-01-20"
    assert signed.security_token is None
    check_freshness(signed, VECTOR_NOW)
    verify(request, signed, SECRET)
    assert_mismatch(request, signed, "dummySecretKey0123456788")
    tampered = parse_request(
        request.method,
        "/",
        tamper_query(request.raw_query.encode()),
        [(k.encode(), v.encode("latin-1")) for k, v in request.headers.items()],
        b"",
    )
    assert_mismatch(tampered, identify(tampered), SECRET)


def test_captured_vector_details() -> None:
    by_scheme = {scheme: vector.request() for vector, scheme in zip(VECTORS, VECTOR_SCHEMES, strict=True)}
    acs4 = identify(by_scheme[Scheme.ACS4_HMAC_SHA256])
    assert acs4.region == "cn-hangzhou"
    assert acs4.timestamp == datetime(2026, 11, 28, 15, 16, 13, tzinfo=UTC).timestamp()
    legacy = VECTORS[-1].request()
    assert identify(legacy).region == "cn-hangzhou"
    assert identify(legacy).nonce == "2c9e920f9701b431c88718124a2aa78f"
    assert legacy.params["SignatureType"] == ""
    assert identify(VECTORS[0].request()).nonce == "8682e096a1c11cb48f7f34fb76707c74"


# ---------------------------------------------------------------------------------------------- identify: errors


def rpc_request(
    params: dict[str, str], method: str = "POST", headers: list[tuple[bytes, bytes]] | None = None
) -> RpcRequest:
    return parse_request(method, "/", urlencode(params).encode(), headers or [], b"")


def signed_rpc(**changes: str | None) -> RpcRequest:
    params = rpc_base()
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    params["Signature"] = TeaUtils.get_rpcsignature(dict(params), "POST", SECRET)
    return rpc_request(params)


def test_rpc_identify_fields() -> None:
    signed = identify(
        signed_rpc(RegionId="cn-shanghai", SecurityToken=TOKEN, Timestamp="2026-11-28T15:16:12Z")
    )
    assert signed == SignedRequest(
        scheme=Scheme.RPC_HMAC_SHA1,
        access_key_id=AK,
        nonce="n1",
        timestamp=datetime(2026, 11, 28, 15, 16, 12, tzinfo=UTC).timestamp(),
        region="cn-shanghai",
        security_token=TOKEN,
        action="Encrypt",
        version="2016-01-20",
    )


def test_rpc_uses_signed_action_not_the_unsigned_header() -> None:
    params = rpc_base()
    params["Signature"] = TeaUtils.get_rpcsignature(dict(params), "POST", SECRET)
    request = rpc_request(params, headers=[(b"x-acs-action", b"ScheduleKeyDeletion")])
    signed = identify(request)
    assert signed.action == "Encrypt"
    verify(request, signed, SECRET)


def test_no_signature_at_all() -> None:
    with pytest.raises(MissingParameter) as caught:
        identify(rpc_request(rpc_base()))
    assert caught.value.parameter == "Signature"
    with pytest.raises(MissingParameter):
        identify(rpc_request(rpc_base() | {"Signature": ""}))


@pytest.mark.parametrize(
    ("change", "error", "parameter"),
    [
        ({"SignatureMethod": "HMAC-SHA256"}, InvalidArgument, "SignatureMethod"),
        ({"SignatureMethod": "hmac-sha1"}, InvalidArgument, "SignatureMethod"),
        ({"SignatureMethod": None}, MissingParameter, "SignatureMethod"),
        ({"SignatureVersion": "2.0"}, InvalidArgument, "SignatureVersion"),
        ({"SignatureVersion": None}, MissingParameter, "SignatureVersion"),
        ({"SignatureNonce": None}, MissingParameter, "SignatureNonce"),
        ({"SignatureNonce": ""}, MissingParameter, "SignatureNonce"),
        ({"AccessKeyId": None}, MissingParameter, "AccessKeyId"),
        ({"AccessKeyId": ""}, MissingParameter, "AccessKeyId"),
        ({"Action": None}, MissingParameter, "Action"),
        ({"Version": None}, MissingParameter, "Version"),
    ],
)
def test_rpc_identify_errors(change: dict[str, str | None], error: type[Exception], parameter: str) -> None:
    with pytest.raises(error) as caught:
        identify(signed_rpc(**change))
    assert type(caught.value) is error
    assert getattr(caught.value, "parameter", None) == parameter


@pytest.mark.parametrize(
    "timestamp",
    [None, "", "yesterday", "2026-11-28", "2026-11-28T15:16:12", "2026-13-28T15:16:12Z", "1795878972"],
)
def test_rpc_bad_timestamp(timestamp: str | None) -> None:
    with pytest.raises(InvalidTimestamp):
        identify(signed_rpc(Timestamp=timestamp))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-28T15:16:12Z", datetime(2026, 11, 28, 15, 16, 12, tzinfo=UTC)),
        ("2026-11-28T15:16:12.250Z", datetime(2026, 11, 28, 15, 16, 12, 250000, tzinfo=UTC)),
        ("2026-11-28T23:16:12+08:00", datetime(2026, 11, 28, 15, 16, 12, tzinfo=UTC)),
    ],
)
def test_timestamp_formats(text: str, expected: datetime) -> None:
    assert identify(signed_rpc(Timestamp=text)).timestamp == expected.timestamp()


def acs3_wire(
    *,
    signed_headers: dict[str, str] | None = None,
    unsigned: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
    query: dict[str, str] | None = None,
    body: bytes = b"",
) -> RpcRequest:
    """A Tea-signed ACS3 request; ``unsigned`` headers are added after signing, ``drop`` ones removed before."""
    headers = acs_headers(now_iso(), {"x-acs-content-sha256": hashlib.sha256(body).hexdigest()}) | (
        signed_headers or {}
    )
    for name in drop:
        headers.pop(name, None)
    headers["Authorization"] = tea_acs3(query or {}, headers, body)
    return wire("POST", query or {}, headers | (unsigned or {}), body)


def test_acs3_identify_fields() -> None:
    request = acs3_wire(
        signed_headers={"x-acs-security-token": TOKEN, "x-acs-accesskey-id": AK},
        query={"RegionId": "cn-beijing"},
    )
    signed = identify(request)
    assert signed.scheme is Scheme.ACS3_HMAC_SHA256
    assert signed.access_key_id == AK
    assert signed.security_token == TOKEN
    assert signed.region == "cn-beijing"
    assert signed.nonce == "3439e514241a8c2e75b9e86b9abe037c"
    verify(request, signed, SECRET)


def test_acs3_action_may_come_from_signed_query() -> None:
    request = acs3_wire(
        drop=("x-acs-action", "x-acs-version"), query={"Action": "DescribeKey", "Version": "2016-01-20"}
    )
    signed = identify(request)
    assert (signed.action, signed.version) == ("DescribeKey", "2016-01-20")
    verify(request, signed, SECRET)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"drop": ("x-acs-date",), "unsigned": {"x-acs-date": "2026-11-28T15:16:12Z"}}, IncompleteSignature),
        (
            {"drop": ("x-acs-signature-nonce",), "unsigned": {"x-acs-signature-nonce": "n"}},
            IncompleteSignature,
        ),
        ({"drop": ("host",), "unsigned": {"host": "kms.cn-hangzhou.aliyuncs.com"}}, IncompleteSignature),
        ({"drop": ("x-acs-action",), "unsigned": {"x-acs-action": "Encrypt"}}, IncompleteSignature),
        ({"drop": ("x-acs-version",), "unsigned": {"x-acs-version": "2016-01-20"}}, IncompleteSignature),
        ({"unsigned": {"x-acs-security-token": TOKEN}}, IncompleteSignature),
        ({"unsigned": {"x-acs-accesskey-id": AK}}, IncompleteSignature),
        ({"signed_headers": {"x-acs-accesskey-id": "someone-else"}}, IncompleteSignature),
        (
            {"body": b"A=1", "unsigned": {"content-type": "application/x-www-form-urlencoded"}},
            IncompleteSignature,
        ),
        ({"drop": ("x-acs-date",)}, InvalidTimestamp),
        ({"signed_headers": {"x-acs-date": "not a date"}}, InvalidTimestamp),
        ({"signed_headers": {"x-acs-date": "2026-11-28T15:16:12"}}, InvalidTimestamp),
        ({"drop": ("x-acs-signature-nonce",)}, MissingParameter),
        ({"signed_headers": {"x-acs-signature-nonce": ""}}, MissingParameter),
        ({"drop": ("x-acs-action",)}, MissingParameter),
        ({"drop": ("x-acs-version",)}, MissingParameter),
        ({"query": {"Action": "Decrypt"}}, InvalidArgument),
    ],
)
def test_acs3_identify_errors(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        identify(acs3_wire(**kwargs))
    assert type(caught.value) is error


def test_acs3_missing_nonce_names_signature_nonce() -> None:
    with pytest.raises(MissingParameter) as caught:
        identify(acs3_wire(drop=("x-acs-signature-nonce",)))
    assert caught.value.parameter == "SignatureNonce"


def with_authorization(value: str, params: dict[str, str] | None = None) -> RpcRequest:
    headers = acs_headers(now_iso(), {"authorization": value})
    return wire("POST", params or {}, headers, b"")


@pytest.mark.parametrize(
    "value",
    [
        "ACS3-HMAC-SHA256 ",
        "ACS3-HMAC-SHA256 Credential=AK",
        "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host;x-acs-date",
        "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host;x-acs-date,Signature=",
        "ACS3-HMAC-SHA256 Credential=,SignedHeaders=host,Signature=ab",
        "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host;;x-acs-date;x-acs-signature-nonce,Signature=ab",
        "ACS3-HMAC-SHA256 Credential=AK,Credential=AK,SignedHeaders=host,Signature=ab",
        "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders,Signature=ab",
        "ACS3-HMAC-SHA256 Credential=AK SignedHeaders=host Signature=ab",
        "ACS4-HMAC-SHA256 Credential=AK,SignedHeaders=host;x-acs-date;x-acs-signature-nonce,Signature=ab",
        "ACS4-HMAC-SHA256 Credential=AK/20261128/cn-hangzhou/Kms,SignedHeaders=host;x-acs-date;x-acs-signature-nonce,Signature=ab",
        "ACS4-HMAC-SHA256 Credential=AK/20261128/cn-hangzhou/Kms/aliyun_v3_request,SignedHeaders=host;x-acs-date;x-acs-signature-nonce,Signature=ab",
        "ACS4-HMAC-SHA256 Credential=AK/2026-11-28/cn-hangzhou/Kms/aliyun_v4_request,SignedHeaders=host;x-acs-date;x-acs-signature-nonce,Signature=ab",
        "ACS4-HMAC-SHA256 Credential=AK//cn-hangzhou/Kms/aliyun_v4_request,SignedHeaders=host;x-acs-date;x-acs-signature-nonce,Signature=ab",
        "ACS4-HMAC-SHA256 Credential=AK/20000101/cn-hangzhou/Kms/aliyun_v4_request,SignedHeaders=host;x-acs-date;x-acs-signature-nonce,Signature=ab",
        "ACS3-HMAC-SM3 Credential=AK,SignedHeaders=host,Signature=ab",
        "Bearer token",
        "acs AK:signature",
    ],
)
def test_garbled_or_unsupported_authorization(value: str) -> None:
    with pytest.raises(IncompleteSignature):
        identify(with_authorization(value))


def test_foreign_authorization_with_rpc_signature_is_rpc() -> None:
    params = rpc_base()
    params["Signature"] = TeaUtils.get_rpcsignature(dict(params), "POST", SECRET)
    request = rpc_request(params, headers=[(b"authorization", b"Basic dXNlcjpwYXNz")])
    signed = identify(request)
    assert signed.scheme is Scheme.RPC_HMAC_SHA1
    verify(request, signed, SECRET)


def test_acs_authorization_wins_over_signature_param() -> None:
    request = acs3_wire(query={"Signature": "whatever"})
    signed = identify(request)
    assert signed.scheme is Scheme.ACS3_HMAC_SHA256
    verify(request, signed, SECRET)


def test_authorization_parts_may_have_spaces() -> None:
    request = acs3_wire()
    spaced = request.headers["authorization"].replace(",", ", ")
    changed = replace(request, headers={**request.headers, "authorization": spaced})
    verify(changed, identify(changed), SECRET)


def test_signature_with_non_ascii_is_a_mismatch_not_a_crash() -> None:
    request = acs3_wire()
    bad = request.headers["authorization"][:-4] + "\xe9\xe9\xe9\xe9"
    changed = replace(request, headers={**request.headers, "authorization": bad})
    assert_mismatch(changed, identify(changed), SECRET)
    params = rpc_base() | {"Signature": "é中"}
    rpc = rpc_request(params)
    assert_mismatch(rpc, identify(rpc), SECRET)


def test_verify_rejects_a_scheme_that_does_not_match_the_header() -> None:
    request = acs3_wire()
    signed = replace(identify(request), scheme=Scheme.ACS4_HMAC_SHA256)
    with pytest.raises(IncompleteSignature):
        verify(request, signed, SECRET)


# ---------------------------------------------------------------------------------------------- freshness


def signed_at(timestamp: float) -> SignedRequest:
    return SignedRequest(Scheme.RPC_HMAC_SHA1, AK, "n", timestamp, None, None, "Encrypt", "2016-01-20")


@pytest.mark.parametrize("offset", [0.0, 299.0, 300.0, -899.0, -900.0])
def test_fresh(offset: float) -> None:
    check_freshness(signed_at(1_000_000.0 + offset), 1_000_000.0)


@pytest.mark.parametrize("offset", [300.5, 899.0, 900.5, -900.5, 86400.0, -86400.0])
def test_expired(offset: float) -> None:
    with pytest.raises(ExpiredTimestamp):
        check_freshness(signed_at(1_000_000.0 + offset), 1_000_000.0)


def test_custom_future_skew() -> None:
    # Ahead of the server's clock, only the skew is allowed, whatever the window behind it.
    check_freshness(signed_at(160.0), 100.0, window_seconds=900.0, future_skew_seconds=60.0)
    with pytest.raises(ExpiredTimestamp, match="more than 1 minute ahead of the server's clock"):
        check_freshness(signed_at(161.0), 100.0, window_seconds=900.0, future_skew_seconds=60.0)


def test_custom_window() -> None:
    check_freshness(signed_at(100.0), 110.0, window_seconds=10.0)
    # The message names the window in force, not the default's 15 minutes.
    with pytest.raises(ExpiredTimestamp, match="more than 10 seconds behind the server's clock"):
        check_freshness(signed_at(100.0), 111.0, window_seconds=10.0)
    with pytest.raises(ExpiredTimestamp, match="more than 15 minutes behind"):
        check_freshness(signed_at(100.0), 1001.0, window_seconds=900.0)
    with pytest.raises(ExpiredTimestamp, match="more than 90 seconds behind"):
        check_freshness(signed_at(100.0), 191.0, window_seconds=90.0)
