"""The hardware provider on the session's SoftHSM2 token (tests/conftest.py: `softhsm`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openkms.hsm.config import TokenConfig
from openkms.hsm.sessions import TokenSessions
from openkms.providers.hardware import HardwareProvider
from openkms.testing.softhsm import SoftHsmToken


@pytest.fixture(scope="session")
def spare_token(softhsm_tokens: tuple[SoftHsmToken, SoftHsmToken]) -> SoftHsmToken:
    """A token no pool of this process logs in to before the test that uses it."""
    return softhsm_tokens[1]


@pytest.fixture(scope="session")
def hsm_sessions(softhsm: SoftHsmToken) -> Iterator[TokenSessions]:
    sessions = TokenSessions(TokenConfig.from_settings(softhsm.settings()))
    yield sessions
    sessions.close()


@pytest.fixture(scope="session")
def hardware(hsm_sessions: TokenSessions) -> HardwareProvider:
    return HardwareProvider(hsm_sessions, "kst-hsm-test")
