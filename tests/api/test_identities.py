"""Identities and key policies through the official KMS, RAM and STS SDKs against a live server:
RAM users and access keys, policies and attachments, the seed's administrators/users model, other
accounts (both sides must allow), STS sessions, explained denials. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from openkms.policy.key_policy import custom_key_policy, default_key_policy, shared_instance_key_policy
from tests.support.products import Caller, DeniedError
from tests.support.raw import send, signed_params
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

SIGNINGS = ("acs3", "rpc")  # the RAM and STS SDKs have no ACS4 gateway


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def root(server: LiveServer) -> Callable[[str], Caller]:
    def make(product: str, signing: str = "acs3") -> Caller:
        return Caller(product, server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET, signing=signing)

    return make


@pytest.fixture
def account_id(root: Callable[[str], Caller]) -> str:
    return str(root("sts").call("GetCallerIdentity")["AccountId"])


@pytest.fixture
def kms_key(root: Callable[[str], Caller]) -> str:
    kms = root("kms")
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    return str(kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"])


def new_user(ram: Caller, *policies: str) -> tuple[str, str, str]:
    """(user name, access key id, secret) of a fresh RAM user with these system policies."""
    name = unique("user")
    ram.call("CreateUser", UserName=name)
    created = ram.call("CreateAccessKey", UserName=name)["AccessKey"]
    for policy in policies:
        ram.call("AttachPolicyToUser", UserName=name, PolicyType="System", PolicyName=policy)
    return name, created["AccessKeyId"], created["AccessKeySecret"]


def as_user(server: LiveServer, product: str, access_key_id: str, secret: str) -> Caller:
    return Caller(product, server.endpoint, access_key_id, secret)


def denied(call: Callable[[], Any]) -> DeniedError:
    with pytest.raises(DeniedError) as caught:
        call()
    return caught.value


# ---- RAM users and access keys --------------------------------------------------------------------


@pytest.mark.parametrize("signing", SIGNINGS)
def test_user_lifecycle_with_the_ram_sdk(root: Callable[[str, str], Caller], signing: str) -> None:
    ram = root("ram", signing)
    name = unique("alice")
    created = ram.call("CreateUser", UserName=name, DisplayName="Alice", Comments="test user")["User"]
    assert created["UserName"] == name and created["DisplayName"] == "Alice" and created["UserId"]
    assert ram.call("GetUser", UserName=name)["User"]["Comments"] == "test user"
    listed = [u["UserName"] for u in ram.call("ListUsers", MaxItems=1000)["Users"]["User"]]
    assert name in listed
    assert denied(lambda: ram.call("CreateUser", UserName=name)).code == "EntityAlreadyExists.User"
    assert denied(lambda: ram.call("CreateUser", UserName="bad name!")).code == "InvalidParameter"

    key = ram.call("CreateAccessKey", UserName=name)["AccessKey"]
    assert key["Status"] == "Active" and len(key["AccessKeySecret"]) >= 30
    listed_keys = ram.call("ListAccessKeys", UserName=name)["AccessKeys"]["AccessKey"]
    assert [k["AccessKeyId"] for k in listed_keys] == [key["AccessKeyId"]]
    assert "AccessKeySecret" not in listed_keys[0]
    conflict = denied(lambda: ram.call("DeleteUser", UserName=name))
    assert (conflict.code, conflict.status) == ("DeleteConflict.User.AccessKey", 409)
    ram.call("DeleteAccessKey", UserName=name, UserAccessKeyId=key["AccessKeyId"])
    ram.call("DeleteUser", UserName=name)
    assert denied(lambda: ram.call("GetUser", UserName=name)).code == "EntityNotExist.User"


def test_two_access_keys_per_user(root: Callable[[str], Caller]) -> None:
    ram = root("ram")
    name, _, _ = new_user(ram)
    ram.call("CreateAccessKey", UserName=name)
    limited = denied(lambda: ram.call("CreateAccessKey", UserName=name))
    assert limited.code == "LimitExceeded.User.AccessKey"
    assert len(ram.call("ListAccessKeys", UserName=name)["AccessKeys"]["AccessKey"]) == 2


def test_inactive_and_deleted_keys_are_refused(server: LiveServer, root: Callable[[str], Caller]) -> None:
    ram = root("ram")
    name, access_key_id, secret = new_user(ram, "AliyunKMSReadOnlyAccess")
    user_kms = as_user(server, "kms", access_key_id, secret)
    user_kms.call("ListKeys")
    ram.call("UpdateAccessKey", UserName=name, UserAccessKeyId=access_key_id, Status="Inactive")
    refused = denied(lambda: user_kms.call("ListKeys"))
    assert (refused.code, refused.status) == ("InvalidAccessKeyId.NotFound", 404)
    ram.call("UpdateAccessKey", UserName=name, UserAccessKeyId=access_key_id, Status="Active")
    user_kms.call("ListKeys")
    ram.call("DeleteAccessKey", UserName=name, UserAccessKeyId=access_key_id)
    assert denied(lambda: user_kms.call("ListKeys")).code == "InvalidAccessKeyId.NotFound"


# ---- policies and attachments ----------------------------------------------------------------------


def test_custom_policy_lifecycle(root: Callable[[str], Caller]) -> None:
    ram = root("ram")
    name = unique("encrypt-only")
    document = json.dumps(
        {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"}]}
    )
    created = ram.call("CreatePolicy", PolicyName=name, PolicyDocument=document, Description="d")["Policy"]
    assert (created["PolicyName"], created["PolicyType"], created["DefaultVersion"]) == (name, "Custom", "v1")
    got = ram.call("GetPolicy", PolicyName=name, PolicyType="Custom")
    assert got["Policy"]["PolicyDocument"] == document
    assert got["DefaultPolicyVersion"]["PolicyDocument"] == document
    names = {
        (p["PolicyType"], p["PolicyName"])
        for p in ram.call("ListPolicies", MaxItems=1000)["Policies"]["Policy"]
    }
    assert ("Custom", name) in names and ("System", "AliyunKMSFullAccess") in names

    user, _, _ = new_user(ram)
    ram.call("AttachPolicyToUser", UserName=user, PolicyType="Custom", PolicyName=name)
    again = denied(
        lambda: ram.call("AttachPolicyToUser", UserName=user, PolicyType="Custom", PolicyName=name)
    )
    assert again.code == "EntityAlreadyExists.User.Policy"
    attached = ram.call("ListPoliciesForUser", UserName=user)["Policies"]["Policy"]
    assert [(p["PolicyType"], p["PolicyName"]) for p in attached] == [("Custom", name)]
    assert denied(lambda: ram.call("DeletePolicy", PolicyName=name)).code == "DeleteConflict.Policy.User"
    ram.call("DetachPolicyFromUser", UserName=user, PolicyType="Custom", PolicyName=name)
    detached = denied(
        lambda: ram.call("DetachPolicyFromUser", UserName=user, PolicyType="Custom", PolicyName=name)
    )
    assert detached.code == "EntityNotExist.User.Policy"
    ram.call("DeletePolicy", PolicyName=name)
    assert (
        denied(lambda: ram.call("GetPolicy", PolicyName=name, PolicyType="Custom")).code
        == "EntityNotExist.Policy"
    )


def _statement(**fields: object) -> str:
    return json.dumps({"Version": "1", "Statement": [{"Effect": "Allow", "Resource": "*", **fields}]})


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ("{not json", "not valid JSON"),
        (_statement(NotAction="kms:*"), "NotAction"),
        (_statement(Action="kms:*", Condition={"StringEquals": {"acs:UserAgent": "x"}}), "acs:UserAgent"),
    ],
)
def test_malformed_policies_are_refused_and_nothing_is_created(
    root: Callable[[str], Caller], document: str, reason: str
) -> None:
    ram = root("ram")
    name = unique("bad")
    refused = denied(lambda: ram.call("CreatePolicy", PolicyName=name, PolicyDocument=document))
    assert (refused.code, refused.status) == ("MalformedPolicyDocument", 400) and reason in refused.message
    assert (
        denied(lambda: ram.call("GetPolicy", PolicyName=name, PolicyType="Custom")).code
        == "EntityNotExist.Policy"
    )


# ---- authorization of KMS calls ----------------------------------------------------------------------


def test_a_user_without_a_grant_is_refused_with_an_explanation(
    server: LiveServer, root: Callable[[str], Caller], kms_key: str, account_id: str
) -> None:
    ram = root("ram")
    _, access_key_id, secret = new_user(ram)
    user_kms = as_user(server, "kms", access_key_id, secret)
    refusal = denied(lambda: user_kms.call("Encrypt", KeyId=kms_key, Plaintext="hello"))
    assert (refusal.code, refusal.status) == ("Forbidden.NoPermission", 403)
    detail = refusal.detail
    assert detail["AuthAction"] == "kms:Encrypt"
    assert detail["NoPermissionType"] == "ImplicitDeny"
    assert detail["AuthPrincipalType"] == "SubUser" and detail["AuthPrincipalOwnerId"] == account_id
    assert detail["AuthResource"].endswith(f":key/{kms_key}")
    assert "no identity policy statement allows it" in detail["Reason"]


def test_identity_policies_grant_and_an_explicit_deny_wins(
    server: LiveServer, root: Callable[[str], Caller], kms_key: str
) -> None:
    ram = root("ram")
    user, access_key_id, secret = new_user(ram, "AliyunKMSCryptoUserAccess")
    user_kms = as_user(server, "kms", access_key_id, secret)
    blob = user_kms.call("Encrypt", KeyId=kms_key, Plaintext="hello")["CiphertextBlob"]
    assert user_kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "hello"
    assert denied(lambda: user_kms.call("DisableKey", KeyId=kms_key)).code == "Forbidden.NoPermission"
    schedule = denied(lambda: user_kms.call("ScheduleKeyDeletion", KeyId=kms_key, PendingWindowInDays=7))
    assert schedule.code == "Forbidden.NoPermission"

    deny = unique("no-decrypt")
    document = {
        "Version": "1",
        "Statement": [{"Sid": "NoDecrypt", "Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"}],
    }
    ram.call("CreatePolicy", PolicyName=deny, PolicyDocument=json.dumps(document))
    ram.call("AttachPolicyToUser", UserName=user, PolicyType="Custom", PolicyName=deny)
    refusal = denied(lambda: user_kms.call("Decrypt", CiphertextBlob=blob))
    assert refusal.detail["NoPermissionType"] == "ExplicitDeny" and "'NoDecrypt'" in refusal.detail["Reason"]
    user_kms.call("Encrypt", KeyId=kms_key, Plaintext="still allowed")


def _custom_policy(ram: Caller, user: str, *statements: dict[str, object]) -> None:
    name = unique("custom")
    ram.call(
        "CreatePolicy", PolicyName=name, PolicyDocument=json.dumps({"Version": "1", "Statement": statements})
    )
    ram.call("AttachPolicyToUser", UserName=user, PolicyType="Custom", PolicyName=name)


def test_same_account_one_allow_from_either_side_is_enough(
    server: LiveServer, root: Callable[[str], Caller], kms_key: str, account_id: str
) -> None:
    """Alibaba's same-account rule: the key policy OR the caller's RAM policies allow, and no explicit
    Deny on either side. Here the key policy names neither the user nor the account."""
    ram, kms = root("ram"), root("kms")
    key_arn = kms.call("DescribeKey", KeyId=kms_key)["KeyMetadata"]["Arn"]
    user, access_key_id, secret = new_user(ram)
    user_arn = f"acs:ram::{account_id}:user/{user}"
    someone_else = custom_key_policy(account_id, users=[f"acs:ram::{account_id}:user/someone-else"])
    not_naming = json.loads(someone_else)
    not_naming["Statement"] = [s for s in not_naming["Statement"] if s["Sid"] != "kms default key policy"]
    kms.call("SetKeyPolicy", KeyId=kms_key, PolicyName="default", Policy=json.dumps(not_naming))
    user_kms = as_user(server, "kms", access_key_id, secret)

    neither = denied(lambda: user_kms.call("Encrypt", KeyId=kms_key, Plaintext="x"))
    assert (neither.code, neither.detail["NoPermissionType"]) == ("Forbidden.NoPermission", "ImplicitDeny")
    # The RAM policy alone allows Encrypt on this key: allowed.
    _custom_policy(ram, user, {"Effect": "Allow", "Action": "kms:Encrypt", "Resource": key_arn})
    blob = user_kms.call("Encrypt", KeyId=kms_key, Plaintext="by my RAM policy")["CiphertextBlob"]
    assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "by my RAM policy"
    # What neither side allows stays refused.
    assert denied(lambda: user_kms.call("Decrypt", CiphertextBlob=blob)).code == "Forbidden.NoPermission"

    # An explicit Deny in the key policy wins over the RAM policy's Allow.
    with_deny = {**not_naming, "Statement": [*not_naming["Statement"], {
        "Sid": "NoEncryptForUser", "Effect": "Deny", "Principal": {"RAM": [user_arn]},
        "Action": ["kms:Encrypt"], "Resource": ["*"]}]}  # fmt: skip
    kms.call("SetKeyPolicy", KeyId=kms_key, PolicyName="default", Policy=json.dumps(with_deny))
    key_deny = denied(lambda: user_kms.call("Encrypt", KeyId=kms_key, Plaintext="x"))
    assert key_deny.detail["NoPermissionType"] == "ExplicitDeny"
    assert key_deny.detail["PolicyType"] == "KeyPolicy" and "'NoEncryptForUser'" in key_deny.detail["Reason"]

    # The key policy alone allows Decrypt (it names the user); an explicit Deny in a RAM policy wins.
    names_user = custom_key_policy(account_id, users=[user_arn])
    kms.call("SetKeyPolicy", KeyId=kms_key, PolicyName="default", Policy=names_user)
    assert user_kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "by my RAM policy"
    _custom_policy(
        ram, user, {"Sid": "NoDecrypt", "Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"}
    )
    ram_deny = denied(lambda: user_kms.call("Decrypt", CiphertextBlob=blob))
    assert ram_deny.detail["NoPermissionType"] == "ExplicitDeny"
    assert ram_deny.detail["PolicyType"] == "IdentityPolicy" and "'NoDecrypt'" in ram_deny.detail["Reason"]


def test_seed_administrators_and_users_in_a_custom_key_policy(
    server: LiveServer, root: Callable[[str], Caller], kms_key: str, account_id: str
) -> None:
    ram, kms = root("ram"), root("kms")
    admin, admin_key, admin_secret = new_user(ram)
    app, app_key, app_secret = new_user(ram)
    policy = custom_key_policy(
        account_id,
        administrators=[f"acs:ram::{account_id}:user/{admin}"],
        users=[f"acs:ram::{account_id}:user/{app}"],
    )
    kms.call("SetKeyPolicy", KeyId=kms_key, PolicyName="default", Policy=policy)
    assert json.loads(kms.call("GetKeyPolicy", KeyId=kms_key, PolicyName="default")["Policy"]) == json.loads(
        policy
    )

    admin_kms = as_user(server, "kms", admin_key, admin_secret)
    app_kms = as_user(server, "kms", app_key, app_secret)
    # Administrators manage and never use; users use and never manage; no identity policy needed.
    admin_kms.call("DescribeKey", KeyId=kms_key)
    admin_kms.call("DisableKey", KeyId=kms_key)
    admin_kms.call("EnableKey", KeyId=kms_key)
    refused = denied(lambda: admin_kms.call("Encrypt", KeyId=kms_key, Plaintext="x"))
    assert refused.code == "Forbidden.NoPermission" and refused.detail["NoPermissionType"] == "ImplicitDeny"
    blob = app_kms.call("Encrypt", KeyId=kms_key, Plaintext="data")["CiphertextBlob"]
    assert app_kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "data"
    assert denied(lambda: app_kms.call("DisableKey", KeyId=kms_key)).code == "Forbidden.NoPermission"
    scheduled = denied(lambda: app_kms.call("ScheduleKeyDeletion", KeyId=kms_key, PendingWindowInDays=7))
    assert scheduled.code == "Forbidden.NoPermission"
    assert root("kms").call("DescribeKey", KeyId=kms_key)["KeyMetadata"]["KeyState"] == "Enabled"


def test_key_policy_defaults_and_refusals(
    root: Callable[[str], Caller], kms_key: str, account_id: str
) -> None:
    kms = root("kms")
    assert kms.call("GetKeyPolicy", KeyId=kms_key, PolicyName="default")["Policy"] == default_key_policy(
        account_id
    )
    bad = denied(
        lambda: kms.call("SetKeyPolicy", KeyId=kms_key, PolicyName="default", Policy='{"Version": "1"}')
    )
    assert (bad.code, bad.status) == ("MalformedPolicyDocument", 400)
    assert kms.call("GetKeyPolicy", KeyId=kms_key, PolicyName="default")["Policy"] == default_key_policy(
        account_id
    )
    wrong_name = denied(lambda: kms.call("SetKeyPolicy", KeyId=kms_key, PolicyName="other", Policy="{}"))
    assert wrong_name.code == "InvalidParameter"
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    custom = custom_key_policy(account_id, users=[f"acs:ram::{account_id}:user/someone"])
    made = kms.call("CreateKey", DKMSInstanceId=instance, Policy=custom)["KeyMetadata"]["KeyId"]
    assert kms.call("GetKeyPolicy", KeyId=made, PolicyName="default")["Policy"] == custom
    before = kms.call("ListKeys", PageSize=100)["TotalCount"]
    broken = denied(lambda: kms.call("CreateKey", DKMSInstanceId=instance, Policy="[]"))
    assert broken.code == "MalformedPolicyDocument"
    assert kms.call("ListKeys", PageSize=100)["TotalCount"] == before


# ---- other accounts ---------------------------------------------------------------------------------


def create_account(server: LiveServer) -> dict[str, str]:
    args = [
        sys.executable,
        "-m",
        "openkms.cli",
        "account",
        "create",
        "--data-dir",
        str(server.data_dir),
        "--json",
    ]
    if server.database_url:
        args += ["--database-url", server.database_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENKMS_")}
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, check=True)
    document: dict[str, str] = json.loads(done.stdout)
    return document


def test_another_account_needs_both_sides(
    server: LiveServer, root: Callable[[str], Caller], kms_key: str, account_id: str
) -> None:
    other = create_account(server)
    assert other["AccountId"] != account_id and len(other["AccountId"]) == 16
    other_ram = Caller("ram", server.endpoint, other["AccessKeyId"], other["AccessKeySecret"])
    guest, guest_key, guest_secret = new_user(other_ram)
    guest_kms = as_user(server, "kms", guest_key, guest_secret)
    key_arn = root("kms").call("DescribeKey", KeyId=kms_key)["KeyMetadata"]["Arn"]

    # Default key policy: only the owning account; to others the key does not exist.
    refused = denied(lambda: guest_kms.call("Encrypt", KeyId=key_arn, Plaintext="x"))
    assert (refused.code, refused.detail) == ("Forbidden.KeyNotFound", {})
    # The key side allows the guest, its own account does not yet.
    policy = custom_key_policy(
        account_id, other_account_users=[f"acs:ram::{other['AccountId']}:user/{guest}"]
    )
    root("kms").call("SetKeyPolicy", KeyId=kms_key, PolicyName="default", Policy=policy)
    one_side = denied(lambda: guest_kms.call("Encrypt", KeyId=key_arn, Plaintext="x"))
    assert one_side.detail["PolicyType"] == "IdentityPolicy" and "own account" in one_side.detail["Reason"]
    # Both sides.
    other_ram.call(
        "AttachPolicyToUser", UserName=guest, PolicyType="System", PolicyName="AliyunKMSCryptoUserAccess"
    )
    blob = guest_kms.call("Encrypt", KeyId=key_arn, Plaintext="shared")["CiphertextBlob"]
    assert root("kms").call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "shared"
    # Other-account users get the user actions only.
    assert denied(lambda: guest_kms.call("DisableKey", KeyId=key_arn)).code == "Forbidden.NoPermission"
    # Its own RAM policy alone is not enough: the same-account "either side" rule is not theirs.
    root("kms").call(
        "SetKeyPolicy", KeyId=kms_key, PolicyName="default", Policy=default_key_policy(account_id)
    )
    alone = denied(lambda: guest_kms.call("Encrypt", KeyId=key_arn, Plaintext="x"))
    assert (alone.code, alone.detail) == ("Forbidden.KeyNotFound", {})
    named_for_decrypt_only = json.loads(policy)
    named_for_decrypt_only["Statement"][-1]["Action"] = ["kms:Decrypt"]
    root("kms").call(
        "SetKeyPolicy", KeyId=kms_key, PolicyName="default", Policy=json.dumps(named_for_decrypt_only)
    )
    not_granted = denied(lambda: guest_kms.call("Encrypt", KeyId=key_arn, Plaintext="x"))
    assert not_granted.code == "Forbidden.NoPermission" and not_granted.detail["PolicyType"] == "KeyPolicy"
    # The other account's own keys and RAM entities are its own.
    assert guest not in [u["UserName"] for u in root("ram").call("ListUsers", MaxItems=1000)["Users"]["User"]]


# ---- STS ------------------------------------------------------------------------------------------


def trust(*principals: str) -> str:
    return json.dumps(
        {
            "Version": "1",
            "Statement": [
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": list(principals)}}
            ],
        }
    )


@pytest.mark.parametrize("signing", SIGNINGS)
def test_assume_role_and_use_the_session(
    server: LiveServer, root: Callable[[str, str], Caller], kms_key: str, account_id: str, signing: str
) -> None:
    ram, sts = root("ram", signing), root("sts", signing)
    role = unique("app-role")
    created = ram.call(
        "CreateRole", RoleName=role, AssumeRolePolicyDocument=trust(f"acs:ram::{account_id}:root")
    )
    assert created["Role"]["Arn"] == f"acs:ram::{account_id}:role/{role}"
    ram.call("AttachPolicyToRole", RoleName=role, PolicyType="System", PolicyName="AliyunKMSCryptoUserAccess")

    session = sts.call(
        "AssumeRole", RoleArn=created["Role"]["Arn"], RoleSessionName="build-42", DurationSeconds=900
    )
    credentials = session["Credentials"]
    assert credentials["AccessKeyId"].startswith("STS.") and credentials["SecurityToken"]
    assert credentials["Expiration"].endswith("Z")
    assert session["AssumedRoleUser"]["Arn"] == f"acs:ram::{account_id}:assumed-role/{role}/build-42"

    def session_caller(product: str, token: str | None = credentials["SecurityToken"]) -> Caller:
        return Caller(product, server.endpoint, credentials["AccessKeyId"], credentials["AccessKeySecret"],
                      security_token=token, signing=signing)  # fmt: skip

    identity = session_caller("sts").call("GetCallerIdentity")
    assert identity["IdentityType"] == "AssumedRoleUser" and identity["AccountId"] == account_id
    blob = session_caller("kms").call("Encrypt", KeyId=kms_key, Plaintext="from a role")["CiphertextBlob"]
    assert root("kms", signing).call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "from a role"
    refusal = denied(lambda: session_caller("kms").call("DisableKey", KeyId=kms_key))
    assert refusal.detail["AuthPrincipalType"] == "AssumedRoleUser"

    forged = credentials["SecurityToken"][:-4] + (
        "AAAA" if not credentials["SecurityToken"].endswith("AAAA") else "BBBB"
    )
    assert (
        denied(lambda: session_caller("kms", forged).call("ListKeys")).code
        == "InvalidSecurityToken.Malformed"
    )
    assert (
        denied(lambda: session_caller("kms", None).call("ListKeys")).code == "InvalidSecurityToken.Malformed"
    )

    # Deleting the role ends its sessions.
    ram.call(
        "DetachPolicyFromRole", RoleName=role, PolicyType="System", PolicyName="AliyunKMSCryptoUserAccess"
    )
    ram.call("DeleteRole", RoleName=role)
    assert denied(lambda: session_caller("kms").call("ListKeys")).code == "InvalidAccessKeyId.NotFound"


def test_assume_role_needs_the_trust_policy_and_the_callers_grant(
    server: LiveServer, root: Callable[[str], Caller], account_id: str
) -> None:
    ram, sts = root("ram"), root("sts")
    user, access_key_id, secret = new_user(ram)
    user_sts = as_user(server, "sts", access_key_id, secret)
    role = unique("narrow-role")
    arn = ram.call(
        "CreateRole", RoleName=role, AssumeRolePolicyDocument=trust(f"acs:ram::{account_id}:user/{user}")
    )["Role"]["Arn"]
    # The trust policy names the user, but the user's own account has not granted sts:AssumeRole.
    assert (
        denied(lambda: user_sts.call("AssumeRole", RoleArn=arn, RoleSessionName="s1")).code
        == "Forbidden.NoPermission"
    )
    ram.call("AttachPolicyToUser", UserName=user, PolicyType="System", PolicyName="AliyunSTSAssumeRoleAccess")
    assert user_sts.call("AssumeRole", RoleArn=arn, RoleSessionName="s1")["Credentials"]["AccessKeyId"]
    # The root is not named by this trust policy.
    refused = denied(lambda: sts.call("AssumeRole", RoleArn=arn, RoleSessionName="s2"))
    assert refused.code == "Forbidden.NoPermission" and refused.detail["PolicyType"] == "TrustPolicy"
    missing = f"acs:ram::{account_id}:role/{unique('missing')}"
    assert (
        denied(lambda: sts.call("AssumeRole", RoleArn=missing, RoleSessionName="s3")).code
        == "EntityNotExist.Role"
    )
    too_long = denied(
        lambda: user_sts.call("AssumeRole", RoleArn=arn, RoleSessionName="s4", DurationSeconds=7200)
    )
    assert too_long.code == "InvalidParameter"


def test_conditions_on_resource_and_request_tags(
    server: LiveServer, root: Callable[[str], Caller], kms_key: str
) -> None:
    ram, kms = root("ram"), root("kms")
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    other_key = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
    kms.call("TagResource", KeyId=kms_key, Tags=json.dumps([{"TagKey": "env", "TagValue": "prod"}]))
    document = {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*",
             "Condition": {"StringEquals": {"acs:ResourceTag/env": "prod"}}},
            {"Effect": "Allow", "Action": "kms:TagResource", "Resource": "*",
             "Condition": {"StringEquals": {"acs:RequestTag/team": "payments"}}},
        ],
    }  # fmt: skip
    name = unique("tagged-only")
    ram.call("CreatePolicy", PolicyName=name, PolicyDocument=json.dumps(document))
    user, access_key_id, secret = new_user(ram)
    ram.call("AttachPolicyToUser", UserName=user, PolicyType="Custom", PolicyName=name)
    user_kms = as_user(server, "kms", access_key_id, secret)
    user_kms.call("Encrypt", KeyId=kms_key, Plaintext="tagged env=prod")
    assert (
        denied(lambda: user_kms.call("Encrypt", KeyId=other_key, Plaintext="x")).code
        == "Forbidden.NoPermission"
    )
    user_kms.call(
        "TagResource", KeyId=other_key, Tags=json.dumps([{"TagKey": "team", "TagValue": "payments"}])
    )
    wrong = json.dumps([{"TagKey": "team", "TagValue": "other"}])
    assert (
        denied(lambda: user_kms.call("TagResource", KeyId=other_key, Tags=wrong)).code
        == "Forbidden.NoPermission"
    )
    tags = kms.call("ListResourceTags", KeyId=other_key)["Tags"]["Tag"]
    assert [(t["TagKey"], t["TagValue"]) for t in tags] == [("team", "payments")]


def test_a_denial_is_recorded_with_its_reason_in_the_audit_log(
    server: LiveServer, root: Callable[[str], Caller], kms_key: str
) -> None:
    _, access_key_id, secret = new_user(root("ram"))
    refusal = denied(
        lambda: as_user(server, "kms", access_key_id, secret).call("Encrypt", KeyId=kms_key, Plaintext="x")
    )
    records = [
        json.loads(line)
        for path in sorted((server.data_dir / "audit").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    record = next(r for r in records if r.get("request_id") == refusal.request_id)
    assert record["result"] == "Forbidden.NoPermission" and record["key_id"] == kms_key
    assert "no identity policy statement allows it" in record["reason"]


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path / "data", extra_args=["--dev-clock"]).start()
    yield live
    live.stop()


def test_sts_credentials_stop_working_when_they_expire(dev_server: LiveServer) -> None:
    """Expiry on the server's clock, moved with the development clock instead of waiting."""
    root_ram = Caller("ram", dev_server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    account = Caller("sts", dev_server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET).call("GetCallerIdentity")
    role = unique("short-role")
    arn = root_ram.call("CreateRole", RoleName=role, AssumeRolePolicyDocument=trust(
        f"acs:ram::{account['AccountId']}:root"))["Role"]["Arn"]  # fmt: skip
    root_ram.call(
        "AttachPolicyToRole", RoleName=role, PolicyType="System", PolicyName="AliyunKMSReadOnlyAccess"
    )
    sts = Caller("sts", dev_server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    credentials = sts.call("AssumeRole", RoleArn=arn, RoleSessionName="short", DurationSeconds=900)[
        "Credentials"
    ]
    session = Caller("kms", dev_server.endpoint, credentials["AccessKeyId"], credentials["AccessKeySecret"],
                     security_token=credentials["SecurityToken"])  # fmt: skip
    session.call("ListKeys")
    moved = send(
        dev_server.url, signed_params("DevAdvanceClock", ACCESS_KEY_ID, ACCESS_KEY_SECRET, Duration="901s")
    )
    assert moved.status_code == 200, moved.text
    expired = denied(lambda: session.call("ListKeys"))
    assert (expired.code, expired.status) == ("InvalidSecurityToken.Expired", 400)


def test_a_delegated_ram_administrator_gets_only_what_its_policy_names(
    server: LiveServer, root: Callable[[str], Caller], account_id: str
) -> None:
    ram = root("ram")
    helper, access_key_id, secret = new_user(ram)
    victim, _, _ = new_user(ram)
    document = {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "ram:AttachPolicyToUser",
             "Resource": [f"acs:ram:*:{account_id}:user/{helper}",
                          "acs:ram:*:system:policy/AliyunKMSReadOnlyAccess"]},
            {"Effect": "Allow", "Action": ["ram:GetUser", "ram:ListPoliciesForUser"], "Resource": "*"},
        ],
    }  # fmt: skip
    name = unique("delegated")
    ram.call("CreatePolicy", PolicyName=name, PolicyDocument=json.dumps(document))
    ram.call("AttachPolicyToUser", UserName=helper, PolicyType="Custom", PolicyName=name)
    as_helper = as_user(server, "ram", access_key_id, secret)

    as_helper.call(
        "AttachPolicyToUser", UserName=helper, PolicyType="System", PolicyName="AliyunKMSReadOnlyAccess"
    )
    escalate = denied(lambda: as_helper.call("AttachPolicyToUser", UserName=helper, PolicyType="System",
                                             PolicyName="AdministratorAccess"))  # fmt: skip
    assert escalate.code == "Forbidden.NoPermission" and escalate.detail["AuthResource"].endswith(
        "policy/AdministratorAccess"
    )
    other_user = denied(lambda: as_helper.call("AttachPolicyToUser", UserName=victim, PolicyType="System",
                                               PolicyName="AliyunKMSReadOnlyAccess"))  # fmt: skip
    assert other_user.code == "Forbidden.NoPermission"
    assert denied(lambda: as_helper.call("CreateAccessKey", UserName=victim)).code == "Forbidden.NoPermission"
    assert (
        denied(lambda: as_helper.call("CreateUser", UserName=unique("more"))).code == "Forbidden.NoPermission"
    )
    attached = {
        p["PolicyName"] for p in ram.call("ListPoliciesForUser", UserName=helper)["Policies"]["Policy"]
    }
    assert attached == {name, "AliyunKMSReadOnlyAccess"}
    assert ram.call("ListPoliciesForUser", UserName=victim)["Policies"]["Policy"] == []
    assert ram.call("ListAccessKeys", UserName=victim)["AccessKeys"]["AccessKey"] != []  # only its own one


