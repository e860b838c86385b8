"""The one place a use case asks "may this caller do this?": builds the policy engine's request from
the caller, the key and the request facts, and turns a denial into AccessDenied with its explanation
(the answer's AccessDeniedDetail and the audit record's reason).

Also "may this caller know the key exists?" (`may_see`): a key of another account whose policy shares
nothing with the caller is answered as missing by resolution (`service.keys`), before any
authorization, so no answer (AccessDenied and its detail above all) names it or its account."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from functools import lru_cache

from openkms.domain.access_decision import admits_source, decide_access, key_resource
from openkms.domain.access_points import InstancePermission
from openkms.domain.key import Key
from openkms.errors import AccessDenied
from openkms.policy.actions import KmsAction
from openkms.policy.conditions import RequestFacts
from openkms.policy.document import PolicyDocument, PolicyKind, Statement
from openkms.policy.engine import AccessRequest, evaluate, shares_with
from openkms.policy.key_policy import key_policy_document
from openkms.service.context import RequestContext


def may_see(ctx: RequestContext, key: Key) -> bool:
    """A key of the caller's own account, or one whose key policy grants the caller (by name, or by
    delegating to its account) in some Allow statement. Only then may an answer reveal that the key
    exists: everything else about it (AccessDenied, its detail, its ARN) would name its account."""
    principal = ctx.principal
    if key.account_id == principal.account_id:
        return True
    policy = key_policy_document(key.account_id, key.policy)
    return shares_with(policy, principal.account_id, principal.policy_arn)


def authorize(ctx: RequestContext, action: KmsAction, key: Key | None = None) -> None:
    """Deny by default: raise AccessDenied unless the policy engine allows `kms:<action>`."""
    principal = ctx.principal
    if principal.grant is not None:
        _authorize_application(ctx, action, key)
        return
    own = key is None or key.account_id == principal.account_id
    if own and principal.name == "root" and principal.actor == "user":
        return  # an account's root acts on its own account (engine rule 1): the hot path, no facts
    decide(
        ctx,
        f"kms:{action}",
        "*" if key is None else key.arn,
        None if key is None else key.account_id,
        None if key is None else key_policy_document(key.account_id, key.policy),
        None if key is None else key.key_id,
    )


APPLICATION_POLICY = "ApplicationAccessPointPolicy"


def _authorize_application(ctx: RequestContext, action: KmsAction, key: Key | None) -> None:
    """An application access point's client key (the instance API) on a key: its access point's
    policies must grant CryptoServiceKeyUser on the key's instance and the key, from a network rule
    admitting the caller's address (`domain.access_decision`), and then the key's policy must allow
    the access point too (engine rule 4, with the grant as the identity side): both, deny by default."""
    auth_action = f"kms:{action}"
    if key is None:  # the instance API acts on keys (and secrets) only
        raise denied(ctx, auth_action, "*", "an application may act on keys only", False, APPLICATION_POLICY)
    if action is KmsAction.DECRYPT and ctx.secret_key_id == key.key_id:
        # The data key of a secret this request may read: the access point's grant on the secret
        # (`service.secret_access`) stands for the key-user side, but the key's own policy still
        # decides (an explicit Deny of the access point there keeps the value closed).
        _decide_resource_policy(
            ctx,
            auth_action,
            arn=key.arn,
            account_id=key.account_id,
            policy=key_policy_document(key.account_id, key.policy),
            key_id=key.key_id,
        )
        return
    authorize_application(
        ctx,
        auth_action,
        InstancePermission.KEY_USER,
        resource=key_resource(key.key_id),
        instance_id=key.instance_id,
        arn=key.arn,
        account_id=key.account_id,
        policy=key_policy_document(key.account_id, key.policy),
        key_id=key.key_id,
    )


def authorize_application(
    ctx: RequestContext,
    auth_action: str,
    permission: InstancePermission,
    *,
    resource: str,
    instance_id: str | None,
    arn: str,
    account_id: str,
    policy: PolicyDocument,
    key_id: str | None = None,
) -> None:
    """Both sides for an application's client key on a key or a secret: the access point's policies
    (`decide_access`: the permission, the instance, the resource, a network rule admitting the
    caller, the client key's validity), then the key's or secret's policy (engine rule 4, the grant
    as the identity side)."""
    principal = ctx.principal
    grant = principal.grant
    if grant is None:
        raise denied(ctx, auth_action, arn, "not an application", False, APPLICATION_POLICY)
    decision = decide_access(
        grant,
        instance_id=instance_id or "",
        resource=resource,
        permission=permission,
        source_ip=ctx.source_ip,
        now=datetime.fromtimestamp(ctx.received_at, UTC),
    )
    if not decision.allowed:
        raise denied(ctx, auth_action, arn, decision.reason, False, APPLICATION_POLICY)
    _decide_resource_policy(ctx, auth_action, arn=arn, account_id=account_id, policy=policy, key_id=key_id)


def _decide_resource_policy(
    ctx: RequestContext,
    auth_action: str,
    *,
    arn: str,
    account_id: str,
    policy: PolicyDocument,
    key_id: str | None,
) -> None:
    """The key's or secret's policy on an application (engine rule 4, the grant as the identity
    side): it must allow the access point, and an explicit Deny there refuses."""
    principal = ctx.principal
    verdict = evaluate(
        AccessRequest(
            principal_account=principal.account_id,
            principal_arn=principal.policy_arn,
            action=auth_action,
            resource_account=account_id,
            resource_arn=arn,
            facts=facts(ctx, key_id),
            identity_policies=_granted(auth_action, arn),
            key_policy=policy,
            key_policy_required=True,
        )
    )
    if not verdict.allowed:
        raise denied(ctx, auth_action, arn, verdict.reason, verdict.explicit_deny, verdict.policy_type)


def authorize_application_source(ctx: RequestContext, auth_action: str) -> None:
    """An application's operation on no key or secret (GenerateRandom): its access point must admit
    the caller's address through some policy's network rule (`domain.access_decision.admits_source`)."""
    grant = ctx.principal.grant
    if grant is None:
        raise denied(ctx, auth_action, "*", "not an application", False, APPLICATION_POLICY)
    decision = admits_source(grant, source_ip=ctx.source_ip, now=datetime.fromtimestamp(ctx.received_at, UTC))
    if not decision.allowed:
        raise denied(ctx, auth_action, "*", decision.reason, False, APPLICATION_POLICY)


@lru_cache(maxsize=4096)
def _granted(auth_action: str, arn: str) -> tuple[PolicyDocument, ...]:
    """The identity side an access point's grant stands for: allow this action on this resource."""
    return (PolicyDocument(PolicyKind.IDENTITY, (Statement("Allow", (auth_action,), (arn,)),), ""),)


