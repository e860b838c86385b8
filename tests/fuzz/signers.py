"""Independent signers of the three schemes, written from Alibaba's documentation (and checked here
only by the server accepting what they sign; tests/unit/test_signature.py pins the schemes to the
official SDKs). A signed request is kept as parts, so a test can change one part and rebuild it."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from urllib.parse import quote

from tests.support.raw import rpc_sign

SCHEMES = ("HMAC-SHA1", "ACS3-HMAC-SHA256", "ACS4-HMAC-SHA256")
FORM_TYPE = "application/x-www-form-urlencoded"


def pct(text: str) -> str:
    return quote(text, safe="~")


@dataclass
class WireRequest:
    method: str
    query: list[tuple[str, str]]
    headers: list[tuple[str, str]]
    body: bytes = b""
    path: str = "/"
    extra_raw_query: bytes = field(default=b"")

    def raw_query(self) -> bytes:
        return "&".join(f"{pct(k)}={pct(v)}" for k, v in self.query).encode() + self.extra_raw_query

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (k.encode("utf-8", "surrogatepass"), v.encode("utf-8", "surrogatepass")) for k, v in self.headers
        ]


def sign_rpc(params: dict[str, str], secret: str, method: str, *, in_body: bool) -> WireRequest:
    signed = {**params, "Signature": rpc_sign(params, secret, method)}
    pairs = sorted(signed.items())
    if in_body:
        body = "&".join(f"{pct(k)}={pct(v)}" for k, v in pairs).encode()
        return WireRequest(method, [], [("content-type", FORM_TYPE), ("host", "127.0.0.1")], body)
    return WireRequest(method, pairs, [("host", "127.0.0.1")])


def sign_acs(
    scheme: str,
    access_key_id: str,
    secret: str,
    method: str,
    query: dict[str, str],
    headers: dict[str, str],
    body: bytes,
    *,
    region: str = "cn-hangzhou",
) -> WireRequest:
    """ACS3 or ACS4: every given header is signed (names lower-case, sorted), and the body's hash."""
    payload_hash = hashlib.sha256(body).hexdigest()
    signed = {k.lower(): v for k, v in headers.items()} | {"x-acs-content-sha256": payload_hash}
    names = sorted(signed)
    canonical_headers = "".join(f"{name}:{signed[name].strip()}\n" for name in names)
    canonical_query = "&".join(f"{pct(k)}={pct(v)}" for k, v in sorted(query.items()))
    canonical = "\n".join([method, "/", canonical_query, canonical_headers, ";".join(names), payload_hash])
    string_to_sign = f"{scheme}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    if scheme == "ACS4-HMAC-SHA256":
        date = signed["x-acs-date"][:10].replace("-", "")
        key = hmac.digest(f"aliyun_v4{secret}".encode(), date.encode(), "sha256")
        for part in (region, "kms", "aliyun_v4_request"):
            key = hmac.digest(key, part.encode(), "sha256")
        credential = f"{access_key_id}/{date}/{region}/kms/aliyun_v4_request"
    else:
        key, credential = secret.encode(), access_key_id
    signature = hmac.digest(key, string_to_sign.encode(), "sha256").hex()
    authorization = f"{scheme} Credential={credential},SignedHeaders={';'.join(names)},Signature={signature}"
    return WireRequest(
        method, sorted(query.items()), [*signed.items(), ("authorization", authorization)], body
    )
