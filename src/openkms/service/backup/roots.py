"""The root key a backup is made under, and the one a restore opens the archive with.

Owns where each comes from: the source node's root (its key file, or its passphrase with the KDF
parameters file of its data dir), checked to open the source's keyring so that an archive is never
made under a root that opens nothing; and on restore the archive's kind of root (a key file the
operator brings, or the passphrase with the KDF parameters the archive carries). Creates no key file
and no parameters file. Never logs, prints or puts into an error a key byte or a passphrase.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import orjson

from openkms.config import Settings
from openkms.keystore.keyring import Keyring
from openkms.keystore.root import KeyFileRoot, PassphraseRoot
from openkms.repository.database import Database
from openkms.repository.keyring import DatabaseKeyringStore
from openkms.secret import SecretBytes
from openkms.service.backup.archive import ArchiveRefused, Header
from openkms.service.seal import KDF_PARAMS_FILE, KEY_FILE


class _StoredTerms:
    """The keyring's terms as read, for checking a root against them (adds nothing)."""

    def __init__(self, terms: list[tuple[int, bytes]]) -> None:
        self._terms = terms

    def load_terms(self) -> list[tuple[int, bytes]]:
        return self._terms

    def add_term(self, term: int, wrapped: bytes) -> None:
        raise ArchiveRefused("the store has no keyring yet: start the server once before a backup")


def source_root(
    settings: Settings, db: Database, passphrase: str | None
) -> tuple[SecretBytes, dict[str, Any] | None]:
    """The source's root key and its passphrase KDF parameters (None for a key file). Raises
    RootOfTrustError when the root does not open the store's keyring."""
    if settings.seal == "keyfile":
        path = settings.data_dir / KEY_FILE
        if not path.exists():
            raise ArchiveRefused("the data dir has no root key file: there is no store to back up here")
        root_key = KeyFileRoot(path).load()
        params = None
    else:
        params_path = settings.data_dir / KDF_PARAMS_FILE
        if not params_path.exists():
            raise ArchiveRefused("the data dir has no passphrase parameters file (seal.json)")
        if not passphrase:
            raise ArchiveRefused("the passphrase is needed: set OPENKMS_UNSEAL_PASSPHRASE")
        root_key = PassphraseRoot(params_path, SecretBytes(passphrase.encode("utf-8"))).load()
        params = orjson.loads(params_path.read_bytes())
    terms = DatabaseKeyringStore(db.engine).load_terms()
    if not terms:
        raise ArchiveRefused("the store has no keyring yet: start the server once before a backup")
    Keyring.open(root_key, _StoredTerms(terms))  # RootOfTrustError if it opens none
    return root_key, params


def restore_root(
    header: Header, data_dir: Path, passphrase: str | None, root_key_file: Path | None
) -> SecretBytes:
    """The root key to open `header`'s archive with, from what the operator brought."""
    if header.seal == "keyfile":
        path = root_key_file if root_key_file is not None else data_dir / KEY_FILE
        in_place = data_dir / KEY_FILE
        if (
            root_key_file is not None
            and in_place.exists()
            and in_place.read_bytes() != root_key_file.read_bytes()
        ):
            raise ArchiveRefused(f"the data dir holds another {KEY_FILE} than --root-key-file names")
        if not path.exists():
            raise ArchiveRefused(
                "the archive was made under a root key file: copy it into the new data dir as "
                f"{KEY_FILE} or name it with --root-key-file"
            )
        return KeyFileRoot(path).load()
    if header.seal != "passphrase" or header.seal_params is None:
        raise ArchiveRefused("the archive's header names no root of trust this OpenKMS knows")
    if not passphrase:
        raise ArchiveRefused("the archive was made under a passphrase: set OPENKMS_UNSEAL_PASSPHRASE")
    existing = data_dir / KDF_PARAMS_FILE
    if existing.exists() and orjson.loads(existing.read_bytes()) != header.seal_params:
        raise ArchiveRefused(f"the data dir's {KDF_PARAMS_FILE} is not the one the archive was made with")
    with tempfile.TemporaryDirectory() as folder:
        params_path = Path(folder) / KDF_PARAMS_FILE
        params_path.write_bytes(orjson.dumps(header.seal_params))
        params_path.chmod(0o600)
        return PassphraseRoot(params_path, SecretBytes(passphrase.encode("utf-8"))).load()
