"""Changing the passphrase root of trust: every KEK term rewrapped under the new root key in one
transaction, and the KDF parameters file replaced only once that committed.

Owns the order that keeps the operator from being locked out by a crash: (1) the new parameters are
written beside the current ones (`PassphraseRoot.prepare_change`, fsynced); (2) one transaction locks
the keyring, checks every stored term is the one the old root wrapped, and replaces each; (3) the new
parameters are renamed into place. A crash before (2) commits leaves the old passphrase working; after
it, the new one (unseal tries the pending parameters first and finishes the rename). Key material is
not touched: only the KEKs' wrapping changes. Never logs or returns a passphrase or a key.
"""

from __future__ import annotations

import logging

from openkms.errors import Conflict, InvalidArgument
from openkms.keystore import Keystore, PassphraseRoot
from openkms.repository.database import Database
from openkms.repository.keyring import KeyringRepository
from openkms.repository.wrapped_rows import WrappedRowRepository
from openkms.secret import SecretBytes

log = logging.getLogger("openkms.keyring")


def change_passphrase(
    db: Database, keystore: Keystore, root: PassphraseRoot, new_passphrase: SecretBytes
) -> int:
    """Rewrap the keyring under the root key `new_passphrase` gives; the number of terms rewrapped.

    `keystore` must be unsealed with `root` (the current passphrase: that is the proof the caller knows
    it). A failure before the commit leaves everything as it was."""
    if len(new_passphrase) == 0:
        raise InvalidArgument("The new passphrase is empty.")
    new_root_key = root.prepare_change(new_passphrase)
    try:
        with db.unit_of_work(write=True) as uow:
            WrappedRowRepository(uow.connection).lock_terms()
            stored = KeyringRepository(uow.connection).load_terms()
            rewrapped = keystore.rewrapped_keyring(new_root_key, stored)
            terms = WrappedRowRepository(uow.connection)
            for (term, old), (_, new) in zip(stored, rewrapped, strict=True):
                if not terms.replace_term(term, old, new):
                    raise Conflict("The keyring changed during the passphrase change; nothing was changed.")
    except BaseException:
        _settle(keystore, root, new_root_key)
        raise
    root.commit_pending()
    log.info("keyring: %d term(s) rewrapped under the new passphrase", len(stored))
    return len(stored)


def _settle(keystore: Keystore, root: PassphraseRoot, new_root_key: SecretBytes) -> None:
    """After a failure: keep the pending parameters if the keyring is under the new root key after all
    (a commit whose answer was lost), drop them if it is not, leave them if the store cannot tell."""
    try:
        committed = keystore.opens_with(new_root_key)
    except Exception:  # the store is unreachable: unseal will try both parameter files
        log.warning("keyring: the passphrase change's outcome is unknown; unseal tries the new and the old")
        return
    if committed:
        root.commit_pending()
    else:
        root.discard_pending()
