"""A SoftHSM2 token per test session (initialised here, in a temporary folder) and the hardware
provider on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openkms.hsm.config import TokenConfig
from openkms.hsm.sessions import TokenSessions
from openkms.providers.hardware import HardwareProvider
from openkms.testing.softhsm import SoftHsmToken, make_token


@pytest.fixture(scope="session")
def softhsm_tokens(tmp_path_factory: pytest.TempPathFactory) -> tuple[SoftHsmToken, SoftHsmToken]:
    """Both tokens are made before anything loads the module: SoftHSM2 lists its tokens once, when a
    process initialises it, so a token made later is invisible to this process."""
    folder = tmp_path_factory.mktemp("softhsm")
    return make_token(folder, label="openkms-provider-tests"), make_token(folder, label="openkms-wrong-pin")


@pytest.fixture(scope="session")
def softhsm(softhsm_tokens: tuple[SoftHsmToken, SoftHsmToken]) -> SoftHsmToken:
    return softhsm_tokens[0]


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
