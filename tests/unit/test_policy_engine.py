"""The authorization decision: scenario tests for the seed's key-policy model, and a property test
against a small reference evaluator written independently of the engine."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from openkms.policy.conditions import RequestFacts
from openkms.policy.document import PolicyDocument, PolicyKind, parse_policy
from openkms.policy.engine import IDENTITY_POLICY, KEY_POLICY, AccessRequest, Decision, evaluate, shares_with

OWNER = "1111111111111111"
OTHER = "2222222222222222"
KEY_ARN = f"acs:kms:cn-hangzhou:{OWNER}:key/key-1"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FACTS = RequestFacts(current_time=NOW.timestamp(), source_ip="10.1.2.3")


def key_policy(*statements: dict[str, object]) -> PolicyDocument:
    return parse_policy(json.dumps({"Version": "1", "Statement": list(statements)}), PolicyKind.KEY)


def identity_policy(*statements: dict[str, object]) -> PolicyDocument:
    return parse_policy(json.dumps({"Version": "1", "Statement": list(statements)}), PolicyKind.IDENTITY)


DEFAULT = key_policy(
    {"Sid": "kms default key policy", "Effect": "Allow", "Principal": {"RAM": [f"acs:ram::{OWNER}:*"]},
     "Action": ["kms:*"], "Resource": ["*"]}
)  # fmt: skip
USE_KEYS = identity_policy({"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"})


def ask(
    arn: str,
    action: str,
    *,
    key: PolicyDocument | None = DEFAULT,
    identity: tuple[PolicyDocument, ...] = (),
    resource_account: str | None = OWNER,
    facts: RequestFacts = FACTS,
) -> Decision:
    account = arn.split(":")[3]
    return evaluate(
        AccessRequest(
            principal_account=account,
            principal_arn=arn,
            action=action,
            resource_account=resource_account,
            resource_arn=KEY_ARN if resource_account else "*",
            facts=facts,
            identity_policies=identity,
            key_policy=key if resource_account else None,
        )
    )


def test_root_of_the_owner_may_do_anything_even_against_a_deny() -> None:
    deny_all = key_policy({"Effect": "Deny", "Principal": {"RAM": ["*"]}, "Action": "kms:*", "Resource": "*"})
    assert ask(f"acs:ram::{OWNER}:root", "kms:ScheduleKeyDeletion", key=deny_all).allowed


def test_a_ram_user_needs_an_identity_policy_under_the_default_key_policy() -> None:
    alice = f"acs:ram::{OWNER}:user/alice"
    denied = ask(alice, "kms:Encrypt")
    assert not denied.allowed and not denied.explicit_deny and denied.policy_type == IDENTITY_POLICY
    assert ask(alice, "kms:Encrypt", identity=(USE_KEYS,)).allowed
    assert not ask(alice, "kms:ScheduleKeyDeletion", identity=(USE_KEYS,)).allowed


def test_seed_administrators_manage_but_never_use_and_users_use_but_never_manage() -> None:
    admin, user = f"acs:ram::{OWNER}:user/admin", f"acs:ram::{OWNER}:user/app"
    policy = key_policy(
        {"Sid": "Key Administrators", "Effect": "Allow", "Principal": {"RAM": [admin]},
         "Action": ["kms:List*", "kms:Describe*", "kms:Create*", "kms:Enable*", "kms:Disable*", "kms:Get*",
                    "kms:Set*", "kms:Update*", "kms:Delete*", "kms:Cancel*", "kms:TagResource",
                    "kms:UntagResource", "kms:ImportKeyMaterial", "kms:ScheduleKeyDeletion"],
         "Resource": ["*"]},
        {"Sid": "Key Users", "Effect": "Allow", "Principal": {"RAM": [user]},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateAndExportDataKey",
                    "kms:AsymmetricEncrypt", "kms:AsymmetricDecrypt", "kms:DescribeKey",
                    "kms:DescribeKeyVersion", "kms:ListKeyVersions", "kms:ListAliasesByKeyId",
                    "kms:TagResource"],
         "Resource": ["*"]},
    )  # fmt: skip
    assert ask(admin, "kms:DisableKey", key=policy).allowed
    assert not ask(admin, "kms:Encrypt", key=policy).allowed
    assert ask(user, "kms:Encrypt", key=policy).allowed
    refused = ask(user, "kms:ScheduleKeyDeletion", key=policy)
    assert not refused.allowed and not refused.explicit_deny
    assert "the key policy does not name the caller" in refused.reason


def test_the_same_account_needs_one_allow_from_either_side() -> None:
    """Alibaba's same-account table ("Key policy overview", permission evaluation): key policy Allow
    or RAM policy Allow is enough; a Deny on either side wins; neither side allowing denies."""
    bob = f"acs:ram::{OWNER}:user/bob"
    names_bob = {"Sid": "Bob", "Effect": "Allow", "Principal": {"RAM": [bob]}, "Action": ["kms:Encrypt"],
                 "Resource": ["*"]}  # fmt: skip
    denies_bob = {**names_bob, "Sid": "NoBob", "Effect": "Deny"}
    no_encrypt = identity_policy(
        {"Sid": "NoEncrypt", "Effect": "Deny", "Action": "kms:Encrypt", "Resource": "*"}
    )
    # The key policy neither names bob nor has the account statement: his RAM policy is enough.
    unrelated = key_policy(
        {"Effect": "Allow", "Principal": {"RAM": [f"acs:ram::{OWNER}:user/alice"]}, "Action": ["kms:*"],
         "Resource": ["*"]}
    )  # fmt: skip
    by_identity = ask(bob, "kms:Encrypt", key=unrelated, identity=(USE_KEYS,))
    assert by_identity.allowed and "identity policy" in by_identity.reason
    assert ask(bob, "kms:Encrypt", key=key_policy(names_bob)).allowed  # key policy Allow, RAM unset
    assert ask(bob, "kms:Encrypt", key=key_policy(names_bob), identity=(USE_KEYS,)).allowed  # both
    key_allow_ram_deny = ask(bob, "kms:Encrypt", key=key_policy(names_bob), identity=(USE_KEYS, no_encrypt))
    assert not key_allow_ram_deny.allowed and key_allow_ram_deny.explicit_deny
    assert key_allow_ram_deny.policy_type == IDENTITY_POLICY
    key_deny_ram_allow = ask(bob, "kms:Encrypt", key=key_policy(denies_bob, names_bob), identity=(USE_KEYS,))
    assert not key_deny_ram_allow.allowed and key_deny_ram_allow.explicit_deny
    assert key_deny_ram_allow.policy_type == KEY_POLICY and "'NoBob'" in key_deny_ram_allow.reason
    neither = ask(bob, "kms:Encrypt", key=unrelated)
    assert not neither.allowed and not neither.explicit_deny
    # A Deny naming the whole account binds its identities too (not its root: rule 1).
    account_deny = key_policy(
        {"Effect": "Deny", "Principal": {"RAM": [f"acs:ram::{OWNER}:*"]}, "Action": ["kms:Encrypt"],
         "Resource": ["*"]}
    )  # fmt: skip
    assert ask(bob, "kms:Encrypt", key=account_deny, identity=(USE_KEYS,)).explicit_deny
    assert ask(f"acs:ram::{OWNER}:root", "kms:Encrypt", key=account_deny).allowed


def test_another_account_needs_both_sides() -> None:
    guest = f"acs:ram::{OTHER}:user/guest"
    granted = key_policy(
        {"Effect": "Allow", "Principal": {"RAM": [guest]}, "Action": ["kms:Encrypt"], "Resource": ["*"]}
    )
    assert not ask(guest, "kms:Encrypt").allowed  # default key policy: the owner only
    one_side = ask(guest, "kms:Encrypt", key=granted)
    assert not one_side.allowed and one_side.policy_type == IDENTITY_POLICY
    assert "own account" in one_side.reason
    assert ask(guest, "kms:Encrypt", key=granted, identity=(USE_KEYS,)).allowed
    other_side_only = ask(guest, "kms:Encrypt", identity=(USE_KEYS,))
    assert not other_side_only.allowed and other_side_only.policy_type == KEY_POLICY
    # Another account's root speaks for its account.
    to_account = key_policy(
        {
            "Effect": "Allow",
            "Principal": {"RAM": [f"acs:ram::{OTHER}:*"]},
            "Action": "kms:Encrypt",
            "Resource": "*",
        }
    )
    assert ask(f"acs:ram::{OTHER}:root", "kms:Encrypt", key=to_account).allowed


def test_an_explicit_deny_wins_and_is_named() -> None:
    alice = f"acs:ram::{OWNER}:user/alice"
    deny = identity_policy({"Sid": "NoDecrypt", "Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"})
    decision = ask(alice, "kms:Decrypt", identity=(USE_KEYS, deny))
    assert not decision.allowed and decision.explicit_deny and "'NoDecrypt'" in decision.reason
    assert decision.policy_type == IDENTITY_POLICY


def test_conditions_gate_statements() -> None:
    alice = f"acs:ram::{OWNER}:user/alice"
    office = identity_policy(
        {"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*",
         "Condition": {"IpAddress": {"acs:SourceIp": ["10.0.0.0/8"]},
                       "DateLessThan": {"acs:CurrentTime": "2027-01-01T00:00:00Z"}}}
    )  # fmt: skip
    assert ask(alice, "kms:Encrypt", identity=(office,)).allowed
    elsewhere = RequestFacts(current_time=NOW.timestamp(), source_ip="192.0.2.1")
    assert not ask(alice, "kms:Encrypt", identity=(office,), facts=elsewhere).allowed
    later = RequestFacts(current_time=datetime(2027, 6, 1, tzinfo=UTC).timestamp(), source_ip="10.0.0.1")
    assert not ask(alice, "kms:Encrypt", identity=(office,), facts=later).allowed


def test_account_level_actions_follow_identity_policies() -> None:
    alice = f"acs:ram::{OWNER}:user/alice"
    lister = identity_policy({"Effect": "Allow", "Action": "kms:List*", "Resource": "*"})
    assert ask(alice, "kms:ListKeys", identity=(lister,), resource_account=None).allowed
    assert not ask(alice, "kms:CreateKey", identity=(lister,), resource_account=None).allowed
    assert ask(f"acs:ram::{OWNER}:root", "kms:CreateKey", resource_account=None).allowed


# ---- property test against a reference evaluator ------------------------------------------------

ACCOUNTS = [OWNER, OTHER]
NAMES = ["root", "user/alice", "user/bob", "role/ops"]
ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ListKeys", "kms:DisableKey", "kms:ScheduleKeyDeletion"]
ACTION_PATTERNS = [*ACTIONS, "kms:*", "*", "kms:List*", "KMS:encrypt", "kms:?ecrypt", "kms:Dis*"]
RESOURCE_PATTERNS = [
    "*",
    KEY_ARN,
    f"acs:kms:*:{OWNER}:key/*",
    f"acs:kms:*:{OTHER}:key/*",
    "acs:kms:*:*:alias/*",
]
PRINCIPAL_PATTERNS = [f"acs:ram::{a}:{n}" for a in ACCOUNTS for n in ["*", *NAMES, "user/*"]]


@cache
def ref_match(pattern: str, text: str) -> bool:
    """Recursive glob: * any run, ? one character; nothing shared with the engine's regex matcher."""
    if not pattern:
        return not text
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        return ref_match(rest, text) or (bool(text) and ref_match(pattern, text[1:]))
    return bool(text) and (head == "?" or head == text[0]) and ref_match(rest, text[1:])


