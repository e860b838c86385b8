"""The backup archive format: a plain header, then authenticated encrypted chunks of typed items.

Owns the on-disk format and its keys. Layout:

    magic (8 bytes, b"OKMSBAK1") | header length (4 bytes, big-endian) | header (JSON)
    chunk*: final flag (1 byte) | length (4 bytes, big-endian) | AES-256-GCM ciphertext || tag

The chunk key and a verifier are derived from the root key with HKDF-SHA256 under a random salt kept
in the header, so only the holder of the root of trust reads the archive, and a wrong root is told
apart (the verifier differs) from a damaged archive (a chunk fails). Each chunk's nonce is its index
(the key is the archive's own); its AAD binds the header's digest, the index and the final flag, so a
changed header, a reordered, dropped or repeated chunk, a cut after any chunk and bytes after the
final chunk are all refused. The plaintext is a stream of MessagePack items (rows keep their types:
bytes, datetimes, booleans, None).

Never logs, prints or puts into an error the root key, the derived keys or any item's content.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO, Final

import msgpack
import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from openkms.errors import InvalidArgument
from openkms.secret import SecretBytes

MAGIC: Final = b"OKMSBAK1"
FORMAT_VERSION: Final = 1
CHUNK_SIZE: Final = 1 << 20  # plaintext bytes per chunk (the last one may hold less)
_MAX_HEADER: Final = 1 << 20
_MAX_ITEM: Final = 64 << 20  # the largest item (one row, or a piece of a file) a reader accepts
_TAG_LEN: Final = 16
_SALT_LEN: Final = 32
_LENGTH: Final = struct.Struct(">I")
_CHUNK_HEAD: Final = struct.Struct(">BI")
_INDEX: Final = struct.Struct(">Q")
_CHUNK_INFO: Final = b"openkms/backup/v1/chunks"
_VERIFIER_INFO: Final = b"openkms/backup/v1/verifier"
_AAD_PREFIX: Final = b"openkms/backup/v1/chunk"

WRONG_ROOT: Final = "the archive was not made under this root of trust"


class ArchiveRefused(InvalidArgument):
    """A backup or restore cannot go on; `message` says why in one line, without secrets. An
    InvalidArgument, so the operator request that ends in it is recorded with its reason."""


@dataclass(frozen=True, slots=True)
class Header:
    """What an archive says about itself in the clear (nothing in it is secret)."""

    created_at: str
    schema_revision: str
    source_dialect: str
    tables: tuple[str, ...]
    seal: str  # "keyfile" | "passphrase": which root of trust the source used
    seal_params: dict[str, Any] | None  # the passphrase KDF parameters file (salt, n, r, p), if any
    with_config: bool
    with_audit: bool
    salt: bytes
    verifier: bytes

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "format": FORMAT_VERSION,
                "created_at": self.created_at,
                "schema_revision": self.schema_revision,
                "source_dialect": self.source_dialect,
                "tables": list(self.tables),
                "seal": self.seal,
                "seal_params": self.seal_params,
                "with_config": self.with_config,
                "with_audit": self.with_audit,
                "kdf": "HKDF-SHA256",
                "salt": base64.b64encode(self.salt).decode("ascii"),
                "verifier": base64.b64encode(self.verifier).decode("ascii"),
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> Header:
        try:
            document = orjson.loads(raw)
            if document["format"] != FORMAT_VERSION:
                raise ArchiveRefused(
                    f"the archive's format {document['format']!r} is not one this OpenKMS reads"
                )
            if document["kdf"] != "HKDF-SHA256":
                raise ValueError
            params = document["seal_params"]
            return cls(
                created_at=str(document["created_at"]),
                schema_revision=str(document["schema_revision"]),
                source_dialect=str(document["source_dialect"]),
                tables=tuple(str(name) for name in document["tables"]),
                seal=str(document["seal"]),
                seal_params=dict(params) if params is not None else None,
                with_config=bool(document["with_config"]),
                with_audit=bool(document["with_audit"]),
                salt=base64.b64decode(document["salt"], validate=True),
                verifier=base64.b64decode(document["verifier"], validate=True),
            )
        except ArchiveRefused:
            raise
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise ArchiveRefused("the archive's header is not valid") from None


@dataclass(frozen=True, slots=True)
class _Keys:
    cipher: AESGCM
    verifier: bytes


def _derive(root_key: SecretBytes, salt: bytes) -> _Keys:
    def hkdf(info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(root_key.reveal())

    return _Keys(AESGCM(hkdf(_CHUNK_INFO)), hkdf(_VERIFIER_INFO))


def _aad(header_digest: bytes, index: int, final: bool) -> bytes:
    return _AAD_PREFIX + header_digest + _INDEX.pack(index) + bytes((1 if final else 0,))


def _nonce(index: int) -> bytes:
    return b"\x00\x00\x00\x00" + _INDEX.pack(index)


def _encode_value(value: object) -> object:
    """MessagePack's hook for what it does not know: SQLite hands back naive datetimes (all UTC)."""
    if isinstance(value, memoryview):
        return bytes(value)
    raise TypeError(f"a value of type {type(value).__name__} cannot be archived")


