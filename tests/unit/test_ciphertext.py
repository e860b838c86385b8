"""The CiphertextBlob formats (v2, Alibaba's shape, written now; v1, still read): layout, the data-key
mark, strict parsing, and an unambiguous AAD."""

from __future__ import annotations

import uuid

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from openkms.domain.ciphertext import (
    ADVANCE_PREFIX,
    FORMAT_V1,
    FORMAT_V1_DATA_KEY,
    FORMAT_V2,
    HEADER_LEN,
    MIN_BLOB_LEN,
    MIN_V2_BLOB_LEN,
    Ciphertext,
    blob_aad,
    data_key_header_for,
    header_for,
    parse_ciphertext,
    strip_advance_prefix,
    v2_data_key_header_for,
    v2_header_for,
)
from openkms.domain.encryption_context import canonical_context
from openkms.errors import InvalidCiphertext
from openkms.types import KeyVersionId

VERSION = KeyVersionId("2ab1a983-7072-4bbc-a582-584b5bd8e88a")

# A GenerateDataKey blob as the code before the data-key mark made it (format 0x01), with key
# bytes(range(32)), IV bytes(range(12)) and EncryptionContext {"app": "legacy"}; its plaintext is the
# base64 text of a 32-byte data key. Kept as bytes so a change of the old rule cannot go unnoticed.
LEGACY_KEY = bytes(range(32))
LEGACY_CONTEXT = {"app": "legacy"}
LEGACY_PLAINTEXT = b"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
LEGACY_BLOB = bytes.fromhex(
    "012ab1a98370724bbca582584b5bd8e88a000102030405060708090a0b0a469362889f932ac32bf4bffebe3e04dae4d5"
    "58aa111e04750da8b5533d59814e54c294f6ac5cf32ef326d02d0eac80f9fc1ab4b495344fd45e2086"
)


def _blob(sealed: bytes = b"\x00" * 16) -> Ciphertext:
    return Ciphertext(version_id=VERSION, iv=bytes(range(12)), sealed=sealed, form=FORMAT_V1)


def _v2(sealed: bytes = b"\x00" * 16, data_key: bool = False) -> Ciphertext:
    return Ciphertext(VERSION, bytes(range(12)), sealed, data_key, FORMAT_V2)


# ---- v2 -------------------------------------------------------------------------------------------


def test_v2_layout_is_alibabas() -> None:
    """36 ASCII bytes of the version id, the IV, ct || tag: what the unified SDK slices (Iv =
    blob[36:48]) and what AdvanceEncrypt returns after its 3-byte prefix."""
    blob = _v2(b"c" * 20).to_bytes()
    assert blob[:36] == VERSION.encode() == v2_header_for(VERSION)
    assert blob[36:48] == bytes(range(12)) and blob[48:] == b"c" * 20
    assert len(_v2().to_bytes()) == MIN_V2_BLOB_LEN == 64 > 48
    assert parse_ciphertext(blob) == _v2(b"c" * 20)
    assert strip_advance_prefix(ADVANCE_PREFIX + blob) == blob


def test_v2_data_key_mark_is_the_separator() -> None:
    blob = _v2(b"c" * 20, data_key=True).to_bytes()
    assert blob[:36] == VERSION.replace("-", "_").encode() == v2_data_key_header_for(VERSION)
    assert blob[36:] == _v2(b"c" * 20).to_bytes()[36:]
    parsed = parse_ciphertext(blob)
    assert (parsed.version_id, parsed.data_key, parsed.form) == (VERSION, True, FORMAT_V2)


def test_the_v2_mark_is_authenticated() -> None:
    cipher = AESGCM(LEGACY_KEY)
    for data_key in (False, True):
        original = _v2(data_key=data_key)
        iv = original.iv
        blob = Ciphertext(
            VERSION, iv, cipher.encrypt(iv, b"x", blob_aad(original.header(), b"aad")), data_key
        ).to_bytes()
        flipped_header = blob[:36].replace(b"_", b"-") if data_key else blob[:36].replace(b"-", b"_")
        flipped = parse_ciphertext(flipped_header + blob[36:])
        assert flipped.data_key is not data_key
        with pytest.raises(InvalidTag):
            cipher.decrypt(flipped.iv, flipped.sealed, blob_aad(flipped.header(), b"aad"))


@pytest.mark.parametrize(
    "header",
    [
        "2AB1A983-7072-4BBC-A582-584B5BD8E88A",  # not canonical (upper case)
        "2ab1a983_7072-4bbc-a582-584b5bd8e88a",  # separators mixed
        "2ab1a983-7072-4bbc-a582_584b5bd8e88a",
        "2ab1a9837072-4bbc-a582-584b5bd8e88a-",  # separators misplaced
        "2ab1a983-7072-4bbc-a582-584b5bd8e88g",  # not hex
        "2ab1a983-7072-4bbc-a582-584b5bd8e8\u00e9",  # not ASCII
    ],
)
def test_v2_refuses_non_canonical_ids(header: str) -> None:
    raw = header.encode()[:36].ljust(36, b"a")
    with pytest.raises(InvalidCiphertext):
        parse_ciphertext(raw + bytes(12) + bytes(16))


