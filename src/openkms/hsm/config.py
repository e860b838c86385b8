"""A token's settings as a hardware instance (or the XKS proxy) names them, and where its PIN comes from.

Owns `TokenConfig` and `load_pin`. A PIN is never a setting and never on a command line: `pin_source`
is `env:NAME` (an environment variable of the server) or `file:/path` (a regular file, not a symlink,
owned by this user, readable by no one else). Errors name the source, never the PIN.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from openkms.errors import InvalidArgument, KeyStoreUnavailable
from openkms.secret import SecretBytes

__all__ = ["DEFAULT_SESSIONS", "TokenConfig", "load_pin"]

DEFAULT_SESSIONS: Final = 4
MAX_SESSIONS: Final = 64


@dataclass(frozen=True, slots=True)
class TokenConfig:
    module_path: str
    token_label: str | None
    token_serial: str | None
    pin_source: str
    sessions: int = DEFAULT_SESSIONS

    @classmethod
    def from_settings(cls, settings: Mapping[str, str]) -> TokenConfig:
        """From an instance's settings (`module`, `token_label` or `token_serial`, `pin_source`,
        `sessions`); InvalidArgument naming what is wrong."""
        module = settings.get("module", "")
        label = settings.get("token_label") or None
        serial = settings.get("token_serial") or None
        pin_source = settings.get("pin_source", "")
        if not module or not os.path.isabs(module):
            raise InvalidArgument("module must be the absolute path of a PKCS#11 module.", parameter="module")
        if label is None and serial is None:
            raise InvalidArgument("Name the token by token_label or token_serial.", parameter="token_label")
        check_pin_source(pin_source)
        try:
            sessions = int(settings.get("sessions") or DEFAULT_SESSIONS)
        except ValueError:
            raise InvalidArgument("sessions must be a whole number.", parameter="sessions") from None
        if not 1 <= sessions <= MAX_SESSIONS:
            raise InvalidArgument(f"sessions must be between 1 and {MAX_SESSIONS}.", parameter="sessions")
        return cls(module, label, serial, pin_source, sessions)

    @property
    def token_name(self) -> str:
        """How errors name the token: its label, else its serial."""
        if self.token_label:
            return f"token {self.token_label!r}"
        return f"token with serial {self.token_serial}"

    def settings(self) -> dict[str, str]:
        found = {
            "module": self.module_path,
            "token_label": self.token_label or "",
            "token_serial": self.token_serial or "",
            "pin_source": self.pin_source,
            "sessions": str(self.sessions),
        }
        return {name: value for name, value in found.items() if value}


def check_pin_source(pin_source: str) -> None:
    kind, _, where = pin_source.partition(":")
    if kind not in ("env", "file") or not where:
        raise InvalidArgument(
            "pin_source must be env:NAME or file:/absolute/path (never the PIN itself).",
            parameter="pin_source",
        )
    if kind == "file" and not os.path.isabs(where):
        raise InvalidArgument("pin_source file:PATH needs an absolute path.", parameter="pin_source")


def load_pin(pin_source: str) -> SecretBytes:
    """The user PIN from its source; KeyStoreUnavailable saying what is wrong with the source."""
    check_pin_source(pin_source)
    kind, _, where = pin_source.partition(":")
    if kind == "env":
        value = os.environ.get(where)
        if not value:
            raise KeyStoreUnavailable(f"The PIN variable {where} is not set in the server's environment.")
        return SecretBytes(value.encode())
    try:
        fd = os.open(where, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise KeyStoreUnavailable(f"The PIN file {where} cannot be opened: {exc.strerror}.") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyStoreUnavailable(f"The PIN file {where} is not a regular file.")
        if info.st_uid != os.geteuid():
            raise KeyStoreUnavailable(f"The PIN file {where} is not owned by the server's user.")
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise KeyStoreUnavailable(f"The PIN file {where} is readable by others: chmod 600 it.")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            raw = handle.read(4096)
    finally:
        os.close(fd)
    pin = raw.strip(b"\r\n")
    if not pin:
        raise KeyStoreUnavailable(f"The PIN file {where} is empty.")
    return SecretBytes(pin)
