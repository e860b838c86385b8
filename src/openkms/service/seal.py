"""Which root of trust a server uses, from its settings: the key file (development default) or a
passphrase (memory-hard KDF). Never logs the passphrase or the root key."""

from __future__ import annotations

import functools
import logging
import os

from openkms.config import Settings
from openkms.keystore.root import KeyFileRoot, PassphraseRoot, RootOfTrust
from openkms.secret import SecretBytes

log = logging.getLogger("openkms.seal")

KEY_FILE = "root.key"
KDF_PARAMS_FILE = "seal.json"
# Set by `openkms serve` for its worker processes once it has warned about the key file itself, so
# that one command warns once however many workers it starts.
WARNED_ENV = "OPENKMS_KEY_FILE_WARNED"


def root_of_trust(settings: Settings, passphrase: str | None) -> RootOfTrust | None:
    """The root to unseal with now, or None when a passphrase is needed and not yet given."""
    if settings.seal == "keyfile":
        root = KeyFileRoot(settings.data_dir / KEY_FILE)
        if not root.exists():
            root.create()
        if not os.environ.get(WARNED_ENV):
            _warn_once(root.warning)
        return root
    if not passphrase:
        return None
    return PassphraseRoot(settings.data_dir / KDF_PARAMS_FILE, SecretBytes(passphrase.encode("utf-8")))


@functools.cache
def _warn_once(warning: str) -> None:
    """The key-file warning, once per process (a command may open the store several times)."""
    log.warning("%s", warning)
