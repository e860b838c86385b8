"""The keystore: root of trust -> KEK keyring -> wrapped per-version key material.

Owns the sealed/unsealed state and the at-rest formats of the keyring and of key material. Storage is
untrusted: only wrapped bytes leave this package for the repository. While sealed, every wrap and unwrap
raises `errors.Sealed`. A wrap first picks up terms rotated by other processes (at most one read of the
keyring every `KEYRING_REFRESH_SECONDS`), so new material goes under the newest term soon after a
rotation anywhere. `rewrap` moves a stored row to the active term without its material leaving this
package. Never logs, and never returns unwrapped material except as SecretBytes to a provider.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final

from openkms.errors import RootOfTrustError, Sealed
from openkms.keystore.envelope import (
    rewrap_material,
    term_in_prefix,
    term_of,
    term_prefix,
    unwrap_material,
    wrap_material,
)
from openkms.keystore.keyring import Keyring, KeyringStore, TermExists
from openkms.keystore.root import KeyFileRoot, PassphraseRoot, RootOfTrust
from openkms.secret import SecretBytes

__all__ = [
    "KeyFileRoot",
    "Keyring",
    "KeyringStore",
    "Keystore",
    "PassphraseRoot",
    "RootOfTrust",
    "TermExists",
    "term_in_prefix",
    "term_of",
    "term_prefix",
]

# How stale a process's view of the keyring may be when it wraps: a term rotated elsewhere is used for
# new material within this many seconds. Retiring a term waits longer than this (`keyring_rewrap`).
KEYRING_REFRESH_SECONDS: Final = 1.0


class Keystore:
    """Sealed until `unseal()` loads the root key and opens the keyring; `seal()` drops it again.

    `unseal`, `seal` and keyring rotation serialise on a lock. `wrap` and `unwrap` take none: they read
    the keyring reference once, and a concurrent `seal()` only replaces that reference.
    """

    def __init__(self, root: RootOfTrust | None, store: KeyringStore) -> None:
        self._root = root
        self._store = store
        self._keyring: Keyring | None = None
        self._lock = threading.Lock()
        self._seal_listeners: list[Callable[[], None]] = []
        self._refreshed_at = 0.0

    def __repr__(self) -> str:
        return f"Keystore(sealed={self.sealed})"

    @property
    def sealed(self) -> bool:
        return self._keyring is None

    def unseal(self, root: RootOfTrust | None = None) -> None:
        """Load the root key from `root` (or the one given at construction) and open the keyring.

        A root passed here is used once and not kept, so a passphrase does not outlive the call. Does
        nothing if already unsealed. Raises RootOfTrustError if the root cannot be loaded or does not
        open the keyring (wrong passphrase or key file); the keystore then stays sealed.
        """
        source = root if root is not None else self._root
        with self._lock:
            if self._keyring is not None:
                return
            if source is None:
                raise RootOfTrustError("No root of trust is configured; unseal needs one.")
            self._keyring = self._open(source)
            self._refreshed_at = time.monotonic()

    def _open(self, source: RootOfTrust) -> Keyring:
        if isinstance(source, PassphraseRoot):
            # A passphrase change that committed its keyring but crashed before renaming its new
            # parameters file into place: the new passphrase opens the keyring with those parameters.
            try:
                pending = source.load_pending()
            except RootOfTrustError:  # unreadable pending parameters: they never opened anything
                pending = None
            if pending is not None:
                try:
                    keyring = Keyring.open(pending, self._store, create=False)
                except RootOfTrustError:
                    pass
                else:
                    source.commit_pending()
                    return keyring
        return Keyring.open(source.load(), self._store)

    def seal(self) -> None:
        """Drop the keyring and tell every listener (providers clear their material caches)."""
        with self._lock:
            self._keyring = None
            listeners = list(self._seal_listeners)
        for listener in listeners:
            listener()

    def on_seal(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every `seal()`. Providers register here to drop cached material."""
        with self._lock:
            self._seal_listeners.append(listener)

    def wrap(self, key_id: str, version_id: str, spec: str, material: SecretBytes) -> bytes:
        """Wrap key-version material for storage, bound to (key id, version id, spec), under the newest
        term (refreshed from the store if the last look is older than KEYRING_REFRESH_SECONDS)."""
        keyring = self._unsealed()
        now = time.monotonic()
        if now - self._refreshed_at >= KEYRING_REFRESH_SECONDS:
            keyring.refresh()
            self._refreshed_at = now
        return wrap_material(keyring, key_id, version_id, spec, material)

    def rewrap(self, key_id: str, version_id: str, spec: str, wrapped: bytes) -> bytes:
        """A stored row wrapped again under the active term with the same binding (the row itself if it
        is already there). Raises StorageIntegrityError if it is not this binding's row."""
        return rewrap_material(self._unsealed(), key_id, version_id, spec, wrapped)

    def refresh(self) -> None:
        """Pick up terms added or retired by other processes now."""
        self._unsealed().refresh()
        self._refreshed_at = time.monotonic()

    @property
    def terms(self) -> list[int]:
        """The terms this process holds (after the last refresh)."""
        return self._unsealed().terms

    def opens_with(self, root_key: SecretBytes) -> bool:
        """Whether `root_key` opens the stored keyring (creates nothing; the store's errors propagate)."""
        try:
            Keyring.open(root_key, self._store, create=False)
        except RootOfTrustError:
            return False
        return True

    def rewrapped_keyring(
        self, new_root_key: SecretBytes, stored: list[tuple[int, bytes]]
    ) -> list[tuple[int, bytes]]:
        """The stored KEK rows wrapped again under `new_root_key` (a passphrase change); each must be
        one this keystore's root key wrapped."""
        return self._unsealed().rewrapped_for(new_root_key, stored)

    def unwrap(self, key_id: str, version_id: str, spec: str, wrapped: bytes) -> SecretBytes:
        """Unwrap a stored row. Raises StorageIntegrityError if it is not this key version's row."""
        return unwrap_material(self._unsealed(), key_id, version_id, spec, wrapped)

    @property
    def active_term(self) -> int:
        return self._unsealed().active_term

    def rotate_keyring(self) -> int:
        """Add a KEK term and make it active; returns it. Material under old terms still unwraps."""
        with self._lock:
            return self._unsealed().rotate()

    def _unsealed(self) -> Keyring:
        keyring = self._keyring
        if keyring is None:
            raise Sealed()
        return keyring
