"""SignInService against a real database (SQLite, and PostgreSQL): sign-in names, failures slowed and
locked out, sessions that end (idle, absolute, sign-out, password change, user or profile deleted),
CSRF tokens, and only hashes at rest."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from openkms.domain.identity import User
from openkms.domain.sign_in_names import parse_sign_in_name
from openkms.errors import (
    EntityNotExist,
    IncorrectPassword,
    PasswordPolicyViolation,
    SignInFailed,
    SignInLocked,
)
from openkms.keystore import Keystore
from openkms.node.generation import LocalGeneration
from openkms.repository.database import Database
from openkms.repository.identities import AttachmentRow
from openkms.repository.migrate import upgrade_to_head
from openkms.repository.tables import console_passwords, console_sessions
from openkms.service.bootstrap import bootstrap_store
from openkms.service.context import Principal, RequestContext
from openkms.service.login_profiles import LoginProfileService
from openkms.service.ram import RamService
from openkms.service.sign_in import (
    FAILURE_DELAY,
    SignInPolicy,
    SignInService,
    csrf_token_for,
    token_hash,
)
from openkms.testing.clock import FrozenClock
from openkms.testing.keyring import MemoryKeyringStore, StaticRoot
from openkms.types import AccountId, RegionId

ROOT_PASSWORD = "Root-Passw0rd"
USER_PASSWORD = "Alice-Passw0rd"
POLICY = SignInPolicy(idle_seconds=600, max_seconds=3600, lockout_threshold=3, lockout_seconds=300)


class Store:
    def __init__(self, url: str) -> None:
        self.db = Database(url)
        upgrade_to_head(self.db.engine)
        self.clock = FrozenClock(datetime(2026, 6, 1, tzinfo=UTC))
        self.account = bootstrap_store(self.db, ("cn-hangzhou",), self.clock)
        keystore = Keystore(StaticRoot(), MemoryKeyringStore())
        keystore.unseal()
        self.sign_in = SignInService(self.db, self.clock, POLICY)
        self.profiles = LoginProfileService(self.db, self.clock)
        self.ram = RamService(self.db, keystore, self.clock, LocalGeneration())
        self.root_ctx = RequestContext("r", Principal(self.account, "root"), RegionId("cn-hangzhou"))
        self.sign_in.set_account_password(self.account, ROOT_PASSWORD)

    def add_user(self, name: str, *system_policies: str) -> None:
        now = self.clock.now()
        with self.db.unit_of_work(write=True) as uow:
            uow.identities.add_user(User(self.account, name, f"id-{name}", name, "", now, now))
            for policy in system_policies:
                uow.identities.attach(self.account, AttachmentRow("User", name, "System", policy, now))
        self.profiles.create(self.root_ctx, name, USER_PASSWORD, False, False)

    def advance(self, seconds: float) -> None:
        self.clock.advance(timedelta(seconds=seconds))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "postgres":
        from tests.conftest import new_postgres_database

        request.getfixturevalue("postgres_url")  # fails clearly when PostgreSQL is not there

        url = new_postgres_database()
    else:
        url = f"sqlite:///{tmp_path / 'store.db'}"
    made = Store(url)
    yield made
    made.db.dispose()


# ---- sign-in names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "domain", "user", "normalised"),
    [
        ("1234567890123456", "1234567890123456", None, "1234567890123456"),
        ("alice@1234567890123456", "1234567890123456", "alice", "alice@1234567890123456.onaliyun.com"),
        (
            "alice@1234567890123456.onaliyun.com",
            "1234567890123456",
            "alice",
            "alice@1234567890123456.onaliyun.com",
        ),
        ("alice@My-Corp.OnAliyun.com", "my-corp", "alice", "alice@my-corp.onaliyun.com"),
        (" Alice.B@my-corp ", "my-corp", "Alice.B", "Alice.B@my-corp.onaliyun.com"),
        ("my-corp", "my-corp", None, "my-corp"),
    ],
)
def test_sign_in_names_parse(typed: str, domain: str, user: str | None, normalised: str) -> None:
    parsed = parse_sign_in_name(typed)
    assert parsed is not None
    assert (parsed.domain, parsed.user_name, parsed.normalised()) == (domain, user, normalised)


@pytest.mark.parametrize("typed", ["", "@123", "bad name@123", "alice@", "alice@-corp", "alice@a", "x" * 300])
def test_impossible_sign_in_names_parse_to_nothing(typed: str) -> None:
    assert parse_sign_in_name(typed) is None


# ---- signing in -------------------------------------------------------------------------------------


def test_the_root_signs_in_with_its_uid(store: Store) -> None:
    session = store.sign_in.sign_in(store.account, ROOT_PASSWORD)
    assert session.principal == Principal(store.account, "root")
    assert session.sign_in_name == store.account and not session.password_reset_required
    assert session.csrf_token == csrf_token_for(session.token) != session.token
    assert session.expires_at == store.clock.timestamp() + POLICY.idle_seconds
    again = store.sign_in.session(session.token)
    assert again is not None and again.principal == session.principal
    assert again.csrf_token == session.csrf_token


def test_a_user_signs_in_with_its_current_policies(store: Store) -> None:
    store.add_user("alice", "AliyunKMSReadOnlyAccess")
    session = store.sign_in.sign_in(f"alice@{store.account}.onaliyun.com", USER_PASSWORD)
    assert session.principal.name == "user/alice" and len(session.principal.policies) == 1
    assert session.sign_in_name == f"alice@{store.account}.onaliyun.com"
    with store.db.unit_of_work(write=True) as uow:
        uow.identities.attach(
            store.account, AttachmentRow("User", "alice", "System", "AliyunKMSFullAccess", store.clock.now())
        )
    current = store.sign_in.session(session.token)
    assert current is not None and len(current.principal.policies) == 2


def test_the_alias_form_signs_in_once_the_account_has_one(store: Store) -> None:
    store.add_user("alice")
    with pytest.raises(SignInFailed):
        store.sign_in.sign_in("alice@example-corp", USER_PASSWORD)
    store.profiles.set_alias(store.root_ctx, "example-corp")
    assert store.profiles.get_alias(store.root_ctx) == "example-corp"
    assert (
        store.sign_in.sign_in("alice@Example-Corp.onaliyun.com", USER_PASSWORD).principal.name == "user/alice"
    )
    assert store.sign_in.sign_in("example-corp", ROOT_PASSWORD).principal.name == "root"
    store.profiles.clear_alias(store.root_ctx)
    assert store.profiles.get_alias(store.root_ctx) == store.account
    with pytest.raises(SignInFailed):
        store.sign_in.sign_in("alice@example-corp", USER_PASSWORD)


def test_every_wrong_sign_in_is_the_same_failure(store: Store) -> None:
    store.add_user("alice")
    store.add_user("bob")
    store.profiles.delete(store.root_ctx, "bob")
    attempts = [
        (store.account, "Wrong-Passw0rd"),  # wrong password
        ("9999999999999999", ROOT_PASSWORD),  # unknown account
        (f"nobody@{store.account}", USER_PASSWORD),  # unknown user
        (f"bob@{store.account}", USER_PASSWORD),  # user without a login profile
        ("not a name at all", ROOT_PASSWORD),
    ]
    messages = set()
    for name, password in attempts:
        with pytest.raises(SignInFailed) as caught:
            store.sign_in.sign_in(name, password)
        assert type(caught.value) is SignInFailed
        messages.add(caught.value.message)
    assert len(messages) == 1


def test_failures_lock_and_success_resets(store: Store) -> None:
    name = store.account
    for _ in range(POLICY.lockout_threshold - 1):
        with pytest.raises(SignInFailed):
            store.sign_in.sign_in(name, "Wrong-Passw0rd")
    store.sign_in.sign_in(name, ROOT_PASSWORD)  # success resets the count
    for _ in range(POLICY.lockout_threshold - 1):
        with pytest.raises(SignInFailed):
            store.sign_in.sign_in(name, "Wrong-Passw0rd")
    with pytest.raises(SignInFailed) as last:
        store.sign_in.sign_in(name, "Wrong-Passw0rd")
    assert not isinstance(last.value, SignInLocked)  # the failure that locks is still a failure
    with pytest.raises(SignInLocked):
        store.sign_in.sign_in(name, ROOT_PASSWORD)  # even the right password, while locked
    store.advance(POLICY.lockout_seconds - 1)
    with pytest.raises(SignInLocked):
        store.sign_in.sign_in(name, ROOT_PASSWORD)
    store.advance(1)
    assert store.sign_in.sign_in(name, ROOT_PASSWORD).principal.name == "root"


def test_attempts_are_counted_before_the_password_is_checked(store: Store) -> None:
    """Attempts in flight count: once as many as the threshold are counted and not yet resolved,
    the next is refused as locked without its password being checked."""
    name = store.account
    for _ in range(POLICY.lockout_threshold):
        assert store.sign_in._reserve_attempt(name, "root", store.clock.timestamp())
    assert not store.sign_in._reserve_attempt(name, "root", store.clock.timestamp())
    with pytest.raises(SignInLocked):
        store.sign_in.sign_in(name, ROOT_PASSWORD)


def test_every_failure_waits_the_same_whatever_the_name(store: Store) -> None:
    names = [store.account, f"ghost@{store.account}", "9999999999999999", "not a name"]
    assert {store.sign_in.failure_delay(name) for name in names} == {FAILURE_DELAY}
    for _ in range(POLICY.lockout_threshold):
        with pytest.raises(SignInFailed):
            store.sign_in.sign_in(store.account, "Wrong-Passw0rd")
    assert store.sign_in.failure_delay(store.account) == FAILURE_DELAY  # locked: the same


def test_a_lapsed_lock_starts_the_count_again(store: Store) -> None:
    for _ in range(POLICY.lockout_threshold):
        with pytest.raises(SignInFailed):
            store.sign_in.sign_in(store.account, "Wrong-Passw0rd")
    store.advance(POLICY.lockout_seconds)
    with pytest.raises(SignInFailed) as caught:
        store.sign_in.sign_in(store.account, "Wrong-Passw0rd")
    assert not isinstance(caught.value, SignInLocked)
    store.sign_in.sign_in(store.account, ROOT_PASSWORD)  # one failure after the lock does not lock


def test_the_lock_is_per_principal_whichever_name_form(store: Store) -> None:
    store.add_user("alice")
    store.profiles.set_alias(store.root_ctx, "example-corp")
    for name in ("alice@example-corp", f"alice@{store.account}", f"alice@{store.account}.onaliyun.com"):
        with pytest.raises(SignInFailed):
            store.sign_in.sign_in(name, "Wrong-Passw0rd")
    with pytest.raises(SignInLocked):
        store.sign_in.sign_in("alice@example-corp.onaliyun.com", USER_PASSWORD)
    assert store.sign_in.sign_in(store.account, ROOT_PASSWORD)  # the root is not locked


def test_unknown_names_store_nothing_and_wait_the_same(store: Store) -> None:
    def rows() -> list[tuple[object, ...]]:
        with store.db.unit_of_work() as uow:
            return [tuple(r) for r in uow.connection.execute(select(console_passwords))]

    before = rows()
    for _ in range(POLICY.lockout_threshold + 1):
        with pytest.raises(SignInFailed):
            store.sign_in.sign_in(f"ghost@{store.account}", "Wrong-Passw0rd")
        with pytest.raises(SignInFailed):
            store.sign_in.sign_in("9999999999999999", "Wrong-Passw0rd")
    assert rows() == before


# ---- sessions ---------------------------------------------------------------------------------------


def test_only_hashes_are_stored(store: Store) -> None:
    session = store.sign_in.sign_in(store.account, ROOT_PASSWORD)
    with store.db.unit_of_work() as uow:
        stored = [tuple(r) for r in uow.connection.execute(select(console_sessions))]
        passwords = [tuple(r) for r in uow.connection.execute(select(console_passwords))]
    text = repr(stored) + repr(passwords)
    assert session.token not in text and session.csrf_token not in text and ROOT_PASSWORD not in text
    assert stored[0][0] == token_hash(session.token)


def test_an_idle_session_ends_and_a_busy_one_is_kept(store: Store) -> None:
    session = store.sign_in.sign_in(store.account, ROOT_PASSWORD)
    for _ in range(3):
        store.advance(POLICY.idle_seconds - 10)
        assert store.sign_in.session(session.token) is not None  # each request keeps it alive
    store.advance(POLICY.idle_seconds + 1)
    assert store.sign_in.session(session.token) is None
    store.advance(-POLICY.idle_seconds)  # gone for good, not just lapsed
    assert store.sign_in.session(session.token) is None


def test_a_session_ends_at_its_absolute_expiry(store: Store) -> None:
    session = store.sign_in.sign_in(store.account, ROOT_PASSWORD)
    moved = 0.0
    while moved + 500 < POLICY.max_seconds:
        store.advance(500)
        moved += 500
        current = store.sign_in.session(session.token)
        assert current is not None
        assert current.expires_at <= store.clock.timestamp() - moved + POLICY.max_seconds
    store.advance(POLICY.max_seconds - moved)
    assert store.sign_in.session(session.token) is None


def test_sign_out_ends_the_session_only(store: Store) -> None:
    first = store.sign_in.sign_in(store.account, ROOT_PASSWORD)
    second = store.sign_in.sign_in(store.account, ROOT_PASSWORD)
    store.sign_in.sign_out(first.token)
    assert store.sign_in.session(first.token) is None
    assert store.sign_in.session(second.token) is not None
    assert store.sign_in.session("") is None and store.sign_in.session("made-up") is None


def test_change_password_keeps_this_session_and_ends_the_others(store: Store) -> None:
    store.add_user("alice")
    store.profiles.update(store.root_ctx, "alice", None, True, None)
    here = store.sign_in.sign_in(f"alice@{store.account}", USER_PASSWORD)
    elsewhere = store.sign_in.sign_in(f"alice@{store.account}", USER_PASSWORD)
    root = store.sign_in.sign_in(store.account, ROOT_PASSWORD)
    assert here.password_reset_required
    with pytest.raises(IncorrectPassword):
        store.sign_in.change_password(here.token, "Wrong-Passw0rd", "New-Passw0rd")
    with pytest.raises(PasswordPolicyViolation):
        store.sign_in.change_password(here.token, USER_PASSWORD, "weak")
    store.sign_in.change_password(here.token, USER_PASSWORD, "New-Passw0rd")
    kept = store.sign_in.session(here.token)
    assert kept is not None and not kept.password_reset_required
    assert store.sign_in.session(elsewhere.token) is None
    assert store.sign_in.session(root.token) is not None
    with pytest.raises(SignInFailed):
        store.sign_in.sign_in(f"alice@{store.account}", USER_PASSWORD)
    store.sign_in.sign_in(f"alice@{store.account}", "New-Passw0rd")
    store.sign_in.sign_out(here.token)
    with pytest.raises(SignInFailed):
        store.sign_in.change_password(here.token, "New-Passw0rd", "Newer-Passw0rd")


def test_sessions_end_with_the_login_profile_or_the_user(store: Store) -> None:
    store.add_user("alice")
    store.add_user("bob")
    alice = store.sign_in.sign_in(f"alice@{store.account}", USER_PASSWORD)
    bob = store.sign_in.sign_in(f"bob@{store.account}", USER_PASSWORD)
    store.profiles.delete(store.root_ctx, "alice")
    assert store.sign_in.session(alice.token) is None
    store.ram.delete_user(store.root_ctx, "bob")  # its login profile goes with it
    assert store.sign_in.session(bob.token) is None
    with pytest.raises(EntityNotExist):
        store.profiles.get(store.root_ctx, "bob")


def test_a_new_password_from_the_administrator_ends_the_roots_sessions(store: Store) -> None:
    session = store.sign_in.sign_in(store.account, ROOT_PASSWORD)
    for _ in range(POLICY.lockout_threshold):
        with pytest.raises(SignInFailed):
            store.sign_in.sign_in(store.account, "Wrong-Passw0rd")
    store.sign_in.set_account_password(store.account, "Other-Passw0rd")
    assert store.sign_in.session(session.token) is None
    assert store.sign_in.sign_in(store.account, "Other-Passw0rd").principal.name == "root"  # lock lifted
    with pytest.raises(PasswordPolicyViolation):
        store.sign_in.set_account_password(store.account, "short")
    with pytest.raises(EntityNotExist):
        store.sign_in.set_account_password(AccountId("9999999999999999"), "Other-Passw0rd")


def test_wrong_old_passwords_count_towards_the_lockout(store: Store) -> None:
    session = store.sign_in.sign_in(store.account, ROOT_PASSWORD)
    for _ in range(POLICY.lockout_threshold):
        with pytest.raises(IncorrectPassword):
            store.sign_in.change_password(session.token, "Wrong-Passw0rd", "New-Passw0rd")
    with pytest.raises(SignInLocked):
        store.sign_in.change_password(session.token, ROOT_PASSWORD, "New-Passw0rd")
    with pytest.raises(SignInLocked):
        store.sign_in.sign_in(store.account, ROOT_PASSWORD)
    store.advance(POLICY.lockout_seconds)
    store.sign_in.sign_in(store.account, ROOT_PASSWORD)
