"""AWS Signature Version 4 as the XKS proxy API uses it (spec Appendix A): service `kms-xks-proxy`.

Owns the canonical request, the string to sign, the signing key and both sides: `sign` (the client:
adds `x-amz-date` and `Authorization` over `host;x-amz-date`, as AWS KMS does) and `verify` (the
proxy: recomputes the signature with the secret of the access key id the request names, compares in
constant time, checks the credential scope and a five-minute window around the request's date).
Hand-written (about a hundred lines of one published algorithm) rather than pulling in botocore,
which signs but does not verify. A secret never appears in an exception message or a repr.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import parse_qsl, quote

from openkms.secret import SecretBytes

__all__ = [
    "ALGORITHM",
    "MAX_SKEW",
    "SERVICE",
    "Credential",
    "SignatureRejected",
    "canonical_request",
    "sign",
    "signature",
    "verify",
]

ALGORITHM: Final = "AWS4-HMAC-SHA256"
SERVICE: Final = "kms-xks-proxy"
TERMINATOR: Final = "aws4_request"
MAX_SKEW: Final = timedelta(minutes=5)
AMZ_DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
# The headers every XKS request signs (spec Appendix A); a request that signs fewer is refused.
REQUIRED_SIGNED: Final = frozenset({"host", "x-amz-date"})

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Credential:
    """An XKS access key id and its secret access key (the raw UTF-8 string, as configured)."""

    access_key_id: str
    secret: SecretBytes = field(repr=False)


class SignatureRejected(Exception):
    """The request's SigV4 authentication failed; the message says why (never a secret)."""


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _canonical_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(pairs))


def canonical_request(
    method: str, path: str, query: str, headers: Mapping[str, str], signed: Iterable[str], body: bytes
) -> str:
    """Task 1: the canonical request over `signed` (lower-case header names) of `headers` (keys
    lower-case). The path is URI-encoded per segment, as AWS does for every service but S3."""
    names = sorted(signed)
    canonical_headers = "".join(f"{n}:{_SPACES.sub(' ', headers[n].strip())}\n" for n in names)
    return "\n".join(
        [
            method.upper(),
            quote(path or "/", safe="/-_.~"),
            _canonical_query(query),
            canonical_headers,
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )


def signature(secret: SecretBytes, amz_date: str, scope: str, request: str) -> str:
    """Tasks 2 and 3: the hex signature of a canonical request under a credential scope
    (`date/region/service/aws4_request`)."""
    date, region, service, _ = scope.split("/")
    string_to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(request.encode()).hexdigest()])
    key = _hmac(b"AWS4" + secret.reveal(), date)
    for part in (region, service, TERMINATOR):
        key = _hmac(key, part)
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def sign(
    credential: Credential,
    region: str,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    *,
    query: str = "",
) -> dict[str, str]:
    """The headers to add to a request (`x-amz-date`, `authorization`); `headers` must hold `host`
    exactly as it will be sent."""
    amz_date = now.astimezone(UTC).strftime(AMZ_DATE_FORMAT)
    lowered = {k.lower(): v for k, v in headers.items()}
    lowered["x-amz-date"] = amz_date
    scope = f"{amz_date[:8]}/{region}/{SERVICE}/{TERMINATOR}"
    signed = sorted(REQUIRED_SIGNED)
    request = canonical_request(method, path, query, lowered, signed, body)
    sig = signature(credential.secret, amz_date, scope, request)
    authorization = (
        f"{ALGORITHM} Credential={credential.access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(signed)}, Signature={sig}"
    )
    return {"x-amz-date": amz_date, "authorization": authorization}


def verify(
    secrets: Mapping[str, SecretBytes],
    regions: frozenset[str] | None,
    method: str,
    path: str,
    query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    now: datetime,
    *,
    max_skew: timedelta = MAX_SKEW,
) -> str:
    """Check a request's SigV4 signature; return the access key id it was signed with. `secrets` maps
    access key ids to secret keys (several during a rotation); `regions`, if set, the regions the
    credential scope may name. Raises SignatureRejected naming the reason."""
    merged: dict[str, list[str]] = {}
    for name, value in headers:
        merged.setdefault(name.lower(), []).append(value)
    values = {name: ",".join(v.strip() for v in vs) for name, vs in merged.items()}
    match = _AUTHORIZATION.fullmatch(values.get("authorization", "").strip())
    if match is None:
        raise SignatureRejected("missing or malformed AWS4-HMAC-SHA256 Authorization header")
    parts = match["credential"].split("/")
    if len(parts) != 5:
        raise SignatureRejected("malformed credential scope")
    access_key_id, date, region, service, terminator = parts
    if service != SERVICE or terminator != TERMINATOR:
        raise SignatureRejected(f"the credential scope must name service {SERVICE} and {TERMINATOR}")
    if regions is not None and region not in regions:
        raise SignatureRejected("the credential scope names a region this proxy does not serve")
    signed = match["signed"].split(";")
    if not set(signed) >= REQUIRED_SIGNED or any(name not in values for name in signed):
        raise SignatureRejected("the signed headers must include host and x-amz-date, all present")
    if signed != sorted(set(signed)):
        raise SignatureRejected("the signed headers must be sorted and distinct")
    amz_date = values["x-amz-date"]
    try:
        when = datetime.strptime(amz_date, AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise SignatureRejected("x-amz-date is not YYYYMMDD'T'HHMMSS'Z'") from None
    if date != amz_date[:8]:
        raise SignatureRejected("the credential scope's date is not the request's date")
    if abs(now - when) > max_skew:
        raise SignatureRejected("the request's date is more than five minutes from the proxy's clock")
    declared = values.get("x-amz-content-sha256")
    if declared is not None and declared != hashlib.sha256(body).hexdigest():
        raise SignatureRejected("x-amz-content-sha256 does not match the body")
    secret = secrets.get(access_key_id)
    if secret is None:
        raise SignatureRejected("unknown access key id")
    request = canonical_request(method, path, query, values, signed, body)
    expected = signature(secret, amz_date, "/".join(parts[1:]), request)
    if not hmac.compare_digest(expected, match["signature"]):
        raise SignatureRejected("the signature does not match")
    return access_key_id
