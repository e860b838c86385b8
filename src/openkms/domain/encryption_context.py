"""The canonical bytes of an EncryptionContext, used as part of the AES-GCM AAD of every CiphertextBlob.

Owns the one encoding of a context: compact JSON with sorted keys, UTF-8, so that two requests carrying
the same string-to-string map in any key order produce the same bytes, and different maps never do.
Whitespace-insensitivity comes from the API adapter parsing the JSON parameter before it gets here.
Values are compared exactly (case-sensitive). Pure: no I/O, never logs the context.

The bytes are what `json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)` writes,
encoded as UTF-8: the encoding of every ciphertext ever made. orjson with sorted keys writes exactly the
same bytes for string-to-string maps (tests/unit/test_encryption_context.py checks it against the
standard library on generated maps) at a tenth of the cost, so it does the work.
"""

from __future__ import annotations

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
