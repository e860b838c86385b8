"""The XKS tests' view of the session's SoftHSM2 token (tests/conftest.py: `softhsm`): its settings as
the proxy's `[token]`, session pools of the proxy's own on it, and AES keys for external key ids."""

from __future__ import annotations

from dataclasses import dataclass, field

from openkms.hsm.config import TokenConfig
from openkms.hsm.sessions import TokenSessions
from openkms.testing.softhsm import SoftHsmToken


@dataclass
class SoftToken:
    token: SoftHsmToken
    pools: list[TokenSessions] = field(default_factory=list)

    @property
    def settings(self) -> dict[str, str]:
        return self.token.settings()

    def sessions(self) -> TokenSessions:
        """A session pool of the proxy's own on this token (closed when the tests end)."""
        pool = TokenSessions(TokenConfig.from_settings(self.settings))
        self.pools.append(pool)
        return pool

    def add_key(self, label: str, *, length: int = 256, encrypt: bool = True) -> None:
        self.token.add_aes_key(label, length, encrypt=encrypt)

    def close(self) -> None:
        for pool in self.pools:
            pool.close()


def make_token(token: SoftHsmToken, labels: list[str]) -> SoftToken:
    made = SoftToken(token)
    for label in labels:
        made.add_key(label)
    return made
