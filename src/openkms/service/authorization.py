"""The one place a use case asks "may this caller do this?": builds the policy engine's request from
the caller, the key and the request facts, and turns a denial into AccessDenied with its explanation
(the answer's AccessDeniedDetail and the audit record's reason)."""

from __future__ import annotations

from openkms.domain.key import Key
from openkms.errors import AccessDenied
from openkms.policy.conditions import RequestFacts
from openkms.policy.document import PolicyDocument
from openkms.policy.engine import AccessRequest, evaluate
from openkms.policy.key_policy import key_policy_document
from openkms.service.context import RequestContext


def authorize(ctx: RequestContext, action: str, key: Key | None = None) -> None:
    """Deny by default: raise AccessDenied unless the policy engine allows `kms:<action>`."""
    if key is None and ctx.principal.name == "root":
        return  # an account's root may act on its own account (engine rule 1), without building facts
    decide(
        ctx,
        f"kms:{action}",
        "*" if key is None else key.arn,
        None if key is None else key.account_id,
        None if key is None else key_policy_document(key.account_id, key.policy),
    )


def authorize_own(ctx: RequestContext, auth_action: str, resource_arn: str) -> None:
    """A RAM or STS action on a resource of the caller's own account: its identity policies decide."""
    if ctx.principal.name == "root":
        return
    decide(ctx, auth_action, resource_arn, ctx.principal.account_id, None)


def facts(ctx: RequestContext) -> RequestFacts:
    return RequestFacts(
        current_time=ctx.received_at, source_ip=ctx.source_ip, secure_transport=ctx.secure_transport
    )


def decide(
    ctx: RequestContext,
    auth_action: str,
    resource_arn: str,
    resource_account: str | None,
    key_policy: PolicyDocument | None,
) -> None:
    """Ask the policy engine; raise AccessDenied with the explanation unless it allows."""
    principal = ctx.principal
    decision = evaluate(
        AccessRequest(
            principal_account=principal.account_id,
            principal_arn=principal.policy_arn,
            action=auth_action,
            resource_account=resource_account,
            resource_arn=resource_arn,
            facts=facts(ctx),
            identity_policies=principal.policies,
            key_policy=key_policy,
        )
    )
    if not decision.allowed:
        raise denied(
            ctx, auth_action, resource_arn, decision.reason, decision.explicit_deny, decision.policy_type
        )


def denied(
    ctx: RequestContext, auth_action: str, resource: str, reason: str, explicit: bool, policy_type: str
) -> AccessDenied:
    principal = ctx.principal
    return AccessDenied(
        f"You are not authorized to call {auth_action}: {reason}.",
        detail={
            "AuthAction": auth_action,
            "AuthResource": resource,
            "AuthPrincipalType": principal.kind,
            "AuthPrincipalOwnerId": principal.account_id,
            "AuthPrincipalDisplayName": principal.name,
            "NoPermissionType": "ExplicitDeny" if explicit else "ImplicitDeny",
            "PolicyType": policy_type,
            "Reason": reason,
        },
    )
