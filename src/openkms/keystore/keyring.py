"""The KEK keyring: numbered terms of key-encrypting keys, each stored wrapped by the root key.

Owns the wrapped-KEK format and the term lifecycle. `rotate()` adds term max+1 and makes it active; old
terms stay so that material wrapped under them keeps unwrapping until the rewrap
(`service/keyring_rewrap.py`) has moved every row to the active term and the operator retires them.
`refresh()` picks up terms added or retired by other processes; `rewrapped_for` rewraps every stored
term under a new root key (a passphrase change). Terms are stored through a `KeyringStore` (the
repository in production, `openkms.testing.MemoryKeyringStore` in tests). A stored KEK is

    format (1 byte, 0x01) | IV (12 bytes) | AES-256-GCM(root key, KEK) ct || tag

with AAD b"openkms/kek/v1/" + term (4 bytes big-endian), so a KEK row moved to another term fails.
Never logs, returns or exposes a KEK: callers get encrypt/decrypt under a term, nothing else.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
from typing import Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openkms.errors import RootOfTrustError, StorageIntegrityError
from openkms.secret import SecretBytes

KEK_FORMAT_V1: Final = 0x01
KEK_LEN: Final = 32
_IV_LEN: Final = 12
_TAG_LEN: Final = 16
_WRAPPED_KEK_LEN: Final = 1 + _IV_LEN + KEK_LEN + _TAG_LEN
_KEK_AAD_PREFIX: Final = b"openkms/kek/v1/"
_TERM: Final = struct.Struct(">I")
MAX_TERM: Final = 2**32 - 1

WRONG_ROOT_MESSAGE: Final = "the root key does not open the keyring (wrong passphrase or key file)"


class TermExists(Exception):
    """`KeyringStore.add_term` found the term already stored (another process created it first).

    Not an OpenKMSError: the keyring catches it and reloads, so it never reaches a caller.
    """


class KeyringStore(Protocol):
    """Durable storage of wrapped KEK terms.

    `add_term` must be atomic and must raise `TermExists` if the term is already stored (for SQL: an
    INSERT on the primary key `term`, translating the unique violation). That is how two processes
    racing to create term 1, or to rotate, end with one winner: the loser reloads the terms.
    """

    def load_terms(self) -> list[tuple[int, bytes]]:
        """Every stored (term, wrapped KEK), in any order."""
        ...

    def add_term(self, term: int, wrapped: bytes) -> None:
        """Store a new term. Raises TermExists if `term` is already stored."""
        ...


def _kek_aad(term: int) -> bytes:
    return _KEK_AAD_PREFIX + _TERM.pack(term)


def _wrap_kek(root: AESGCM, term: int, kek: bytes) -> bytes:
    iv = os.urandom(_IV_LEN)
    return bytes((KEK_FORMAT_V1,)) + iv + root.encrypt(iv, kek, _kek_aad(term))


def _unwrap_kek(root: AESGCM, term: int, wrapped: bytes) -> AESGCM:
    """Raises StorageIntegrityError for a malformed row, InvalidTag if the root key does not open it."""
    return AESGCM(_unwrap_kek_bytes(root, term, wrapped))


def _unwrap_kek_bytes(root: AESGCM, term: int, wrapped: bytes) -> bytes:
    if len(wrapped) != _WRAPPED_KEK_LEN or wrapped[0] != KEK_FORMAT_V1 or not 1 <= term <= MAX_TERM:
        raise StorageIntegrityError(f"Keyring term {term} is malformed.")
    iv = wrapped[1 : 1 + _IV_LEN]
    return root.decrypt(iv, wrapped[1 + _IV_LEN :], _kek_aad(term))


class Keyring:
    """The unwrapped KEK terms of one unsealed keystore. Build it with `Keyring.open`.

    Reads (`encrypt`, `decrypt`, `active_term`) take no lock: they read two attributes that writers
    replace whole (a new dict, then a new active term), which is atomic under the GIL. Writers
    (`rotate`, `refresh`) serialise on a lock.
    """

    def __init__(self, root: AESGCM, store: KeyringStore, keks: dict[int, AESGCM]) -> None:
        self._root = root
        self._store = store
        self._keks = keks
        self._active = max(keks)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Keyring(terms={sorted(self._keks)}, active_term={self._active})"

    @classmethod
    def open(cls, root_key: SecretBytes, store: KeyringStore, *, create: bool = True) -> Keyring:
        """Load and unwrap every term under `root_key`; create term 1 if the store holds none.

        So the first unseal of an empty store defines the root: a mistyped first passphrase becomes
        the passphrase. The CLI's `init` should ask twice.

        Raises RootOfTrustError if the root key opens no term (wrong passphrase or key file), and
        StorageIntegrityError if it opens some terms but not others (a tampered row).
        """
        if len(root_key) != KEK_LEN:
            raise RootOfTrustError(f"The root key must be {KEK_LEN} bytes.")
        root = AESGCM(root_key.reveal())
        terms = store.load_terms()
        if not terms and not create:
            raise RootOfTrustError(WRONG_ROOT_MESSAGE)
        if not terms:
            # If another process created term 1 first, use theirs.
            with contextlib.suppress(TermExists):
                store.add_term(1, _wrap_kek(root, 1, AESGCM.generate_key(bit_length=256)))
            terms = store.load_terms()
            if not terms:
                raise StorageIntegrityError("The keyring store did not keep term 1.")
        return cls(root, store, _unwrap_all(root, terms))

    @property
    def active_term(self) -> int:
        return self._active

    @property
    def terms(self) -> list[int]:
        return sorted(self._keks)

    def rotate(self) -> int:
        """Add term max+1 and make it active. Returns the new active term.

        If another process added that term first (TermExists), reload from the store instead and make
        the newest stored term active: either way one rotation happened, not two.
        """
        with self._lock:
            term = max(self._keks) + 1
            if term > MAX_TERM:
                raise StorageIntegrityError("The keyring has no terms left.")
            kek = AESGCM.generate_key(bit_length=256)
            try:
                self._store.add_term(term, _wrap_kek(self._root, term, kek))
            except TermExists:
                self._reload_locked()
                return self._active
            keks = dict(self._keks)
            keks[term] = AESGCM(kek)
            self._publish(keks)
            return term

    def refresh(self) -> None:
        """Pick up terms added or retired by other processes (a rotation on another node).

        Cheap when nothing changed: one read of the store, no unwrap. Terms already held are kept as
        they are (after a passphrase change elsewhere their stored rows are wrapped by another root
        key, which this process does not have; the KEK is the same). A new term that this root key
        does not open raises StorageIntegrityError: this process must not keep wrapping under an
        older term than the store's newest.
        """
        with self._lock:
            self._reload_locked()

    def rewrapped_for(
        self, new_root_key: SecretBytes, stored: list[tuple[int, bytes]]
    ) -> list[tuple[int, bytes]]:
        """Each stored (term, wrapped KEK), checked against this keyring's root key and wrapped again
        under `new_root_key`. Raises StorageIntegrityError if a stored row is not one this root key
        wrapped (the keyring changed since it was read): nothing may be rewrapped from a guess."""
        if len(new_root_key) != KEK_LEN:
            raise RootOfTrustError(f"The root key must be {KEK_LEN} bytes.")
        new_root = AESGCM(new_root_key.reveal())
        rewrapped: list[tuple[int, bytes]] = []
        for term, wrapped in stored:
            try:
                kek = _unwrap_kek_bytes(self._root, term, bytes(wrapped))
            except InvalidTag:
                raise StorageIntegrityError(f"Keyring term {term} is not wrapped by this root key.") from None
            rewrapped.append((term, _wrap_kek(new_root, term, kek)))
        return rewrapped

    def encrypt(self, term: int, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
        """Encrypt under `term` (normally `active_term`, read by the caller so it can bind it into the
        AAD; an older term that a concurrent rotation just superseded is still valid): (iv, ct || tag).
        """
        iv = os.urandom(_IV_LEN)
        return iv, self._keks[term].encrypt(iv, plaintext, aad)

    def decrypt(self, term: int, iv: bytes, sealed: bytes, aad: bytes) -> bytes:
        """Decrypt under `term`. Reloads the terms once if `term` is unknown (rotated elsewhere).

        Raises StorageIntegrityError for an unknown term or a failed tag.
        """
        kek = self._keks.get(term)
        if kek is None:
            self.refresh()
            kek = self._keks.get(term)
            if kek is None:
                raise StorageIntegrityError()
        try:
            return kek.decrypt(iv, sealed, aad)
        except (InvalidTag, ValueError):
            raise StorageIntegrityError() from None

    def _reload_locked(self) -> None:
        stored = self._store.load_terms()
        if not stored:
            raise StorageIntegrityError("The keyring store holds no terms.")
        if {term for term, _ in stored} == set(self._keks):
            return
        keks: dict[int, AESGCM] = {}
        for term, wrapped in stored:
            known = self._keks.get(term)
            if known is not None:
                keks[term] = known
                continue
            try:
                keks[term] = _unwrap_kek(self._root, term, bytes(wrapped))
            except InvalidTag:
                raise StorageIntegrityError(
                    f"Keyring term {term} does not open with this process's root key "
                    "(unseal it again after a passphrase change)."
                ) from None
        self._publish(keks)

    def _publish(self, keks: dict[int, AESGCM]) -> None:
        # Order matters for lock-free readers: the new dict must hold the term before it becomes active.
        self._keks = keks
        self._active = max(keks)


def _unwrap_all(root: AESGCM, terms: list[tuple[int, bytes]]) -> dict[int, AESGCM]:
    if not terms:
        raise StorageIntegrityError("The keyring store holds no terms.")
    keks: dict[int, AESGCM] = {}
    failed: list[int] = []
    for term, wrapped in terms:
        try:
            keks[term] = _unwrap_kek(root, term, bytes(wrapped))
        except InvalidTag:
            failed.append(term)
    if not keks:
        raise RootOfTrustError(WRONG_ROOT_MESSAGE)
    if failed:
        raise StorageIntegrityError(f"Keyring term(s) {sorted(failed)} failed their integrity check.")
    return keks
