"""Server-side verification of the three Alibaba Cloud request signature schemes.

Owns: telling which scheme signed a request and who claims to have signed it (`identify`), recomputing the
signature with the caller's secret and comparing it in constant time (`verify`), and the timestamp window
(`check_freshness`). Schemes, as the official SDKs produce them:

* ``HMAC-SHA1`` (RPC, SignatureVersion 1.0): every decoded parameter from query and form body except
  ``Signature``, sorted by name, RFC 3986-encoded, ``METHOD&%2F&pct(canonical)``, key ``secret + "&"``.
* ``ACS3-HMAC-SHA256`` (Tea SDK default): canonical request over method, path, query, the headers named in
  ``SignedHeaders`` and the body's SHA-256; HMAC key is the secret.
* ``ACS4-HMAC-SHA256``: the same canonical request, HMAC key derived from the secret through the credential
  scope ``date/region/product/aliyun_v4_request``.

Never logs, stores, caches or returns a secret or a derived key; the only thing it hands back on failure is
the server's string to sign, which is computed from the request alone. It does not look up access keys,
does not remember nonces (replay is the caller's job, using ``SignedRequest.nonce``) and does not decide
whether the caller is allowed to do anything.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from base64 import b64encode
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from openkms.api.params import RpcRequest, is_form, parse_form
from openkms.errors import (
    ExpiredTimestamp,
    IncompleteSignature,
    InvalidArgument,
    InvalidTimestamp,
    MissingParameter,
    SignatureMismatch,
)

__all__ = ["Scheme", "SignedRequest", "check_freshness", "identify", "verify"]


class Scheme(StrEnum):
    RPC_HMAC_SHA1 = "HMAC-SHA1"
    ACS3_HMAC_SHA256 = "ACS3-HMAC-SHA256"
    ACS4_HMAC_SHA256 = "ACS4-HMAC-SHA256"


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """Who claims to have signed a request, and the signed facts the rest of the request pipeline uses."""

    scheme: Scheme
    access_key_id: str
    nonce: str
    timestamp: float
    """Epoch seconds, from the ``Timestamp`` parameter (RPC) or the ``x-acs-date`` header (ACS3/ACS4)."""
    region: str | None
    """ACS4: the credential scope's region. Otherwise the ``RegionId`` parameter, if given."""
    security_token: str | None
    """``SecurityToken`` parameter (RPC) or ``x-acs-security-token`` header (ACS3/ACS4)."""
    action: str
    """``Action`` parameter (RPC), or the signed ``x-acs-action`` header (ACS3/ACS4)."""
    version: str
    """``Version`` parameter (RPC), or the signed ``x-acs-version`` header (ACS3/ACS4)."""


_ACS3_PREFIX = "ACS3-HMAC-SHA256 "
_ACS4_PREFIX = "ACS4-HMAC-SHA256 "
_V4_KEY_PREFIX = "aliyun_v4"
_V4_TERMINATOR = "aliyun_v4_request"
_SCOPE_DATE = re.compile(r"[0-9]{8}").fullmatch
_UNRESERVED_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch
# byte -> itself if unreserved, else "%XX": str.translate over the UTF-8 bytes (seen as latin-1) is RFC 3986
# percent-encoding (quote(s, safe="~")) in one C loop.
_PCT_TABLE = tuple(chr(b) if chr(b) in _UNRESERVED_CHARS else f"%{b:02X}" for b in range(256))


def _escape(text: str) -> str:
    return text.encode().decode("latin-1").translate(_PCT_TABLE)


def _canonical_query(params: Mapping[str, str], skip: str | None = None) -> str:
    """``pct(k)=pct(v)`` joined by ``&``, sorted by the decoded name (as the SDKs sort).

    pct is RFC 3986 percent-encoding (space ``%20``, ``*`` ``%2A``, ``~`` kept), as every Alibaba signer does;
    strings that are already all-unreserved (most names and many values) skip the encoding.
    """
    unreserved = _UNRESERVED
    return "&".join(
        [
            (k if unreserved(k) else _escape(k)) + "=" + (v if unreserved(v) else _escape(v))
            for k, v in sorted(params.items())
            if k != skip
        ]
    )


def _encode_canonical(canonical: str) -> str:
    """Same as ``quote(canonical, safe="~")``: a canonical query holds only unreserved, ``%XX``, & and =."""
    return canonical.replace("%", "%25").replace("&", "%26").replace("=", "%3D")


def _parse_time(text: str | None) -> float:
    if not text:
        raise InvalidTimestamp()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidTimestamp() from None
    if moment.tzinfo is None:  # Alibaba timestamps are always UTC with a "Z"; refuse to guess
        raise InvalidTimestamp()
    return moment.timestamp()


@dataclass(frozen=True, slots=True)
class _Authorization:
    scheme: Scheme
    credential: str
    signed_headers: str
    signature: str


