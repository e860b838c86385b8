"""Console sign-in: passwords checked, failures slowed and locked out, server-side sessions.

Owns the console session's life: a random token goes to the browser's cookie and only its SHA-256 is
stored; the CSRF token is derived from it (HMAC), never stored. A session ends when idle past
`console_session_idle_seconds`, `console_session_max_seconds` after sign-in, at sign-out, when the
password changes (the principal's other sessions), and when its user or login profile is deleted.
Never logs or stores a password or a token; every failure to sign in is the same SignInFailed.

These calls block (database, Argon2id): the console runs them in a thread.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from openkms.clock import Clock, iso_utc
from openkms.domain.sign_in_names import SignInName, parse_sign_in_name
from openkms.errors import (
    EntityNotExist,
    IncorrectPassword,
    SignInFailed,
    SignInLocked,
)
from openkms.repository.console import PasswordRow, SessionRow
from openkms.repository.database import Database, UnitOfWork
from openkms.service.context import Principal
from openkms.service.identities import attached_policies
from openkms.service.passwords import burn_verification, check_rules, hash_password, verify_password
from openkms.types import AccountId

# How often a session's last_seen is written at most (the idle expiry is a setting of many minutes).
TOUCH_SECONDS = 30.0
# The delay before answering a failed sign-in: the same for every name, known or not, locked or not,
# so the answer's timing tells nothing about which names exist.
FAILURE_DELAY = 1.0


@dataclass(frozen=True, slots=True)
class SignInPolicy:
    """The console's settings (config.py: console_*)."""

    idle_seconds: float = 1800.0
    max_seconds: float = 43200.0
    lockout_threshold: int = 5
    lockout_seconds: float = 900.0


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    token: str  # the cookie value; only its SHA-256 is stored
    csrf_token: str  # HMAC-SHA256(token, "csrf"), url-safe; never stored
    principal: Principal  # the root, or the RAM user with its current attached policies
    sign_in_name: str  # as typed, normalised (`SignInName.normalised`)
    password_reset_required: bool
    expires_at: float  # when it lapses if idle (epoch seconds): the idle expiry or the absolute one


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def csrf_token_for(token: str) -> str:
    digest = hmac.new(token.encode("utf-8"), b"csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _moment(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


class SignInService:
    def __init__(self, db: Database, clock: Clock, policy: SignInPolicy) -> None:
        self._db = db
        self._clock = clock
        self._policy = policy

    # -- signing in ---------------------------------------------------------------------------------
    def sign_in(self, sign_in_name: str, password: str) -> ConsoleSession:
        """A new session, or SignInFailed (whatever was wrong) / SignInLocked (too many failures)."""
        parsed = parse_sign_in_name(sign_in_name)
        found = None
        if parsed is not None:
            with self._db.reading() as uow:
                found = self._find(uow, parsed)
        if found is None:
            burn_verification(password)  # an unknown name costs what a known one does
            raise SignInFailed()
        account_id, principal_name, row = found
        now = self._clock.timestamp()
        # The attempt is counted before its password is checked, so parallel guesses cannot get
        # past the threshold while earlier ones are still being verified.
        if not self._reserve_attempt(account_id, principal_name, now):
            burn_verification(password)  # a locked name costs what any other does
            raise SignInLocked()
        if not verify_password(password, row.password_hash):
            self._lock_if_due(account_id, principal_name, now)
            raise SignInFailed()
        assert parsed is not None
        token = secrets.token_urlsafe(32)
        with self._db.unit_of_work(write=True) as uow:
            current = uow.console.password(account_id, principal_name, lock=True)
            if current is None or not hmac.compare_digest(current.password_hash, row.password_hash):
                raise SignInFailed()  # deleted or changed while we checked
            if _locked(current, now):
                raise SignInLocked(iso_utc(current.locked_until)) if current.locked_until else SignInLocked()
            if current.failed_count or current.locked_until is not None:
                uow.console.record_failure(account_id, principal_name, 0, None)
            uow.console.delete_expired_sessions(_moment(now))
            uow.console.add_session(
                SessionRow(
                    token_hash(token),
                    account_id,
                    principal_name,
                    parsed.normalised(),
                    _moment(now),
                    _moment(now),
                    _moment(now + self._policy.max_seconds),
                )
            )
            principal = _principal(uow, account_id, principal_name)
        if principal is None:
            raise SignInFailed()
        return ConsoleSession(
            token,
            csrf_token_for(token),
            principal,
            parsed.normalised(),
            current.password_reset_required,
            now + min(self._policy.idle_seconds, self._policy.max_seconds),
        )

    def failure_delay(self, sign_in_name: str) -> float:
        """Seconds the console waits before answering a failed sign-in: the same for every name."""
        return FAILURE_DELAY

    def _reserve_attempt(self, account_id: str, principal_name: str, now: float) -> bool:
        """Count one attempt on a name before its password is checked; False when it is locked
        (or as many attempts as the threshold are already counted). A success resets the count."""
        with self._db.unit_of_work(write=True) as uow:
            row = uow.console.password(account_id, principal_name, lock=True)
            if row is None:
                return True  # deleted meanwhile: the check fails as for any unknown name
            if _locked(row, now):
                return False
            lapsed = row.locked_until is not None
            count = 0 if lapsed else row.failed_count
            if count >= self._policy.lockout_threshold:
                return False
            uow.console.record_failure(account_id, principal_name, count + 1, None)
        return True

    def _lock_if_due(self, account_id: str, principal_name: str, now: float) -> None:
        """After a failed check: lock the name once its counted attempts reach the threshold."""
        with self._db.unit_of_work(write=True) as uow:
            row = uow.console.password(account_id, principal_name, lock=True)
            if row is None or row.locked_until is not None:
                return
            if row.failed_count >= self._policy.lockout_threshold:
                locked_until = _moment(now + self._policy.lockout_seconds)
                uow.console.record_failure(account_id, principal_name, row.failed_count, locked_until)

    def _record_failure(self, account_id: str, principal_name: str, now: float) -> None:
        with self._db.unit_of_work(write=True) as uow:
            row = uow.console.password(account_id, principal_name, lock=True)
            if row is None:
                return
            lapsed = row.locked_until is not None and row.locked_until.timestamp() <= now
            count = (0 if lapsed else row.failed_count) + 1
            locked_until = None
            if count >= self._policy.lockout_threshold:
                locked_until = _moment(now + self._policy.lockout_seconds)
            uow.console.record_failure(account_id, principal_name, count, locked_until)

    def _find(self, uow: UnitOfWork, name: SignInName) -> tuple[AccountId, str, PasswordRow] | None:
        if name.by_uid:
            account_id = AccountId(name.domain) if uow.accounts.exists(name.domain) else None
        else:
            account_id = uow.accounts.account_with_alias(name.domain)
        if account_id is None:
            return None
        principal_name = "root" if name.user_name is None else f"user/{name.user_name}"
        if name.user_name is not None and uow.identities.user(account_id, name.user_name) is None:
            return None
        row = uow.console.password(account_id, principal_name)
        return None if row is None else (account_id, principal_name, row)

    # -- sessions -----------------------------------------------------------------------------------
    def session(self, token: str) -> ConsoleSession | None:
        """The live session of a cookie's token (touched), or None when it has ended."""
        if not token:
            return None
        hashed = token_hash(token)
        now = self._clock.timestamp()
        with self._db.reading() as uow:
            row = uow.console.session(hashed)
            if row is None:
                return None
            password = uow.console.password(row.account_id, row.principal_name)
            principal = None if password is None else _principal(uow, row.account_id, row.principal_name)
        idle_since = now - row.last_seen_at.timestamp()
        if (
            principal is None
            or password is None
            or idle_since > self._policy.idle_seconds
            or (now >= row.expires_at.timestamp())
        ):
            with self._db.unit_of_work(write=True) as uow:
                uow.console.delete_session(hashed)
            return None
        if idle_since >= TOUCH_SECONDS:
            with self._db.unit_of_work(write=True) as uow:
                uow.console.touch_session(hashed, _moment(now))
        return ConsoleSession(
            token,
            csrf_token_for(token),
            principal,
            row.sign_in_name,
            password.password_reset_required,
            min(now + self._policy.idle_seconds, row.expires_at.timestamp()),
        )

    def sign_out(self, token: str) -> None:
        with self._db.unit_of_work(write=True) as uow:
            uow.console.delete_session(token_hash(token))

    # -- passwords ----------------------------------------------------------------------------------
    def change_password(self, token: str, old_password: str, new_password: str) -> None:
        """The signed-in principal's own new password; its other sessions end. A wrong old password
        (IncorrectPassword) counts towards the lockout like a failed sign-in (then SignInLocked)."""
        current = self.session(token)
        if current is None:
            raise SignInFailed("Your console session has ended; sign in again.")
        check_rules(new_password, "NewPassword")
        account_id = current.principal.account_id
        principal_name = current.principal.name
        with self._db.reading() as uow:
            row = uow.console.password(account_id, principal_name)
        if row is None:
            raise SignInFailed("Your console session has ended; sign in again.")
        # A wrong old password counts like a failed sign-in: a stolen session cannot guess it freely.
        now_ts = self._clock.timestamp()
        if _locked(row, now_ts):
            raise SignInLocked(iso_utc(row.locked_until)) if row.locked_until else SignInLocked()
        if not verify_password(old_password, row.password_hash):
            self._record_failure(account_id, principal_name, now_ts)
            raise IncorrectPassword()
        encoded = hash_password(new_password)
        now = self._clock.now()
        with self._db.unit_of_work(write=True) as uow:
            latest = uow.console.password(account_id, principal_name, lock=True)
            if latest is None or not hmac.compare_digest(latest.password_hash, row.password_hash):
                raise IncorrectPassword()  # changed meanwhile: the old password is no longer current
            uow.console.set_password(account_id, principal_name, encoded, False, now)
            uow.console.delete_sessions_of(account_id, principal_name, keep=token_hash(token))

    def set_account_password(self, account_id: str, password: str) -> None:
        """The main account's (root's) console password, set by an administrator (the CLI). Its
        sessions end; a lock is lifted."""
        check_rules(password)
        encoded = hash_password(password)
        now = self._clock.now()
        with self._db.unit_of_work(write=True) as uow:
            if not uow.accounts.exists(account_id):
                raise EntityNotExist("Account", f"The account {account_id} does not exist.")
            if uow.console.password(account_id, "root", lock=True) is None:
                uow.console.add_password(new_password_row(account_id, "root", encoded, now))
            else:
                uow.console.set_password(account_id, "root", encoded, False, now)
            uow.console.delete_sessions_of(account_id, "root")


def new_password_row(
    account_id: str,
    principal_name: str,
    encoded: str,
    now: datetime,
    *,
    reset_required: bool = False,
    mfa_bind_required: bool = False,
) -> PasswordRow:
    return PasswordRow(
        account_id, principal_name, encoded, reset_required, mfa_bind_required, now, now, 0, None
    )


def _locked(row: PasswordRow, now: float) -> bool:
    return row.locked_until is not None and now < row.locked_until.timestamp()


def _principal(uow: UnitOfWork, account_id: str, principal_name: str) -> Principal | None:
    """The principal as the API's credentials build it, with the user's current policies; None when
    the user no longer exists."""
    if principal_name == "root":
        return Principal(AccountId(account_id), "root")
    user_name = principal_name.removeprefix("user/")
    if uow.identities.user(account_id, user_name) is None:
        return None
    policies = attached_policies(uow.identities, account_id, "User", user_name)
    return Principal(AccountId(account_id), principal_name, policies)
