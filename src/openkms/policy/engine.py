"""The authorization decision: deny by default, an explicit Deny wins, and every decision says why.

Inputs are the caller (account, ARN), the action, the resource, the caller's identity policies, the
key's policy when the resource is a key, and the request facts for conditions. The rules follow
Alibaba's permission evaluation of key policies and RAM policies ("Key policy overview"):

1. An account's root identity may do anything to its own account's resources: no policy binds it there,
   so an account can never lock itself out of its own keys. It has no identity policies.
2. Otherwise a matching `Deny` statement, in an identity policy or in the key policy naming the caller
   (or its account), denies.
3. A RAM user or role of the owning account needs one Allow, from either side: a key-policy statement
   that names it, or its own identity policies (whatever the key policy says, Denies aside). A key
   policy statement whose principal is the whole account (`acs:ram::<uid>:*`, the default key policy)
   speaks for the account's root, not for each of its identities. Without a key (account-level
   actions such as ListKeys) its identity policies decide.
4. A caller from another account needs both sides: the key policy must allow it (by name, or by
   delegating to its account) and its own account must allow it (its identity policies; a root caller
   speaks for its account). So does an application access point of the key's own account
   (`key_policy_required`): its access policies are its identity side, and the key policy must allow
   it by name or by its account-wide statement (the default key policy's), so a key whose policy
   lists only some identities is closed to the instance API unless it names the access point.
5. Otherwise: denied, naming what was missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from openkms.policy.conditions import RequestFacts
from openkms.policy.document import PolicyDocument, Statement
from openkms.policy.patterns import action_matches, matches

KEY_POLICY = "KeyPolicy"
IDENTITY_POLICY = "IdentityPolicy"


@dataclass(frozen=True, slots=True)
class AccessRequest:
    principal_account: str
    principal_arn: str  # acs:ram::<uid>:root | :user/<name> | :role/<name> (an STS session: its role)
    action: str  # e.g. "kms:Encrypt"
    resource_account: str | None  # None: an account-level action with no resource of its own
    resource_arn: str
    facts: RequestFacts
    identity_policies: tuple[PolicyDocument, ...] = ()
    key_policy: PolicyDocument | None = None  # the key's policy when the resource is a key
    key_policy_required: bool = False  # both sides must allow even in the key's own account (rule 4)

    @property
    def is_root(self) -> bool:
        return self.principal_arn == f"acs:ram::{self.principal_account}:root"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str
    explicit_deny: bool = False
    policy_type: str = ""  # which kind of policy decided a denial: KeyPolicy or IdentityPolicy


def evaluate(request: AccessRequest) -> Decision:
    own_account = request.resource_account is None or request.resource_account == request.principal_account
    if own_account and request.is_root:
        return Decision(True, "the account's root identity acts on its own account's resources")
    identity = [] if request.is_root else _identity_statements(request)
    named, delegating = _key_statements(request)
    for kind, statements in ((IDENTITY_POLICY, identity), (KEY_POLICY, named + delegating)):
        for number, statement in statements:
            if not statement.allows:
                return Decision(
                    False,
                    f"explicitly denied by {_describe(kind, number, statement)}",
                    explicit_deny=True,
                    policy_type=kind,
                )
    identity_allows = request.is_root or bool(identity)
    if own_account and not request.key_policy_required:
        # Alibaba's same-account rule: either side's Allow is enough (rule 3).
        if named:
            return Decision(True, f"allowed by {_describe(KEY_POLICY, *named[0])}")
        if identity:
            return Decision(True, f"allowed by {_describe(IDENTITY_POLICY, *identity[0])}")
        if request.key_policy is None or request.resource_account is None:
            return _implicit(request, IDENTITY_POLICY, "no identity policy statement allows it")
        return _implicit(
            request,
            IDENTITY_POLICY,
            "no identity policy statement allows it and the key policy does not name the caller",
        )
    # Another account's resource (or an application access point): both sides must allow.
    if request.key_policy is None:
        why = "the key policy must allow it" if own_account else "the resource belongs to another account"
        return _implicit(request, KEY_POLICY, why)
    if not named and not delegating:
        return _implicit(
            request, KEY_POLICY, "the key policy does not grant the caller's account or identity"
        )
    if not identity_allows:
        return _implicit(
            request, IDENTITY_POLICY, "the key policy allows it but the caller's own account does not"
        )
    grant = named[0] if named else delegating[0]
    return Decision(True, f"allowed by {_describe(KEY_POLICY, *grant)} and the caller's own account")


def _identity_statements(request: AccessRequest) -> list[tuple[int, Statement]]:
    found: list[tuple[int, Statement]] = []
    for policy in request.identity_policies:
        for number, statement in enumerate(policy.statements, 1):
            if _applies(statement, request):
                found.append((number, statement))
    return found


def _key_statements(
    request: AccessRequest,
) -> tuple[list[tuple[int, Statement]], list[tuple[int, Statement]]]:
    """Key policy statements that apply: (naming the caller, delegating to the caller's account)."""
    named: list[tuple[int, Statement]] = []
    delegating: list[tuple[int, Statement]] = []
    policy = request.key_policy
    if policy is None:
        return named, delegating
    account_principal = f"acs:ram::{request.principal_account}:*"
    for number, statement in enumerate(policy.statements, 1):
        if not _applies(statement, request):
            continue
        delegates = [
            _delegates(p, account_principal, request.principal_account) for p in statement.principals
        ]
        if any(
            not d and matches(p, request.principal_arn)
            for p, d in zip(statement.principals, delegates, strict=True)
        ):
            named.append((number, statement))
        if any(delegates):
            delegating.append((number, statement))
    return named, delegating


def shares_with(key_policy: PolicyDocument, principal_account: str, principal_arn: str) -> bool:
    """Whether an Allow statement of the key policy names the caller or delegates to its account,
    whatever its actions, resources and conditions: a key of another account that shares nothing with
    the caller is, to that caller, a key that does not exist."""
    account_principal = f"acs:ram::{principal_account}:*"
    return any(
        statement.allows
        and any(
            _delegates(p, account_principal, principal_account) or matches(p, principal_arn)
            for p in statement.principals
        )
        for statement in key_policy.statements
    )


def _delegates(principal: str, account_principal: str, principal_account: str) -> bool:
    """`*` and `acs:ram::<uid>:*` speak for a whole account: its root, and its identities through their
    own identity policies."""
    if principal in ("*", account_principal, f"acs:ram::{principal_account}:root"):
        return True
    return principal.endswith(":*") and matches(principal, account_principal)


def _applies(statement: Statement, request: AccessRequest) -> bool:
    return (
        any(action_matches(a, request.action) for a in statement.actions)
        and any(matches(r, request.resource_arn) for r in statement.resources)
        and all(condition.holds(request.facts) for condition in statement.conditions)
    )


def _describe(kind: str, number: int, statement: Statement) -> str:
    name = f"statement {statement.sid!r}" if statement.sid else f"statement #{number}"
    return f"{'the key policy' if kind == KEY_POLICY else 'an identity policy'}, {name}"


def _implicit(request: AccessRequest, kind: str, why: str) -> Decision:
    return Decision(
        False,
        f"{request.principal_arn} may not call {request.action} on {request.resource_arn}: {why}",
        policy_type=kind,
    )
