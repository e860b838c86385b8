"""SecretBytes: plaintext that must cross a boundary (data keys, decrypted output, secrets).

Its repr and str are redacted, it refuses pickling and JSON, and the bytes come out only through an
explicit `reveal()`, so a secret cannot reach a log line or an error message by accident.
"""

from __future__ import annotations

import hmac
from typing import NoReturn


class SecretBytes:
    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = bytes(value)

    def reveal(self) -> bytes:
        """The secret bytes. Call only where they are meant to leave (a response body, a cipher)."""
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"SecretBytes(<{len(self._value)} bytes redacted>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretBytes):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        raise TypeError("SecretBytes is not hashable")

    def __reduce__(self) -> NoReturn:
        raise TypeError("SecretBytes cannot be pickled")

    def __bytes__(self) -> NoReturn:
        raise TypeError("use reveal() to read a SecretBytes")
