"""Roots of trust: where the 32-byte root key comes from when the keystore is unsealed.

Owns the root-key file and the passphrase KDF parameters file, and the checks on them (file modes,
sizes, KDF bounds). A passphrase change writes the new parameters beside the current ones (the
pending file) and renames them into place only after the keyring was rewrapped: until then unseal
tries the pending parameters first, so a crash at any point leaves exactly one passphrase that works.
The root key only ever leaves as SecretBytes to the keyring. Never logs, prints or puts into an
exception message any key byte, passphrase, or file path (the operator knows the path).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import stat
from pathlib import Path
from typing import Final, Protocol

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from openkms.errors import RootOfTrustError
from openkms.secret import SecretBytes

ROOT_KEY_LEN: Final = 32

# scrypt with n=2**16, r=8, p=1 uses 64 MiB (128 * n * r bytes) and costs about 165 ms on the
# reference box (2**15: 82 ms, 2**17: 330 ms and 128 MiB), the middle of the 100-300 ms target.
SCRYPT_N: Final = 2**16
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
_SALT_LEN: Final = 32
# Bounds accepted when reading a parameters file: strong enough to be worth having, small enough
# that a hostile file cannot make unseal allocate gigabytes.
_MIN_N: Final = 2**14
_MAX_N: Final = 2**20
_MAX_R: Final = 32
_MAX_P: Final = 16
_MIN_SALT_LEN: Final = 16

_GROUP_OTHER_BITS: Final = stat.S_IRWXG | stat.S_IRWXO


class RootOfTrust(Protocol):
    """Something that yields the root key on unseal."""

    @property
    def kind(self) -> str: ...

    def load(self) -> SecretBytes:
        """The 32-byte root key. Raises RootOfTrustError if it cannot be produced."""
        ...


def _write_new_private_file(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600 and write `data`; raise FileExistsError if it exists.

    O_EXCL makes creation atomic (no window with a wider mode, no overwrite of an existing key), and
    the fsync of file and directory makes the new key survive a crash right after creation.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _read_private_file(path: Path, what: str, max_len: int) -> bytes:
    """Read a regular file that only its owner may access; refuse anything else with a clear reason."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise RootOfTrustError(f"The {what} does not exist.") from None
    except OSError as exc:
        raise RootOfTrustError(f"The {what} cannot be opened ({exc.strerror}).") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RootOfTrustError(f"The {what} is not a regular file.")
        if info.st_mode & _GROUP_OTHER_BITS:
            raise RootOfTrustError(
                f"The {what} is accessible by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); restrict it to the owner (chmod 600)."
            )
        return os.read(fd, max_len + 1)
    finally:
        os.close(fd)


class KeyFileRoot:
    """The root key as 32 random bytes in a file only its owner can read. For development only."""

    kind: Final = "key-file"
    warning: Final = (
        "The key-file root of trust keeps the root key next to the data it protects: anyone who can "
        "read both can decrypt every key. Use it for development only; use a passphrase or an HSM root "
        "in production."
    )

    def __init__(self, path: Path, *, create_if_missing: bool = False) -> None:
        self.path = path
        self._create_if_missing = create_if_missing

    def __repr__(self) -> str:
        return "KeyFileRoot(<root key file>)"

    def exists(self) -> bool:
        return self.path.exists()

    def create(self) -> None:
        """Write a new random root key with mode 0600. Refuses to overwrite an existing file."""
        try:
            _write_new_private_file(self.path, os.urandom(ROOT_KEY_LEN))
        except FileExistsError:
            raise RootOfTrustError("The root key file already exists; it was not replaced.") from None

    def load(self) -> SecretBytes:
        if self._create_if_missing and not self.path.exists():
            # If another process created it first, read theirs.
            with contextlib.suppress(FileExistsError):
                _write_new_private_file(self.path, os.urandom(ROOT_KEY_LEN))
        data = _read_private_file(self.path, "root key file", ROOT_KEY_LEN)
        if len(data) != ROOT_KEY_LEN:
            raise RootOfTrustError(f"The root key file must hold exactly {ROOT_KEY_LEN} bytes.")
        return SecretBytes(data)


