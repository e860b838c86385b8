"""Which root of trust a server uses, from its settings: the key file (development default) or a
passphrase (memory-hard KDF). Never logs the passphrase or the root key."""

from __future__ import annotations

import logging
import os

from openkms.config import Settings
from openkms.keystore.root import KeyFileRoot, PassphraseRoot, RootOfTrust
from openkms.secret import SecretBytes

log = logging.getLogger("openkms.seal")

KEY_FILE = "root.key"
KDF_PARAMS_FILE = "seal.json"
# Set once the key-file warning was logged: the rest of this process and the worker processes it
# starts (which inherit the environment) do not repeat it, so one command warns once.
WARNED_ENV = "OPENKMS_KEY_FILE_WARNED"


def root_of_trust(settings: Settings, passphrase: str | None) -> RootOfTrust | None:
    """The root to unseal with now, or None when a passphrase is needed and not yet given."""
    if settings.seal == "keyfile":
        root = KeyFileRoot(settings.data_dir / KEY_FILE)
        if not root.exists():
            root.create()
        if not os.environ.get(WARNED_ENV):
            log.warning("%s", root.warning)
            os.environ[WARNED_ENV] = "1"
        return root
    if not passphrase:
        return None
    return PassphraseRoot(settings.data_dir / KDF_PARAMS_FILE, SecretBytes(passphrase.encode("utf-8")))
