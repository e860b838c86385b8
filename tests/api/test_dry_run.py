"""DryRun=true through the official SDKs (Tea in every signing mode, and the legacy SDK) against a live
server: every action whose SDK model carries DryRun answers DryRunOperation (400) when the real call
would pass authentication, authorization and validation, answers the real refusal otherwise, does
nothing (no usage counted) and is audited as a dry run with its result. Also CreateKey's
KeyStorageMechanism and SDK 3.3.1's Recipient."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.api.test_identities import as_user, new_user
from tests.api.test_key_associations import wait_for
from tests.support.products import Caller
from tests.support.sdk import KmsCaller, KmsError
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

DRY_RUN_PASSED = ("DryRunOperation", 400, "Request validation has been passed with DryRun flag set.")

_WRAPPING_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
WRAPPING = {
    "PublicKeyBlob": base64.b64encode(
        _WRAPPING_KEY.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode(),
    "WrappingAlgorithm": "RSAES_OAEP_SHA_256",
    "WrappingKeySpec": "RSA_2048",
}
DIGEST = base64.b64encode(hashlib.sha256(b"dry run").digest()).decode()


@dataclass(frozen=True)
class Keys:
    symmetric: str
    other_symmetric: str
    blob: str  # an Encrypt result of `symmetric`, context {"app": "dry"}
    data_key_blob: str  # a GenerateDataKey result of `symmetric`, no context
    signing: tuple[str, str]  # (key id, version id) of an EC_P256 SIGN/VERIFY key
    signature: str
    encrypting: tuple[str, str]  # (key id, version id) of an RSA_2048 ENCRYPT/DECRYPT key
    rsa_ciphertext: str


@pytest.fixture(scope="module")
def keys(server: LiveServer, suite_instance_id: str) -> Keys:
    kms = KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)

    def create(**params: str) -> tuple[str, str]:
        meta = kms.call("CreateKey", DKMSInstanceId=suite_instance_id, **params)["KeyMetadata"]
        return str(meta["KeyId"]), str(meta.get("PrimaryKeyVersion", ""))

    symmetric, other = create()[0], create()[0]
    signing = create(KeySpec="EC_P256", KeyUsage="SIGN/VERIFY")
    encrypting = create(KeySpec="RSA_2048", KeyUsage="ENCRYPT/DECRYPT")
    sign = {"KeyId": signing[0], "KeyVersionId": signing[1], "Algorithm": "ECDSA_SHA_256"}
    rsa_params = {"KeyId": encrypting[0], "KeyVersionId": encrypting[1], "Algorithm": "RSAES_OAEP_SHA_256"}
    return Keys(
        symmetric=symmetric,
        other_symmetric=other,
        blob=kms.call("Encrypt", KeyId=symmetric, Plaintext="x", EncryptionContext={"app": "dry"})[
            "CiphertextBlob"
        ],
        data_key_blob=kms.call("GenerateDataKey", KeyId=symmetric)["CiphertextBlob"],
        signing=signing,
        signature=kms.call("AsymmetricSign", Digest=DIGEST, **sign)["Value"],
        encrypting=encrypting,
        rsa_ciphertext=kms.call("AsymmetricEncrypt", Plaintext=base64.b64encode(b"x").decode(), **rsa_params)[
            "CiphertextBlob"
        ],
    )


# Every action whose SDK model carries DryRun (alibabacloud-kms20160120 3.3.1 models; GenerateMac,
# VerifyMac and GetSecretValue are actions OpenKMS does not have), with valid parameters.
DRY_RUN_ACTIONS: dict[str, Callable[[Keys], dict[str, Any]]] = {
    "Encrypt": lambda k: {"KeyId": k.symmetric, "Plaintext": "hello"},
    "Decrypt": lambda k: {"CiphertextBlob": k.blob, "EncryptionContext": {"app": "dry"}},
    "ReEncrypt": lambda k: {
        "CiphertextBlob": k.blob,
        "SourceEncryptionContext": {"app": "dry"},
        "DestinationKeyId": k.other_symmetric,
    },
    "GenerateDataKey": lambda k: {"KeyId": k.symmetric, "NumberOfBytes": 16},
    "GenerateDataKeyWithoutPlaintext": lambda k: {"KeyId": k.symmetric},
    "GenerateAndExportDataKey": lambda k: {"KeyId": k.symmetric, **WRAPPING},
    "ExportDataKey": lambda k: {"CiphertextBlob": k.data_key_blob, **WRAPPING},
    "AsymmetricSign": lambda k: {
        "KeyId": k.signing[0], "KeyVersionId": k.signing[1], "Algorithm": "ECDSA_SHA_256", "Digest": DIGEST
    },
    "AsymmetricVerify": lambda k: {
        "KeyId": k.signing[0], "KeyVersionId": k.signing[1], "Algorithm": "ECDSA_SHA_256", "Digest": DIGEST,
        "Value": k.signature,
    },
    "AsymmetricEncrypt": lambda k: {
        "KeyId": k.encrypting[0], "KeyVersionId": k.encrypting[1], "Algorithm": "RSAES_OAEP_SHA_256",
        "Plaintext": base64.b64encode(b"hello").decode(),
    },
    "AsymmetricDecrypt": lambda k: {
        "KeyId": k.encrypting[0], "KeyVersionId": k.encrypting[1], "Algorithm": "RSAES_OAEP_SHA_256",
        "CiphertextBlob": k.rsa_ciphertext,
    },
    "GetPublicKey": lambda k: {"KeyId": k.signing[0], "KeyVersionId": k.signing[1]},
}  # fmt: skip


def refusal(call: Callable[[], object]) -> KmsError:
    with pytest.raises(KmsError) as caught:
        call()
    return caught.value


def audit_record(server: LiveServer, request_id: str | None) -> dict[str, Any]:
    assert request_id
    for path in sorted((server.data_dir / "audit").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record.get("request_id") == request_id:
                return record
    raise AssertionError(f"no audit record for {request_id}")


@pytest.mark.parametrize("action", sorted(DRY_RUN_ACTIONS))
def test_a_dry_run_that_would_succeed_answers_dry_run_operation(
    server: LiveServer, kms: KmsCaller, keys: Keys, action: str
) -> None:
    params = DRY_RUN_ACTIONS[action](keys)
    passed = refusal(lambda: kms.call(action, DryRun="true", **params))
    assert (passed.code, passed.status, passed.message) == DRY_RUN_PASSED
    record = audit_record(server, passed.request_id)
    assert (record["action"], record["result"], record["http_status"]) == (action, "DryRunOperation", 400)
    assert record["dry_run"] is True and record["key_id"] is not None
    # The same request without DryRun (or with DryRun=false) is done, and its record says so.
    done = kms.call(action, DryRun="false", **params)
    assert done["KeyId"] == record["key_id"]


def test_a_dry_run_counts_no_use_of_the_key(server: LiveServer, keys: Keys, suite_instance_id: str) -> None:
    """Usage records (key association detection) are the state a cryptographic call leaves."""
    root = Caller("kms", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    fresh = root.call("CreateKey", DKMSInstanceId=suite_instance_id)["KeyMetadata"]["KeyId"]
    for action in ("Encrypt", "GenerateDataKey", "GenerateAndExportDataKey"):
        params = {**DRY_RUN_ACTIONS[action](keys), "KeyId": fresh}
        with pytest.raises(KmsError, match="DryRunOperation"):
            root.call(action, DryRun="true", **params)
    root.call("StartKeyAssociationDetection", KeyId=fresh)
    answer = wait_for(root, fresh)
    assert (answer["Status"], answer["Associations"]) == ("Succeeded", {"Association": []})


def test_a_dry_run_is_authorized_like_the_call(server: LiveServer, keys: Keys) -> None:
    ram = Caller("ram", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    user, access_key_id, secret = new_user(ram)
    user_kms = as_user(server, "kms", access_key_id, secret)
    params = DRY_RUN_ACTIONS["Encrypt"](keys)
    denied = refusal(lambda: user_kms.call("Encrypt", DryRun="true", **params))
    assert (denied.code, denied.status) == ("Forbidden.NoPermission", 403)
    record = audit_record(server, denied.request_id)
    assert (record["result"], record["dry_run"]) == ("Forbidden.NoPermission", True)

    ram.call("AttachPolicyToUser", UserName=user, PolicyType="System", PolicyName="AliyunKMSCryptoUserAccess")
    passed = refusal(lambda: user_kms.call("Encrypt", DryRun="true", **params))
    assert passed.code == "DryRunOperation"
    # ReEncrypt checks both keys: a destination the caller may not use is refused.
    deny = {"Version": "1", "Statement": [{"Effect": "Deny", "Action": "kms:ReEncrypt*",
            "Resource": f"acs:kms:*:*:key/{keys.other_symmetric}"}]}  # fmt: skip
    name = f"no-reencrypt-{user}"
    ram.call("CreatePolicy", PolicyName=name, PolicyDocument=json.dumps(deny))
    ram.call("AttachPolicyToUser", UserName=user, PolicyType="Custom", PolicyName=name)
    re_encrypt = DRY_RUN_ACTIONS["ReEncrypt"](keys)
    to_denied = refusal(lambda: user_kms.call("ReEncrypt", DryRun="true", **re_encrypt))
    assert to_denied.code == "Forbidden.NoPermission"
    assert audit_record(server, to_denied.request_id)["key_id"] == keys.other_symmetric
    re_encrypt["DestinationKeyId"] = keys.symmetric
    assert refusal(lambda: user_kms.call("ReEncrypt", DryRun="true", **re_encrypt)).code == "DryRunOperation"


def test_a_dry_run_is_validated_like_the_call(kms: KmsCaller, keys: Keys, suite_instance_id: str) -> None:
    too_long = refusal(lambda: kms.call("Encrypt", DryRun="true", KeyId=keys.symmetric, Plaintext="x" * 6145))
    assert (too_long.code, too_long.status) == ("InvalidParameter", 400)
    forged = refusal(
        lambda: kms.call("Decrypt", DryRun="true", CiphertextBlob=base64.b64encode(b"x" * 64).decode())
    )
    assert forged.code == "Rejected.InvalidCiphertext"
    missing = refusal(lambda: kms.call("Encrypt", DryRun="true", KeyId="key-does-not-exist", Plaintext="x"))
    assert missing.code == "Forbidden.KeyNotFound"
    sign = {**DRY_RUN_ACTIONS["AsymmetricSign"](keys), "Algorithm": "RSA_PSS_SHA_256"}
    assert refusal(lambda: kms.call("AsymmetricSign", DryRun="true", **sign)).code == "InvalidParameter"
    not_a_data_key = refusal(
        lambda: kms.call("ExportDataKey", DryRun="true", CiphertextBlob=keys.blob,
                         EncryptionContext={"app": "dry"}, **WRAPPING)
    )  # fmt: skip
    assert not_a_data_key.code == "UnsupportedOperation.NotDataKey"
    bad_flag = refusal(lambda: kms.call("Encrypt", DryRun="maybe", KeyId=keys.symmetric, Plaintext="x"))
    assert bad_flag.code == "InvalidParameter" and "DryRun" in bad_flag.message


def test_a_dry_run_checks_the_key_state_and_changes_nothing(kms: KmsCaller, suite_instance_id: str) -> None:
    key = kms.call("CreateKey", DKMSInstanceId=suite_instance_id)["KeyMetadata"]["KeyId"]
    kms.call("DisableKey", KeyId=key)
    disabled = refusal(lambda: kms.call("GenerateDataKey", DryRun="true", KeyId=key))
    assert disabled.code == "Rejected.Disabled"
    kms.call("EnableKey", KeyId=key)
    assert refusal(lambda: kms.call("GenerateDataKey", DryRun="true", KeyId=key)).code == "DryRunOperation"
    assert kms.call("DescribeKey", KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"


# ---- CreateKey KeyStorageMechanism ------------------------------------------------------------------


def test_key_storage_mechanism_accepts_its_default(server: LiveServer, suite_instance_id: str) -> None:
    """SDK 3.x models KeyStorageMechanism (the legacy SDK does not)."""
    kms = KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    made = kms.call("CreateKey", DKMSInstanceId=suite_instance_id, KeyStorageMechanism="HsmInternal")
    assert made["KeyMetadata"]["KeyState"] == "Enabled"
    before = kms.call("ListKeys", PageSize=100)["TotalCount"]
    other = refusal(
        lambda: kms.call(
            "CreateKey", DKMSInstanceId=suite_instance_id, KeyStorageMechanism="HsmEncryptedDatabase"
        )
    )
    assert (other.code, other.status) == ("UnsupportedOperation", 400)
    assert "HsmEncryptedDatabase" in other.message and "HsmInternal" in other.message
    wrong = refusal(
        lambda: kms.call("CreateKey", DKMSInstanceId=suite_instance_id, KeyStorageMechanism="Disk")
    )
    assert (wrong.code, wrong.status) == ("InvalidParameter", 400) and "KeyStorageMechanism" in wrong.message
    assert kms.call("ListKeys", PageSize=100)["TotalCount"] == before


# ---- Recipient (SDK 3.3.1, attestation) ----------------------------------------------------------------


@pytest.mark.parametrize("action", ["Decrypt", "GenerateDataKey", "AsymmetricDecrypt"])
def test_recipient_is_refused_by_name(server: LiveServer, keys: Keys, action: str) -> None:
    """Only the Tea SDK 3.3.1 models Recipient (the legacy SDK has no such setter)."""
    kms = KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    params = {**DRY_RUN_ACTIONS[action](keys), "Recipient": json.dumps({"AttestationDocument": "AAAA"})}
    refused = refusal(lambda: kms.call(action, **params))
    assert (refused.code, refused.status) == ("UnsupportedOperation", 400)
    assert refused.message.startswith("Recipient is not supported") and "attest" in refused.message
    assert "takes no parameter" not in refused.message
