"""The CiphertextBlob format: layout, strict parsing, and an unambiguous AAD."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openkms.domain.ciphertext import (
    FORMAT_V1,
    HEADER_LEN,
    MIN_BLOB_LEN,
    Ciphertext,
    blob_aad,
    header_for,
    parse_ciphertext,
)
from openkms.errors import InvalidCiphertext
from openkms.types import KeyVersionId

VERSION = KeyVersionId("2ab1a983-7072-4bbc-a582-584b5bd8e88a")


def _blob(sealed: bytes = b"\x00" * 16) -> Ciphertext:
    return Ciphertext(version_id=VERSION, iv=bytes(range(12)), sealed=sealed)


def test_layout() -> None:
    blob = _blob(b"c" * 20).to_bytes()
    assert blob[0] == FORMAT_V1 == 0x01
    assert blob[1:17] == uuid.UUID(VERSION).bytes
    assert blob[17:29] == bytes(range(12))
    assert blob[29:] == b"c" * 20
    assert _blob().header() == header_for(VERSION) == blob[:HEADER_LEN]


def test_round_trip() -> None:
    original = _blob(b"ciphertext-and-tag-bytes")
    assert parse_ciphertext(original.to_bytes()) == original


@given(st.uuids(), st.binary(min_size=12, max_size=12), st.binary(min_size=16, max_size=200))
def test_round_trip_any(version: uuid.UUID, iv: bytes, sealed: bytes) -> None:
    original = Ciphertext(KeyVersionId(str(version)), iv, sealed)
    assert parse_ciphertext(original.to_bytes()) == original


def test_too_short_is_refused() -> None:
    blob = _blob().to_bytes()
    assert len(blob) == MIN_BLOB_LEN
    parse_ciphertext(blob)
    for cut in range(MIN_BLOB_LEN):
        with pytest.raises(InvalidCiphertext):
            parse_ciphertext(blob[:cut])


@pytest.mark.parametrize("format_byte", [0x00, 0x02, 0x24, 0xFF])
def test_unknown_format_byte_is_refused(format_byte: int) -> None:
    blob = bytearray(_blob().to_bytes())
    blob[0] = format_byte
    with pytest.raises(InvalidCiphertext):
        parse_ciphertext(bytes(blob))


@given(st.binary(max_size=100))
def test_arbitrary_bytes_parse_or_raise_invalid_ciphertext(data: bytes) -> None:
    try:
        parsed = parse_ciphertext(data)
    except InvalidCiphertext as exc:
        assert exc.message == InvalidCiphertext().message
    else:
        assert parsed.to_bytes() == data


@pytest.mark.parametrize(
    "bad", ["2AB1A983-7072-4BBC-A582-584B5BD8E88A", "{2ab1a983-7072-4bbc-a582-584b5bd8e88a}", "key-1", ""]
)
def test_header_for_refuses_non_canonical_ids(bad: str) -> None:
    with pytest.raises(ValueError):
        header_for(KeyVersionId(bad))


def test_aad_is_unambiguous() -> None:
    header = header_for(VERSION)
    assert blob_aad(header, b"") != blob_aad(header[:-1], header[-1:])
    assert blob_aad(header, b'{"a":"b"}') != blob_aad(header, b'{"a":"c"}')
    assert blob_aad(header, b"ctx").endswith(header + b"ctx")