Stmts = list[dict[str, object]]


def key_arn_of(account: str | None) -> str:
    return "*" if account is None else f"acs:kms:cn-hangzhou:{account}:key/key-1"


def reference(
    account: str, arn: str, action: str, resource_account: str | None, identity: Stmts, key: Stmts | None
) -> tuple[bool, bool]:
    """(allowed, explicitly denied), straight from the rules in the engine's docstring."""
    root = arn == f"acs:ram::{account}:root"
    own = resource_account is None or resource_account == account
    if own and root:
        return True, False
    resource = key_arn_of(resource_account)

    def applies(s: dict[str, object]) -> bool:
        actions, resources = s["Action"], s["Resource"]
        assert isinstance(actions, list) and isinstance(resources, list)
        return any(ref_match(p.lower(), action.lower()) for p in actions) and any(
            ref_match(r, resource) for r in resources
        )

    def account_wide(p: str) -> bool:
        return p in ("*", f"acs:ram::{account}:root") or (
            p.endswith(":*") and ref_match(p, f"acs:ram::{account}:*")
        )

    id_hits = [] if root else [s for s in identity if applies(s)]
    key_hits = [] if key is None else [s for s in key if applies(s)]
    covering = [
        s for s in key_hits if any(account_wide(p) or ref_match(p, arn) for p in s["Principal"]["RAM"])
    ]  # type: ignore[index]
    if any(s["Effect"] == "Deny" for s in id_hits + covering):
        return False, True
    id_allow = root or bool(id_hits)
    deleg = any(any(account_wide(p) for p in s["Principal"]["RAM"]) for s in covering)  # type: ignore[index]
    named = any(not all(account_wide(p) for p in s["Principal"]["RAM"]  # type: ignore[index]
                        if account_wide(p) or ref_match(p, arn)) for s in covering)  # fmt: skip
    if own:
        if key is None or resource_account is None:
            return id_allow, False
        return named or id_allow, False
    if key is None:
        return False, False
    return (named or deleg) and id_allow, False


