"""A SoftHSM2 token for the XKS tests, with AES-256 keys made on it (interim: branch `hsm`'s
`openkms.testing.softhsm` was not there to merge). SOFTHSM2_CONF is read once per process, so the
tests make one token directory per session."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pkcs11
from pkcs11 import Attribute, KeyType

from openkms.xks.token import ProxyToken

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
LABEL = "openkms-xks-test"
PIN = "1234"


@dataclass
class SoftToken:
    directory: Path
    session: pkcs11.Session
    settings: dict[str, str] = field(default_factory=dict)
    pools: list[ProxyToken] = field(default_factory=list)

    def sessions(self) -> ProxyToken:
        """A session pool of the proxy's own on this token (closed when the tests end)."""
        pool = ProxyToken(self.settings)
        self.pools.append(pool)
        return pool

    def add_key(self, label: str, *, length: int = 256, encrypt: bool = True) -> None:
        self.session.generate_key(
            KeyType.AES,
            length,
            label=label,
            store=True,
            template={Attribute.ENCRYPT: encrypt, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False},
        )

    def close(self) -> None:
        for pool in self.pools:
            pool.close()
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
    pin_file = directory / "user.pin"
    pin_file.write_text(PIN)
    pin_file.chmod(0o600)
    settings = {"module": MODULE, "token_label": LABEL, "pin_source": f"file:{pin_file}", "sessions": "4"}
    token = SoftToken(directory, session, settings)
    for label in labels:
        token.add_key(label)
    return token
