"""RAM use cases: users, roles, custom and system policies, attachments, and access keys of users.

Everything acts inside the caller's own account and is authorized as `ram:<Action>` on the entity's
ARN (an account's root always may; a RAM user needs an identity policy). A change that can alter what
a credential may do bumps the node's change generation, so every worker drops its cached credentials.
Access-key secrets are returned once, at creation, and stored wrapped like key material.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from openkms.clock import Clock
from openkms.domain.identity import Role, User
from openkms.errors import (
    DeleteConflict,
    EntityAlreadyExists,
    EntityLimitExceeded,
    EntityNotExist,
    InvalidArgument,
)
from openkms.keystore import Keystore
from openkms.node.generation import Generation
from openkms.policy.document import PolicyKind, parse_policy
from openkms.policy.system import SYSTEM_POLICIES
from openkms.repository.database import Database
from openkms.repository.identities import (
    AccessKeyInfo,
    AttachmentRow,
    IdentityRepository,
    PolicyRow,
)
from openkms.secret import SecretBytes
from openkms.service import ids
from openkms.service.authorization import authorize_own
from openkms.service.context import RequestContext
from openkms.service.identities import secret_binding

USER_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}\Z")
ROLE_NAME = re.compile(r"^[A-Za-z0-9.-]{1,64}\Z")
POLICY_NAME = re.compile(r"^[A-Za-z0-9-]{1,128}\Z")
ACCESS_KEYS_PER_USER = 2
DESCRIPTION_LIMIT = 1024
SESSION_MIN, SESSION_MAX, SESSION_DEFAULT = 3600, 43200, 3600
POLICY_TYPES = ("System", "Custom")


@dataclass(frozen=True, slots=True)
class NewAccessKey:
    access_key_id: str
    secret: SecretBytes
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PolicyView:
    policy_type: str
    policy_name: str
    description: str
    document: str
    attachment_count: int
    created_at: datetime | None  # None for system policies
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class AttachedPolicy:
    policy_type: str
    policy_name: str
    description: str
    attached_at: datetime


def role_arn(account_id: str, role_name: str) -> str:
    """A role's ARN as RAM returns it (and as key and trust policies name it as a principal)."""
    return f"acs:ram::{account_id}:role/{role_name}"


# Resource ARNs in RAM policies are written `acs:ram:*:<uid>:<type>/<name>` (Alibaba's documented form).
def user_resource(account_id: str, user_name: str) -> str:
    return f"acs:ram:*:{account_id}:user/{user_name}"


def role_resource(account_id: str, role_name: str) -> str:
    return f"acs:ram:*:{account_id}:role/{role_name}"


def policy_resource(account_id: str, policy_type: str, policy_name: str) -> str:
    owner = "system" if policy_type == "System" else account_id
    return f"acs:ram:*:{owner}:policy/{policy_name}"


def _check(pattern: re.Pattern[str], value: str, parameter: str, rule: str) -> str:
    if not pattern.match(value):
        raise InvalidArgument(f"The parameter {parameter} must be {rule}.", parameter=parameter)
    return value


def _description(value: str, parameter: str = "Description") -> str:
    if len(value) > DESCRIPTION_LIMIT:
        raise InvalidArgument(
            f"{parameter} is longer than {DESCRIPTION_LIMIT} characters.", parameter=parameter
        )
    return value


