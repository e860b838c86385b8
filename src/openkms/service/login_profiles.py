"""RAM login profiles (a RAM user's console password) and the account alias, as the RAM API
(2015-05-01) models them: CreateLoginProfile, GetLoginProfile, UpdateLoginProfile, DeleteLoginProfile,
ChangePassword, SetAccountAlias, GetAccountAlias, ClearAccountAlias.

A login profile is the user's row in the console passwords (`repository/console.py`): only its
Argon2id hash is stored. Authorized as `ram:<Action>` on the user's ARN, like the other RAM actions;
ChangePassword is a RAM user's own (no policy needed, as in Alibaba's default security settings); the
account alias is its root's alone. A changed or deleted password ends the user's console sessions.
Never returns, logs or audits a password.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from openkms.clock import Clock
from openkms.domain.sign_in_names import check_alias
from openkms.errors import (
    AccessDenied,
    EntityAlreadyExists,
    EntityNotExist,
    IncorrectPassword,
    InvalidArgument,
)
from openkms.repository.console import PasswordRow
from openkms.repository.database import Database
from openkms.service.authorization import authorize_own
from openkms.service.context import RequestContext
from openkms.service.passwords import check_rules, hash_password, verify_password
from openkms.service.ram import USER_NAME, user_resource
from openkms.service.sign_in import new_password_row

LOGIN_PROFILE = "User.LoginProfile"


@dataclass(frozen=True, slots=True)
class LoginProfile:
    user_name: str
    password_reset_required: bool
    mfa_bind_required: bool
    created_at: datetime


def _profile(user_name: str, row: PasswordRow) -> LoginProfile:
    return LoginProfile(user_name, row.password_reset_required, row.mfa_bind_required, row.created_at)


class LoginProfileService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def create(
        self,
        ctx: RequestContext,
        user_name: str,
        password: str,
        reset_required: bool,
        mfa_bind_required: bool,
    ) -> LoginProfile:
        account = ctx.principal.account_id
        _check_user_name(user_name)
        authorize_own(ctx, "ram:CreateLoginProfile", user_resource(account, user_name))
        check_rules(password)
        encoded = hash_password(password)
        now = self._clock.now()
        row = new_password_row(
            account,
            f"user/{user_name}",
            encoded,
            now,
            reset_required=reset_required,
            mfa_bind_required=mfa_bind_required,
        )
        try:
            with self._db.unit_of_work(write=True) as uow:
                _require_user(uow.identities.user(account, user_name) is not None, user_name)
                if uow.console.password(account, row.principal_name) is not None:
                    raise _exists(user_name)
                uow.console.add_password(row)
        except IntegrityError:
            raise _exists(user_name) from None
        return _profile(user_name, row)

    def get(self, ctx: RequestContext, user_name: str) -> LoginProfile:
        account = ctx.principal.account_id
        _check_user_name(user_name)
        authorize_own(ctx, "ram:GetLoginProfile", user_resource(account, user_name))
        with self._db.unit_of_work() as uow:
            _require_user(uow.identities.user(account, user_name) is not None, user_name)
            row = uow.console.password(account, f"user/{user_name}")
        if row is None:
            raise _missing(user_name)
        return _profile(user_name, row)

    def update(
        self,
        ctx: RequestContext,
        user_name: str,
        password: str | None,
        reset_required: bool | None,
        mfa_bind_required: bool | None,
    ) -> LoginProfile:
        account = ctx.principal.account_id
        _check_user_name(user_name)
        authorize_own(ctx, "ram:UpdateLoginProfile", user_resource(account, user_name))
        encoded = None if password is None else hash_password(check_rules(password))
        principal_name = f"user/{user_name}"
        now = self._clock.now()
        with self._db.unit_of_work(write=True) as uow:
            _require_user(uow.identities.user(account, user_name) is not None, user_name)
            row = uow.console.password(account, principal_name, lock=True)
            if row is None:
                raise _missing(user_name)
            if encoded is not None:
                uow.console.set_password(account, principal_name, encoded, row.password_reset_required, now)
                uow.console.delete_sessions_of(account, principal_name)
            uow.console.set_flags(
                account,
                principal_name,
                now,
                reset_required=reset_required,
                mfa_bind_required=mfa_bind_required,
            )
            updated = uow.console.password(account, principal_name)
        assert updated is not None
        return _profile(user_name, updated)

    def delete(self, ctx: RequestContext, user_name: str) -> None:
        account = ctx.principal.account_id
        _check_user_name(user_name)
        authorize_own(ctx, "ram:DeleteLoginProfile", user_resource(account, user_name))
        with self._db.unit_of_work(write=True) as uow:
            _require_user(uow.identities.user(account, user_name) is not None, user_name)
            if not uow.console.delete_password(account, f"user/{user_name}"):
                raise _missing(user_name)
            uow.console.delete_sessions_of(account, f"user/{user_name}")

    def change_password(self, ctx: RequestContext, old_password: str, new_password: str) -> None:
        """A RAM user changes its own console password (the API's ChangePassword)."""
        principal = ctx.principal
        if not principal.is_user or not principal.name.startswith("user/"):
            raise InvalidArgument("ChangePassword is for RAM users changing their own password.")
        check_rules(new_password, "NewPassword")
        account, principal_name = principal.account_id, principal.name
        user_name = principal_name.removeprefix("user/")
        with self._db.unit_of_work() as uow:
            row = uow.console.password(account, principal_name)
        if row is None:
            raise _missing(user_name)
        if not verify_password(old_password, row.password_hash):
            raise IncorrectPassword()
        encoded = hash_password(new_password)
        with self._db.unit_of_work(write=True) as uow:
            latest = uow.console.password(account, principal_name, lock=True)
            if latest is None or latest.password_hash != row.password_hash:
                raise IncorrectPassword()
            uow.console.set_password(account, principal_name, encoded, False, self._clock.now())
            uow.console.delete_sessions_of(account, principal_name)

    # -- the account alias --------------------------------------------------------------------------
    def set_alias(self, ctx: RequestContext, alias: str) -> None:
        _root_only(ctx, "SetAccountAlias")
        check_alias(alias)
        account = ctx.principal.account_id
        try:
            with self._db.unit_of_work(write=True) as uow:
                owner = uow.accounts.account_with_alias(alias)
                if owner is not None and owner != account:
                    raise _alias_taken(alias)
                uow.accounts.set_alias(account, alias)
        except IntegrityError:
            raise _alias_taken(alias) from None

    def get_alias(self, ctx: RequestContext) -> str:
        """The account's alias; its uid when it has none (as Alibaba answers)."""
        _root_only(ctx, "GetAccountAlias")
        with self._db.unit_of_work() as uow:
            alias = uow.accounts.alias(ctx.principal.account_id)
        return alias or ctx.principal.account_id

    def clear_alias(self, ctx: RequestContext) -> None:
        _root_only(ctx, "ClearAccountAlias")
        with self._db.unit_of_work(write=True) as uow:
            uow.accounts.set_alias(ctx.principal.account_id, None)


def _check_user_name(user_name: str) -> None:
    if not USER_NAME.match(user_name):
        raise InvalidArgument(
            "The parameter UserName must be 1 to 64 letters, digits or . _ - @.", parameter="UserName"
        )


def _require_user(exists: bool, user_name: str) -> None:
    if not exists:
        raise EntityNotExist("User", f"The user {user_name} does not exist.")


def _missing(user_name: str) -> EntityNotExist:
    return EntityNotExist(LOGIN_PROFILE, f"The login profile of user {user_name} does not exist.")


def _exists(user_name: str) -> EntityAlreadyExists:
    return EntityAlreadyExists(LOGIN_PROFILE, f"The login profile of user {user_name} already exists.")


def _alias_taken(alias: str) -> EntityAlreadyExists:
    return EntityAlreadyExists("Account.Alias", f"The account alias {alias} is taken.")


def _root_only(ctx: RequestContext, action: str) -> None:
    if ctx.principal.name != "root" or not ctx.principal.is_user:
        raise AccessDenied(f"Only the account's root may call {action}.")
