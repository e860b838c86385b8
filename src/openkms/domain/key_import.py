"""Bring your own key: the wrapping algorithms, the import token's format and lifetime, and
the parsing of ImportKeyMaterial's expiry. No key material here, and no cryptography: the provider
unwraps, the service binds a token to its key, wrapping key and expiry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from openkms.errors import InvalidArgument, InvalidImportToken, UnsupportedOperation
from openkms.types import KeyId

TOKEN_LIFETIME: Final = timedelta(hours=24)
TOKEN_PREFIX: Final = "OKI1."  # noqa: S105 - a format marker, not a secret
WRAPPING_KEY_SPEC: Final = "RSA_2048"
# The spec string the keystore binds a wrapping private key's wrap to (with the key id and token id).
WRAPPING_KEY_BINDING: Final = "ImportWrappingKey/RSA_2048"
_TOKEN = re.compile(r"^OKI1\.(?P<id>[0-9a-f]{32})\.(?P<mac>[A-Za-z0-9_-]{43})\Z")


class WrappingAlgorithm(StrEnum):
    RSAES_OAEP_SHA_256 = "RSAES_OAEP_SHA_256"
    RSAES_OAEP_SHA_1 = "RSAES_OAEP_SHA_1"
    RSAES_PKCS1_V1_5 = "RSAES_PKCS1_V1_5"


@dataclass(frozen=True, slots=True)
class ImportParameters:
    """GetParametersForImport's answer: the token, the wrapping public key (DER), its expiry."""

    key_id: KeyId
    import_token: str
    public_key_der: bytes
    token_expire_time: datetime


@dataclass(frozen=True, slots=True)
class StoredToken:
    """An import token's row: the wrapping private key is stored wrapped by the keystore."""

    token_id: str
    key_id: KeyId
    algorithm: WrappingAlgorithm
    public_key_der: bytes
    wrapped_private_key: bytes
    expires_at: datetime
    created_at: datetime


def parse_wrapping_algorithm(raw: str | None) -> WrappingAlgorithm:
    if not raw:
        raise InvalidArgument("WrappingAlgorithm is required.", parameter="WrappingAlgorithm")
    if raw == "SM2PKE":
        raise UnsupportedOperation("SM2PKE wrapping (EC_SM2) is not supported by this server.")
    try:
        return WrappingAlgorithm(raw)
    except ValueError:
        raise InvalidArgument(
            f"WrappingAlgorithm {raw!r} is not RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1 or RSAES_PKCS1_V1_5.",
            parameter="WrappingAlgorithm",
        ) from None


def check_wrapping_key_spec(raw: str | None) -> None:
    if not raw:
        raise InvalidArgument("WrappingKeySpec is required.", parameter="WrappingKeySpec")
    if raw == "EC_SM2":
        raise UnsupportedOperation("EC_SM2 wrapping keys are not supported by this server.")
    if raw != WRAPPING_KEY_SPEC:
        raise InvalidArgument(f"WrappingKeySpec {raw!r} is not RSA_2048.", parameter="WrappingKeySpec")


def format_token(token_id: str, mac: str) -> str:
    return f"{TOKEN_PREFIX}{token_id}.{mac}"


def parse_token(raw: str) -> tuple[str, str]:
    """(token id, mac) of a token's text; InvalidImportToken for anything not shaped like one."""
    match = _TOKEN.match(raw)
    if match is None:
        raise InvalidImportToken()
    return match["id"], match["mac"]


def parse_material_expiry(raw: int | None, now: datetime) -> datetime | None:
    """KeyMaterialExpireUnix: 0 or absent means the material never expires; otherwise a future time."""
    if raw is None or raw == 0:
        return None
    if raw < 0:
        raise InvalidArgument(
            "KeyMaterialExpireUnix must not be negative.", parameter="KeyMaterialExpireUnix"
        )
    try:
        moment = datetime.fromtimestamp(raw, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidArgument(
            "KeyMaterialExpireUnix is out of range.", parameter="KeyMaterialExpireUnix"
        ) from None
    if moment <= now:
        raise InvalidArgument("KeyMaterialExpireUnix is in the past.", parameter="KeyMaterialExpireUnix")
    return moment
