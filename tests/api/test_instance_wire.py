"""The instance API on the wire, with requests signed here the way the instance SDKs sign them
(tests/clients/test_instance_sdk.py runs the SDK itself): every refusal before an operation runs is a
protobuf `Error` with Alibaba's code and status, and changes nothing; the OpenAPI on the same port is
untouched by the instance API's dispatch."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from openkms.api.instance import kms_instance_pb2 as pb
from tests.api.test_dry_run import audit_record
from tests.support.raw import send, signed_params
from tests.support.sdk import KmsCaller
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

PASSWORD = "Wire-test-passw0rd"


@pytest.fixture
def kms(server: LiveServer) -> KmsCaller:
    return KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)


KEY_USER = "RbacPermission/Template/CryptoServiceKeyUser"
SECRET_USER = "RbacPermission/Template/CryptoServiceSecretUser"


def make_client_key(
    kms: KmsCaller,
    instance_id: str,
    *,
    permissions: tuple[str, ...] = (KEY_USER,),
    resources: tuple[str, ...] = ("key/*",),
    source: str = "127.0.0.1",
    **validity: str,
) -> tuple[str, rsa.RSAPrivateKey]:
    suffix = uuid.uuid4().hex[:8]
    kms.call("CreateNetworkRule", Name=f"n-{suffix}", Type="Private", SourcePrivateIp=json.dumps([source]))
    kms.call(
        "CreatePolicy",
        Name=f"p-{suffix}",
        KmsInstance=instance_id,
        Permissions=json.dumps(list(permissions)),
        Resources=json.dumps(list(resources)),
        AccessControlRules=json.dumps({"NetworkRules": [f"n-{suffix}"]}),
    )
    kms.call("CreateApplicationAccessPoint", Name=f"a-{suffix}", Policies=f'["p-{suffix}"]')
    made = kms.call("CreateClientKey", AapName=f"a-{suffix}", Password=PASSWORD, **validity)
    private, _, _ = pkcs12.load_key_and_certificates(
        base64.b64decode(made["PrivateKeyData"]), PASSWORD.encode()
    )
    assert isinstance(private, rsa.RSAPrivateKey)
    return str(made["ClientKeyId"]), private


@pytest.fixture
def client_key(kms: KmsCaller, instance_id: str) -> tuple[str, rsa.RSAPrivateKey]:
    return make_client_key(kms, instance_id)


def signed(
    client_key_id: str,
    private: rsa.RSAPrivateKey,
    api: str,
    body: bytes,
    *,
    date: str | None = None,
    sha: str | None = None,
) -> dict[str, str]:
    """The headers the SDKs send (alibaba-api-coverage.md 5.2-5.3), signed with `private`."""
    headers = {
        "content-type": "application/x-protobuf",
        "content-sha256": sha or hashlib.sha256(body).hexdigest().upper(),
        "date": date or formatdate(usegmt=True),
        "x-kms-apiname": api,
        "x-kms-apiversion": "dkms-gcs-0.2",
        "x-kms-signaturemethod": "RSA_PKCS1_SHA_256",
        "x-kms-acccesskeyid": client_key_id,
    }
    kms_headers = "".join(
        f"{name}:{headers[name]}\n" for name in sorted(h for h in headers if h.startswith("x-kms-"))
    )
    to_sign = (
        f"POST\n{headers['content-sha256']}\n{headers['content-type']}\n{headers['date']}\n{kms_headers}/"
    )
    signature = private.sign(to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
    return {**headers, "authorization": "Bearer " + base64.b64encode(signature).decode()}


def post(server: LiveServer, headers: dict[str, str], body: bytes) -> httpx.Response:
    return httpx.post(f"{server.url}/", headers=headers, content=body, timeout=30)


def error_of(answer: httpx.Response) -> tuple[int, str, str]:
    error = pb.Error.FromString(answer.content)
    assert error.RequestId == answer.headers["x-kms-requestid"] and error.StatusCode == answer.status_code
    return answer.status_code, error.ErrorCode, error.ErrorMessage


def test_a_signed_request_is_served(
    server: LiveServer, kms: KmsCaller, instance_id: str, client_key: tuple[str, rsa.RSAPrivateKey]
) -> None:
    key_id = kms.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"]
    body = pb.AdvanceEncryptRequest(KeyId=key_id, Plaintext=b"wire").SerializeToString()
    answer = post(server, signed(*client_key, "AdvanceEncrypt", body), body)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/x-protobuf"
    sealed = pb.AdvanceEncryptResponse.FromString(answer.content)
    assert answer.headers["x-kms-migrationkeyversionid"] == sealed.KeyVersionId
    back = pb.AdvanceDecryptRequest(CiphertextBlob=sealed.CiphertextBlob).SerializeToString()
    opened = post(server, signed(*client_key, "AdvanceDecrypt", back), back)
    assert pb.AdvanceDecryptResponse.FromString(opened.content).Plaintext == b"wire"


def test_refusals_are_protobuf_errors_with_alibabas_codes(
    server: LiveServer, kms: KmsCaller, instance_id: str, client_key: tuple[str, rsa.RSAPrivateKey]
) -> None:
    key_id = kms.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"]
    body = pb.AdvanceEncryptRequest(KeyId=key_id, Plaintext=b"x").SerializeToString()
    good = signed(*client_key, "AdvanceEncrypt", body)
    authorization_invalid = (400, "InvalidParam", "The Param Authorization is invalid.")

    unsigned = {name: value for name, value in good.items() if name != "authorization"}
    assert error_of(post(server, unsigned, body)) == authorization_invalid
    assert error_of(post(server, good, body + b"\x00")) == authorization_invalid  # content-sha256
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert (
        error_of(post(server, signed(client_key[0], other, "AdvanceEncrypt", body), body))
        == authorization_invalid
    )
    old = formatdate(timeval=time.time() - 3600, usegmt=True)
    assert error_of(post(server, signed(*client_key, "AdvanceEncrypt", body, date=old), body)) == (
        400,
        "InvalidParam",
        "The Param Date is invalid.",
    )
    unknown = signed("KAAP.00000000-0000-4000-8000-000000000000", client_key[1], "AdvanceEncrypt", body)
    assert error_of(post(server, unknown, body))[:2] == (401, "Unauthorized")
    assert error_of(post(server, signed(*client_key, "Hmac", body), body))[:2] == (
        404,
        "InvalidAction.NotFound",
    )
    garbage = b"\xff\xff\xff"
    assert error_of(post(server, signed(*client_key, "AdvanceEncrypt", garbage), garbage))[:2] == (
        400,
        "InvalidParameter",
    )
    # The OpenAPI on the same port answers as ever.
    assert kms.call("Encrypt", KeyId=key_id, Plaintext="still here")["KeyId"] == key_id


def test_a_change_to_the_access_point_applies_to_the_next_request(
    server: LiveServer, kms: KmsCaller, instance_id: str, client_key: tuple[str, rsa.RSAPrivateKey]
) -> None:
    """What a client key may do is cached like access keys; every change empties the cache."""
    key_id = kms.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"]
    body = pb.AdvanceEncryptRequest(KeyId=key_id, Plaintext=b"x").SerializeToString()
    assert post(server, signed(*client_key, "AdvanceEncrypt", body), body).status_code == 200
    rule = kms.call("GetClientKey", ClientKeyId=client_key[0])["AapName"].replace("a-", "n-", 1)
    kms.call("UpdateNetworkRule", Name=rule, SourcePrivateIp='["10.0.0.0/8"]')
    assert error_of(post(server, signed(*client_key, "AdvanceEncrypt", body), body))[:2] == (
        403,
        "Forbidden.NoPermission",
    )
    kms.call("UpdateNetworkRule", Name=rule, SourcePrivateIp='["127.0.0.1"]')
    assert post(server, signed(*client_key, "AdvanceEncrypt", body), body).status_code == 200
    kms.call("DeleteClientKey", ClientKeyId=client_key[0])
    assert error_of(post(server, signed(*client_key, "AdvanceEncrypt", body), body))[:2] == (
        401,
        "Unauthorized",
    )


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path / "data", extra_args=["--dev-clock"]).start()
    yield live
    live.stop()


def test_an_expired_client_key_is_refused(dev_server: LiveServer) -> None:
    """A client key past its NotAfter, on a server whose development clock moved two days on (the
    request's date stays the wall clock's, as signed requests' freshness does)."""
    kms = KmsCaller("tea-acs3", dev_server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    instance_id = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    key_id = kms.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"]
    now = time.time()
    window = {
        "NotBefore": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60)),
        "NotAfter": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 86400)),
    }
    client_key_id, private = make_client_key(kms, instance_id, **window)
    body = pb.AdvanceEncryptRequest(KeyId=key_id, Plaintext=b"x").SerializeToString()
    assert post(dev_server, signed(client_key_id, private, "AdvanceEncrypt", body), body).status_code == 200
    moved = send(
        dev_server.url, signed_params("DevAdvanceClock", ACCESS_KEY_ID, ACCESS_KEY_SECRET, Duration="2d")
    )
    assert moved.status_code == 200, moved.text
    refused = post(dev_server, signed(client_key_id, private, "AdvanceEncrypt", body), body)
    assert error_of(refused)[:2] == (403, "Forbidden.NoPermission"), error_of(refused)