class RamService:
    def __init__(self, db: Database, keystore: Keystore, clock: Clock, generation: Generation) -> None:
        self._db = db
        self._keystore = keystore
        self._clock = clock
        self._generation = generation

    # -- users --------------------------------------------------------------------------------------
    def create_user(self, ctx: RequestContext, name: str, display_name: str | None, comments: str) -> User:
        account = ctx.principal.account_id
        _check(USER_NAME, name, "UserName", "1 to 64 letters, digits or . _ - @")
        authorize_own(ctx, "ram:CreateUser", user_resource(account, name))
        now = self._clock.now()
        comments = _description(comments, "Comments")
        row = User(account, name, ids.new_numeric_id(), display_name or name, comments, now, now)
        with self._db.unit_of_work(write=True) as uow:
            if uow.identities.user(account, name) is not None:
                raise EntityAlreadyExists("User", f"The user {name} already exists.")
            uow.identities.add_user(row)
        return row

    def get_user(self, ctx: RequestContext, name: str) -> User:
        authorize_own(ctx, "ram:GetUser", user_resource(ctx.principal.account_id, name))
        with self._db.unit_of_work() as uow:
            return _user(uow.identities, ctx.principal.account_id, name)

    def list_users(
        self, ctx: RequestContext, marker: str | None, limit: int
    ) -> tuple[list[User], str | None]:
        authorize_own(ctx, "ram:ListUsers", user_resource(ctx.principal.account_id, "*"))
        with self._db.unit_of_work() as uow:
            rows = uow.identities.users(ctx.principal.account_id, marker or "", limit + 1)
        return rows[:limit], (rows[limit - 1].user_name if len(rows) > limit else None)

    def delete_user(self, ctx: RequestContext, name: str) -> None:
        account = ctx.principal.account_id
        authorize_own(ctx, "ram:DeleteUser", user_resource(account, name))
        with self._db.unit_of_work(write=True) as uow:
            _user(uow.identities, account, name)
            if uow.identities.access_keys_of(account, f"user/{name}"):
                raise DeleteConflict("User.AccessKey", f"Delete the access keys of user {name} first.")
            if uow.identities.attachments(account, "User", name):
                raise DeleteConflict("User.Policy", f"Detach the policies of user {name} first.")
            # The login profile goes with the user, and so do its console sessions.
            uow.console.delete_password(account, f"user/{name}")
            uow.console.delete_sessions_of(account, f"user/{name}")
            uow.identities.delete_user(account, name)
        self._generation.bump()

    # -- access keys --------------------------------------------------------------------------------
    def create_access_key(self, ctx: RequestContext, user_name: str | None) -> NewAccessKey:
        account = ctx.principal.account_id
        principal_name = self._key_owner(ctx, user_name)
        authorize_own(ctx, "ram:CreateAccessKey", _owner_arn(account, principal_name))
        access_key_id, secret_text = ids.new_access_key()
        secret = SecretBytes(secret_text.encode())
        wrapped = self._keystore.wrap(*secret_binding(access_key_id), secret)
        now = self._clock.now()
        with self._db.unit_of_work(write=True) as uow:
            if principal_name != "root":
                _user(uow.identities, account, principal_name.removeprefix("user/"))
            if len(uow.identities.access_keys_of(account, principal_name)) >= ACCESS_KEYS_PER_USER:
                raise EntityLimitExceeded(
                    "User.AccessKey",
                    f"A user has at most {ACCESS_KEYS_PER_USER} access keys; delete one first.",
                )
            uow.accounts.add_access_key(access_key_id, account, principal_name, wrapped, now)
        return NewAccessKey(access_key_id, secret, now)

    def list_access_keys(self, ctx: RequestContext, user_name: str | None) -> list[AccessKeyInfo]:
        account = ctx.principal.account_id
        principal_name = self._key_owner(ctx, user_name)
        authorize_own(ctx, "ram:ListAccessKeys", _owner_arn(account, principal_name))
        with self._db.unit_of_work() as uow:
            if principal_name != "root":
                _user(uow.identities, account, principal_name.removeprefix("user/"))
            return uow.identities.access_keys_of(account, principal_name)

    def update_access_key(
        self, ctx: RequestContext, user_name: str | None, access_key_id: str, status: str
    ) -> None:
        if status not in ("Active", "Inactive"):
            raise InvalidArgument("Status must be Active or Inactive.", parameter="Status")
        account = ctx.principal.account_id
        principal_name = self._key_owner(ctx, user_name)
        authorize_own(ctx, "ram:UpdateAccessKey", _owner_arn(account, principal_name))
        with self._db.unit_of_work(write=True) as uow:
            if not uow.identities.set_access_key_status(account, principal_name, access_key_id, status):
                raise EntityNotExist("AccessKey", "The specified access key does not exist.")
        self._generation.bump()

    def delete_access_key(self, ctx: RequestContext, user_name: str | None, access_key_id: str) -> None:
        account = ctx.principal.account_id
        principal_name = self._key_owner(ctx, user_name)
        authorize_own(ctx, "ram:DeleteAccessKey", _owner_arn(account, principal_name))
        with self._db.unit_of_work(write=True) as uow:
            if not uow.identities.delete_access_key(account, principal_name, access_key_id):
                raise EntityNotExist("AccessKey", "The specified access key does not exist.")
        self._generation.bump()

    def _key_owner(self, ctx: RequestContext, user_name: str | None) -> str:
        """Whose access keys: the named user, else the caller itself (a root or a user)."""
        if user_name:
            _check(USER_NAME, user_name, "UserName", "1 to 64 letters, digits or . _ - @")
            return f"user/{user_name}"
        if ctx.principal.name == "root" or ctx.principal.name.startswith("user/"):
            return ctx.principal.name
        raise InvalidArgument("UserName is required when the caller is not a user.", parameter="UserName")

    # -- roles --------------------------------------------------------------------------------------
    def create_role(
        self, ctx: RequestContext, name: str, trust_policy: str, description: str, max_session: int | None
    ) -> Role:
        account = ctx.principal.account_id
        _check(ROLE_NAME, name, "RoleName", "1 to 64 letters, digits, . or -")
        parse_policy(trust_policy, PolicyKind.TRUST)
        duration = SESSION_DEFAULT if max_session is None else max_session
        authorize_own(ctx, "ram:CreateRole", role_resource(account, name))
        now = self._clock.now()
        description = _description(description)
        row = Role(account, name, ids.new_numeric_id(), description, trust_policy, duration, now, now)
        with self._db.unit_of_work(write=True) as uow:
            if uow.identities.role(account, name) is not None:
                raise EntityAlreadyExists("Role", f"The role {name} already exists.")
            uow.identities.add_role(row)
        return row

    def get_role(self, ctx: RequestContext, name: str) -> Role:
        authorize_own(ctx, "ram:GetRole", role_resource(ctx.principal.account_id, name))
        with self._db.unit_of_work() as uow:
            return _role(uow.identities, ctx.principal.account_id, name)

    def list_roles(
        self, ctx: RequestContext, marker: str | None, limit: int
    ) -> tuple[list[Role], str | None]:
        authorize_own(ctx, "ram:ListRoles", role_resource(ctx.principal.account_id, "*"))
        with self._db.unit_of_work() as uow:
            rows = uow.identities.roles(ctx.principal.account_id, marker or "", limit + 1)
        return rows[:limit], (rows[limit - 1].role_name if len(rows) > limit else None)

    def delete_role(self, ctx: RequestContext, name: str) -> None:
        account = ctx.principal.account_id
        authorize_own(ctx, "ram:DeleteRole", role_resource(account, name))
        with self._db.unit_of_work(write=True) as uow:
            _role(uow.identities, account, name)
            if uow.identities.attachments(account, "Role", name):
                raise DeleteConflict("Role.Policy", f"Detach the policies of role {name} first.")
            uow.identities.delete_role(account, name)
        self._generation.bump()  # its sessions stop working

    # -- policies -----------------------------------------------------------------------------------
    def create_policy(self, ctx: RequestContext, name: str, document: str, description: str) -> PolicyRow:
        account = ctx.principal.account_id
        _check(POLICY_NAME, name, "PolicyName", "1 to 128 letters, digits or -")
        parse_policy(document, PolicyKind.IDENTITY)
        authorize_own(ctx, "ram:CreatePolicy", policy_resource(account, "Custom", name))
        now = self._clock.now()
        row = PolicyRow(account, name, _description(description), document, now, now)
        with self._db.unit_of_work(write=True) as uow:
            if name in SYSTEM_POLICIES or uow.identities.policy(account, name) is not None:
                raise EntityAlreadyExists("Policy", f"The policy {name} already exists.")
            uow.identities.add_policy(row)
        return row

    def get_policy(self, ctx: RequestContext, name: str, policy_type: str) -> PolicyView:
        account = ctx.principal.account_id
        _policy_type(policy_type)
        authorize_own(ctx, "ram:GetPolicy", policy_resource(account, policy_type, name))
        with self._db.unit_of_work() as uow:
            return _policy_view(uow.identities, account, policy_type, name)

    def list_policies(
        self, ctx: RequestContext, policy_type: str | None, marker: str | None, limit: int
    ) -> tuple[list[PolicyView], str | None]:
        account = ctx.principal.account_id
        if policy_type is not None:
            _policy_type(policy_type)
        authorize_own(ctx, "ram:ListPolicies", policy_resource(account, "Custom", "*"))
        views: list[PolicyView] = []
        with self._db.unit_of_work() as uow:
            if policy_type in (None, "System"):
                views += [_policy_view(uow.identities, account, "System", n) for n in sorted(SYSTEM_POLICIES)]
            if policy_type in (None, "Custom"):
                rows = uow.identities.policies(account, "", 10_000)
                views += [_policy_view(uow.identities, account, "Custom", row.policy_name) for row in rows]
        views.sort(key=lambda v: f"{v.policy_type}/{v.policy_name}")
        ordered = [v for v in views if f"{v.policy_type}/{v.policy_name}" > (marker or "")]
        page = ordered[:limit]
        return page, (f"{page[-1].policy_type}/{page[-1].policy_name}" if len(ordered) > limit else None)

    def delete_policy(self, ctx: RequestContext, name: str, cascade: bool) -> None:
        account = ctx.principal.account_id
        authorize_own(ctx, "ram:DeletePolicy", policy_resource(account, "Custom", name))
        with self._db.unit_of_work(write=True) as uow:
            if uow.identities.policy(account, name) is None:
                raise EntityNotExist("Policy", f"The policy {name} does not exist.")
            if uow.identities.attachment_count(account, "Custom", name):
                if not cascade:
                    raise DeleteConflict("Policy.User", f"The policy {name} is attached; detach it first.")
                uow.identities.detach_policy_everywhere(account, "Custom", name)
            uow.identities.delete_policy(account, name)
        self._generation.bump()

    def attach(self, ctx: RequestContext, principal_type: str, principal_name: str, policy_type: str,
               policy_name: str) -> None:  # fmt: skip
        account = ctx.principal.account_id
        _policy_type(policy_type)
        target = (
            user_resource(account, principal_name)
            if principal_type == "User"
            else role_resource(account, principal_name)
        )
        authorize_own(ctx, f"ram:AttachPolicyTo{principal_type}", target)
        # ... and on the policy: a delegated administrator can be limited to the policies it may hand out.
        authorize_own(
            ctx, f"ram:AttachPolicyTo{principal_type}", policy_resource(account, policy_type, policy_name)
        )
        with self._db.unit_of_work(write=True) as uow:
            _principal(uow.identities, account, principal_type, principal_name)
            _policy_view(uow.identities, account, policy_type, policy_name)
            attached = uow.identities.attachments(account, principal_type, principal_name)
            if any(a.policy_type == policy_type and a.policy_name == policy_name for a in attached):
                raise EntityAlreadyExists(
                    f"{principal_type}.Policy",
                    f"The policy {policy_name} is already attached to {principal_name}.",
                )
            uow.identities.attach(
                account,
                AttachmentRow(principal_type, principal_name, policy_type, policy_name, self._clock.now()),
            )
        self._generation.bump()

    def detach(self, ctx: RequestContext, principal_type: str, principal_name: str, policy_type: str,
               policy_name: str) -> None:  # fmt: skip
        account = ctx.principal.account_id
        _policy_type(policy_type)
        target = (
            user_resource(account, principal_name)
            if principal_type == "User"
            else role_arn(account, principal_name)
        )
        authorize_own(ctx, f"ram:DetachPolicyFrom{principal_type}", target)
        with self._db.unit_of_work(write=True) as uow:
            _principal(uow.identities, account, principal_type, principal_name)
            if not uow.identities.detach(account, principal_type, principal_name, policy_type, policy_name):
                raise EntityNotExist(
                    f"{principal_type}.Policy",
                    f"The policy {policy_name} is not attached to {principal_name}.",
                )
        self._generation.bump()

    def attached(self, ctx: RequestContext, principal_type: str, principal_name: str) -> list[AttachedPolicy]:
        account = ctx.principal.account_id
        target = (
            user_resource(account, principal_name)
            if principal_type == "User"
            else role_arn(account, principal_name)
        )
        authorize_own(ctx, f"ram:ListPoliciesFor{principal_type}", target)
        with self._db.unit_of_work() as uow:
            _principal(uow.identities, account, principal_type, principal_name)
            out: list[AttachedPolicy] = []
            for row in uow.identities.attachments(account, principal_type, principal_name):
                view = _policy_view(uow.identities, account, row.policy_type, row.policy_name)
                out.append(
                    AttachedPolicy(row.policy_type, row.policy_name, view.description, row.attached_at)
                )
            return out


