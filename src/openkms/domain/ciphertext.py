"""The CiphertextBlob format: what Encrypt returns and Decrypt accepts.

Owns the byte layout, the data-key mark and the AAD rule. Version 1:

    format (1 byte) | key-version id (16 bytes, raw UUID) | IV (12 bytes) | AES-GCM ct || tag (>= 16)

The format byte is 0x01 for sealed data (Encrypt, and every blob written before the data-key mark
existed) and 0x02 for a data key (GenerateDataKey, GenerateDataKeyWithoutPlaintext,
GenerateAndExportDataKey, and ReEncrypt of such a blob): the mark ExportDataKey requires. The first 17
bytes are the header. The AES-GCM AAD is `blob_aad(header, canonical context)`, so a blob whose header
was edited (its mark flipped, its key version swapped), or that is presented with another encryption
context, fails authentication.
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
UUID_LEN: Final = 16
IV_LEN: Final = 12
TAG_LEN: Final = 16
HEADER_LEN: Final = 1 + UUID_LEN
MIN_BLOB_LEN: Final = HEADER_LEN + IV_LEN + TAG_LEN

_HEADER_LEN_PREFIX: Final = struct.Struct(">H")


@dataclass(frozen=True, slots=True)
class Ciphertext:
    """A parsed CiphertextBlob. `version_id` is a lowercase canonical UUID string; `data_key` is the
    mark (format 0x02), authenticated with the rest of the header."""

    version_id: KeyVersionId
    iv: bytes
    sealed: bytes
    data_key: bool = False

    def header(self) -> bytes:
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


def _id_bytes(version_id: KeyVersionId) -> bytes:
    parsed = uuid.UUID(version_id)
    if str(parsed) != version_id:
        raise ValueError("a key version id must be a lowercase canonical UUID")
    return parsed.bytes


def join_blob(header: bytes, iv: bytes, sealed: bytes) -> bytes:
    """The blob's bytes from its header (`header_for` or `data_key_header_for`), IV and ct || tag."""
    return header + iv + sealed


def parse_ciphertext(blob: bytes) -> Ciphertext:
    """Split a blob into its parts, or raise InvalidCiphertext (one message for every malformation).

    Every 16-byte string is a UUID, so the id cannot be malformed here; an id that names no key
    version is rejected by the lookup, and a forged one by the AES-GCM tag.
    """
    if len(blob) < MIN_BLOB_LEN:
        raise InvalidCiphertext()
    form = blob[0]
    if form != FORMAT_V1 and form != FORMAT_V1_DATA_KEY:  # noqa: PLR1714 -- no tuple on the hot path
        raise InvalidCiphertext()
    version_id = _version_id(bytes(blob[1:HEADER_LEN]))
    iv = bytes(blob[HEADER_LEN : HEADER_LEN + IV_LEN])
    sealed = bytes(blob[HEADER_LEN + IV_LEN :])
    return Ciphertext(version_id, iv, sealed, form == FORMAT_V1_DATA_KEY)


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