def authorize_own(ctx: RequestContext, auth_action: str, resource_arn: str) -> None:
    """A RAM or STS action on a resource of the caller's own account: its identity policies decide."""
    if ctx.principal.name == "root" and ctx.principal.actor == "user":
        return
    decide(ctx, auth_action, resource_arn, ctx.principal.account_id, None)


def facts(ctx: RequestContext, key_id: str | None = None) -> RequestFacts:
    resource_tags: Mapping[str, str] = {}
    if key_id is not None and ctx.tags_of is not None:
        resource_tags = _LazyTags(ctx.tags_of, key_id)
    return RequestFacts(
        current_time=ctx.received_at,
        source_ip=ctx.source_ip,
        secure_transport=ctx.secure_transport,
        resource_tags=resource_tags,
        request_tags=ctx.request_tags,
    )


class _LazyTags(Mapping[str, str]):
    """A key's tags, read from the store only if a policy condition asks for them."""

    def __init__(self, load: Callable[[str], Mapping[str, str]], key_id: str) -> None:
        self._load = load
        self._key_id = key_id
        self._tags: Mapping[str, str] | None = None

    def _get(self) -> Mapping[str, str]:
        if self._tags is None:
            self._tags = self._load(self._key_id)
        return self._tags

    def __getitem__(self, name: str) -> str:
        return self._get()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


def decide(
    ctx: RequestContext,
    auth_action: str,
    resource_arn: str,
    resource_account: str | None,
    key_policy: PolicyDocument | None,
    key_id: str | None = None,
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
            facts=facts(ctx, key_id),
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