def statements(with_principal: bool) -> st.SearchStrategy[list[dict[str, object]]]:
    fields: dict[str, st.SearchStrategy[object]] = {
        "Effect": st.sampled_from(["Allow", "Allow", "Deny"]),
        "Action": st.lists(st.sampled_from(ACTION_PATTERNS), min_size=1, max_size=3),
        "Resource": st.lists(st.sampled_from(RESOURCE_PATTERNS), min_size=1, max_size=2),
    }
    if with_principal:
        fields["Principal"] = st.lists(st.sampled_from(PRINCIPAL_PATTERNS), min_size=1, max_size=2).map(
            lambda ps: {"RAM": ps}
        )
    return st.lists(st.fixed_dictionaries(fields), min_size=1, max_size=4)


@settings(max_examples=1000, deadline=None)
@given(
    account=st.sampled_from(ACCOUNTS),
    name=st.sampled_from(NAMES),
    action=st.sampled_from(ACTIONS),
    resource_account=st.sampled_from([OWNER, OTHER, None]),
    identity=st.lists(statements(False), max_size=2),
    key=st.one_of(st.none(), statements(True)),
)
def test_engine_agrees_with_the_reference(
    account: str,
    name: str,
    action: str,
    resource_account: str | None,
    identity: list[list[dict[str, object]]],
    key: list[dict[str, object]] | None,
) -> None:
    arn = f"acs:ram::{account}:{name}"
    decision = evaluate(
        AccessRequest(
            principal_account=account,
            principal_arn=arn,
            action=action,
            resource_account=resource_account,
            resource_arn=key_arn_of(resource_account),
            facts=FACTS,
            identity_policies=tuple(
                parse_policy(json.dumps({"Version": "1", "Statement": s}), PolicyKind.IDENTITY)
                for s in identity
            ),
            key_policy=None
            if key is None or resource_account is None
            else parse_policy(json.dumps({"Version": "1", "Statement": key}), PolicyKind.KEY),
        )
    )
    flat = [s for policy in identity for s in policy]
    expected = reference(
        account, arn, action, resource_account, flat, None if resource_account is None else key
    )
    assert (decision.allowed, decision.explicit_deny) == expected, decision.reason


