"""The proxy's PKCS#11 sessions: a small fixed pool of logged-in sessions on one token.

Interim: the shared session pool of hardware instances (`openkms.hsm.sessions.TokenSessions`, with
reopening after token errors) was not on a branch this module could merge when it was written; it
has the same `session()` context manager, and the proxy takes either (`proxy.SessionSource`).
Owns only what the proxy needs: the module loaded once per path, the token found by label, the PIN
read from `env:NAME` or `file:PATH` (a 0600 regular file; never the PIN itself in the configuration),
one login shared by the pool (PKCS#11 logs in per application, and closing the login session logs
every session out, so it is closed last). The PIN never reaches a message or a repr.
"""

from __future__ import annotations

import os
import queue
import stat
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Final

import pkcs11

from openkms.errors import KeyStoreUnavailable
from openkms.secret import SecretBytes

__all__ = ["ProxyToken", "read_pin"]

_WAIT_SECONDS: Final = 5.0


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
    """`sessions` logged-in R/W sessions on the token `token_label` of the PKCS#11 module `module`."""

    def __init__(self, settings: Mapping[str, str]) -> None:
        try:
            module, label, pin_source = settings["module"], settings["token_label"], settings["pin_source"]
        except KeyError as exc:
            raise ValueError(f"the token setting {exc.args[0]} is missing") from None
        count = int(settings.get("sessions", "4"))
        if not 1 <= count <= 64:
            raise ValueError("sessions must be 1 to 64")
        pin = read_pin(pin_source)
        self._label = label
        try:
            token = pkcs11.lib(module).get_token(token_label=label)
            try:
                self._login = token.open(user_pin=pin.reveal().decode(), rw=True)
            except pkcs11.exceptions.UserAlreadyLoggedIn:  # another pool of this process logged in
                self._login = token.open(rw=True)
            self._others = [token.open(rw=True) for _ in range(count - 1)]
        except (pkcs11.exceptions.PKCS11Error, RuntimeError, OSError) as exc:
            raise KeyStoreUnavailable(
                f"Token {label}: cannot open sessions ({type(exc).__name__})."
            ) from None
        self._free: queue.Queue[pkcs11.Session] = queue.Queue()
        for session in [self._login, *self._others]:
            self._free.put(session)

    def __repr__(self) -> str:
        return f"ProxyToken(label={self._label!r})"

    def session(self) -> AbstractContextManager[pkcs11.Session]:
        return self._lend()

    @contextmanager
    def _lend(self) -> Iterator[pkcs11.Session]:
        try:
            session = self._free.get(timeout=_WAIT_SECONDS)
        except queue.Empty:
            raise KeyStoreUnavailable(f"Token {self._label}: no session free.") from None
        try:
            yield session
        finally:
            self._free.put(session)

    def close(self) -> None:
        for session in self._others:
            session.close()
        self._login.close()
