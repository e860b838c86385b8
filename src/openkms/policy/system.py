"""System policies: the built-in RAM policies an account can attach without writing one (PolicyType
System). Their documents are fixed here, in the same language as custom policies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from types import MappingProxyType

from openkms.policy.document import PolicyDocument, PolicyKind, parse_policy
from openkms.policy.key_policy import USER_ACTIONS


def _allow(*actions: str) -> str:
    return json.dumps(
        {"Version": "1", "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}]},
        separators=(",", ":"),
    )


SYSTEM_POLICIES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "AdministratorAccess": ("Full access to every resource of the account.", _allow("*")),
        "AliyunKMSFullAccess": ("Full access to KMS.", _allow("kms:*")),
        "AliyunKMSReadOnlyAccess": (
            "Read-only access to KMS.",
            _allow("kms:List*", "kms:Describe*", "kms:Get*"),
        ),
        "AliyunKMSCryptoUserAccess": (
            "Use KMS keys for cryptographic operations.",
            _allow(*USER_ACTIONS, "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt", "kms:ListKeys"),
        ),
        "AliyunRAMFullAccess": ("Manage RAM users, roles and policies.", _allow("ram:*")),
        "AliyunSTSAssumeRoleAccess": ("Call STS AssumeRole.", _allow("sts:AssumeRole")),
    }
)


@cache
def system_policy(name: str) -> PolicyDocument | None:
    entry = SYSTEM_POLICIES.get(name)
    return None if entry is None else parse_policy(entry[1], PolicyKind.IDENTITY)