def test_a_key_policy_shares_with_whom_an_allow_statement_names() -> None:
    """The visibility rule of another account's key (no existence oracle): named or delegated to by an
    Allow statement, whatever its actions and conditions; a Deny shares nothing."""
    root, user, other_user = (f"acs:ram::{OTHER}:{name}" for name in ("root", "user/app", "user/else"))
    assert not any(shares_with(DEFAULT, OTHER, arn) for arn in (root, user))

    def allow(principal: str, **extra: object) -> dict[str, object]:
        return {"Effect": "Allow", "Principal": {"RAM": [principal]}, "Action": ["kms:Encrypt"],
                "Resource": ["*"], **extra}  # fmt: skip

    by_name = key_policy(allow(user))
    assert shares_with(by_name, OTHER, user)
    assert not shares_with(by_name, OTHER, root) and not shares_with(by_name, OTHER, other_user)
    to_account = key_policy(allow(f"acs:ram::{OTHER}:*"))
    assert all(shares_with(to_account, OTHER, arn) for arn in (root, user, other_user))
    conditional = key_policy(allow(user, Condition={"IpAddress": {"acs:SourceIp": ["192.0.2.0/24"]}}))
    assert shares_with(conditional, OTHER, user)
    denying = key_policy({**allow(user), "Effect": "Deny"})
    assert not shares_with(denying, OTHER, user)
    assert not shares_with(by_name, "3333333333333333", "acs:ram::3333333333333333:user/app")