def test_a_key_policy_deny_keeps_a_secret_value_closed(
    server: LiveServer, kms: KmsCaller, instance_id: str
) -> None:
    """GetSecretValue through the instance decrypts under the secret's key: the access point's secret
    grant stands for the key-user side, but an explicit Deny of the access point in the key's policy
    still refuses, as it refuses AdvanceEncrypt on that key."""
    key_id = kms.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"]
    name = f"wire/{uuid.uuid4().hex[:8]}"
    kms.call(
        "CreateSecret", SecretName=name, VersionId="v1", SecretData="db-password", EncryptionKeyId=key_id
    )
    reader = make_client_key(
        kms, instance_id, permissions=(KEY_USER, SECRET_USER), resources=("key/*", "secret/*")
    )
    read = pb.GetSecretValueRequest(SecretName=name).SerializeToString()
    got = post(server, signed(*reader, "GetSecretValue", read), read)
    assert (
        got.status_code == 200
        and pb.GetSecretValueResponse.FromString(got.content).SecretData == "db-password"
    )

    account = kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["Creator"]
    access_point = kms.call("GetClientKey", ClientKeyId=reader[0])["AapName"]
    policy = json.loads(kms.call("GetKeyPolicy", KeyId=key_id)["Policy"])
    deny = {
        "Effect": "Deny",
        "Principal": {"RAM": [f"acs:ram::{account}:applicationaccesspoint/{access_point}"]},
        "Action": ["kms:*"],
        "Resource": ["*"],
    }
    policy["Statement"].append(deny)
    kms.call("SetKeyPolicy", KeyId=key_id, Policy=json.dumps(policy))
    seal = pb.AdvanceEncryptRequest(KeyId=key_id, Plaintext=b"x").SerializeToString()
    for api, body in (("GetSecretValue", read), ("AdvanceEncrypt", seal)):
        assert error_of(post(server, signed(*reader, api, body), body))[:2] == (403, "Forbidden.NoPermission")
    # The account itself still reads it through OpenAPI: the Deny names the access point only.
    assert kms.call("GetSecretValue", SecretName=name)["SecretData"] == "db-password"


