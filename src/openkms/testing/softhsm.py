"""SoftHSM2 tokens for tests and the benchmark: made in a folder of the caller's, never in the system's.

Owns `make_token`: the first call in a process writes a softhsm2.conf whose token directory is under
the folder it is given and points SOFTHSM2_CONF at it (SoftHSM2 reads it once per process, when the
module is initialised; child processes get it through their environment); later calls add tokens to
the same directory. Each token gets a random user PIN written to a 0600 file, so an instance names it
by `pin_source=file:...`. Not for production: a real HSM's token is initialised by its operator.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

__all__ = ["SOFTHSM_MODULE", "SoftHsmToken", "make_token"]

SOFTHSM_MODULE: Final = "/usr/lib/softhsm/libsofthsm2.so"
_LOCK = threading.Lock()
_CONF: list[Path] = []
T = TypeVar("T")


@dataclass(frozen=True)
class SoftHsmToken:
    conf_path: Path
    label: str
    serial: str
    pin_file: Path
    module_path: str = SOFTHSM_MODULE

    def settings(self, **extra: str) -> dict[str, str]:
        """The settings of a hardware instance on this token."""
        return {
            "module": self.module_path,
            "token_label": self.label,
            "pin_source": f"file:{self.pin_file}",
            **extra,
        }

    def env(self) -> dict[str, str]:
        return {"SOFTHSM2_CONF": str(self.conf_path)}

    def pin(self) -> str:
        return self.pin_file.read_text().strip()

    def session(self) -> Any:
        """A logged-in R/W python-pkcs11 session in this process (the caller closes it)."""
        import pkcs11.exceptions as p11

        token = _library().get_token(token_label=self.label)
        try:
            return token.open(user_pin=self.pin(), rw=True)
        except p11.UserAlreadyLoggedIn:
            return token.open(rw=True)

    def add_aes_key(self, label: str, bits: int = 256, *, encrypt: bool = True, decrypt: bool = True) -> None:
        """A sensitive, non-extractable AES token key (for the XKS proxy's external keys)."""
        from pkcs11 import Attribute, KeyType

        session = self.session()
        try:
            session.generate_key(
                KeyType.AES, bits, label=label, store=True,
                template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.PRIVATE: True,
                          Attribute.ENCRYPT: encrypt, Attribute.DECRYPT: decrypt},
            )  # fmt: skip
        finally:
            session.close()

    def object_ids(self) -> set[bytes]:
        """The CKA_IDs of every object on the token (to see what a destruction left)."""
        from pkcs11 import Attribute

        return set(self._each_object(lambda found: bytes(found[Attribute.ID])))

    def object_labels(self) -> list[str]:
        """The CKA_LABEL of every object on the token (one per object: a key pair gives two)."""
        from pkcs11 import Attribute

        return self._each_object(lambda found: str(found[Attribute.LABEL]))

    def _each_object(self, read: Callable[[Any], T]) -> list[T]:
        """`read` of every object on the token. A server in another process may destroy an object
        between the search and the read of its attributes (ObjectHandleInvalid): list again."""
        from pkcs11.exceptions import ObjectHandleInvalid

        for _ in range(20):
            session = self.session()
            try:
                return [read(found) for found in session.get_objects()]
            except ObjectHandleInvalid:
                continue
            finally:
                session.close()
        raise RuntimeError("the token's objects kept changing while they were listed")


def _library() -> Any:
    from openkms.hsm.sessions import _library as load

    return load(SOFTHSM_MODULE)


def make_token(directory: Path, label: str | None = None) -> SoftHsmToken:
    """A fresh, initialised token (a random label unless given) with a random user PIN."""
    util = shutil.which("softhsm2-util")
    if util is None:
        raise RuntimeError("softhsm2-util is not installed (Debian package softhsm2)")
    with _LOCK:
        if not _CONF:
            tokens = directory / "tokens"
            tokens.mkdir(parents=True, exist_ok=True, mode=0o700)
            conf = directory / "softhsm2.conf"
            conf.write_text(
                f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
            )
            _CONF.append(conf)
            os.environ["SOFTHSM2_CONF"] = str(conf)
        conf = _CONF[0]
    label = label or f"openkms-{secrets.token_hex(4)}"
    pin = secrets.token_hex(8)
    pin_file = conf.parent / f"{label}.pin"
    fd = os.open(pin_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(pin + "\n")
    done = subprocess.run(  # noqa: S603 - our own arguments, no shell
        [util, "--init-token", "--free", "--label", label, "--so-pin", secrets.token_hex(8), "--pin", pin],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"softhsm2-util could not make token {label}: {done.stderr.strip()}")
    shown = subprocess.run(  # noqa: S603 - our own arguments, no shell
        [util, "--show-slots"],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    serial = _serial_of(shown, label)
    return SoftHsmToken(conf, label, serial, pin_file)


def _serial_of(shown: str, label: str) -> str:
    serial = ""
    for raw in shown.splitlines():
        line = raw.strip()
        if line.startswith("Serial number:"):
            serial = line.split(":", 1)[1].strip()
        if line.startswith("Label:") and line.split(":", 1)[1].strip() == label:
            return serial
    return serial
