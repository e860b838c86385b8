"""STS session credentials at the service level, with an explicit `now`: expiry, forgery, the role."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from openkms.clock import SystemClock
from openkms.domain.identity import Role
from openkms.errors import InvalidSecurityToken, SecurityTokenExpired, UnknownAccessKey
from openkms.keystore import Keystore
from openkms.node.generation import LocalGeneration
from openkms.repository.database import Database
from openkms.repository.migrate import upgrade_to_head
from openkms.service.bootstrap import bootstrap_store
from openkms.service.identities import IdentityService
from openkms.service.sts_tokens import SessionClaims, TokenCodec, new_session_access_key_id
from openkms.testing.keyring import MemoryKeyringStore, StaticRoot

NOW = 1_800_000_000


class StepClock(SystemClock):
    def __init__(self) -> None:
        self.moment = float(NOW)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.moment, UTC)

    def timestamp(self) -> float:
        return self.moment


CLOCK = StepClock()


@pytest.fixture
def setup(tmp_path: Path) -> tuple[IdentityService, TokenCodec, str]:
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade_to_head(db.engine)
    account = bootstrap_store(db, ("cn-hangzhou",), SystemClock())
    moment = datetime.now(UTC)
    with db.unit_of_work(write=True) as uow:
        uow.identities.add_role(Role(account, "ops", "1234", "", "{}", 3600, moment, moment))
    keystore = Keystore(StaticRoot(), MemoryKeyringStore())
    keystore.unseal()
    tokens = TokenCodec(db, keystore, SystemClock())
    CLOCK.moment = float(NOW)
    return IdentityService(db, keystore, LocalGeneration(), 0.0, tokens, CLOCK), tokens, account


def claims(account: str, role: str = "ops", expires: int = NOW + 900, role_id: str = "1234") -> SessionClaims:
    return SessionClaims(new_session_access_key_id(), account, role, role_id, "session-1", expires)


def test_a_session_works_until_it_expires(setup: tuple[IdentityService, TokenCodec, str]) -> None:
    identities, _, account = setup
    access_key_id, secret, token = identities.claims_for(claims(account))
    credential = identities.credential(access_key_id, token)
    assert credential.principal.name == "assumed-role/ops/session-1"
    assert credential.principal.policy_arn == f"acs:ram::{account}:role/ops"
    assert credential.secret == secret and credential.expires_at == NOW + 900
    CLOCK.moment = NOW + 899
    identities.credential(access_key_id, token)
    CLOCK.moment = NOW + 900
    with pytest.raises(SecurityTokenExpired):
        identities.credential(access_key_id, token)


def test_forged_swapped_or_missing_tokens_are_refused(
    setup: tuple[IdentityService, TokenCodec, str], tmp_path: Path
) -> None:
    identities, tokens, account = setup
    access_key_id, _, token = identities.claims_for(claims(account))
    _, _, other_token = identities.claims_for(claims(account))
    for bad in (None, "", "garbage", token[:-2] + "xx", "OKS1." + "A" * 80, other_token):
        with pytest.raises(InvalidSecurityToken):
            identities.credential(access_key_id, bad)
    # A token sealed by another store's secret does not open here, and vice versa.
    other_db = Database(f"sqlite:///{tmp_path / 'other.db'}")
    upgrade_to_head(other_db.engine)
    other_keystore = Keystore(StaticRoot(), MemoryKeyringStore())
    other_keystore.unseal()
    elsewhere = TokenCodec(other_db, other_keystore, SystemClock())
    assert tokens.open(token) is not None
    assert elsewhere.open(token) is None


def test_the_secret_is_bound_to_the_access_key_id(setup: tuple[IdentityService, TokenCodec, str]) -> None:
    _, tokens, account = setup
    first, second = claims(account), claims(account)
    assert tokens.secret_for(first) != tokens.secret_for(second)
    assert tokens.secret_for(first) == tokens.secret_for(first)


def test_a_session_of_a_deleted_role_is_refused(setup: tuple[IdentityService, TokenCodec, str]) -> None:
    identities, _, account = setup
    access_key_id, _, token = identities.claims_for(claims(account, role="gone"))
    with pytest.raises(UnknownAccessKey):
        identities.credential(access_key_id, token)


def test_a_role_made_again_under_the_same_name_does_not_revive_old_sessions(
    setup: tuple[IdentityService, TokenCodec, str],
) -> None:
    identities, _, account = setup
    access_key_id, _, token = identities.claims_for(claims(account, role_id="an-older-ops-role"))
    with pytest.raises(UnknownAccessKey):
        identities.credential(access_key_id, token)
