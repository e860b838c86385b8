"""Envelope encryption of key-version material under the keyring. Owns the at-rest format:

    format (1 byte, 0x01) | KEK term (4 bytes big-endian) | IV (12 bytes) | AES-256-GCM ct || tag

The AAD binds the row to its owner: b"openkms/material/v1", the format byte and term, then key id,
version id and spec, each length-prefixed. A wrapped row copied to another key, version or spec, or
edited in any byte, fails with StorageIntegrityError (one generic message: storage is untrusted and the
caller learns nothing about why). `rewrap_material` moves a row to the active term with the same
binding; the material exists unwrapped only inside it. Never logs or returns unwrapped material
except as SecretBytes.
"""

from __future__ import annotations

import struct
from typing import Final

from openkms.errors import StorageIntegrityError
from openkms.keystore.keyring import Keyring
from openkms.secret import SecretBytes

MATERIAL_FORMAT_V1: Final = 0x01
_AAD_LABEL: Final = b"openkms/material/v1"
_PREFIX: Final = struct.Struct(">BI")
_LENGTH: Final = struct.Struct(">I")
_IV_LEN: Final = 12
_TAG_LEN: Final = 16
_MIN_LEN: Final = _PREFIX.size + _IV_LEN + _TAG_LEN


def _field(value: str) -> bytes:
    encoded = value.encode("utf-8")
    return _LENGTH.pack(len(encoded)) + encoded


def material_aad(prefix: bytes, key_id: str, version_id: str, spec: str) -> bytes:
    """The AAD of a wrapped row: label | format byte and term | len-prefixed key id, version id, spec."""
    return _AAD_LABEL + prefix + _field(key_id) + _field(version_id) + _field(spec)


def wrap_material(keyring: Keyring, key_id: str, version_id: str, spec: str, material: SecretBytes) -> bytes:
    """Encrypt `material` under the active KEK term, bound to (key id, version id, spec)."""
    term = keyring.active_term
    prefix = _PREFIX.pack(MATERIAL_FORMAT_V1, term)
    iv, sealed = keyring.encrypt(term, material.reveal(), material_aad(prefix, key_id, version_id, spec))
    return prefix + iv + sealed


def unwrap_material(keyring: Keyring, key_id: str, version_id: str, spec: str, wrapped: bytes) -> SecretBytes:
    """The material of a wrapped row, or StorageIntegrityError if the row is not this key version's."""
    wrapped = bytes(wrapped)
    if len(wrapped) < _MIN_LEN or wrapped[0] != MATERIAL_FORMAT_V1:
        raise StorageIntegrityError()
    prefix = wrapped[: _PREFIX.size]
    _, term = _PREFIX.unpack(prefix)
    iv = wrapped[_PREFIX.size : _PREFIX.size + _IV_LEN]
    sealed = wrapped[_PREFIX.size + _IV_LEN :]
    aad = material_aad(prefix, key_id, version_id, spec)
    return SecretBytes(keyring.decrypt(term, iv, sealed, aad))


def term_of(wrapped: bytes) -> int:
    """The KEK term a wrapped row is under (read from its prefix, not authenticated: a tampered prefix
    fails when the row is unwrapped). StorageIntegrityError if the row is not in this format."""
    if len(wrapped) < _MIN_LEN or wrapped[0] != MATERIAL_FORMAT_V1:
        raise StorageIntegrityError()
    _, term = _PREFIX.unpack(bytes(wrapped[: _PREFIX.size]))
    return int(term)


def term_in_prefix(prefix: bytes) -> int:
    """The term named by a row's first bytes (as `term_prefix` makes them); StorageIntegrityError if
    they are not a prefix of this format."""
    if len(prefix) != _PREFIX.size or prefix[0] != MATERIAL_FORMAT_V1:
        raise StorageIntegrityError()
    return int(_PREFIX.unpack(bytes(prefix))[1])


def term_prefix(term: int) -> bytes:
    """The first bytes of every row wrapped under `term` (what a query compares to find other rows)."""
    return _PREFIX.pack(MATERIAL_FORMAT_V1, term)


def rewrap_material(keyring: Keyring, key_id: str, version_id: str, spec: str, wrapped: bytes) -> bytes:
    """The same row wrapped under the active term, bound to the same (key id, version id, spec); the row
    itself when it is already under the active term. StorageIntegrityError if it is not this binding's."""
    if term_of(wrapped) == keyring.active_term:
        unwrap_material(keyring, key_id, version_id, spec, wrapped)  # a row that fails is never kept
        return bytes(wrapped)
    material = unwrap_material(keyring, key_id, version_id, spec, wrapped)
    return wrap_material(keyring, key_id, version_id, spec, material)
