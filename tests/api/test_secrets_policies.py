"""Who may use a secret: RAM identity policies naming secret ARNs, secret policies (GetSecretPolicy,
SetSecretPolicy) and another account reaching a secret by its ARN, through the official SDKs."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from openkms.policy.key_policy import custom_key_policy
from openkms.policy.secret_policy import default_secret_policy
from tests.api.test_identities import create_account, new_user, unique
from tests.api.test_secrets import refused
from tests.support.products import Caller
from tests.support.sdk import KmsCaller
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer


@pytest.fixture
def root(server: LiveServer) -> Callable[[str], Caller]:
    return lambda product: Caller(product, server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)


@pytest.fixture
def account_id(root: Callable[[str], Caller]) -> str:
    return str(root("sts").call("GetCallerIdentity")["AccountId"])


@pytest.fixture
def owner(server: LiveServer) -> KmsCaller:
    return KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)


def _policy(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": "1", "Statement": list(statements)})


def test_identity_policies_name_secret_arns(
    server: LiveServer, owner: KmsCaller, root: Callable[[str], Caller], account_id: str
) -> None:
    allowed, other = unique("app"), unique("other")
    for name in (allowed, other):
        owner.call("CreateSecret", SecretName=name, VersionId="v1", SecretData=f"value of {name}")
    ram = root("ram")
    user, key, secret = new_user(ram)
    document = _policy(
        {
            "Effect": "Allow",
            "Action": ["kms:GetSecretValue", "kms:DescribeSecret"],
            "Resource": [f"acs:kms:cn-hangzhou:{account_id}:secret/{allowed}"],
        },
        {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": ["*"]},
    )
    policy = unique("policy")
    ram.call("CreatePolicy", PolicyName=policy, PolicyDocument=document)
    ram.call("AttachPolicyToUser", UserName=user, PolicyType="Custom", PolicyName=policy)
    as_user = KmsCaller("tea-acs3", server.endpoint, key, secret)
    assert as_user.call("GetSecretValue", SecretName=allowed)["SecretData"] == f"value of {allowed}"
    by_arn = f"acs:kms:cn-hangzhou:{account_id}:secret/{allowed}"
    assert as_user.call("GetSecretValue", SecretName=by_arn)["SecretData"] == f"value of {allowed}"
    refused(lambda: as_user.call("GetSecretValue", SecretName=other), "Forbidden.NoPermission", 403)
    refused(
        lambda: as_user.call("PutSecretValue", SecretName=allowed, VersionId="v2", SecretData="x"),
        "Forbidden.NoPermission",
        403,
    )
    refused(
        lambda: as_user.call("CreateSecret", SecretName=unique("new"), VersionId="v1", SecretData="x"),
        "Forbidden.NoPermission",
        403,
    )
    refused(lambda: as_user.call("GetRandomPassword"), "Forbidden.NoPermission", 403)
    # A secret policy's Deny wins over the identity policy's Allow.
    assert owner.call("GetSecretPolicy", SecretName=allowed)["Policy"] == default_secret_policy(account_id)
    deny = _policy(
        {
            "Sid": "kms default secret policy",
            "Effect": "Allow",
            "Principal": {"RAM": [f"acs:ram::{account_id}:*"]},
            "Action": ["kms:*"],
            "Resource": ["*"],
        },
        {
            "Effect": "Deny",
            "Principal": {"RAM": [f"acs:ram::{account_id}:user/{user}"]},
            "Action": ["kms:GetSecretValue"],
            "Resource": ["*"],
        },
    )
    owner.call("SetSecretPolicy", SecretName=allowed, Policy=deny)
    assert owner.call("GetSecretPolicy", SecretName=allowed, PolicyName="default")["Policy"] == deny
    refused(lambda: as_user.call("GetSecretValue", SecretName=allowed), "Forbidden.NoPermission", 403)
    assert as_user.call("DescribeSecret", SecretName=allowed)["SecretName"] == allowed
    refused(
        lambda: owner.call("SetSecretPolicy", SecretName=allowed, Policy='{"Version": "1"}'),
        "MalformedPolicyDocument",
        400,
    )
    refused(
        lambda: owner.call("GetSecretPolicy", SecretName=allowed, PolicyName="other"), "InvalidParameter", 400
    )


def test_another_account_by_arn_needs_the_secret_and_key_policies(
    server: LiveServer, owner: KmsCaller, account_id: str, instance_id: str
) -> None:
    key_id = owner.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"]
    name = unique("shared")
    owner.call("CreateSecret", SecretName=name, VersionId="v1", SecretData="across", EncryptionKeyId=key_id)
    other = create_account(server)
    guest = KmsCaller("tea-acs3", server.endpoint, other["AccessKeyId"], other["AccessKeySecret"])
    arn = f"acs:kms:cn-hangzhou:{account_id}:secret/{name}"
    # Not shared: the secret does not exist for the guest, by name or by ARN.
    refused(lambda: guest.call("GetSecretValue", SecretName=arn), "Forbidden.ResourceNotFound", 404)
    refused(lambda: guest.call("GetSecretValue", SecretName=name), "Forbidden.ResourceNotFound", 404)
    grant = _policy(
        {
            "Effect": "Allow",
            "Principal": {"RAM": [f"acs:ram::{account_id}:*"]},
            "Action": ["kms:*"],
            "Resource": ["*"],
        },
        {
            "Effect": "Allow",
            "Principal": {"RAM": [f"acs:ram::{other['AccountId']}:*"]},
            "Action": ["kms:GetSecretValue"],
            "Resource": ["*"],
        },
    )
    owner.call("SetSecretPolicy", SecretName=name, Policy=grant)
    # The secret is shared, its key is not: the data key does not open for the guest.
    refused(lambda: guest.call("GetSecretValue", SecretName=arn), "Rejected.InvalidCiphertext", 400)
    owner.call(
        "SetKeyPolicy",
        KeyId=key_id,
        Policy=custom_key_policy(account_id, other_account_users=[f"acs:ram::{other['AccountId']}:*"]),
    )
    assert guest.call("GetSecretValue", SecretName=arn)["SecretData"] == "across"
    refused(lambda: guest.call("DescribeSecret", SecretName=arn), "Forbidden.NoPermission", 403)
