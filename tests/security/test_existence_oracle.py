"""No existence oracle across accounts (issue 13, item 5), against a live server over raw signed HTTP
and the official SDK.

A key of another account that shares nothing with the caller, named by id, key ARN, alias or alias
ARN, answers every action exactly as a random missing key of the same form: the same Code, HTTP status
and body (the request id aside), never the owner's account id, and nothing changes. A blob of such a
key answers as a blob of no key. A grant in the key policy brings the normal rules back, and the
key's own account keeps AccessDenied with its AccessDeniedDetail.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from openkms.domain.ciphertext import Ciphertext
from openkms.policy.key_policy import custom_key_policy, default_key_policy
from openkms.service import ids
from openkms.types import KeyVersionId, RegionId
from tests.api.test_identities import create_account, new_user, unique
from tests.support.products import Caller, DeniedError
from tests.support.raw import send, signed_params
from tests.support.server import LiveServer

REGION = "cn-hangzhou"
_WRAPPING_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_WRAPPING = {
    "PublicKeyBlob": base64.b64encode(
        _WRAPPING_KEY.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode(),
    "WrappingAlgorithm": "RSAES_OAEP_SHA_256",
    "WrappingKeySpec": "RSA_2048",
}


@dataclass(frozen=True)
class Account:
    account_id: str
    access_key_id: str
    secret: str

    def kms(self, server: LiveServer) -> Caller:
        return Caller("kms", server.endpoint, self.access_key_id, self.secret)

    def raw(self, server: LiveServer, action: str, **params: str) -> httpx.Response:
        return send(server.url, signed_params(action, self.access_key_id, self.secret, **params))


@dataclass(frozen=True)
class OwnedKey:
    """A key of the owner, with an alias, and the version requests name."""

    key_id: str
    alias: str
    version_id: str

    def forms(self, owner: str) -> dict[str, str]:
        return {
            "id": self.key_id,
            "arn": f"acs:kms:{REGION}:{owner}:key/{self.key_id}",
            "alias": self.alias,
            "alias arn": f"acs:kms:{REGION}:{owner}:{self.alias}",
        }


@dataclass(frozen=True)
class World:
    owner: Account
    stranger: Account
    symmetric: OwnedKey
    key_pair: OwnedKey
    blob: str  # an Encrypt blob of the owner's symmetric key
    data_key_blob: str  # a GenerateDataKey blob of the owner's symmetric key
    stranger_key: str  # a key of the stranger's own


def _account(server: LiveServer) -> Account:
    made = create_account(server)
    return Account(made["AccountId"], made["AccessKeyId"], made["AccessKeySecret"])


def _owned(kms: Caller, instance: str, **create: str) -> OwnedKey:
    key_id = kms.call("CreateKey", DKMSInstanceId=instance, **create)["KeyMetadata"]["KeyId"]
    alias = f"alias/{unique('oracle')}"
    kms.call("CreateAlias", AliasName=alias, KeyId=key_id)
    versions = kms.call("ListKeyVersions", KeyId=key_id)["KeyVersions"]["KeyVersion"]
    return OwnedKey(key_id, alias, versions[0]["KeyVersionId"])


def _instance(kms: Caller) -> str:
    return str(kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"])


@pytest.fixture(scope="module")
def world(server: LiveServer) -> Iterator[World]:
    owner, stranger = _account(server), _account(server)
    kms = owner.kms(server)
    instance = _instance(kms)
    symmetric = _owned(kms, instance)
    key_pair = _owned(kms, instance, KeySpec="RSA_2048", KeyUsage="SIGN/VERIFY")
    blob = kms.call("Encrypt", KeyId=symmetric.key_id, Plaintext="secret")["CiphertextBlob"]
    data_key_blob = kms.call("GenerateDataKey", KeyId=symmetric.key_id)["CiphertextBlob"]
    theirs = stranger.kms(server)
    stranger_key = theirs.call("CreateKey", DKMSInstanceId=_instance(theirs))["KeyMetadata"]["KeyId"]
    yield World(owner, stranger, symmetric, key_pair, blob, data_key_blob, stranger_key)


def _missing(form: str, owner: str) -> tuple[str, str]:
    """A reference of the same form to a key that does not exist (and the version a request names)."""
    key_id = ids.new_instance_key_id(RegionId(REGION))
    alias = f"alias/{unique('oracle')}"
    ref = {
        "id": key_id,
        "arn": f"acs:kms:{REGION}:{owner}:key/{key_id}",
        "alias": alias,
        "alias arn": f"acs:kms:{REGION}:{owner}:{alias}",
    }[form]
    return ref, str(ids.new_version_id())


def _forged_blob() -> str:
    """A well-formed blob naming a key version that does not exist."""
    version = KeyVersionId(str(ids.new_version_id()))
    return base64.b64encode(Ciphertext(version, os.urandom(12), os.urandom(32)).to_bytes()).decode()


# Actions that take a key reference: name -> the parameters for (reference, version id).
Params = Callable[[str, str], dict[str, str]]
SYMMETRIC_ACTIONS: dict[str, Params] = {
    "DescribeKey": lambda ref, _: {"KeyId": ref},
    "Encrypt": lambda ref, _: {"KeyId": ref, "Plaintext": "aGVsbG8="},
    "GenerateDataKey": lambda ref, _: {"KeyId": ref},
    "GenerateDataKeyWithoutPlaintext": lambda ref, _: {"KeyId": ref},
    "GenerateAndExportDataKey": lambda ref, _: {"KeyId": ref, **_WRAPPING},
    "ListKeyVersions": lambda ref, _: {"KeyId": ref},
    "DescribeKeyVersion": lambda ref, version: {"KeyId": ref, "KeyVersionId": version},
    "CreateKeyVersion": lambda ref, _: {"KeyId": ref},
    "ListAliasesByKeyId": lambda ref, _: {"KeyId": ref},
    "CreateAlias": lambda ref, _: {"KeyId": ref, "AliasName": f"alias/{unique('taken')}"},
    "GetKeyPolicy": lambda ref, _: {"KeyId": ref, "PolicyName": "default"},
    "SetKeyPolicy": lambda ref, _: {
        "KeyId": ref,
        "PolicyName": "default",
        "Policy": default_key_policy("1000000000000001"),
    },
    "DisableKey": lambda ref, _: {"KeyId": ref},
    "EnableKey": lambda ref, _: {"KeyId": ref},
    "ScheduleKeyDeletion": lambda ref, _: {"KeyId": ref, "PendingWindowInDays": "7"},
    "CancelKeyDeletion": lambda ref, _: {"KeyId": ref},
    "UpdateKeyDescription": lambda ref, _: {"KeyId": ref, "Description": "mine now"},
    "SetDeletionProtection": lambda ref, _: {"ProtectedResourceArn": ref, "EnableDeletionProtection": "true"},
    "UpdateRotationPolicy": lambda ref, _: {"KeyId": ref, "EnableAutomaticRotation": "false"},
    "TagResource": lambda ref, _: {"KeyId": ref, "Tags": json.dumps([{"TagKey": "k", "TagValue": "v"}])},
    "UntagResource": lambda ref, _: {"KeyId": ref, "TagKeys": json.dumps(["k"])},
    "ListResourceTags": lambda ref, _: {"KeyId": ref},
    "TagResources": lambda ref, _: {"ResourceType": "key", "ResourceId.1": ref, "Tag.1.Key": "k"},
    "UntagResources": lambda ref, _: {"ResourceType": "key", "ResourceId.1": ref, "TagKey.1": "k"},
    "GetParametersForImport": lambda ref, _: {
        "KeyId": ref,
        "WrappingAlgorithm": "RSAES_OAEP_SHA_256",
        "WrappingKeySpec": "RSA_2048",
    },
    "DescribeKeyAssociations": lambda ref, _: {"KeyId": ref},
    "StartKeyAssociationDetection": lambda ref, _: {"KeyId": ref},
}
KEY_PAIR_ACTIONS: dict[str, Params] = {
    "GetPublicKey": lambda ref, version: {"KeyId": ref, "KeyVersionId": version},
    "AsymmetricSign": lambda ref, version: {
        "KeyId": ref,
        "KeyVersionId": version,
        "Algorithm": "RSA_PSS_SHA_256",
        "Digest": base64.b64encode(b"d" * 32).decode(),
    },
    "AsymmetricVerify": lambda ref, version: {
        "KeyId": ref,
        "KeyVersionId": version,
        "Algorithm": "RSA_PSS_SHA_256",
        "Digest": base64.b64encode(b"d" * 32).decode(),
        "Value": base64.b64encode(b"s" * 256).decode(),
    },
    "DescribeKey": lambda ref, _: {"KeyId": ref},
}


def _answer(response: httpx.Response, *refs: str) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body without its request id), with each reference in the text made `<ref>`."""
    text = response.text
    for ref in refs:
        text = text.replace(ref, "<ref>")
    body: dict[str, Any] = json.loads(text)
    body.pop("RequestId", None)
    return response.status_code, body


