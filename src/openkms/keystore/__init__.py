"""The keystore: root of trust -> KEK keyring -> wrapped per-version key material.

Owns the sealed/unsealed state and the at-rest formats of the keyring and of key material. Storage is
untrusted: only wrapped bytes leave this package for the repository. While sealed, every wrap and unwrap
raises `errors.Sealed`. Never logs, and never returns unwrapped material except as SecretBytes to a
provider.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from openkms.errors import RootOfTrustError, Sealed
from openkms.keystore.envelope import unwrap_material, wrap_material
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
]


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
            self._keyring = Keyring.open(source.load(), self._store)

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
        """Wrap key-version material for storage, bound to (key id, version id, spec)."""
        return wrap_material(self._unsealed(), key_id, version_id, spec, material)

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