def test_list_policies_pages_through_system_and_custom_policies(root: Callable[[str], Caller]) -> None:
    ram = root("ram")
    made = set()
    document = json.dumps(
        {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "kms:List*", "Resource": "*"}]}
    )
    for _ in range(3):
        name = unique("paged")
        ram.call("CreatePolicy", PolicyName=name, PolicyDocument=document)
        made.add(name)
    seen: list[tuple[str, str]] = []
    marker = None
    while True:
        page = ram.call("ListPolicies", MaxItems=4, Marker=marker)
        seen += [(p["PolicyType"], p["PolicyName"]) for p in page["Policies"]["Policy"]]
        if not page["IsTruncated"]:
            break
        marker = page["Marker"]
    assert len(seen) == len(set(seen))
    assert made <= {name for kind, name in seen if kind == "Custom"}
    assert ("System", "AliyunKMSFullAccess") in seen


# ---- aliases across accounts and users -------------------------------------------------------------


def _alias_targets(kms: Caller) -> dict[str, str]:
    listed = kms.call("ListAliases", PageSize=100)["Aliases"]["Alias"]
    return {alias["AliasName"]: alias["KeyId"] for alias in listed}


def test_an_alias_cannot_point_at_another_accounts_key(
    server: LiveServer, root: Callable[[str], Caller], kms_key: str, account_id: str
) -> None:
    other = create_account(server)
    other_kms = Caller("kms", server.endpoint, other["AccessKeyId"], other["AccessKeySecret"])
    kms = root("kms")
    key_arn = kms.call("DescribeKey", KeyId=kms_key)["KeyMetadata"]["Arn"]
    # Even a key policy granting the other account everything does not make the key aliasable there.
    kms.call(
        "SetKeyPolicy",
        KeyId=kms_key,
        PolicyName="default",
        Policy=shared_instance_key_policy(account_id, other["AccountId"]),
    )
    other_kms.call("DescribeKey", KeyId=key_arn)  # the grant works for what it is meant for
    instance = other_kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"]
    own_key = (
        other_kms.call("CreateKey", DKMSInstanceId=instance[0]["KmsInstanceId"])
        if instance
        else other_kms.call("CreateKey")
    )["KeyMetadata"]["KeyId"]
    mine = f"alias/{unique('mine')}"
    other_kms.call("CreateAlias", AliasName=mine, KeyId=own_key)
    before = _alias_targets(other_kms)

    stolen = f"alias/{unique('stolen')}"
    created = denied(lambda: other_kms.call("CreateAlias", AliasName=stolen, KeyId=key_arn))
    assert (created.code, created.status) == ("Forbidden.KeyNotFound", 404)
    updated = denied(lambda: other_kms.call("UpdateAlias", AliasName=mine, KeyId=key_arn))
    assert (updated.code, updated.status) == ("Forbidden.KeyNotFound", 404)
    assert _alias_targets(other_kms) == before and before[mine] == own_key
    assert kms.call("ListAliasesByKeyId", KeyId=kms_key)["Aliases"]["Alias"] == []


