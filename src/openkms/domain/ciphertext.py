"""The CiphertextBlob format: what Encrypt returns and Decrypt accepts.

Owns the byte layouts, the data-key mark and the AAD rule. Two versions decrypt; new blobs are v2.

Version 2 is exactly the shape of Alibaba's blobs, so the instance API's SDKs can take it apart and
put it back together (AdvanceEncrypt returns `b"$\\x00\\x02" + blob`; the legacy instance Encrypt
returns the id, the IV and ct || tag separately and the unified SDK joins them):

    key-version id (36 ASCII bytes) | IV (12 bytes) | AES-GCM ct || tag (>= 16)

The id is the canonical lowercase UUID; a data key (GenerateDataKey and friends, and ReEncrypt of
one) writes it with `_` in place of each `-`: the mark ExportDataKey requires. The 36 bytes are the
header, and what the AES-GCM AAD binds after them is the *bound context*: what both gateways can
compute (`domain.encryption_context.derived_aad`: `hex(sha256("k1=v1&k2=v2"))` of the context, or
the instance API's Aad bytes as sent). Every v2 blob is at least 64 bytes, more than the 48 the
unified SDK insists on.

Version 1 (every blob made before v2; still decrypted, never written except by tests):

    format (1 byte) | key-version id (16 bytes, raw UUID) | IV (12 bytes) | AES-GCM ct || tag (>= 16)

format 0x01 for sealed data, 0x02 for a data key; the first 17 bytes are the header, and the AAD
binds the canonical JSON of the context (`canonical_context`). A v1 blob starts with 0x01 or 0x02, a
v2 blob with a hex digit, so the first byte tells them apart.

In both, the AAD is `blob_aad(header, bound context)`, so a blob whose header was edited (its mark
flipped, its key version swapped), or that is presented with another context, fails authentication.
Decrypt takes no KeyId: the key-version id in the header is how the service finds the key. The layout is
internal; clients treat the blob as opaque. Pure: no I/O, and never interprets ct || tag.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from openkms.errors import InvalidCiphertext
from openkms.types import KeyVersionId

FORMAT_V1: Final = 0x01  # sealed data: Encrypt's blobs, and every blob made before the mark
FORMAT_V1_DATA_KEY: Final = 0x02  # the same layout, marked as a data key
FORMAT_V2: Final = 0x03  # not a byte of the blob: `Ciphertext.form` of the Alibaba-shaped layout
UUID_LEN: Final = 16
IV_LEN: Final = 12
TAG_LEN: Final = 16
HEADER_LEN: Final = 1 + UUID_LEN
MIN_BLOB_LEN: Final = HEADER_LEN + IV_LEN + TAG_LEN
V2_ID_LEN: Final = 36
MIN_V2_BLOB_LEN: Final = V2_ID_LEN + IV_LEN + TAG_LEN
ADVANCE_PREFIX: Final = (
    b"$\x00\x02"  # the instance API's Advance blobs: '$', cipher version 0 / padding 0, AES-GCM
)

_HEADER_LEN_PREFIX: Final = struct.Struct(">H")


@dataclass(frozen=True, slots=True)
class Ciphertext:
    """A parsed CiphertextBlob. `version_id` is a lowercase canonical UUID string; `data_key` is the
    mark (format 0x02), authenticated with the rest of the header."""

    version_id: KeyVersionId
    iv: bytes
    sealed: bytes
    data_key: bool = False
    form: int = FORMAT_V2

    def header(self) -> bytes:
        if self.form == FORMAT_V2:
            return (
                v2_data_key_header_for(self.version_id) if self.data_key else v2_header_for(self.version_id)
            )
        return data_key_header_for(self.version_id) if self.data_key else header_for(self.version_id)

    def to_bytes(self) -> bytes:
        return join_blob(self.header(), self.iv, self.sealed)


# Two cached functions rather than one with a flag: a one-argument lru_cache keys on the string itself,
# so Encrypt's lookup stays as cheap as before the mark (no key tuple per call).
@lru_cache(maxsize=4096)
def header_for(version_id: KeyVersionId) -> bytes:
    """The v1 header of sealed data (Encrypt) for a key version. Cached: Encrypt calls it for the same
    few versions all day.

    Raises ValueError if `version_id` is not a lowercase canonical UUID string: the service only ever
    holds ids it generated, so anything else is a programming error, not a caller's mistake.
    """
    return bytes((FORMAT_V1,)) + _id_bytes(version_id)


@lru_cache(maxsize=4096)
def data_key_header_for(version_id: KeyVersionId) -> bytes:
    """The v1 header of a data key for a key version: the same, with the data-key mark."""
    return bytes((FORMAT_V1_DATA_KEY,)) + _id_bytes(version_id)


@lru_cache(maxsize=4096)
def v2_header_for(version_id: KeyVersionId) -> bytes:
    """The v2 header of sealed data: the version id's 36 ASCII bytes. Cached, like `header_for`, which
    also checks the id (ValueError for anything but a lowercase canonical UUID)."""
    _id_bytes(version_id)
    return version_id.encode("ascii")


@lru_cache(maxsize=4096)
def v2_data_key_header_for(version_id: KeyVersionId) -> bytes:
    """The v2 header of a data key: the id with `_` for each `-` (the mark; see the module notes)."""
    return v2_header_for(version_id).replace(b"-", b"_")


def _id_bytes(version_id: KeyVersionId) -> bytes:
    parsed = uuid.UUID(version_id)
    if str(parsed) != version_id:
        raise ValueError("a key version id must be a lowercase canonical UUID")
    return parsed.bytes


def join_blob(header: bytes, iv: bytes, sealed: bytes) -> bytes:
    """The blob's bytes from its header (`header_for` or `data_key_header_for`), IV and ct || tag."""
    return header + iv + sealed


