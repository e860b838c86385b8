"""The two limits of the seed's key roles that docs/identities.md states, and the safer ways it gives,
against a live server through the official SDKs: administrators hold `kms:Set*` (so they can rewrite
the key policy), key users hold `kms:TagResource` (so a tag condition is only as strong as who may tag)."""

from __future__ import annotations

import json
from collections.abc import Callable

from openkms.policy.key_policy import custom_key_policy
from tests.api.test_identities import account_id, as_user, denied, kms_key, new_user, root, unique
from tests.support.products import Caller
from tests.support.server import LiveServer

__all__ = ["account_id", "kms_key", "root"]  # fixtures shared with test_identities

SECRET_TAG = json.dumps([{"TagKey": "classification", "TagValue": "secret"}])
PUBLIC_TAG = json.dumps([{"TagKey": "classification", "TagValue": "public"}])


def _attach(ram: Caller, user: str, statements: list[dict[str, object]]) -> None:
    name = unique("limit")
    ram.call(
        "CreatePolicy", PolicyName=name, PolicyDocument=json.dumps({"Version": "1", "Statement": statements})
    )
    ram.call("AttachPolicyToUser", UserName=user, PolicyType="Custom", PolicyName=name)


def _administrator(
    server: LiveServer, ram: Caller, kms: Caller, key_id: str, account_id: str
) -> tuple[str, Caller]:
    admin, access_key_id, secret = new_user(ram)
    policy = custom_key_policy(account_id, administrators=[f"acs:ram::{account_id}:user/{admin}"])
    kms.call("SetKeyPolicy", KeyId=key_id, PolicyName="default", Policy=policy)
    return admin, as_user(server, "kms", access_key_id, secret)


def test_an_administrator_can_rewrite_the_key_policy_to_use_the_key(
    server: LiveServer, root: Callable[[str], Caller], kms_key: str, account_id: str
) -> None:
    kms, ram = root("kms"), root("ram")
    admin, admin_kms = _administrator(server, ram, kms, kms_key, account_id)
    assert denied(lambda: admin_kms.call("Encrypt", KeyId=kms_key, Plaintext="x")).code == (
        "Forbidden.NoPermission"
    )
    widened = custom_key_policy(
        account_id,
        administrators=[f"acs:ram::{account_id}:user/{admin}"],
        users=[f"acs:ram::{account_id}:user/{admin}"],
    )
    admin_kms.call("SetKeyPolicy", KeyId=kms_key, PolicyName="default", Policy=widened)
    blob = admin_kms.call("Encrypt", KeyId=kms_key, Plaintext="now a user")["CiphertextBlob"]
    assert admin_kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "now a user"


def test_an_identity_deny_keeps_an_administrator_off_the_key_policy(
    server: LiveServer, root: Callable[[str], Caller], kms_key: str, account_id: str
) -> None:
    kms, ram = root("kms"), root("ram")
    admin, admin_kms = _administrator(server, ram, kms, kms_key, account_id)
    _attach(ram, admin, [{"Effect": "Deny", "Action": "kms:SetKeyPolicy", "Resource": "*"}])
    before = kms.call("GetKeyPolicy", KeyId=kms_key, PolicyName="default")["Policy"]
    widened = custom_key_policy(account_id, users=[f"acs:ram::{account_id}:user/{admin}"])
    refused = denied(
        lambda: admin_kms.call("SetKeyPolicy", KeyId=kms_key, PolicyName="default", Policy=widened)
    )
    assert refused.code == "Forbidden.NoPermission" and refused.detail["NoPermissionType"] == "ExplicitDeny"
    assert kms.call("GetKeyPolicy", KeyId=kms_key, PolicyName="default")["Policy"] == before
    admin_kms.call("DisableKey", KeyId=kms_key)  # still manages the key
    admin_kms.call("EnableKey", KeyId=kms_key)


def _user_denied_on_secret_keys(
    server: LiveServer, ram: Caller, kms: Caller, key_id: str, account_id: str
) -> tuple[str, Caller, str]:
    """A key user of `key_id` whose identity policy denies Decrypt of keys tagged classification=secret;
    returns (user, its KMS caller, a blob of the key)."""
    app, access_key_id, secret = new_user(ram)
    policy = custom_key_policy(account_id, users=[f"acs:ram::{account_id}:user/{app}"])
    kms.call("SetKeyPolicy", KeyId=key_id, PolicyName="default", Policy=policy)
    kms.call("TagResource", KeyId=key_id, Tags=SECRET_TAG)
    deny_secret = {
        "Effect": "Deny",
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {"StringEquals": {"acs:ResourceTag/classification": "secret"}},
    }
    _attach(ram, app, [deny_secret])
    app_kms = as_user(server, "kms", access_key_id, secret)
    blob = str(app_kms.call("Encrypt", KeyId=key_id, Plaintext="classified")["CiphertextBlob"])
    assert denied(lambda: app_kms.call("Decrypt", CiphertextBlob=blob)).detail["NoPermissionType"] == (
        "ExplicitDeny"
    )
    return app, app_kms, blob


def test_a_key_user_can_retag_its_way_past_a_tag_condition(
    server: LiveServer, root: Callable[[str], Caller], kms_key: str, account_id: str
) -> None:
    kms, ram = root("kms"), root("ram")
    _app, app_kms, blob = _user_denied_on_secret_keys(server, ram, kms, kms_key, account_id)
    app_kms.call("TagResource", KeyId=kms_key, Tags=PUBLIC_TAG)
    assert app_kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "classified"


def test_denying_the_tag_change_keeps_the_tag_condition(
    server: LiveServer, root: Callable[[str], Caller], kms_key: str, account_id: str
) -> None:
    kms, ram = root("kms"), root("ram")
    app, app_kms, blob = _user_denied_on_secret_keys(server, ram, kms, kms_key, account_id)
    _attach(
        ram,
        app,
        [
            {
                "Effect": "Deny",
                "Action": ["kms:TagResource", "kms:UntagResource"],
                "Resource": "*",
                "Condition": {"StringLike": {"acs:RequestTag/classification": "*"}},
            }
        ],
    )
    refused = denied(lambda: app_kms.call("TagResource", KeyId=kms_key, Tags=PUBLIC_TAG))
    assert refused.code == "Forbidden.NoPermission"
    tags = kms.call("ListResourceTags", KeyId=kms_key)["Tags"]["Tag"]
    assert {tag["TagKey"]: tag["TagValue"] for tag in tags}["classification"] == "secret"
    assert denied(lambda: app_kms.call("Decrypt", CiphertextBlob=blob)).code == "Forbidden.NoPermission"
    # Other tags stay the user's to set.
    app_kms.call("TagResource", KeyId=kms_key, Tags=json.dumps([{"TagKey": "team", "TagValue": "a"}]))