def _no_owner(response: httpx.Response, owner: str) -> None:
    assert owner not in response.text
    assert all(owner not in value for value in response.headers.values())


@pytest.mark.parametrize("form", ["id", "arn", "alias", "alias arn"])
@pytest.mark.parametrize("kind", ["symmetric", "key pair"])
def test_another_accounts_key_answers_as_a_missing_one(
    server: LiveServer, world: World, form: str, kind: str
) -> None:
    owner = world.owner.account_id
    key = world.symmetric if kind == "symmetric" else world.key_pair
    actions = SYMMETRIC_ACTIONS if kind == "symmetric" else KEY_PAIR_ACTIONS
    theirs = key.forms(owner)[form]
    for action, params in actions.items():
        missing, missing_version = _missing(form, owner)
        hidden = world.stranger.raw(server, action, **params(theirs, key.version_id))
        absent = world.stranger.raw(server, action, **params(missing, missing_version))
        # Each action reaches resolution (an alias is refused as CreateAlias's target before it).
        refused_early = action == "CreateAlias" and form.startswith("alias")
        expected = "UnsupportedOperation" if refused_early else "NotFound"
        assert hidden.json()["Code"].endswith(expected), (action, hidden.text)
        assert _answer(hidden, theirs, key.key_id) == _answer(absent, missing), (action, form)
        _no_owner(hidden, owner)
    # Nothing the stranger tried changed the key.
    kms = world.owner.kms(server)
    meta = kms.call("DescribeKey", KeyId=key.key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["Description"], meta["DeletionProtection"]) == ("Enabled", "", "Disabled")
    assert kms.call("GetKeyPolicy", KeyId=key.key_id, PolicyName="default")["Policy"] == default_key_policy(
        owner
    )
    assert kms.call("ListResourceTags", KeyId=key.key_id)["Tags"]["Tag"] == []
    assert len(kms.call("ListKeyVersions", KeyId=key.key_id)["KeyVersions"]["KeyVersion"]) == 1
    assert [a["AliasName"] for a in kms.call("ListAliasesByKeyId", KeyId=key.key_id)["Aliases"]["Alias"]] == [
        key.alias
    ]