# ---- an application access point of the key's own account needs both sides (rule 4) ---------------

APP = f"acs:ram::{OWNER}:applicationaccesspoint/app"


def ask_app(key: PolicyDocument | None, identity: tuple[PolicyDocument, ...] = (USE_KEYS,)) -> Decision:
    return evaluate(
        AccessRequest(
            principal_account=OWNER,
            principal_arn=APP,
            action="kms:Encrypt",
            resource_account=OWNER,
            resource_arn=KEY_ARN,
            facts=FACTS,
            identity_policies=identity,
            key_policy=key,
            key_policy_required=True,
        )
    )


def test_an_access_point_is_allowed_by_the_default_key_policy_and_its_grant() -> None:
    assert ask_app(DEFAULT).allowed
    assert not ask_app(DEFAULT, identity=()).allowed  # the access point's own side is required


def test_a_key_policy_that_lists_only_others_closes_the_key_to_access_points() -> None:
    alice_only = key_policy(
        {
            "Effect": "Allow",
            "Principal": {"RAM": [f"acs:ram::{OWNER}:user/alice"]},
            "Action": ["kms:*"],
            "Resource": ["*"],
        }
    )
    decision = ask_app(alice_only)
    assert not decision.allowed and decision.policy_type == KEY_POLICY
    # The same policy lets a RAM user of the account in through its identity policy (rule 3).
    assert ask(f"acs:ram::{OWNER}:user/bob", "kms:Encrypt", key=alice_only, identity=(USE_KEYS,)).allowed
    named = key_policy(
        {"Effect": "Allow", "Principal": {"RAM": [APP]}, "Action": ["kms:Encrypt"], "Resource": ["*"]}
    )
    assert ask_app(named).allowed


def test_a_deny_naming_the_access_point_wins() -> None:
    denying = key_policy(
        {
            "Effect": "Allow",
            "Principal": {"RAM": [f"acs:ram::{OWNER}:*"]},
            "Action": ["kms:*"],
            "Resource": ["*"],
        },
        {"Effect": "Deny", "Principal": {"RAM": [APP]}, "Action": ["kms:*"], "Resource": ["*"]},
    )
    decision = ask_app(denying)
    assert not decision.allowed and decision.explicit_deny
    assert not ask_app(None).allowed  # no key policy: nothing on the key's side