def _parse_authorization(value: str) -> _Authorization | None:
    """Split an ACS3/ACS4 ``Authorization`` header; ``None`` if it is neither scheme."""
    if value.startswith(_ACS3_PREFIX):
        scheme = Scheme.ACS3_HMAC_SHA256
    elif value.startswith(_ACS4_PREFIX):
        scheme = Scheme.ACS4_HMAC_SHA256
    else:
        return None
    parts: dict[str, str] = {}
    for part in value[len(_ACS3_PREFIX) :].split(","):  # both prefixes have the same length
        name, eq, item = part.partition("=")
        name = name.strip()
        if not eq or name in parts:
            raise IncompleteSignature()
        parts[name] = item.strip()
    credential = parts.get("Credential")
    signed_headers = parts.get("SignedHeaders")
    signature = parts.get("Signature")
    if not credential or not signed_headers or not signature:
        raise IncompleteSignature()
    return _Authorization(scheme, credential, signed_headers, signature)


def _signed_header_names(signed_headers: str) -> list[str]:
    names = signed_headers.split(";")
    if "" in names:
        raise IncompleteSignature()
    return names


@dataclass(frozen=True, slots=True)
class _Scope:
    access_key_id: str
    date: str
    region: str
    product: str


def _parse_scope(credential: str) -> _Scope:
    """``AK/yyyymmdd/region/product/aliyun_v4_request``."""
    pieces = credential.rsplit("/", 4)
    if len(pieces) != 5 or pieces[4] != _V4_TERMINATOR or not all(pieces[:4]):
        raise IncompleteSignature()
    if not _SCOPE_DATE(pieces[1]):
        raise IncompleteSignature()
    return _Scope(pieces[0], pieces[1], pieces[2], pieces[3])


def identify(request: RpcRequest) -> SignedRequest:
    """Read the scheme, the claimed access key and the signed facts. Checks shape, not the signature."""
    authorization = request.headers.get("authorization")
    if authorization is not None:
        parsed = _parse_authorization(authorization)
        if parsed is not None:
            return _identify_acs(request, parsed)
    if "Signature" in request.params:
        return _identify_rpc(request.params)
    if authorization is not None:
        raise IncompleteSignature("The Authorization header uses an unsupported signature scheme.")
    raise MissingParameter("Signature")


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise MissingParameter(name)
    return value


def _identify_rpc(params: Mapping[str, str]) -> SignedRequest:
    if not params["Signature"]:
        raise MissingParameter("Signature")
    method = _required(params, "SignatureMethod")
    if method != Scheme.RPC_HMAC_SHA1:
        raise InvalidArgument(
            f"The signature method {method} is not supported; use HMAC-SHA1.", parameter="SignatureMethod"
        )
    version = _required(params, "SignatureVersion")
    if version != "1.0":
        raise InvalidArgument(
            f"The signature version {version} is not supported; use 1.0.", parameter="SignatureVersion"
        )
    timestamp = _parse_time(params.get("Timestamp"))
    return SignedRequest(
        scheme=Scheme.RPC_HMAC_SHA1,
        access_key_id=_required(params, "AccessKeyId"),
        nonce=_required(params, "SignatureNonce"),
        timestamp=timestamp,
        region=params.get("RegionId") or None,
        security_token=params.get("SecurityToken") or None,
        action=_required(params, "Action"),
        version=_required(params, "Version"),
    )


def _signed_header(headers: Mapping[str, str], signed: list[str], name: str) -> str | None:
    """The header's value; raises `IncompleteSignature` if it is present but not covered by the signature."""
    value = headers.get(name)
    if value is not None and name not in signed:
        raise IncompleteSignature(f"The header {name} must be signed.")
    return value


def _header_or_param(request: RpcRequest, signed: list[str], header: str, param: str) -> str:
    """A signed ``x-acs-*`` header, else the (signed) query parameter; both given must agree."""
    from_header = _signed_header(request.headers, signed, header)
    from_param = request.params.get(param)
    if from_header and from_param and from_header != from_param:
        raise InvalidArgument(f"The header {header} and the parameter {param} differ.", parameter=param)
    value = from_header or from_param
    if not value:
        raise MissingParameter(param)
    return value