def _owner_arn(account_id: str, principal_name: str) -> str:
    return f"acs:ram:*:{account_id}:{principal_name}"


def _policy_type(value: str) -> None:
    if value not in POLICY_TYPES:
        raise InvalidArgument("PolicyType must be System or Custom.", parameter="PolicyType")


def _user(repo: IdentityRepository, account_id: str, name: str) -> User:
    row = repo.user(account_id, name)
    if row is None:
        raise EntityNotExist("User", f"The user {name} does not exist.")
    return row


def _role(repo: IdentityRepository, account_id: str, name: str) -> Role:
    row = repo.role(account_id, name)
    if row is None:
        raise EntityNotExist("Role", f"The role {name} does not exist.")
    return row


def _principal(repo: IdentityRepository, account_id: str, principal_type: str, name: str) -> None:
    if principal_type == "User":
        _user(repo, account_id, name)
    else:
        _role(repo, account_id, name)


def _policy_view(repo: IdentityRepository, account_id: str, policy_type: str, name: str) -> PolicyView:
    count = repo.attachment_count(account_id, policy_type, name)
    if policy_type == "System":
        entry = SYSTEM_POLICIES.get(name)
        if entry is None:
            raise EntityNotExist("Policy", f"There is no system policy {name}.")
        return PolicyView("System", name, entry[0], entry[1], count, None, None)
    row = repo.policy(account_id, name)
    if row is None:
        raise EntityNotExist("Policy", f"The policy {name} does not exist.")
    return PolicyView("Custom", name, row.description, row.document, count, row.created_at, row.updated_at)