def test_generate_random_needs_a_network_rule_admitting_the_caller(
    server: LiveServer, kms: KmsCaller, instance_id: str
) -> None:
    """GenerateRandom acts on no key, but an access point whose policies admit nobody from the
    caller's address may not ask for it either."""
    body = pb.GenerateRandomRequest(Length=32).SerializeToString()
    elsewhere = make_client_key(kms, instance_id, source="10.0.0.0/8")
    assert error_of(post(server, signed(*elsewhere, "GenerateRandom", body), body))[:2] == (
        403,
        "Forbidden.NoPermission",
    )
    here = make_client_key(kms, instance_id)
    answer = post(server, signed(*here, "GenerateRandom", body), body)
    assert (
        answer.status_code == 200 and len(pb.GenerateRandomResponse.FromString(answer.content).Random) == 32
    )


def test_refusals_are_audited_with_the_client_key_they_claimed(
    server: LiveServer, kms: KmsCaller, instance_id: str, client_key: tuple[str, rsa.RSAPrivateKey]
) -> None:
    """Before the signature is checked, a refusal names the claimed client key (a bounded token) and
    no account; after it, the access point's principal and account."""
    key_id = kms.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"]
    body = pb.AdvanceEncryptRequest(KeyId=key_id, Plaintext=b"x").SerializeToString()
    forged = signed(
        client_key[0], rsa.generate_private_key(public_exponent=65537, key_size=2048), "AdvanceEncrypt", body
    )
    refused = post(server, forged, body)
    record = audit_record(server, refused.headers["x-kms-requestid"])
    assert (record["door"], record["result"], record["account_id"]) == ("instance", "InvalidParam", None)
    assert record["principal"] == f"acs:ram::unknown:client-key/{client_key[0]}"
    flood = "KAAP." + "x" * 500
    refused = post(server, signed(flood, client_key[1], "AdvanceEncrypt", body), body)
    assert len(audit_record(server, refused.headers["x-kms-requestid"])["principal"]) < 100

    unknown_action = post(server, signed(*client_key, "Hmac", body), body)
    record = audit_record(server, unknown_action.headers["x-kms-requestid"])
    account = kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["Creator"]
    assert (record["result"], record["account_id"]) == ("InvalidAction.NotFound", account)
    assert (
        record["principal"].endswith(f"/{client_key[0]}")
        and ":applicationaccesspoint/" in record["principal"]
    )


def test_a_store_fault_before_the_operation_answers_internal_failure_and_is_audited(tmp_path: Path) -> None:
    """The client key cannot be read (its table is away): InternalFailure as a protobuf Error, no
    trace, a record of the refusal; the server serves again once the store is back."""
    live = LiveServer(tmp_path / "data").start()
    try:
        kms = KmsCaller("tea-acs3", live.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        instance_id = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
        key_id = kms.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"]
        client_key_id, private = make_client_key(kms, instance_id)
        body = pb.AdvanceEncryptRequest(KeyId=key_id, Plaintext=b"x").SerializeToString()
        store = sqlite3.connect(live.data_dir / "openkms.db")
        store.execute("ALTER TABLE client_keys RENAME TO client_keys_away")
        store.commit()
        try:
            answer = post(live, signed(client_key_id, private, "AdvanceEncrypt", body), body)
            assert error_of(answer) == (500, "InternalFailure", "Internal Failure.")
            assert b"Traceback" not in answer.content and b"client_keys" not in answer.content
            record = audit_record(live, answer.headers["x-kms-requestid"])
            assert (record["door"], record["result"], record["http_status"]) == (
                "instance",
                "InternalFailure",
                500,
            )
        finally:
            store.execute("ALTER TABLE client_keys_away RENAME TO client_keys")
            store.commit()
            store.close()
        assert post(live, signed(client_key_id, private, "AdvanceEncrypt", body), body).status_code == 200
    finally:
        live.stop()