def test_v2_too_short_is_refused() -> None:
    blob = _v2().to_bytes()
    parse_ciphertext(blob)
    for cut in range(MIN_V2_BLOB_LEN):
        with pytest.raises(InvalidCiphertext):
            parse_ciphertext(blob[:cut])


def test_advance_prefix_must_be_exact() -> None:
    blob = _v2().to_bytes()
    for prefix in (b"$\x00\x01", b"$\x10\x02", b"#\x00\x02", b""):
        with pytest.raises(InvalidCiphertext):
            strip_advance_prefix(prefix + blob)


def test_versions_are_told_apart_by_the_first_byte() -> None:
    assert parse_ciphertext(_blob().to_bytes()).form == FORMAT_V1
    assert parse_ciphertext(_v2().to_bytes()).form == FORMAT_V2
    assert b"0123456789abcdef".find(_v2().to_bytes()[:1]) >= 0


# ---- v1 -------------------------------------------------------------------------------------------


def test_layout() -> None:
    blob = _blob(b"c" * 20).to_bytes()
    assert blob[0] == FORMAT_V1 == 0x01
    assert blob[1:17] == uuid.UUID(VERSION).bytes
    assert blob[17:29] == bytes(range(12))
    assert blob[29:] == b"c" * 20
    assert _blob().header() == header_for(VERSION) == blob[:HEADER_LEN]


def test_a_data_key_blob_differs_only_in_its_format_byte() -> None:
    plain = _blob(b"c" * 20)
    marked = Ciphertext(VERSION, plain.iv, plain.sealed, data_key=True, form=FORMAT_V1)
    blob = marked.to_bytes()
    assert blob[0] == FORMAT_V1_DATA_KEY == 0x02
    assert blob[1:] == plain.to_bytes()[1:]
    assert marked.header() == data_key_header_for(VERSION) == blob[:HEADER_LEN]
    assert not plain.data_key and parse_ciphertext(plain.to_bytes()).data_key is False
    assert parse_ciphertext(blob).data_key is True


def test_the_mark_is_authenticated() -> None:
    """The format byte is in the AAD: flipping the mark either way makes AES-GCM refuse the blob."""
    cipher = AESGCM(LEGACY_KEY)
    context = canonical_context({"k": "v"})
    for data_key in (False, True):
        header = data_key_header_for(VERSION) if data_key else header_for(VERSION)
        iv = bytes(12)
        sealed = cipher.encrypt(iv, b"x", blob_aad(header, context))
        blob = bytearray(Ciphertext(VERSION, iv, sealed, data_key, FORMAT_V1).to_bytes())
        blob[0] ^= FORMAT_V1 ^ FORMAT_V1_DATA_KEY
        flipped = parse_ciphertext(bytes(blob))
        assert flipped.data_key is not data_key
        with pytest.raises(InvalidTag):
            cipher.decrypt(flipped.iv, flipped.sealed, blob_aad(flipped.header(), context))


def test_a_blob_made_before_the_mark_parses_unmarked_and_still_authenticates() -> None:
    parsed = parse_ciphertext(LEGACY_BLOB)
    assert (parsed.version_id, parsed.data_key) == (VERSION, False)
    assert parsed.to_bytes() == LEGACY_BLOB
    aad = blob_aad(parsed.header(), canonical_context(LEGACY_CONTEXT))
    assert AESGCM(LEGACY_KEY).decrypt(parsed.iv, parsed.sealed, aad) == LEGACY_PLAINTEXT


def test_round_trip() -> None:
    original = _blob(b"ciphertext-and-tag-bytes")
    assert parse_ciphertext(original.to_bytes()) == original


@given(
    st.uuids(),
    st.binary(min_size=12, max_size=12),
    st.binary(min_size=16, max_size=200),
    st.booleans(),
    st.sampled_from([FORMAT_V1, FORMAT_V2]),
)
def test_round_trip_any(version: uuid.UUID, iv: bytes, sealed: bytes, data_key: bool, form: int) -> None:
    original = Ciphertext(KeyVersionId(str(version)), iv, sealed, data_key, form)
    assert parse_ciphertext(original.to_bytes()) == original


def test_too_short_is_refused() -> None:
    blob = _blob().to_bytes()
    assert len(blob) == MIN_BLOB_LEN
    parse_ciphertext(blob)
    for cut in range(MIN_BLOB_LEN):
        with pytest.raises(InvalidCiphertext):
            parse_ciphertext(blob[:cut])


@pytest.mark.parametrize("format_byte", [0x00, 0x03, 0x24, 0x32, 0x61, 0xFF])
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
    for make in (header_for, data_key_header_for, v2_header_for, v2_data_key_header_for):
        with pytest.raises(ValueError):
            make(KeyVersionId(bad))


def test_aad_is_unambiguous() -> None:
    header = header_for(VERSION)
    assert blob_aad(header, b"") != blob_aad(header[:-1], header[-1:])
    assert blob_aad(header, b'{"a":"b"}') != blob_aad(header, b'{"a":"c"}')
    assert blob_aad(header, b"ctx").endswith(header + b"ctx")
    assert blob_aad(header, b"ctx") != blob_aad(data_key_header_for(VERSION), b"ctx")
