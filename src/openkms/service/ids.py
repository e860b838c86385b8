"""Identifier minting: account uids, access keys, instance and key ids. CSPRNG only."""

from __future__ import annotations

import os
import secrets
import string
import uuid

from openkms.types import AccessKeyId, AccountId, InstanceId, KeyId, KeyVersionId, RegionId

_ALNUM = string.ascii_letters + string.digits
_LOWER_ALNUM = string.ascii_lowercase + string.digits


def _pick(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_account_id() -> AccountId:
    return AccountId(str(secrets.choice("123456789")) + _pick(string.digits, 15))


def new_access_key() -> tuple[AccessKeyId, str]:
    return AccessKeyId("LTAI" + _pick(_ALNUM, 20)), _pick(_ALNUM, 30)


def new_numeric_id() -> str:
    """A RAM UserId or RoleId: 16 to 19 digits, like Alibaba's."""
    return str(secrets.choice("123456789")) + _pick(string.digits, 17)


def region_code(region_id: RegionId) -> str:
    """A short code for ids, e.g. cn-hangzhou -> hzz, like Alibaba's kst-hzz..."""
    tail = region_id.split("-", 1)[-1].replace("-", "")
    return (tail[:2] + tail[-1])[:3]


def new_instance_id(region_id: RegionId) -> InstanceId:
    return InstanceId(f"kst-{region_code(region_id)}{_pick(_LOWER_ALNUM, 21)}")


def new_default_key_id() -> KeyId:
    return KeyId(str(uuid.uuid4()))


def new_instance_key_id(region_id: RegionId) -> KeyId:
    return KeyId(f"key-{region_code(region_id)}{_pick(_LOWER_ALNUM, 21)}")


def new_version_id() -> KeyVersionId:
    return KeyVersionId(str(uuid.uuid4()))


def new_request_id() -> str:
    """A request id as Alibaba writes it: an upper-case random (version 4) UUID."""
    return request_id_from(os.urandom(16))


def request_id_from(random: bytes) -> str:
    """`str(uuid.UUID(bytes=random, version=4)).upper()`, formatted directly: every request makes
    one, and going through `uuid` costs about two microseconds more for the same string."""
    text = random.hex().upper()
    # version 4 in the 13th digit, the RFC 4122 variant (8, 9, A or B) in the 17th
    return f"{text[:8]}-{text[8:12]}-4{text[13:16]}-{_VARIANT[text[16]]}{text[17:20]}-{text[20:]}"


_VARIANT = {digit: "89AB"[int(digit, 16) & 3] for digit in "0123456789ABCDEF"}
