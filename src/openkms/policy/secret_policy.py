"""Secret policies: the resource policy of a secret (GetSecretPolicy, SetSecretPolicy, CreateSecret's
Policy). The language is the key policy's (a `Principal: {"RAM": [...]}` per statement, 32 KiB); the
default policy delegates the secret to its account, as a key's does.
"""

from __future__ import annotations

import json
from functools import lru_cache

from openkms.policy.document import PolicyDocument, PolicyKind, parse_policy

DEFAULT_SID = "kms default secret policy"


def default_secret_policy(account_id: str) -> str:
    """The policy of a secret created without one, as GetSecretPolicy returns it."""
    statement = {
        "Action": ["kms:*"],
        "Effect": "Allow",
        "Principal": {"RAM": [f"acs:ram::{account_id}:*"]},
        "Resource": ["*"],
        "Sid": DEFAULT_SID,
    }
    return json.dumps({"Statement": [statement], "Version": "1"}, separators=(",", ":"))


@lru_cache(maxsize=4096)
def secret_policy_document(account_id: str, text: str | None) -> PolicyDocument:
    """The parsed policy of a secret of `account_id` (`None`: the default policy). Cached by text."""
    return parse_policy(default_secret_policy(account_id) if text is None else text, PolicyKind.KEY)
