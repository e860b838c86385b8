"""A SoftHSM2 token for the XKS tests, with AES-256 keys made on it (interim: until branch `hsm`'s
`openkms.testing.softhsm` and `openkms.hsm.sessions` are merged)."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pkcs11
from pkcs11 import Attribute, KeyType

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
LABEL = "openkms-xks-test"
PIN = "1234"


class _Sessions:
    """One logged-in session shared under a lock (the tests' proxies are light)."""

    def __init__(self, session: pkcs11.Session) -> None:
        self._session = session
        self._lock = threading.Lock()

    @contextmanager
    def _use(self) -> Iterator[pkcs11.Session]:
        with self._lock:
            yield self._session

    def session(self) -> AbstractContextManager[pkcs11.Session]:
        return self._use()


@dataclass
class SoftToken:
    directory: Path
    session: pkcs11.Session
    settings: dict[str, Any] = field(default_factory=dict)

    def sessions(self) -> _Sessions:
        return _Sessions(self.session)

    def add_key(self, label: str, *, length: int = 256, encrypt: bool = True) -> None:
        self.session.generate_key(
            KeyType.AES,
            length,
            label=label,
            store=True,
            template={Attribute.ENCRYPT: encrypt, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False},
        )

    def close(self) -> None:
        self.session.close()


def make_token(directory: Path, labels: list[str]) -> SoftToken:
    tokens = directory / "tokens"
    tokens.mkdir()
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", LABEL, "--pin", PIN, "--so-pin", "5678"],
        check=True,
        capture_output=True,
    )
    lib = pkcs11.lib(MODULE)
    session = lib.get_token(token_label=LABEL).open(user_pin=PIN, rw=True)
    token = SoftToken(directory, session, {"module": MODULE, "label": LABEL, "pin": PIN})
    for label in labels:
        token.add_key(label)
    return token