def _typed(row: tuple[Any, ...]) -> list[Any]:
    return [
        value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value
        for value in row
    ]


class ArchiveWriter:
    """Writes one archive to `out`: the header now, items as they come, the final chunk on `close`."""

    def __init__(self, out: BinaryIO, root_key: SecretBytes, header_fields: dict[str, Any]) -> None:
        salt = os.urandom(_SALT_LEN)
        keys = _derive(root_key, salt)
        self.header = Header(**header_fields, salt=salt, verifier=keys.verifier)
        encoded = self.header.encode()
        self._out = out
        self._cipher = keys.cipher
        self._digest = hashlib.sha256(MAGIC + encoded).digest()
        self._packer = msgpack.Packer(datetime=True, use_bin_type=True, default=_encode_value)
        self._buffer = bytearray()
        self._index = 0
        out.write(MAGIC + _LENGTH.pack(len(encoded)) + encoded)

    def item(self, *fields: Any) -> None:
        self._buffer += self._packer.pack(list(fields))
        while len(self._buffer) >= CHUNK_SIZE:
            self._chunk(bytes(self._buffer[:CHUNK_SIZE]), final=False)
            del self._buffer[:CHUNK_SIZE]

    def rows(self, rows: list[tuple[Any, ...]]) -> None:
        """One item per row, so that an item is never larger than a row, whatever the batch."""
        for row in rows:
            self.item("row", _typed(row))

    def close(self) -> None:
        self._chunk(bytes(self._buffer), final=True)
        self._buffer.clear()

    def _chunk(self, plaintext: bytes, *, final: bool) -> None:
        sealed = self._cipher.encrypt(_nonce(self._index), plaintext, _aad(self._digest, self._index, final))
        self._out.write(_CHUNK_HEAD.pack(1 if final else 0, len(sealed)) + sealed)
        self._index += 1


def read_header(source: BinaryIO) -> tuple[Header, bytes]:
    """The header of the archive `source` is positioned at the start of, and its digest."""
    start = source.read(len(MAGIC) + _LENGTH.size)
    if len(start) < len(MAGIC) + _LENGTH.size or start[: len(MAGIC)] != MAGIC:
        raise ArchiveRefused("the file is not an OpenKMS backup archive")
    (length,) = _LENGTH.unpack(start[len(MAGIC) :])
    if length > _MAX_HEADER:
        raise ArchiveRefused("the archive's header is not valid")
    raw = source.read(length)
    if len(raw) != length:
        raise ArchiveRefused("the archive is truncated (its header is cut short)")
    return Header.decode(raw), hashlib.sha256(MAGIC + raw).digest()


class ArchiveReader:
    """Reads an archive's items after checking that `root_key` is the one it was made under."""

    def __init__(self, source: BinaryIO, root_key: SecretBytes) -> None:
        self.header, self._digest = read_header(source)
        keys = _derive(root_key, self.header.salt)
        if not hmac.compare_digest(keys.verifier, self.header.verifier):
            raise ArchiveRefused(WRONG_ROOT)
        self._source = source
        self._cipher = keys.cipher

    def items(self) -> Iterator[list[Any]]:
        """Every item in order; raises ArchiveRefused at the first damaged, missing or extra chunk."""
        unpacker = msgpack.Unpacker(raw=False, timestamp=3, strict_map_key=True, max_buffer_size=_MAX_ITEM)
        index = fed = 0
        while True:
            final, plaintext = self._chunk(index)
            unpacker.feed(plaintext)
            fed += len(plaintext)
            for item in unpacker:
                if not isinstance(item, list) or not item or not isinstance(item[0], str):
                    raise ArchiveRefused("the archive holds an item this OpenKMS does not read")
                yield item
            index += 1
            if final:
                break
        if self._source.read(1):
            raise ArchiveRefused("the archive has data after its final chunk (it was altered)")
        if unpacker.tell() != fed:
            raise ArchiveRefused("the archive ends inside an item (it is damaged)")

    def _chunk(self, index: int) -> tuple[bool, bytes]:
        head = self._source.read(_CHUNK_HEAD.size)
        if len(head) < _CHUNK_HEAD.size:
            raise ArchiveRefused(f"the archive is truncated (it ends after chunk {index} of more)")
        flag, length = _CHUNK_HEAD.unpack(head)
        if flag not in (0, 1) or length > CHUNK_SIZE + _TAG_LEN:
            raise ArchiveRefused(f"the archive is damaged (chunk {index} is malformed)")
        sealed = self._source.read(length)
        if len(sealed) != length:
            raise ArchiveRefused(f"the archive is truncated (chunk {index} is cut short)")
        try:
            plaintext = self._cipher.decrypt(_nonce(index), sealed, _aad(self._digest, index, flag == 1))
        except InvalidTag:
            raise ArchiveRefused(
                f"the archive is damaged or was altered (chunk {index} fails its integrity check)"
            ) from None
        return flag == 1, plaintext
