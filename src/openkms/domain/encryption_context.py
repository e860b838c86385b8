"""What an EncryptionContext binds in a CiphertextBlob's AES-GCM AAD: two encodings, one per blob version.

`derived_aad` (v2 blobs, every blob made now): the bytes Alibaba's unified KMS SDK sends to the
instance API as `Aad` for the same context, `hex(sha256("k1=v1&k2=v2"))` with the keys sorted, so a
ciphertext made through either gateway opens through the other. That string is not injective
(`{"a": "1&b=2"}` and `{"a": "1", "b": "2"}` give the same one), so it is used only for contexts
where it is: no key contains `&` or `=`, and no value contains `&`. Then splitting at `&` and each
part at its first `=` gives the map back. For any other context `derived_aad` answers None: Encrypt
binds it with the v1 encoding below, and Decrypt refuses it for a v2 blob.

`canonical_context` (v1 blobs, which Encrypt still writes for an ambiguous context): the injective
encoding of a context: compact JSON with sorted keys, UTF-8, so that two requests carrying the same
string-to-string map in any key order produce the same bytes, and different maps never do.
Whitespace-insensitivity comes from the API adapter parsing the JSON parameter before it gets here.
Values are compared exactly (case-sensitive). Pure: no I/O, never logs the context.

The bytes are what `json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)` writes,
encoded as UTF-8: the encoding of every ciphertext ever made. orjson with sorted keys writes exactly the
same bytes for string-to-string maps (tests/unit/test_encryption_context.py checks it against the
standard library on generated maps) at a tenth of the cost, so it does the work.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import orjson

from openkms.errors import InvalidArgument

_PARAMETER = "EncryptionContext"


def canonical_context(context: Mapping[str, str] | None) -> bytes:
    """The AAD bytes of `context`: b"" for None or an empty map, else compact sorted-key JSON in UTF-8.

    JSON of a string-to-string object is an injective encoding (quotes and backslashes are escaped),
    so distinct maps give distinct bytes. Raises InvalidArgument for a non-string key or value, or a
    string that is not encodable as UTF-8 (a lone surrogate from a JSON `\\ud800` escape).
    """
    if not context:
        return b""
    for name, value in context.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidArgument("The EncryptionContext must map strings to strings.", parameter=_PARAMETER)
    try:
        return orjson.dumps(context if type(context) is dict else dict(context), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # a lone surrogate: orjson writes only valid UTF-8
        raise InvalidArgument(
            "The EncryptionContext contains a string that is not valid Unicode.", parameter=_PARAMETER
        ) from None


def derived_aad(context: Mapping[str, str] | None) -> bytes | None:
    """The v2 bound context of `context`: b"" for None or an empty map (the SDK sends no Aad), else
    the ASCII hex of SHA-256 over the UTF-8 of `k1=v1&k2=v2…` (keys sorted by code point, as the SDK
    sorts them); None when that string would not identify the map (see the module notes).

    Raises InvalidArgument as `canonical_context` does for what is not a map of valid strings.
    """
    if not context:
        return b""
    parts = []
    for name in sorted(context):
        value = context[name]
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidArgument("The EncryptionContext must map strings to strings.", parameter=_PARAMETER)
        if "&" in name or "=" in name or "&" in value:
            return None
        parts.append(f"{name}={value}")
    try:
        joined = "&".join(parts).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape
        raise InvalidArgument(
            "The EncryptionContext contains a string that is not valid Unicode.", parameter=_PARAMETER
        ) from None
    return hashlib.sha256(joined).hexdigest().encode("ascii")
