"""Which root of trust a server uses, from its settings: the key file (development default) or a
passphrase (memory-hard KDF). Never logs the passphrase or the root key."""

from __future__ import annotations

import logging

from openkms.config import Settings
from openkms.keystore.root import KeyFileRoot, PassphraseRoot, RootOfTrust
from openkms.secret import SecretBytes

log = logging.getLogger("openkms.seal")

KEY_FILE = "root.key"
KDF_PARAMS_FILE = "seal.json"


def root_of_trust(settings: Settings, passphrase: str | None) -> RootOfTrust | None:
    """The root to unseal with now, or None when a passphrase is needed and not yet given."""
    if settings.seal == "keyfile":
        root = KeyFileRoot(settings.data_dir / KEY_FILE)
        if not root.exists():
            root.create()
        log.warning("%s", root.warning)
        return root
    if not passphrase:
        return None
    return PassphraseRoot(settings.data_dir / KDF_PARAMS_FILE, SecretBytes(passphrase.encode("utf-8")))