def parse_ciphertext(blob: bytes) -> Ciphertext:
    """Split a blob (v2 or v1) into its parts, or raise InvalidCiphertext (one message for every
    malformation).

    A v2 id must be a canonical lowercase UUID, with `-` or (a data key) `_` in all four places. In
    v1 every 16-byte string is a UUID, so the id cannot be malformed there. An id that names no key
    version is rejected by the lookup, and a forged one by the AES-GCM tag.
    """
    if len(blob) >= MIN_V2_BLOB_LEN and blob[0] > FORMAT_V1_DATA_KEY:
        return _parse_v2(blob)
    if len(blob) < MIN_BLOB_LEN:
        raise InvalidCiphertext()
    form = blob[0]
    if form != FORMAT_V1 and form != FORMAT_V1_DATA_KEY:  # noqa: PLR1714 -- no tuple on the hot path
        raise InvalidCiphertext()
    version_id = _version_id(bytes(blob[1:HEADER_LEN]))
    iv = bytes(blob[HEADER_LEN : HEADER_LEN + IV_LEN])
    sealed = bytes(blob[HEADER_LEN + IV_LEN :])
    return Ciphertext(version_id, iv, sealed, form == FORMAT_V1_DATA_KEY, FORMAT_V1)


def _parse_v2(blob: bytes) -> Ciphertext:
    version_id, data_key = _v2_id(bytes(blob[:V2_ID_LEN]))
    iv = bytes(blob[V2_ID_LEN : V2_ID_LEN + IV_LEN])
    sealed = bytes(blob[V2_ID_LEN + IV_LEN :])
    return Ciphertext(version_id, iv, sealed, data_key, FORMAT_V2)


@lru_cache(maxsize=4096)
def _v2_id(raw: bytes) -> tuple[KeyVersionId, bool]:
    """(version id, data-key mark) of a v2 header, or InvalidCiphertext. Cached: Decrypt sees the same
    few headers all day, and an unknown one costs a few microseconds once."""
    data_key = raw[8:9] == b"_"
    text = raw.replace(b"_", b"-") if data_key else raw
    try:
        version_id = KeyVersionId(text.decode("ascii"))
        canonical = v2_data_key_header_for(version_id) if data_key else v2_header_for(version_id)
    except (UnicodeDecodeError, ValueError):
        raise InvalidCiphertext() from None
    if canonical != raw:  # a mix of separators, or an id that is not canonical
        raise InvalidCiphertext()
    return version_id, data_key


def strip_advance_prefix(blob: bytes) -> bytes:
    """The blob inside an instance API Advance ciphertext (`ADVANCE_PREFIX` + blob), or InvalidCiphertext."""
    if blob[:3] != ADVANCE_PREFIX:
        raise InvalidCiphertext()
    return blob[3:]


@lru_cache(maxsize=4096)
def _version_id(raw: bytes) -> KeyVersionId:
    # Cached like header_for: formatting a UUID costs about 1.5 us, and Decrypt sees the same few.
    return KeyVersionId(str(uuid.UUID(bytes=raw)))


def blob_aad(header: bytes, context: bytes) -> bytes:
    """AAD = len(header) as 2 bytes big-endian | header | canonical context.

    The length prefix makes the split between header and context unambiguous even if a later format
    has a header of another length; the context is the tail, so it needs no prefix of its own.
    """
    return _HEADER_LEN_PREFIX.pack(len(header)) + header + context
