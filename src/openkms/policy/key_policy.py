"""Key policies as the seed describes them (F4): the default policy, and the three principal lists of
a custom policy with exactly the seed's action lists.

The default policy, as Alibaba writes it, names the key's account (`acs:ram::<uid>:*`): the account's
root may do anything with it. Its RAM users and roles get whatever their identity policies allow, with
or without that statement (Alibaba's same-account rule, `policy.engine` rule 3). A custom policy built
here keeps that statement and adds administrators (manage, never use), users (use, never manage) and
users of other accounts (use, and only with their own account's grant too).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache

from openkms.policy.document import PolicyDocument, PolicyKind, parse_policy

DEFAULT_SID = "kms default key policy"
ADMINISTRATORS_SID = "Key Administrators"
USERS_SID = "Key Users"
OTHER_ACCOUNT_USERS_SID = "Other Account Users"
INSTANCE_OWNER_SID = "Instance Owner"

ADMINISTRATOR_ACTIONS: tuple[str, ...] = (
    "kms:List*",
    "kms:Describe*",
    "kms:Create*",
    "kms:Enable*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Set*",
    "kms:Update*",
    "kms:Delete*",
    "kms:Cancel*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ImportKeyMaterial",
    "kms:ScheduleKeyDeletion",
)
USER_ACTIONS: tuple[str, ...] = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "kms:GenerateAndExportDataKey",
    "kms:AsymmetricEncrypt",
    "kms:AsymmetricDecrypt",
    "kms:DescribeKey",
    "kms:DescribeKeyVersion",
    "kms:ListKeyVersions",
    "kms:ListAliasesByKeyId",
    "kms:TagResource",
)


def _statement(sid: str, principals: Sequence[str], actions: Sequence[str]) -> dict[str, object]:
    return {
        "Action": list(actions),
        "Effect": "Allow",
        "Principal": {"RAM": list(principals)},
        "Resource": ["*"],
        "Sid": sid,
    }


def _text(statements: list[dict[str, object]]) -> str:
    return json.dumps({"Statement": statements, "Version": "1"}, separators=(",", ":"))


def default_key_policy(account_id: str) -> str:
    """The policy of a key created without one, as GetKeyPolicy returns it."""
    return _text([_statement(DEFAULT_SID, [f"acs:ram::{account_id}:*"], ["kms:*"])])


def shared_instance_key_policy(account_id: str, instance_owner: str) -> str:
    """The default policy of a key made by `account_id` in an instance `instance_owner` shared with it:
    the key's account manages and uses it; the owner may use it (F4.1), not manage or delete it."""
    return _text(
        [
            _statement(DEFAULT_SID, [f"acs:ram::{account_id}:*"], ["kms:*"]),
            _statement(INSTANCE_OWNER_SID, [f"acs:ram::{instance_owner}:*"], USER_ACTIONS),
        ]
    )


def custom_key_policy(
    account_id: str,
    administrators: Sequence[str] = (),
    users: Sequence[str] = (),
    other_account_users: Sequence[str] = (),
) -> str:
    """The default statement plus the seed's three lists (F4.2); empty lists are left out."""
    statements = [_statement(DEFAULT_SID, [f"acs:ram::{account_id}:*"], ["kms:*"])]
    if administrators:
        statements.append(_statement(ADMINISTRATORS_SID, administrators, ADMINISTRATOR_ACTIONS))
    if users:
        statements.append(_statement(USERS_SID, users, USER_ACTIONS))
    if other_account_users:
        statements.append(_statement(OTHER_ACCOUNT_USERS_SID, other_account_users, USER_ACTIONS))
    return _text(statements)


@lru_cache(maxsize=4096)
def key_policy_document(account_id: str, text: str | None) -> PolicyDocument:
    """The parsed policy of a key of `account_id` (`None`: the default policy). Cached by text."""
    return parse_policy(default_key_policy(account_id) if text is None else text, PolicyKind.KEY)


def other_accounts(document: PolicyDocument, account_id: str) -> frozenset[str]:
    """The accounts other than `account_id` that an Allow statement of `document` names (F4.3 quota)."""
    found: set[str] = set()
    for statement in document.statements:
        if not statement.allows:
            continue
        for principal in statement.principals:
            parts = principal.split(":")
            if len(parts) >= 4 and parts[3] not in (account_id, "*"):
                found.add(parts[3])
    return frozenset(found)