def test_a_blob_of_another_accounts_key_answers_as_a_blob_of_no_key(server: LiveServer, world: World) -> None:
    owner = world.owner.account_id
    blobs = {
        "Decrypt": lambda blob: {"CiphertextBlob": blob},
        "ReEncrypt": lambda blob: {"CiphertextBlob": blob, "DestinationKeyId": world.stranger_key},
        "ExportDataKey": lambda blob: {"CiphertextBlob": blob, **_WRAPPING},
    }
    for action, params in blobs.items():
        theirs = world.data_key_blob if action == "ExportDataKey" else world.blob
        hidden = world.stranger.raw(server, action, **params(theirs))
        absent = world.stranger.raw(server, action, **params(_forged_blob()))
        assert hidden.json()["Code"] == "Rejected.InvalidCiphertext", (action, hidden.text)
        assert _answer(hidden) == _answer(absent), action
        _no_owner(hidden, owner)
    # ReEncrypt towards another account's key: as towards a missing key.
    own_blob = world.stranger.kms(server).call("Encrypt", KeyId=world.stranger_key, Plaintext="x")[
        "CiphertextBlob"
    ]
    for form, theirs in world.symmetric.forms(owner).items():
        missing, _ = _missing(form, owner)
        hidden = world.stranger.raw(server, "ReEncrypt", CiphertextBlob=own_blob, DestinationKeyId=theirs)
        absent = world.stranger.raw(server, "ReEncrypt", CiphertextBlob=own_blob, DestinationKeyId=missing)
        assert _answer(hidden, theirs, world.symmetric.key_id) == _answer(absent, missing), form
        _no_owner(hidden, owner)