def test_update_alias_needs_the_grant_on_the_current_key_and_on_the_alias(
    server: LiveServer, root: Callable[[str], Caller], kms_key: str, account_id: str
) -> None:
    ram, kms = root("ram"), root("kms")
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    user_key, user_key2 = (
        kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["Arn"] for _ in range(2)
    )
    prod, mine = f"alias/{unique('prod')}", f"alias/{unique('mine')}"
    kms.call("CreateAlias", AliasName=prod, KeyId=kms_key)
    kms.call("CreateAlias", AliasName=mine, KeyId=user_key)
    victim_arn = kms.call("DescribeKey", KeyId=kms_key)["KeyMetadata"]["Arn"]
    policy = unique("update-alias-own-keys")
    document = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "kms:UpdateAlias", "Resource": [user_key, user_key2]}],
    }
    ram.call("CreatePolicy", PolicyName=policy, PolicyDocument=json.dumps(document))
    user, access_key_id, secret = new_user(ram)
    ram.call("AttachPolicyToUser", UserName=user, PolicyType="Custom", PolicyName=policy)
    user_kms = as_user(server, "kms", access_key_id, secret)
    before = _alias_targets(kms)

    # Re-pointing another key's alias to the user's own key: the key it names now must allow it.
    hijack = denied(lambda: user_kms.call("UpdateAlias", AliasName=prod, KeyId=user_key))
    assert hijack.code == "Forbidden.NoPermission" and hijack.detail["AuthResource"] == victim_arn
    # Between the user's own keys, the alias ARN is checked too.
    alias_arn = f"acs:kms:cn-hangzhou:{account_id}:{mine}"
    unlisted = denied(lambda: user_kms.call("UpdateAlias", AliasName=mine, KeyId=user_key2))
    assert unlisted.code == "Forbidden.NoPermission" and unlisted.detail["AuthResource"] == alias_arn
    assert _alias_targets(kms) == before

    aliases = unique("update-alias-aliases")
    prod_arn = f"acs:kms:cn-hangzhou:{account_id}:{prod}"
    document = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "kms:UpdateAlias", "Resource": [alias_arn, prod_arn]}],
    }
    ram.call("CreatePolicy", PolicyName=aliases, PolicyDocument=json.dumps(document))
    ram.call("AttachPolicyToUser", UserName=user, PolicyType="Custom", PolicyName=aliases)
    again = denied(lambda: user_kms.call("UpdateAlias", AliasName=prod, KeyId=user_key))
    assert again.detail["AuthResource"] == victim_arn
    user_kms.call("UpdateAlias", AliasName=mine, KeyId=user_key2)
    after = _alias_targets(kms)
    assert after[prod] == kms_key and after[mine] == user_key2.rsplit("/", 1)[1]
    # CreateAlias and DeleteAlias are checked on the alias ARN as well.
    creator = unique("create-alias-key-only")
    document["Statement"] = [
        {"Effect": "Allow", "Action": ["kms:CreateAlias", "kms:DeleteAlias"], "Resource": user_key}
    ]
    ram.call("CreatePolicy", PolicyName=creator, PolicyDocument=json.dumps(document))
    ram.call("AttachPolicyToUser", UserName=user, PolicyType="Custom", PolicyName=creator)
    fresh = f"alias/{unique('fresh')}"
    made = denied(lambda: user_kms.call("CreateAlias", AliasName=fresh, KeyId=user_key))
    assert made.detail["AuthResource"] == f"acs:kms:cn-hangzhou:{account_id}:{fresh}"
    kms.call("CreateAlias", AliasName=fresh, KeyId=user_key)
    removed = denied(lambda: user_kms.call("DeleteAlias", AliasName=fresh))
    assert removed.detail["AuthResource"] == f"acs:kms:cn-hangzhou:{account_id}:{fresh}"
    assert _alias_targets(kms)[fresh] == user_key.rsplit("/", 1)[1]
