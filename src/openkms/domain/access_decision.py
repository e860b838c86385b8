"""The instance API's access decision: may client key X use resource R (a key of instance I) for
permission P from address A, at time T?

Deny by default. Allowed only when the client key is valid at T, and one policy bound to its access
point grants P, scopes instance I, covers R, and names a network rule that admits A. A policy or
network rule an access point names but that no longer exists grants nothing; a policy without
network rules admits no address. This decides only the access point's side: the instance endpoint
also asks the key's own policy (`service/authorization.py`). Pure: the caller gathers an
`AccessGrant` from the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from openkms.domain.access_points import AccessPoint, AccessPolicy, ClientKey, InstancePermission, NetworkRule

__all__ = ["AccessDecision", "AccessGrant", "admits_source", "decide_access", "key_resource"]


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """Everything the decision reads about one client key: the key, its access point, and the
    policies and network rules the access point names that exist (by name)."""

    client_key: ClientKey
    access_point: AccessPoint
    policies: Mapping[str, AccessPolicy]
    network_rules: Mapping[str, NetworkRule]


@dataclass(frozen=True, slots=True)
class AccessDecision:
    allowed: bool
    reason: str  # why: for the audit record and the refusal's message (names no secret)


def key_resource(key_id: str) -> str:
    """The resource a policy names a key by."""
    return f"key/{key_id}"


def decide_access(
    grant: AccessGrant,
    *,
    instance_id: str,
    resource: str,
    permission: InstancePermission,
    source_ip: str | None,
    now: datetime,
) -> AccessDecision:
    refusal = _client_key_refusal(grant, now)
    if refusal is not None:
        return AccessDecision(False, refusal)
    reasons: list[str] = []
    for name in grant.access_point.policies:
        policy = grant.policies.get(name)
        if policy is None:
            reasons.append(f"policy {name} does not exist")
            continue
        refusal = _policy_refusal(policy, grant.network_rules, instance_id, resource, permission, source_ip)
        if refusal is None:
            return AccessDecision(True, f"allowed by policy {name}")
        reasons.append(f"policy {name}: {refusal}")
    if not reasons:
        return AccessDecision(False, "the application access point has no policy")
    return AccessDecision(False, "; ".join(reasons))


def admits_source(grant: AccessGrant, *, source_ip: str | None, now: datetime) -> AccessDecision:
    """An operation on no key or secret (GenerateRandom): allowed when the client key is valid at
    `now` and some policy of its access point, whatever it grants, names a network rule that admits
    the address. An access point whose policies admit nobody from there may ask for nothing."""
    refusal = _client_key_refusal(grant, now)
    if refusal is not None:
        return AccessDecision(False, refusal)
    for name in grant.access_point.policies:
        policy = grant.policies.get(name)
        if policy is None:
            continue
        for rule_name in policy.network_rules:
            rule = grant.network_rules.get(rule_name)
            if rule is not None and rule.admits(source_ip):
                return AccessDecision(True, f"admitted by policy {name}")
    if not grant.access_point.policies:
        return AccessDecision(False, "the application access point has no policy")
    return AccessDecision(False, "no network rule of the access point's policies admits the source address")


def _client_key_refusal(grant: AccessGrant, now: datetime) -> str | None:
    """Why the client key itself may not act at `now` (its access point, its validity), or None."""
    client_key = grant.client_key
    if client_key.aap_name != grant.access_point.name:
        return "the client key belongs to another application access point"
    if now < client_key.not_before:
        return "the client key is not valid yet (NotBefore)"
    if now >= client_key.not_after:
        return "the client key has expired (NotAfter)"
    return None


def _policy_refusal(
    policy: AccessPolicy,
    rules: Mapping[str, NetworkRule],
    instance_id: str,
    resource: str,
    permission: InstancePermission,
    source_ip: str | None,
) -> str | None:
    """Why this policy does not allow the request, or None if it does."""
    if permission.value not in policy.permissions:
        return f"does not grant {permission.value}"
    if policy.kms_instance != instance_id:
        return "is scoped to another instance"
    if not policy.covers(resource):
        return f"does not cover {resource}"
    for name in policy.network_rules:
        rule = rules.get(name)
        if rule is not None and rule.admits(source_ip):
            return None
    return "no network rule of it admits the source address"