def test_a_key_arn_names_the_keys_own_account(server: LiveServer, world: World) -> None:
    """An ARN that puts a key under another account than its own names no key, even for its owner."""
    kms = world.owner.kms(server)
    elsewhere = f"acs:kms:{REGION}:{world.stranger.account_id}:key/{world.symmetric.key_id}"
    with pytest.raises(DeniedError) as caught:
        kms.call("DescribeKey", KeyId=elsewhere)
    assert (caught.value.code, caught.value.status) == ("Forbidden.KeyNotFound", 404)
    right = f"acs:kms:{REGION}:{world.owner.account_id}:key/{world.symmetric.key_id}"
    assert kms.call("DescribeKey", KeyId=right)["KeyMetadata"]["KeyId"] == world.symmetric.key_id


def _refused(call: Callable[[], object]) -> DeniedError:
    with pytest.raises(DeniedError) as caught:
        call()
    return caught.value


def test_with_a_grant_the_normal_rules_apply(server: LiveServer) -> None:
    owner, guest = _account(server), _account(server)
    owner_kms, guest_kms = owner.kms(server), guest.kms(server)
    key = _owned(owner_kms, _instance(owner_kms))
    arn = key.forms(owner.account_id)["arn"]
    blob = owner_kms.call("Encrypt", KeyId=key.key_id, Plaintext="shared")["CiphertextBlob"]

    # A grant naming one user of the guest's account shows the key to that user only.
    guest_ram = Caller("ram", server.endpoint, guest.access_key_id, guest.secret)
    user, user_key, user_secret = new_user(guest_ram)
    user_kms = Caller("kms", server.endpoint, user_key, user_secret)
    named = custom_key_policy(
        owner.account_id, other_account_users=[f"acs:ram::{guest.account_id}:user/{user}"]
    )
    owner_kms.call("SetKeyPolicy", KeyId=key.key_id, PolicyName="default", Policy=named)
    one_side = _refused(lambda: user_kms.call("Encrypt", KeyId=arn, Plaintext="x"))
    assert (one_side.code, one_side.detail["PolicyType"]) == ("Forbidden.NoPermission", "IdentityPolicy")
    assert _refused(lambda: guest_kms.call("DescribeKey", KeyId=arn)).code == "Forbidden.KeyNotFound"

    # A grant to the whole account: its root uses the key, and is refused what the grant leaves out.
    shared = custom_key_policy(owner.account_id, other_account_users=[f"acs:ram::{guest.account_id}:*"])
    owner_kms.call("SetKeyPolicy", KeyId=key.key_id, PolicyName="default", Policy=shared)
    assert guest_kms.call("DescribeKey", KeyId=arn)["KeyMetadata"]["KeyId"] == key.key_id
    assert guest_kms.call("DescribeKey", KeyId=key.key_id)["KeyMetadata"]["Arn"] == arn
    assert guest_kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "shared"
    manage = _refused(lambda: guest_kms.call("DisableKey", KeyId=arn))
    assert (manage.code, manage.status) == ("Forbidden.NoPermission", 403)
    assert manage.detail["AuthResource"] == arn

    # Taking the grant back hides the key again.
    owner_kms.call(
        "SetKeyPolicy", KeyId=key.key_id, PolicyName="default", Policy=default_key_policy(owner.account_id)
    )
    assert _refused(lambda: guest_kms.call("DescribeKey", KeyId=arn)).code == "Forbidden.KeyNotFound"
    gone = _refused(lambda: guest_kms.call("Decrypt", CiphertextBlob=blob))
    assert gone.code == "Rejected.InvalidCiphertext"


def test_the_keys_own_account_keeps_access_denied_with_its_detail(server: LiveServer) -> None:
    owner = _account(server)
    owner_kms = owner.kms(server)
    key = _owned(owner_kms, _instance(owner_kms))
    owner_ram = Caller("ram", server.endpoint, owner.access_key_id, owner.secret)
    _, user_key, user_secret = new_user(owner_ram)
    user_kms = Caller("kms", server.endpoint, user_key, user_secret)
    for ref in key.forms(owner.account_id).values():
        refusal = _refused(lambda ref=ref: user_kms.call("DescribeKey", KeyId=ref))  # type: ignore[misc]
        assert (refusal.code, refusal.status) == ("Forbidden.NoPermission", 403), ref
        assert refusal.detail["AuthResource"] == key.forms(owner.account_id)["arn"]
        assert refusal.detail["AuthPrincipalOwnerId"] == owner.account_id