def _identify_acs(request: RpcRequest, auth: _Authorization) -> SignedRequest:
    headers = request.headers
    signed = [name.lower() for name in _signed_header_names(auth.signed_headers)]

    scope: _Scope | None = None
    region: str | None
    if auth.scheme is Scheme.ACS4_HMAC_SHA256:
        scope = _parse_scope(auth.credential)
        access_key_id, region = scope.access_key_id, scope.region
    else:
        access_key_id, region = auth.credential, request.params.get("RegionId") or None

    date = headers.get("x-acs-date", "")
    timestamp = _parse_time(date)
    nonce = headers.get("x-acs-signature-nonce")
    if not nonce:
        raise MissingParameter("SignatureNonce")
    # Without these in the signature a captured request could be replayed with a fresh date and nonce.
    for name in ("host", "x-acs-date", "x-acs-signature-nonce"):
        if name not in signed:
            raise IncompleteSignature(f"The header {name} must be signed.")
    if scope is not None and date[:10].replace("-", "") != scope.date:
        raise IncompleteSignature("The credential scope date does not match x-acs-date.")

    header_key = _signed_header(headers, signed, "x-acs-accesskey-id")
    if header_key is not None and header_key != access_key_id:
        raise IncompleteSignature("The x-acs-accesskey-id header does not match the credential.")
    security_token = _signed_header(headers, signed, "x-acs-security-token") or None
    if request.body:
        _signed_header(headers, signed, "content-type")

    action = _header_or_param(request, signed, "x-acs-action", "Action")
    version = _header_or_param(request, signed, "x-acs-version", "Version")
    return SignedRequest(
        scheme=auth.scheme,
        access_key_id=access_key_id,
        nonce=nonce,
        timestamp=timestamp,
        region=region,
        security_token=security_token,
        action=action,
        version=version,
    )


def verify(request: RpcRequest, signed: SignedRequest, secret: str) -> None:
    """Recompute the signature with ``secret``; a difference raises `SignatureMismatch` (string to sign)."""
    if signed.scheme is Scheme.RPC_HMAC_SHA1:
        _verify_rpc(request, secret)
    else:
        _verify_acs(request, signed, secret)


def _verify_rpc(request: RpcRequest, secret: str) -> None:
    params = request.params
    string_to_sign = request.method + "&%2F&" + _encode_canonical(_canonical_query(params, skip="Signature"))
    expected = b64encode(hmac.digest((secret + "&").encode(), string_to_sign.encode(), "sha1"))
    if not hmac.compare_digest(expected, params.get("Signature", "").encode()):
        raise SignatureMismatch(string_to_sign)


def _query_params(request: RpcRequest) -> Mapping[str, str]:
    """The query-string parameters alone (ACS3/ACS4 sign the query; a form body is covered by its hash)."""
    if request.body and is_form(request.headers):
        return parse_form(request.raw_query)
    return request.params


def _verify_acs(request: RpcRequest, signed: SignedRequest, secret: str) -> None:
    headers = request.headers
    auth = _parse_authorization(headers.get("authorization", ""))
    if auth is None or auth.scheme is not signed.scheme:
        raise IncompleteSignature()
    names = _signed_header_names(auth.signed_headers)
    payload_hash = hashlib.sha256(request.body).hexdigest()
    canonical_headers = "".join([name + ":" + headers.get(name.lower(), "").strip() + "\n" for name in names])
    canonical_request = "\n".join(
        (
            request.method,
            request.path or "/",
            _canonical_query(_query_params(request)),
            canonical_headers,
            auth.signed_headers,
            payload_hash,
        )
    )
    string_to_sign = auth.scheme + "\n" + hashlib.sha256(canonical_request.encode()).hexdigest()
    if auth.scheme is Scheme.ACS4_HMAC_SHA256:
        scope = _parse_scope(auth.credential)
        key = hmac.digest((_V4_KEY_PREFIX + secret).encode(), scope.date.encode(), "sha256")
        for part in (scope.region, scope.product, _V4_TERMINATOR):
            key = hmac.digest(key, part.encode(), "sha256")
    else:
        key = secret.encode()
    expected = hmac.digest(key, string_to_sign.encode(), "sha256").hex().encode()
    claimed_hash = headers.get("x-acs-content-sha256")
    body_ok = claimed_hash is None or hmac.compare_digest(
        claimed_hash.encode("latin-1"), payload_hash.encode()
    )
    signature_ok = hmac.compare_digest(expected, auth.signature.encode("latin-1"))
    if not (body_ok and signature_ok):
        raise SignatureMismatch(string_to_sign)


def check_freshness(
    signed: SignedRequest, now: float, window_seconds: float = 900.0, future_skew_seconds: float = 300.0
) -> None:
    """Refuse a request whose timestamp is more than ``window_seconds`` before ``now``, or more than
    ``future_skew_seconds`` after it (a clock that runs ahead by more is refused, not remembered for
    longer: a request's nonce then lives at most window + skew)."""
    if now - signed.timestamp > window_seconds:
        raise ExpiredTimestamp(
            f"The request timestamp is more than {_span(window_seconds)} behind the server's clock."
        )
    if signed.timestamp - now > future_skew_seconds:
        raise ExpiredTimestamp(
            f"The request timestamp is more than {_span(future_skew_seconds)} ahead of the server's clock."
        )


def _span(seconds: float) -> str:
    """A window as people say it: "15 minutes" for 900 s, "90 seconds" for 90 s."""
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} second{'s' if seconds != 1 else ''}"
