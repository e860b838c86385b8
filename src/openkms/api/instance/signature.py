"""The instance API's request signature, as Alibaba's instance SDKs make it: the client key's
RSASSA-PKCS1-v1_5 SHA-256 signature (`authorization: Bearer <base64>`) over

    POST \\n <content-sha256> \\n <content-type> \\n <date> \\n <x-kms-* headers, sorted: name:value \\n> /

where `content-sha256` is the uppercase hex SHA-256 of the body, checked here against the body, and
`date` an RFC 1123 time within the window. Pure but for the RSA verification; owns no key lookup.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from openkms.errors import InstanceInvalidParam

DATE_INVALID = "The Param Date is invalid."
AUTHORIZATION_INVALID = "The Param Authorization is invalid."
CLIENT_KEY_HEADER = "x-kms-acccesskeyid"  # sic: three c's, as the SDKs send it
_BEARER = "Bearer "


def header_map(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request's headers by lowercase name (latin-1, as HTTP carries them); a repeated header
    keeps its first value."""
    found: dict[str, str] = {}
    for name, value in raw:
        found.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return found


def string_to_sign(headers: Mapping[str, str]) -> str:
    signed = "".join(
        f"{name}:{headers[name].strip()}\n"
        for name in sorted(name for name in headers if name.startswith("x-kms-"))
    )
    return (
        f"POST\n{headers.get('content-sha256', '')}\n{headers.get('content-type', '')}\n"
        f"{headers.get('date', '')}\n{signed}/"
    )


def check_date(headers: Mapping[str, str], now: float, window: float, future_skew: float) -> None:
    """The `date` header must parse and lie within [now - window, now + future_skew]."""
    sent = _date(headers.get("date", ""))
    if sent is None or not now - window <= sent <= now + future_skew:
        raise InstanceInvalidParam(DATE_INVALID)


@lru_cache(maxsize=256)
def _date(text: str) -> float | None:
    """An RFC 1123 date as epoch seconds, or None. Cached: the SDKs' dates change once a second."""
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:  # "-0000" or no zone: not the GMT time the SDKs send
        return None
    return parsed.timestamp()


def check_body(headers: Mapping[str, str], body: bytes) -> None:
    """`content-sha256` must be the uppercase hex SHA-256 of the body (compared in constant time)."""
    expected = hashlib.sha256(body).hexdigest().upper()
    if not hmac.compare_digest(headers.get("content-sha256", "").encode(), expected.encode()):
        raise InstanceInvalidParam(AUTHORIZATION_INVALID)


@lru_cache(maxsize=4096)
def _public_key(der: bytes) -> rsa.RSAPublicKey | None:
    """A client key's RSA public key (parsed once: every request of the client key verifies with it)."""
    key = serialization.load_der_public_key(der)
    return key if isinstance(key, rsa.RSAPublicKey) else None


def verify(headers: Mapping[str, str], public_key_der: bytes) -> None:
    """The Bearer signature over the string to sign, by the client key's public key."""
    authorization = headers.get("authorization", "")
    if not authorization.startswith(_BEARER):
        raise InstanceInvalidParam(AUTHORIZATION_INVALID)
    try:
        signature = base64.b64decode(authorization[len(_BEARER) :].strip(), validate=True)
        key = _public_key(public_key_der)
        if key is None:
            raise InstanceInvalidParam(AUTHORIZATION_INVALID)
        key.verify(signature, string_to_sign(headers).encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except (binascii.Error, ValueError, InvalidSignature):
        raise InstanceInvalidParam(AUTHORIZATION_INVALID) from None