class PassphraseRoot:
    """The root key derived from an operator passphrase with scrypt (memory-hard).

    The KDF parameters and a random salt live in a small JSON file, created with mode 0600 on first
    use. They are not secret, but editing them cannot help an attacker: other parameters give another
    key, which does not open the keyring. A wrong passphrase is detected when the keyring fails to open.
    """

    kind: Final = "passphrase"

    def __init__(self, params_path: Path, passphrase: SecretBytes, *, n: int = SCRYPT_N) -> None:
        self.params_path = params_path
        self._passphrase = passphrase
        self._new_n = n

    def __repr__(self) -> str:
        return "PassphraseRoot(<passphrase redacted>)"

    @property
    def pending_path(self) -> Path:
        """Where a passphrase change keeps the new parameters until the keyring is rewrapped."""
        return self.params_path.with_name(self.params_path.name + ".new")

    def load(self) -> SecretBytes:
        if len(self._passphrase) == 0:
            raise RootOfTrustError("The passphrase is empty.")
        return self._derive(self._load_or_create_params())

    def load_pending(self) -> SecretBytes | None:
        """The root key under the pending parameters of an unfinished passphrase change, if any."""
        if len(self._passphrase) == 0 or not self.pending_path.exists():
            return None
        return self._derive(_read_params(self.pending_path))

    def commit_pending(self) -> None:
        """Make the pending parameters the current ones (atomic rename, then the directory's fsync)."""
        try:
            os.replace(self.pending_path, self.params_path)
        except FileNotFoundError:  # another process finished it first
            return
        _fsync_dir(self.params_path.parent)

    def discard_pending(self) -> None:
        """Remove the pending parameters of a change that did not happen."""
        with contextlib.suppress(FileNotFoundError):
            self.pending_path.unlink()

    def prepare_change(self, new_passphrase: SecretBytes) -> SecretBytes:
        """Write fresh parameters (a new salt) for `new_passphrase` as the pending file, durably, and
        return the root key they give. The current parameters file is not touched."""
        if len(new_passphrase) == 0:
            raise RootOfTrustError("The new passphrase is empty.")
        document = _new_params_document(self._new_n)
        staging = self.params_path.with_name(self.params_path.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()
        _write_new_private_file(staging, document)
        os.replace(staging, self.pending_path)
        _fsync_dir(self.params_path.parent)
        return _derive(new_passphrase, _read_params(self.pending_path))

    def _derive(self, params: tuple[int, int, int, bytes]) -> SecretBytes:
        return _derive(self._passphrase, params)

    def _load_or_create_params(self) -> tuple[int, int, int, bytes]:
        if not self.params_path.exists():
            document = _new_params_document(self._new_n)
            # If another process created it first, use theirs.
            with contextlib.suppress(FileExistsError):
                _write_new_private_file(self.params_path, document)
        return _read_params(self.params_path)


def _derive(passphrase: SecretBytes, params: tuple[int, int, int, bytes]) -> SecretBytes:
    n, r, p, salt = params
    kdf = Scrypt(salt=salt, length=ROOT_KEY_LEN, n=n, r=r, p=p)
    return SecretBytes(kdf.derive(passphrase.reveal()))


def _new_params_document(n: int) -> bytes:
    _check_scrypt_params(n, SCRYPT_R, SCRYPT_P, _SALT_LEN)
    document = {
        "kdf": "scrypt",
        "n": n,
        "r": SCRYPT_R,
        "p": SCRYPT_P,
        "salt": base64.b64encode(os.urandom(_SALT_LEN)).decode("ascii"),
    }
    return json.dumps(document, indent=2).encode() + b"\n"


def _read_params(path: Path) -> tuple[int, int, int, bytes]:
    raw = _read_private_file(path, "passphrase parameters file", 4096)
    try:
        document = json.loads(raw)
        kdf, n, r, p = document["kdf"], document["n"], document["r"], document["p"]
        salt = base64.b64decode(document["salt"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise RootOfTrustError("The passphrase parameters file is not valid.") from None
    if kdf != "scrypt" or not all(type(value) is int for value in (n, r, p)):
        raise RootOfTrustError("The passphrase parameters file is not valid.")
    _check_scrypt_params(n, r, p, len(salt))
    return n, r, p, salt


def _check_scrypt_params(n: int, r: int, p: int, salt_len: int) -> None:
    if not (_MIN_N <= n <= _MAX_N and n & (n - 1) == 0):
        raise RootOfTrustError(f"scrypt n must be a power of two between {_MIN_N} and {_MAX_N}.")
    if not (1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
        raise RootOfTrustError("scrypt r or p is out of range.")
    if salt_len < _MIN_SALT_LEN:
        raise RootOfTrustError("The scrypt salt is too short.")
