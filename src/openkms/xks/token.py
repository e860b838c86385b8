"""The proxy's PKCS#11 session: one logged-in session on one token, used by one thread at a time.

Interim: the shared session pool of hardware instances (`openkms.hsm.sessions.TokenSessions`, with
reopening after token errors) was not on a branch this module could merge when it was written; it
has the same `session()` context manager, and the proxy takes either (`proxy.SessionSource`).
Owns only what the proxy needs: the module loaded once per path, the token found by label, the PIN
read from `env:NAME` or `file:PATH` (a 0600 regular file; never the PIN itself in the configuration),
and one lock per module for every call into it: python-pkcs11 initialises the module with
C_Initialize(NULL), which tells it the application will not call it from several threads at once
(SoftHSM2 then takes no locks, and concurrent calls corrupt its heap), so the calls are serialised
here. The PIN never reaches a message or a repr.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Final

import pkcs11

from openkms.errors import KeyStoreUnavailable
from openkms.secret import SecretBytes

__all__ = ["ProxyToken", "read_pin"]

_WAIT_SECONDS: Final = 5.0
# One lock per PKCS#11 module path in this process (see the module docstring).
_MODULE_LOCKS: dict[str, threading.Lock] = {}
_MODULE_LOCKS_LOCK = threading.Lock()


def _module_lock(module: str) -> threading.Lock:
    with _MODULE_LOCKS_LOCK:
        return _MODULE_LOCKS.setdefault(module, threading.Lock())


def read_pin(source: str) -> SecretBytes:
    """The PIN named by `env:NAME` or `file:PATH`; ValueError (without the PIN) otherwise."""
    kind, _, where = source.partition(":")
    if kind == "env":
        value = os.environ.get(where)
        if not value:
            raise ValueError(f"the environment variable {where} holding the PIN is not set")
        return SecretBytes(value.encode())
    if kind == "file":
        path = Path(where)
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
            raise ValueError(f"the PIN file {where} must be a regular file of ours, mode 0600")
        return SecretBytes(path.read_bytes().strip())
    raise ValueError("pin_source must be env:NAME or file:PATH")


class ProxyToken:
    """A logged-in R/W session on the token `token_label` of the PKCS#11 module `module` (settings as a
    hardware instance's; `sessions` is accepted and ignored: the calls are serialised anyway)."""

    def __init__(self, settings: Mapping[str, str]) -> None:
        try:
            module, label, pin_source = settings["module"], settings["token_label"], settings["pin_source"]
        except KeyError as exc:
            raise ValueError(f"the token setting {exc.args[0]} is missing") from None
        pin = read_pin(pin_source)
        self._label = label
        self._lock = _module_lock(module)
        with self._lock:
            try:
                token = pkcs11.lib(module).get_token(token_label=label)
                try:
                    self._login = token.open(user_pin=pin.reveal().decode(), rw=True)
                except pkcs11.exceptions.UserAlreadyLoggedIn:  # another pool of this process logged in
                    self._login = token.open(rw=True)
            except (pkcs11.exceptions.PKCS11Error, RuntimeError, OSError) as exc:
                raise KeyStoreUnavailable(
                    f"Token {label}: cannot open sessions ({type(exc).__name__})."
                ) from None

    def __repr__(self) -> str:
        return f"ProxyToken(label={self._label!r})"

    def session(self) -> AbstractContextManager[pkcs11.Session]:
        return self._lend()

    @contextmanager
    def _lend(self) -> Iterator[pkcs11.Session]:
        if not self._lock.acquire(timeout=_WAIT_SECONDS):
            raise KeyStoreUnavailable(f"Token {self._label}: busy for {_WAIT_SECONDS:g} seconds.")
        try:
            yield self._login
        finally:
            self._lock.release()

    def close(self) -> None:
        with self._lock:
            self._login.close()
