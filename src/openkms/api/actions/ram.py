"""RAM (2015-05-01) actions served on the same RPC endpoint, shaped as the official
`alibabacloud-ram20150501` SDK models them: users, access keys, login profiles, roles, policies,
attachments and the account alias."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from openkms.api.actions.base import Action, Handler
from openkms.api.params import Params
from openkms.clock import iso_utc
from openkms.domain.identity import Role, User
from openkms.errors import UnsupportedOperation
from openkms.resource import Resource
from openkms.service.container import Services
from openkms.service.context import RequestContext
from openkms.service.login_profiles import LoginProfile
from openkms.service.outcome import Outcome, acting_on
from openkms.service.ram import SESSION_MAX, SESSION_MIN, PolicyView, role_arn

API_VERSION = "2015-05-01"

# Which RAM entity a request is about, from its parameters: every RAM resource is in the caller's
# own account and named by the request, so the audit record names it even when the call is denied.
ResourceOf = Callable[[Params, RequestContext], Resource | None]


def _user_named(params: Params, ctx: RequestContext) -> Resource:
    return Resource.user(ctx.principal.account_id, params.required_str("UserName"))


def _key_owner(params: Params, ctx: RequestContext) -> Resource:
    """An access key belongs to the named user, or to the caller when no user is named."""
    name = params.optional_str("UserName")
    return Resource.user(ctx.principal.account_id, name) if name else Resource(ctx.principal.arn)


def _role_named(params: Params, ctx: RequestContext) -> Resource:
    return Resource.role(ctx.principal.account_id, params.required_str("RoleName"))


def _policy_named(params: Params, ctx: RequestContext) -> Resource:
    policy_type = params.optional_str("PolicyType") or "Custom"
    return Resource.policy(ctx.principal.account_id, params.required_str("PolicyName"), policy_type)


def _caller(params: Params, ctx: RequestContext) -> Resource:
    return Resource(ctx.principal.arn)


def _own_account(params: Params, ctx: RequestContext) -> Resource:
    return Resource.account(ctx.principal.account_id)


def _listing_only(params: Params, ctx: RequestContext) -> None:
    return None


def _about(name: str, handler: Handler, parameters: frozenset[str], resource_of: ResourceOf) -> Action:
    """A RAM action whose outcome (and error) names the entity it was about."""

    def run(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
        resource = resource_of(params, ctx)
        if resource is None:
            return Outcome(_body(handler(params, ctx, services)))
        with acting_on(resource):
            return Outcome(_body(handler(params, ctx, services)), resource)

    return Action(name, run, parameters)


def _body(answer: Outcome[Mapping[str, object]] | Mapping[str, object]) -> Mapping[str, object]:
    return answer.value if isinstance(answer, Outcome) else answer


def _user(row: User) -> dict[str, object]:
    return {
        "UserName": row.user_name,
        "UserId": row.user_id,
        "DisplayName": row.display_name,
        "Comments": row.comments,
        "CreateDate": iso_utc(row.created_at),
        "UpdateDate": iso_utc(row.updated_at),
    }


def _role(row: Role) -> dict[str, object]:
    return {
        "RoleName": row.role_name,
        "RoleId": row.role_id,
        "Arn": role_arn(row.account_id, row.role_name),
        "Description": row.description,
        "AssumeRolePolicyDocument": row.assume_role_policy,
        "MaxSessionDuration": row.max_session_duration,
        "CreateDate": iso_utc(row.created_at),
        "UpdateDate": iso_utc(row.updated_at),
    }


def _policy(view: PolicyView, *, document: bool) -> dict[str, object]:
    out: dict[str, object] = {
        "PolicyName": view.policy_name,
        "PolicyType": view.policy_type,
        "Description": view.description,
        "DefaultVersion": "v1",
        "AttachmentCount": view.attachment_count,
    }
    if view.created_at is not None:
        out["CreateDate"] = iso_utc(view.created_at)
    if view.updated_at is not None:
        out["UpdateDate"] = iso_utc(view.updated_at)
    if document:
        out["PolicyDocument"] = view.document
    return out


def _no_tags(params: Params) -> None:
    """The SDK sends `Tag=[]` even when no tag is given; actual tags on RAM entities are refused."""
    tags = params.json_list("Tag")
    if tags:
        raise UnsupportedOperation("Tags on RAM users, roles and policies are not supported.")


def _page(params: Params) -> tuple[str | None, int]:
    return params.optional_str("Marker") or None, params.optional_int(
        "MaxItems", 100, minimum=1, maximum=1000
    )


def _truncated(marker: str | None) -> dict[str, object]:
    return {"IsTruncated": True, "Marker": marker} if marker else {"IsTruncated": False}


# -- users ----------------------------------------------------------------------------------------
def create_user(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    row = services.ram.create_user(
        ctx,
        params.required_str("UserName"),
        params.optional_str("DisplayName"),
        params.optional_str("Comments", ""),
    )
    return {"User": _user(row)}


def get_user(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    return {"User": _user(services.ram.get_user(ctx, params.required_str("UserName")))}


def list_users(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    marker, limit = _page(params)
    rows, next_marker = services.ram.list_users(ctx, marker, limit)
    return {"Users": {"User": [_user(row) for row in rows]}, **_truncated(next_marker)}


def delete_user(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    services.ram.delete_user(ctx, params.required_str("UserName"))
    return {}


# -- access keys ----------------------------------------------------------------------------------
def create_access_key(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    created = services.ram.create_access_key(ctx, params.optional_str("UserName"))
    return {
        "AccessKey": {
            "AccessKeyId": created.access_key_id,
            # The one explicit export of an access-key secret: at creation, to its owner.
            "AccessKeySecret": created.secret.reveal().decode("ascii"),
            "Status": "Active",
            "CreateDate": iso_utc(created.created_at),
        }
    }


def list_access_keys(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    keys = services.ram.list_access_keys(ctx, params.optional_str("UserName"))
    return {
        "AccessKeys": {
            "AccessKey": [
                {"AccessKeyId": k.access_key_id, "Status": k.status, "CreateDate": iso_utc(k.created_at)}
                for k in keys
            ]
        }
    }


def update_access_key(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    services.ram.update_access_key(
        ctx,
        params.optional_str("UserName"),
        params.required_str("UserAccessKeyId"),
        params.required_str("Status"),
    )
    return {}


def delete_access_key(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    services.ram.delete_access_key(
        ctx, params.optional_str("UserName"), params.required_str("UserAccessKeyId")
    )
    return {}


# -- login profiles (never a password in an answer) ------------------------------------------------
def _login_profile(profile: LoginProfile) -> dict[str, object]:
    return {
        "LoginProfile": {
            "UserName": profile.user_name,
            "PasswordResetRequired": profile.password_reset_required,
            "MFABindRequired": profile.mfa_bind_required,
            "CreateDate": iso_utc(profile.created_at),
        }
    }


def create_login_profile(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    profile = services.login_profiles.create(
        ctx,
        params.required_str("UserName"),
        params.required_str("Password"),
        params.optional_bool("PasswordResetRequired", False),
        params.optional_bool("MFABindRequired", False),
    )
    return _login_profile(profile)


def get_login_profile(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    return _login_profile(services.login_profiles.get(ctx, params.required_str("UserName")))


def update_login_profile(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    password = params.optional_str("Password")
    services.login_profiles.update(
        ctx,
        params.required_str("UserName"),
        password or None,
        params.optional_bool("PasswordResetRequired"),
        params.optional_bool("MFABindRequired"),
    )
    return {}


def delete_login_profile(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    services.login_profiles.delete(ctx, params.required_str("UserName"))
    return {}


def change_password(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    services.login_profiles.change_password(
        ctx, params.required_str("OldPassword"), params.required_str("NewPassword")
    )
    return {}


# -- the account alias ----------------------------------------------------------------------------
def set_account_alias(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    services.login_profiles.set_alias(ctx, params.required_str("AccountAlias"))
    return {}


def get_account_alias(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    return {"AccountAlias": services.login_profiles.get_alias(ctx)}


def clear_account_alias(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    services.login_profiles.clear_alias(ctx)
    return {}


# -- roles ----------------------------------------------------------------------------------------
def create_role(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    _no_tags(params)
    row = services.ram.create_role(
        ctx,
        params.required_str("RoleName"),
        params.required_str("AssumeRolePolicyDocument"),
        params.optional_str("Description", ""),
        params.optional_int("MaxSessionDuration", None, minimum=SESSION_MIN, maximum=SESSION_MAX),
    )
    return {"Role": _role(row)}


def get_role(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    return {"Role": _role(services.ram.get_role(ctx, params.required_str("RoleName")))}


def list_roles(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    _no_tags(params)
    marker, limit = _page(params)
    rows, next_marker = services.ram.list_roles(ctx, marker, limit)
    roles = []
    for row in rows:
        role = _role(row)
        del role["AssumeRolePolicyDocument"]
        roles.append(role)
    return {"Roles": {"Role": roles}, **_truncated(next_marker)}


def delete_role(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    services.ram.delete_role(ctx, params.required_str("RoleName"))
    return {}


# -- policies -------------------------------------------------------------------------------------
def create_policy(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    _no_tags(params)
    row = services.ram.create_policy(
        ctx,
        params.required_str("PolicyName"),
        params.required_str("PolicyDocument"),
        params.optional_str("Description", ""),
    )
    return {
        "Policy": {
            "PolicyName": row.policy_name,
            "PolicyType": "Custom",
            "Description": row.description,
            "DefaultVersion": "v1",
            "CreateDate": iso_utc(row.created_at),
        }
    }


def get_policy(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    view = services.ram.get_policy(ctx, params.required_str("PolicyName"), params.required_str("PolicyType"))
    default_version: dict[str, object] = {
        "VersionId": "v1",
        "IsDefaultVersion": True,
        "PolicyDocument": view.document,
    }
    if view.created_at is not None:
        default_version["CreateDate"] = iso_utc(view.created_at)
    return {"Policy": _policy(view, document=True), "DefaultPolicyVersion": default_version}


def list_policies(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    _no_tags(params)
    marker, limit = _page(params)
    views, next_marker = services.ram.list_policies(ctx, params.optional_str("PolicyType"), marker, limit)
    return {"Policies": {"Policy": [_policy(v, document=False) for v in views]}, **_truncated(next_marker)}


def delete_policy(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    services.ram.delete_policy(
        ctx, params.required_str("PolicyName"), params.optional_bool("CascadingDelete", False)
    )
    return {}


def _attachment(principal_type: str, attach: bool) -> Action:
    name_param = f"{principal_type}Name"

    def handler(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
        if params.optional_str("ResourceGroupId"):
            raise UnsupportedOperation("Resource groups are not supported; attach at account level.")
        call = services.ram.attach if attach else services.ram.detach
        call(
            ctx,
            principal_type,
            params.required_str(name_param),
            params.required_str("PolicyType"),
            params.required_str("PolicyName"),
        )
        return {}

    name = f"AttachPolicyTo{principal_type}" if attach else f"DetachPolicyFrom{principal_type}"
    return _about(
        name,
        handler,
        frozenset({name_param, "PolicyType", "PolicyName", "ResourceGroupId"}),
        _user_named if principal_type == "User" else _role_named,
    )


def _listing(principal_type: str) -> Action:
    name_param = f"{principal_type}Name"

    def handler(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
        attached = services.ram.attached(ctx, principal_type, params.required_str(name_param))
        return {
            "Policies": {
                "Policy": [
                    {
                        "PolicyName": a.policy_name,
                        "PolicyType": a.policy_type,
                        "Description": a.description,
                        "DefaultVersion": "v1",
                        "AttachDate": iso_utc(a.attached_at),
                    }
                    for a in attached
                ]
            }
        }

    return _about(
        f"ListPoliciesFor{principal_type}",
        handler,
        frozenset({name_param}),
        _user_named if principal_type == "User" else _role_named,
    )


ACTIONS = (
    _about("CreateUser", create_user, frozenset({"UserName", "DisplayName", "Comments"}), _user_named),
    _about("GetUser", get_user, frozenset({"UserName"}), _user_named),
    _about("ListUsers", list_users, frozenset({"Marker", "MaxItems"}), _listing_only),
    _about("DeleteUser", delete_user, frozenset({"UserName"}), _user_named),
    _about("CreateAccessKey", create_access_key, frozenset({"UserName"}), _key_owner),
    _about("ListAccessKeys", list_access_keys, frozenset({"UserName"}), _key_owner),
    _about(
        "UpdateAccessKey",
        update_access_key,
        frozenset({"UserName", "UserAccessKeyId", "Status"}),
        _key_owner,
    ),
    _about("DeleteAccessKey", delete_access_key, frozenset({"UserName", "UserAccessKeyId"}), _key_owner),
    _about(
        "CreateLoginProfile",
        create_login_profile,
        frozenset({"UserName", "Password", "PasswordResetRequired", "MFABindRequired"}),
        _user_named,
    ),
    _about("GetLoginProfile", get_login_profile, frozenset({"UserName"}), _user_named),
    _about(
        "UpdateLoginProfile",
        update_login_profile,
        frozenset({"UserName", "Password", "PasswordResetRequired", "MFABindRequired"}),
        _user_named,
    ),
    _about("DeleteLoginProfile", delete_login_profile, frozenset({"UserName"}), _user_named),
    _about("ChangePassword", change_password, frozenset({"OldPassword", "NewPassword"}), _caller),
    _about("SetAccountAlias", set_account_alias, frozenset({"AccountAlias"}), _own_account),
    _about("GetAccountAlias", get_account_alias, frozenset(), _own_account),
    _about("ClearAccountAlias", clear_account_alias, frozenset(), _own_account),
    _about(
        "CreateRole",
        create_role,
        frozenset({"RoleName", "AssumeRolePolicyDocument", "Description", "MaxSessionDuration", "Tag"}),
        _role_named,
    ),
    _about("GetRole", get_role, frozenset({"RoleName"}), _role_named),
    _about("ListRoles", list_roles, frozenset({"Marker", "MaxItems", "Tag"}), _listing_only),
    _about("DeleteRole", delete_role, frozenset({"RoleName"}), _role_named),
    _about(
        "CreatePolicy",
        create_policy,
        frozenset({"PolicyName", "PolicyDocument", "Description", "Tag"}),
        _policy_named,
    ),
    _about("GetPolicy", get_policy, frozenset({"PolicyName", "PolicyType"}), _policy_named),
    _about(
        "ListPolicies", list_policies, frozenset({"PolicyType", "Marker", "MaxItems", "Tag"}), _listing_only
    ),
    _about("DeletePolicy", delete_policy, frozenset({"PolicyName", "CascadingDelete"}), _policy_named),
    _attachment("User", attach=True),
    _attachment("Role", attach=True),
    _attachment("User", attach=False),
    _attachment("Role", attach=False),
    _listing("User"),
    _listing("Role"),
)
