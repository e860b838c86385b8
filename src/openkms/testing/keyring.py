"""Keystore doubles for tests and plugin authors: an in-memory `KeyringStore` and a fixed root of trust.

`MemoryKeyringStore` behaves like the repository implementation where it matters: `add_term` is atomic
and raises `TermExists` for a term already stored. It holds only wrapped KEKs, never unwrapped ones.
`StaticRoot` hands out a root key held in memory, so tests unseal without files or a slow KDF.
"""

from __future__ import annotations

import os
import threading
from typing import Final

from openkms.keystore.keyring import TermExists
from openkms.secret import SecretBytes

__all__ = ["MemoryKeyringStore", "StaticRoot"]


class MemoryKeyringStore:
    def __init__(self) -> None:
        self.terms: dict[int, bytes] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryKeyringStore(terms={sorted(self.terms)})"

    def load_terms(self) -> list[tuple[int, bytes]]:
        with self._lock:
            return sorted(self.terms.items())

    def add_term(self, term: int, wrapped: bytes) -> None:
        with self._lock:
            if term in self.terms:
                raise TermExists(f"keyring term {term} already exists")
            self.terms[term] = bytes(wrapped)


class StaticRoot:
    """A root of trust whose key is fixed at construction (random unless given). Tests only."""

    kind: Final = "static"

    def __init__(self, key: SecretBytes | None = None) -> None:
        self._key = key if key is not None else SecretBytes(os.urandom(32))

    def __repr__(self) -> str:
        return "StaticRoot(<root key redacted>)"

    def load(self) -> SecretBytes:
        return self._key
