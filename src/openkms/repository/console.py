"""Console passwords (the account root's and RAM users' login profiles) and console sessions.

Rows only: passwords arrive here already hashed (Argon2id PHC strings) and sessions by the SHA-256
of their token; the rules live in `service/passwords.py` and `service/sign_in.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from openkms.repository.tables import as_utc, console_passwords, console_sessions


@dataclass(frozen=True, slots=True)
class PasswordRow:
    account_id: str
    principal_name: str  # "root" | "user/<name>"
    password_hash: str
    password_reset_required: bool
    mfa_bind_required: bool
    created_at: datetime
    updated_at: datetime
    failed_count: int
    locked_until: datetime | None


@dataclass(frozen=True, slots=True)
class SessionRow:
    token_hash: str
    account_id: str
    principal_name: str
    sign_in_name: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


class ConsoleRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    # -- passwords ----------------------------------------------------------------------------------
    def password(self, account_id: str, principal_name: str, *, lock: bool = False) -> PasswordRow | None:
        query = select(console_passwords).where(
            console_passwords.c.account_id == account_id,
            console_passwords.c.principal_name == principal_name,
        )
        found = self._c.execute(query.with_for_update() if lock else query).first()
        if found is None:
            return None
        values = found._asdict()
        for name in ("created_at", "updated_at", "locked_until"):
            if values[name] is not None:
                values[name] = as_utc(values[name])
        values["password_reset_required"] = bool(values["password_reset_required"])
        values["mfa_bind_required"] = bool(values["mfa_bind_required"])
        return PasswordRow(**values)

    def add_password(self, row: PasswordRow) -> None:
        self._c.execute(insert(console_passwords).values(**_fields(row)))

    def set_password(
        self, account_id: str, principal_name: str, password_hash: str, reset_required: bool, now: datetime
    ) -> None:
        """A new password: the failure count and any lock start again."""
        self._c.execute(
            update(console_passwords)
            .where(
                console_passwords.c.account_id == account_id,
                console_passwords.c.principal_name == principal_name,
            )
            .values(
                password_hash=password_hash,
                password_reset_required=reset_required,
                updated_at=now,
                failed_count=0,
                locked_until=None,
            )
        )

    def set_flags(
        self,
        account_id: str,
        principal_name: str,
        now: datetime,
        *,
        reset_required: bool | None = None,
        mfa_bind_required: bool | None = None,
    ) -> None:
        values: dict[str, object] = {"updated_at": now}
        if reset_required is not None:
            values["password_reset_required"] = reset_required
        if mfa_bind_required is not None:
            values["mfa_bind_required"] = mfa_bind_required
        self._c.execute(
            update(console_passwords)
            .where(
                console_passwords.c.account_id == account_id,
                console_passwords.c.principal_name == principal_name,
            )
            .values(**values)
        )

    def record_failure(
        self, account_id: str, principal_name: str, failed_count: int, locked_until: datetime | None
    ) -> None:
        self._c.execute(
            update(console_passwords)
            .where(
                console_passwords.c.account_id == account_id,
                console_passwords.c.principal_name == principal_name,
            )
            .values(failed_count=failed_count, locked_until=locked_until)
        )

    def delete_password(self, account_id: str, principal_name: str) -> int:
        result = self._c.execute(
            delete(console_passwords).where(
                console_passwords.c.account_id == account_id,
                console_passwords.c.principal_name == principal_name,
            )
        )
        return int(result.rowcount)

    # -- sessions -----------------------------------------------------------------------------------
    def add_session(self, row: SessionRow) -> None:
        self._c.execute(insert(console_sessions).values(**_fields(row)))

    def session(self, token_hash: str) -> SessionRow | None:
        found = self._c.execute(
            select(console_sessions).where(console_sessions.c.token_hash == token_hash)
        ).first()
        if found is None:
            return None
        values = found._asdict()
        for name in ("created_at", "last_seen_at", "expires_at"):
            values[name] = as_utc(values[name])
        return SessionRow(**values)

    def touch_session(self, token_hash: str, now: datetime) -> None:
        self._c.execute(
            update(console_sessions)
            .where(console_sessions.c.token_hash == token_hash)
            .values(last_seen_at=now)
        )

    def delete_session(self, token_hash: str) -> None:
        self._c.execute(delete(console_sessions).where(console_sessions.c.token_hash == token_hash))

    def delete_sessions_of(self, account_id: str, principal_name: str, *, keep: str | None = None) -> None:
        """End a principal's sessions (all, or all but the one whose hash is `keep`)."""
        condition = [
            console_sessions.c.account_id == account_id,
            console_sessions.c.principal_name == principal_name,
        ]
        if keep is not None:
            condition.append(console_sessions.c.token_hash != keep)
        self._c.execute(delete(console_sessions).where(*condition))

    def delete_expired_sessions(self, now: datetime) -> None:
        self._c.execute(delete(console_sessions).where(console_sessions.c.expires_at <= now))


def _fields(row: object) -> dict[str, object]:
    return {name: getattr(row, name) for name in row.__dataclass_fields__}  # type: ignore[attr-defined]
