"""Console pages: RAM users (with their access keys, login profile and policies), roles (with their
trust policy) and policies, through the RAM API's own actions (`console.call("ram:...")`).

A new access key's secret is shown once, in the answer to the form that made it (never stored, never
shown again; every console page is no-store). Whatever the API refuses is shown in place, in the page
the form was on, with the API's code and AccessDeniedDetail."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from openkms.api.wire_errors import WireError
from openkms.console.auth import page
from openkms.console.view import ActionFailed, Console

LISTED = "1000"  # one page of a RAM listing (the API's largest MaxItems)
FIELD_LIMIT = 64 << 10  # a policy document is at most a few KB; the guard caps the body anyway
Render = Callable[..., Awaitable[Response]]


def _form_value(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value[:FIELD_LIMIT] if isinstance(value, str) else ""


def _name(request: Request) -> str:
    return str(request.path_params["name"])


async def _attempt(
    console: Console,
    action: str,
    params: Mapping[str, str | None],
    on_error: Render,
    target: str,
    notice: str,
    **shown: Any,
) -> Response:
    """Run one RAM action from a form: redirect with a notice, or show the refusal in place."""
    try:
        await console.call(action, params)
    except ActionFailed as failed:
        return await on_error(console, wire=failed.wire, status=failed.wire.status, **shown)
    return console.redirect(target, notice=notice)


def _policy_choice(value: str) -> tuple[str, str]:
    """ "System:AliyunKMSFullAccess" -> ("System", "AliyunKMSFullAccess")."""
    policy_type, _, name = value.partition(":")
    return (policy_type if policy_type in ("System", "Custom") else "Custom"), name


async def _all_policies(console: Console) -> list[Mapping[str, Any]]:
    listed = await console.call("ram:ListPolicies", {"MaxItems": LISTED})
    return list(listed["Policies"]["Policy"])


# -- users ------------------------------------------------------------------------------------------
async def users(console: Console) -> Response:
    return await _users(console)


async def _users(
    console: Console, wire: WireError | None = None, status: int = 200, **shown: Any
) -> Response:
    listed = await console.call("ram:ListUsers", {"MaxItems": LISTED})
    return console.render(
        "ram/users.html",
        status=status,
        section="users",
        users=listed["Users"]["User"],
        truncated=listed.get("IsTruncated", False),
        wire=wire,
        **shown,
    )


async def create_user(console: Console) -> Response:
    form = await console.request.form()
    name = _form_value(form, "user_name").strip()
    display = _form_value(form, "display_name").strip()
    return await _attempt(
        console,
        "ram:CreateUser",
        {"UserName": name, "DisplayName": display or None},
        _users,
        f"/ram/users/{quote(name, safe='')}",
        "notice.user_created",
        user_name=name,
        display_name=display,
    )


async def delete_user(console: Console) -> Response:
    return await _attempt(
        console,
        "ram:DeleteUser",
        {"UserName": _name(console.request)},
        _user,
        "/ram/users",
        "notice.user_deleted",
    )


async def user(console: Console) -> Response:
    return await _user(console)


async def _user(
    console: Console,
    wire: WireError | None = None,
    status: int = 200,
    created_key: Mapping[str, Any] | None = None,
) -> Response:
    name = _name(console.request)
    found = await console.call("ram:GetUser", {"UserName": name})
    keys = await console.call("ram:ListAccessKeys", {"UserName": name})
    try:
        profile: Mapping[str, Any] | None = (await console.call("ram:GetLoginProfile", {"UserName": name}))[
            "LoginProfile"
        ]
    except ActionFailed as failed:
        if failed.wire.status != 404:
            raise
        profile = None
    attached = await console.call("ram:ListPoliciesForUser", {"UserName": name})
    return console.render(
        "ram/user.html",
        status=status,
        section="users",
        user=found["User"],
        access_keys=keys["AccessKeys"]["AccessKey"],
        profile=profile,
        attached=attached["Policies"]["Policy"],
        policies=await _all_policies(console),
        created_key=created_key,
        sign_in_name=f"{name}@{console.principal.account_id}",
        wire=wire,
    )


async def create_access_key(console: Console) -> Response:
    """The secret is in this answer only: rendered here, not redirected to."""
    try:
        created = await console.call("ram:CreateAccessKey", {"UserName": _name(console.request)})
    except ActionFailed as failed:
        return await _user(console, wire=failed.wire, status=failed.wire.status)
    return await _user(console, created_key=created["AccessKey"])


async def update_access_key(console: Console) -> Response:
    form = await console.request.form()
    status = "Active" if _form_value(form, "status") == "Active" else "Inactive"
    name = _name(console.request)
    return await _attempt(
        console,
        "ram:UpdateAccessKey",
        {"UserName": name, "UserAccessKeyId": console.request.path_params["key_id"], "Status": status},
        _user,
        f"/ram/users/{quote(name, safe='')}",
        "notice.access_key_enabled" if status == "Active" else "notice.access_key_disabled",
    )


async def delete_access_key(console: Console) -> Response:
    name = _name(console.request)
    return await _attempt(
        console,
        "ram:DeleteAccessKey",
        {"UserName": name, "UserAccessKeyId": console.request.path_params["key_id"]},
        _user,
        f"/ram/users/{quote(name, safe='')}",
        "notice.access_key_deleted",
    )


async def save_login_profile(console: Console) -> Response:
    form = await console.request.form()
    name = _name(console.request)
    password = _form_value(form, "password")
    reset = "true" if _form_value(form, "password_reset_required") == "true" else "false"
    if _form_value(form, "exists") == "true":
        action, params = (
            "ram:UpdateLoginProfile",
            {"UserName": name, "Password": password or None, "PasswordResetRequired": reset},
        )
    else:
        action, params = (
            "ram:CreateLoginProfile",
            {"UserName": name, "Password": password, "PasswordResetRequired": reset},
        )
    return await _attempt(
        console, action, params, _user, f"/ram/users/{quote(name, safe='')}", "notice.login_profile_saved"
    )


async def delete_login_profile(console: Console) -> Response:
    name = _name(console.request)
    return await _attempt(
        console,
        "ram:DeleteLoginProfile",
        {"UserName": name},
        _user,
        f"/ram/users/{quote(name, safe='')}",
        "notice.login_profile_deleted",
    )


# -- roles ------------------------------------------------------------------------------------------
def _trust_template(account_id: str) -> str:
    return json.dumps(
        {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Principal": {"RAM": [f"acs:ram::{account_id}:root"]},
                }
            ],
        },
        indent=2,
    )


async def roles(console: Console) -> Response:
    return await _roles(console)


async def _roles(
    console: Console, wire: WireError | None = None, status: int = 200, **shown: Any
) -> Response:
    listed = await console.call("ram:ListRoles", {"MaxItems": LISTED})
    shown.setdefault("trust_policy", _trust_template(console.principal.account_id))
    return console.render(
        "ram/roles.html",
        status=status,
        section="roles",
        roles=listed["Roles"]["Role"],
        truncated=listed.get("IsTruncated", False),
        wire=wire,
        **shown,
    )


async def create_role(console: Console) -> Response:
    form = await console.request.form()
    name = _form_value(form, "role_name").strip()
    description = _form_value(form, "description")
    trust = _form_value(form, "trust_policy")
    return await _attempt(
        console,
        "ram:CreateRole",
        {"RoleName": name, "AssumeRolePolicyDocument": trust, "Description": description or None},
        _roles,
        f"/ram/roles/{quote(name, safe='')}",
        "notice.role_created",
        role_name=name,
        description=description,
        trust_policy=trust,
    )


async def role(console: Console) -> Response:
    return await _role(console)


async def _role(console: Console, wire: WireError | None = None, status: int = 200) -> Response:
    name = _name(console.request)
    found = (await console.call("ram:GetRole", {"RoleName": name}))["Role"]
    attached = await console.call("ram:ListPoliciesForRole", {"RoleName": name})
    return console.render(
        "ram/role.html",
        status=status,
        section="roles",
        role=found,
        trust_policy=_pretty(found.get("AssumeRolePolicyDocument")),
        attached=attached["Policies"]["Policy"],
        policies=await _all_policies(console),
        wire=wire,
    )


async def delete_role(console: Console) -> Response:
    return await _attempt(
        console,
        "ram:DeleteRole",
        {"RoleName": _name(console.request)},
        _role,
        "/ram/roles",
        "notice.role_deleted",
    )


# -- attachments (users and roles) -------------------------------------------------------------------
def _attachment(kind: str, attach: bool) -> Callable[[Console], Awaitable[Response]]:
    action = f"ram:AttachPolicyTo{kind}" if attach else f"ram:DetachPolicyFrom{kind}"
    on_error = _user if kind == "User" else _role
    area = "users" if kind == "User" else "roles"

    async def endpoint(console: Console) -> Response:
        form = await console.request.form()
        policy_type, policy_name = _policy_choice(_form_value(form, "policy"))
        name = _name(console.request)
        return await _attempt(
            console,
            action,
            {f"{kind}Name": name, "PolicyType": policy_type, "PolicyName": policy_name},
            on_error,
            f"/ram/{area}/{quote(name, safe='')}",
            "notice.policy_attached" if attach else "notice.policy_detached",
        )

    return endpoint


# -- policies ---------------------------------------------------------------------------------------
_POLICY_TEMPLATE = json.dumps(
    {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": ["kms:List*", "kms:Describe*"], "Resource": "*"}],
    },
    indent=2,
)


async def policies(console: Console) -> Response:
    return await _policies(console)


async def _policies(
    console: Console, wire: WireError | None = None, status: int = 200, **shown: Any
) -> Response:
    wanted = console.request.query_params.get("type", "")
    policy_type = wanted if wanted in ("System", "Custom") else None
    listed = await console.call("ram:ListPolicies", {"MaxItems": LISTED, "PolicyType": policy_type})
    shown.setdefault("document", _POLICY_TEMPLATE)
    return console.render(
        "ram/policies.html",
        status=status,
        section="policies",
        policies=listed["Policies"]["Policy"],
        truncated=listed.get("IsTruncated", False),
        policy_type=policy_type or "",
        wire=wire,
        **shown,
    )


async def create_policy(console: Console) -> Response:
    form = await console.request.form()
    name = _form_value(form, "policy_name").strip()
    description = _form_value(form, "description")
    document = _form_value(form, "document")
    return await _attempt(
        console,
        "ram:CreatePolicy",
        {"PolicyName": name, "PolicyDocument": document, "Description": description or None},
        _policies,
        f"/ram/policies/Custom/{quote(name, safe='')}",
        "notice.policy_created",
        policy_name=name,
        description=description,
        document=document,
    )


async def policy(console: Console) -> Response:
    return await _policy(console)


async def _policy(console: Console, wire: WireError | None = None, status: int = 200) -> Response:
    policy_type = console.request.path_params.get("policy_type", "Custom")  # delete routes: Custom
    found = await console.call(
        "ram:GetPolicy",
        {
            "PolicyName": _name(console.request),
            "PolicyType": policy_type if policy_type == "System" else "Custom",
        },
    )
    return console.render(
        "ram/policy.html",
        status=status,
        section="policies",
        policy=found["Policy"],
        document=_pretty(found["Policy"].get("PolicyDocument")),
        wire=wire,
    )


async def delete_policy(console: Console) -> Response:
    return await _attempt(
        console,
        "ram:DeletePolicy",
        {"PolicyName": _name(console.request)},
        _policy,
        "/ram/policies",
        "notice.policy_deleted",
    )


def _pretty(document: object) -> str:
    if not isinstance(document, str):
        return ""
    try:
        return json.dumps(json.loads(document), indent=2, ensure_ascii=False)
    except ValueError:
        return document


ROUTES: list[BaseRoute] = [
    Route("/ram/users", page(users), methods=["GET"]),
    Route("/ram/users", page(create_user), methods=["POST"]),
    Route("/ram/users/{name}", page(user), methods=["GET"]),
    Route("/ram/users/{name}/delete", page(delete_user), methods=["POST"]),
    Route("/ram/users/{name}/access-keys", page(create_access_key), methods=["POST"]),
    Route("/ram/users/{name}/access-keys/{key_id}/status", page(update_access_key), methods=["POST"]),
    Route("/ram/users/{name}/access-keys/{key_id}/delete", page(delete_access_key), methods=["POST"]),
    Route("/ram/users/{name}/login-profile", page(save_login_profile), methods=["POST"]),
    Route("/ram/users/{name}/login-profile/delete", page(delete_login_profile), methods=["POST"]),
    Route("/ram/users/{name}/policies/attach", page(_attachment("User", attach=True)), methods=["POST"]),
    Route("/ram/users/{name}/policies/detach", page(_attachment("User", attach=False)), methods=["POST"]),
    Route("/ram/roles", page(roles), methods=["GET"]),
    Route("/ram/roles", page(create_role), methods=["POST"]),
    Route("/ram/roles/{name}", page(role), methods=["GET"]),
    Route("/ram/roles/{name}/delete", page(delete_role), methods=["POST"]),
    Route("/ram/roles/{name}/policies/attach", page(_attachment("Role", attach=True)), methods=["POST"]),
    Route("/ram/roles/{name}/policies/detach", page(_attachment("Role", attach=False)), methods=["POST"]),
    Route("/ram/policies", page(policies), methods=["GET"]),
    Route("/ram/policies", page(create_policy), methods=["POST"]),
    Route("/ram/policies/{policy_type}/{name}", page(policy), methods=["GET"]),
    Route("/ram/policies/{name}/delete", page(delete_policy), methods=["POST"]),
]
