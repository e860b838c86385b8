"""Alibaba's instance SDK (`alibabacloud-dkms-gcs` 1.0.2), unchanged, against the OpenKMS instance API
over HTTPS verified with the deployment's CA (`serve --tls-instance-ca`, `openkms instance ca`): every
operation OpenKMS serves, ciphertexts crossing between the instance API and OpenAPI both ways (with and
without an EncryptionContext), the refusals (unknown client key, a client key not valid yet, a network
rule, a policy and a key policy that do not admit the call, a disabled key) with their codes, and the
audit record of door `instance`.

The access point, its policy, network rule and client key are made through the official OpenAPI SDK
(the test venv); the client key file is written in the JSON shape the SDK loads. The SDK runs in the
clients' venv (tests/clients/python/instance_driver.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from tests.clients.python.session import DriverSession
from tests.support.sdk import KmsCaller
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

DRIVER = Path(__file__).resolve().parent / "python" / "instance_driver.py"
KEY_USER = "RbacPermission/Template/CryptoServiceKeyUser"
SECRET_USER = "RbacPermission/Template/CryptoServiceSecretUser"
PASSWORD = "Client-key-passw0rd"
ADVANCE = b"$\x00\x02"


def b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode()}


def raw(value: dict[str, str] | None) -> bytes:
    return b"" if not value else base64.b64decode(value["b64"])


def derived_aad(context: dict[str, str]) -> bytes:
    """What the unified SDK sends as Aad for an EncryptionContext: hex(sha256("k1=v1&k2=v2"))."""
    text = "&".join(f"{name}={context[name]}" for name in sorted(context))
    return hashlib.sha256(text.encode()).hexdigest().encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("instance-api")
    first = LiveServer(folder / "data").start()  # the first start makes the deployment's CA
    first.stop()
    ca = folder / "ca.pem"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "openkms.cli",
            "instance",
            "ca",
            "--out",
            str(ca),
            "--data-dir",
            str(first.data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    live = LiveServer(
        folder / "data", extra_args=["--tls-instance-ca", "--tls-names", "localhost,127.0.0.1"], tls_ca=ca
    )
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def kms(server: LiveServer) -> KmsCaller:
    return KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET, ca=str(server.tls_ca))


@pytest.fixture(scope="module")
def instance_id(kms: KmsCaller) -> str:
    return str(kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"])


@dataclass
class App:
    name: str
    policy: str
    rule: str
    key_file: Path


def make_app(
    kms: KmsCaller,
    instance_id: str,
    folder: Path,
    *,
    sources: str = '["127.0.0.1"]',
    resources: str = '["key/*"]',
    permissions: tuple[str, ...] = (KEY_USER,),
    **client_key: str,
) -> App:
    suffix = uuid.uuid4().hex[:8]
    rule, policy, name = f"net-{suffix}", f"policy-{suffix}", f"app-{suffix}"
    kms.call("CreateNetworkRule", Name=rule, Type="Private", SourcePrivateIp=sources)
    kms.call(
        "CreatePolicy",
        Name=policy,
        KmsInstance=instance_id,
        Permissions=json.dumps(list(permissions)),
        Resources=resources,
        AccessControlRules=json.dumps({"NetworkRules": [rule]}),
    )
    kms.call("CreateApplicationAccessPoint", Name=name, Policies=json.dumps([policy]))
    made = kms.call("CreateClientKey", AapName=name, Password=PASSWORD, **client_key)
    key_file = folder / f"clientKey_{made['ClientKeyId']}.json"
    key_file.write_text(json.dumps({"KeyId": made["ClientKeyId"], "PrivateKeyData": made["PrivateKeyData"]}))
    return App(name, policy, rule, key_file)


def open_sdk(server: LiveServer, app: App, folder: Path) -> DriverSession:
    session = DriverSession(DRIVER, folder / f"driver-{uuid.uuid4().hex[:6]}", {})
    session.ok(
        "open",
        endpoint=server.endpoint,
        client_key_file=str(app.key_file),
        password=PASSWORD,
        ca=str(server.tls_ca),
    )
    return session


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("instance-sdk")


@pytest.fixture(scope="module")
def app(kms: KmsCaller, instance_id: str, folder: Path) -> App:
    return make_app(kms, instance_id, folder)


@pytest.fixture(scope="module")
def sdk(server: LiveServer, app: App, folder: Path) -> Iterator[DriverSession]:
    session = open_sdk(server, app, folder)
    yield session
    session.close()


@pytest.fixture(scope="module")
def key_id(kms: KmsCaller, instance_id: str) -> str:
    return str(kms.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"])


def call(session: DriverSession, method: str, model: str, **fields: Any) -> tuple[dict[str, Any], str | None]:
    answer = session.ok("call", method=method, model=model, fields=fields)
    return answer["body"], answer["version_header"]


def refusal(session: DriverSession, method: str, model: str, **fields: Any) -> tuple[str, int]:
    error = session.error("call", method=method, model=model, fields=fields)
    return str(error["code"]), int(error["status"])


# ---- symmetric -------------------------------------------------------------------------------------


def test_advance_encrypt_and_decrypt(sdk: DriverSession, kms: KmsCaller, key_id: str) -> None:
    aad = b"application-bound"
    body, header = call(
        sdk, "advance_encrypt", "AdvanceEncryptRequest", key_id=key_id, plaintext=b64(b"hello"), aad=b64(aad)
    )
    blob = raw(body["CiphertextBlob"])
    primary = kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["PrimaryKeyVersion"]
    assert blob.startswith(ADVANCE) and blob[3:39] == primary.encode()
    assert body["KeyVersionId"] == header == primary and body["KeyId"] == key_id
    assert raw(body["Iv"]) == blob[39:51]
    opened, header = call(
        sdk, "advance_decrypt", "AdvanceDecryptRequest", ciphertext_blob=body["CiphertextBlob"], aad=b64(aad)
    )
    assert raw(opened["Plaintext"]) == b"hello" and opened["KeyVersionId"] == header == primary
    code, status = refusal(
        sdk,
        "advance_decrypt",
        "AdvanceDecryptRequest",
        ciphertext_blob=body["CiphertextBlob"],
        aad=b64(b"other"),
    )
    assert (code, status) == ("Rejected.InvalidCiphertext", 400)


def test_plain_encrypt_and_decrypt(sdk: DriverSession, key_id: str) -> None:
    body, header = call(
        sdk, "encrypt", "EncryptRequest", key_id=key_id, plaintext=b64(b"plain"), aad=b64(b"x")
    )
    assert header and len(raw(body["Iv"])) == 12 and body["Algorithm"] == "AES_GCM"
    # As dkms-gcs decrypts: KeyId, Iv and CiphertextBlob (the key's primary version)...
    opened, _ = call(
        sdk,
        "decrypt",
        "DecryptRequest",
        key_id=key_id,
        ciphertext_blob=body["CiphertextBlob"],
        iv=body["Iv"],
        aad=b64(b"x"),
    )
    assert raw(opened["Plaintext"]) == b"plain"
    # ... and as the unified SDK does, with the version header Encrypt answered.
    answer = sdk.ok(
        "call",
        method="decrypt",
        model="DecryptRequest",
        fields={"ciphertext_blob": body["CiphertextBlob"], "iv": body["Iv"], "aad": b64(b"x")},
        request_headers={"x-kms-migrationkeyversionid": header},
    )
    assert raw(answer["body"]["Plaintext"]) == b"plain"


def test_data_keys_and_random(sdk: DriverSession, key_id: str) -> None:
    body, header = call(
        sdk,
        "advance_generate_data_key",
        "AdvanceGenerateDataKeyRequest",
        key_id=key_id,
        number_of_bytes=32,
        aad=b64(b"dk"),
    )
    plaintext = raw(body["Plaintext"])
    assert len(plaintext) == 32 and body["KeyVersionId"] == header
    opened, _ = call(
        sdk,
        "advance_decrypt",
        "AdvanceDecryptRequest",
        ciphertext_blob=body["CiphertextBlob"],
        aad=b64(b"dk"),
    )
    assert raw(opened["Plaintext"]) == plaintext
    plain, header = call(
        sdk, "generate_data_key", "GenerateDataKeyRequest", key_id=key_id, number_of_bytes=16
    )
    assert len(raw(plain["Plaintext"])) == 16
    answer = sdk.ok(
        "call",
        method="decrypt",
        model="DecryptRequest",
        fields={"ciphertext_blob": plain["CiphertextBlob"], "iv": plain["Iv"]},
        request_headers={"x-kms-migrationkeyversionid": header},
    )
    assert raw(answer["body"]["Plaintext"]) == raw(plain["Plaintext"])
    random, _ = call(sdk, "generate_random", "GenerateRandomRequest", length=48)
    assert len(raw(random["Random"])) == 48
    assert refusal(sdk, "generate_random", "GenerateRandomRequest", length=4096) == ("InvalidParameter", 400)


# ---- one ciphertext, both gateways -------------------------------------------------------------------


@pytest.mark.parametrize("context", [None, {"app": "billing", "env": "prod"}, {"b": "x=y", "a": "1"}])
def test_ciphertexts_cross_between_the_gateways(
    sdk: DriverSession, kms: KmsCaller, key_id: str, context: dict[str, str] | None
) -> None:
    aad = b"" if context is None else derived_aad(context)
    body, _ = call(
        sdk,
        "advance_encrypt",
        "AdvanceEncryptRequest",
        key_id=key_id,
        plaintext=b64(b"from the instance"),
        aad=b64(aad),
    )
    openapi_blob = base64.b64encode(raw(body["CiphertextBlob"])[3:]).decode()  # what the unified SDK keeps
    opened = kms.call("Decrypt", CiphertextBlob=openapi_blob, EncryptionContext=context)
    assert opened["Plaintext"] == "from the instance"

    sealed = kms.call("Encrypt", KeyId=key_id, Plaintext="from OpenAPI", EncryptionContext=context)
    blob = base64.b64decode(sealed["CiphertextBlob"])
    assert len(blob) > 48
    back, header = call(
        sdk,
        "advance_decrypt",
        "AdvanceDecryptRequest",
        ciphertext_blob=b64(ADVANCE + blob),
        iv=b64(blob[36:48]),
        aad=b64(aad),
    )
    assert raw(back["Plaintext"]) == b"from OpenAPI" and header == sealed["KeyVersionId"]
    if context is not None:  # the context is bound: another one opens nothing
        with pytest.raises(Exception, match="InvalidCiphertext"):
            kms.call("Decrypt", CiphertextBlob=openapi_blob, EncryptionContext={"app": "other"})


# ---- key pairs ---------------------------------------------------------------------------------------


def test_sign_verify_and_public_key(sdk: DriverSession, kms: KmsCaller, instance_id: str) -> None:
    key_id = kms.call("CreateKey", DKMSInstanceId=instance_id, KeySpec="EC_P256", KeyUsage="SIGN/VERIFY")[
        "KeyMetadata"
    ]["KeyId"]
    message = b"a document"
    digest = hashlib.sha256(message).digest()
    public, header = call(sdk, "get_public_key", "GetPublicKeyRequest", key_id=key_id)
    public_key = serialization.load_pem_public_key(public["PublicKey"].encode())
    assert isinstance(public_key, ec.EllipticCurvePublicKey) and header
    for message_type, given in (("DIGEST", digest), ("RAW", message)):
        signed, version = call(
            sdk,
            "sign",
            "SignRequest",
            key_id=key_id,
            algorithm="ECDSA_SHA_256",
            message=b64(given),
            message_type=message_type,
        )
        signature = raw(signed["Signature"])
        public_key.verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        assert version == header
        verified, _ = call(
            sdk,
            "verify",
            "VerifyRequest",
            key_id=key_id,
            algorithm="ECDSA_SHA_256",
            message=b64(given),
            message_type=message_type,
            signature=b64(signature),
        )
        assert verified["Value"] is True
    wrong, _ = call(
        sdk,
        "verify",
        "VerifyRequest",
        key_id=key_id,
        algorithm="ECDSA_SHA_256",
        message=b64(b"\x00" * 32),
        message_type="DIGEST",
        signature=b64(signature),
    )
    assert wrong["Value"] is False


# ---- refusals ----------------------------------------------------------------------------------------


def test_refusals_have_alibabas_codes(
    server: LiveServer,
    kms: KmsCaller,
    instance_id: str,
    folder: Path,
    key_id: str,
    sdk: DriverSession,
    app: App,
) -> None:
    encrypt = {"key_id": key_id, "plaintext": b64(b"x")}
    # A client key that no longer exists.
    gone = make_app(kms, instance_id, folder)
    with open_sdk(server, gone, folder) as session:
        kms.call("DeleteClientKey", ClientKeyId=json.loads(gone.key_file.read_text())["KeyId"])
        assert refusal(session, "advance_encrypt", "AdvanceEncryptRequest", **encrypt) == (
            "Unauthorized",
            401,
        )
    # A client key that is not valid yet.
    later = make_app(
        kms, instance_id, folder, NotBefore="2099-01-01T00:00:00Z", NotAfter="2100-01-01T00:00:00Z"
    )
    with open_sdk(server, later, folder) as session:
        assert refusal(session, "advance_encrypt", "AdvanceEncryptRequest", **encrypt) == (
            "Forbidden.NoPermission",
            403,
        )
    # A network rule that does not admit 127.0.0.1, and a policy that covers another key.
    elsewhere = make_app(kms, instance_id, folder, sources='["10.0.0.0/8"]')
    narrow = make_app(kms, instance_id, folder, resources='["key/key-someotherkey"]')
    for other in (elsewhere, narrow):
        with open_sdk(server, other, folder) as session:
            assert refusal(session, "advance_encrypt", "AdvanceEncryptRequest", **encrypt) == (
                "Forbidden.NoPermission",
                403,
            )
    # A key policy that denies the access point; and one that grants only another identity (a key
    # policy granting the account, as the default one does, or its root, speaks for its access points).
    account = kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["Creator"]
    denying = kms.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"]
    default = json.loads(kms.call("GetKeyPolicy", KeyId=denying)["Policy"])
    deny = {
        "Effect": "Deny",
        "Principal": {"RAM": [f"acs:ram::{account}:applicationaccesspoint/{app.name}"]},
        "Action": ["kms:*"],
        "Resource": ["*"],
    }
    kms.call(
        "SetKeyPolicy",
        KeyId=denying,
        Policy=json.dumps({**default, "Statement": [*default["Statement"], deny]}),
    )
    code = refusal(sdk, "advance_encrypt", "AdvanceEncryptRequest", key_id=denying, plaintext=b64(b"x"))
    assert code == ("Forbidden.NoPermission", 403)
    closed = kms.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"]
    only_alice = {
        "Version": "1",
        "Statement": [{**default["Statement"][0], "Principal": {"RAM": [f"acs:ram::{account}:user/alice"]}}],
    }
    kms.call("SetKeyPolicy", KeyId=closed, Policy=json.dumps(only_alice))
    assert refusal(sdk, "advance_encrypt", "AdvanceEncryptRequest", key_id=closed, plaintext=b64(b"x")) == (
        "Forbidden.NoPermission",
        403,
    )
    named = {**only_alice, "Statement": [*only_alice["Statement"], {**deny, "Effect": "Allow"}]}
    kms.call("SetKeyPolicy", KeyId=closed, Policy=json.dumps(named))
    call(sdk, "advance_encrypt", "AdvanceEncryptRequest", key_id=closed, plaintext=b64(b"x"))
    # A disabled key.
    disabled = kms.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"]
    kms.call("DisableKey", KeyId=disabled)
    assert refusal(sdk, "advance_encrypt", "AdvanceEncryptRequest", key_id=disabled, plaintext=b64(b"x")) == (
        "Rejected.Disabled",
        400,
    )
    # The same client key works for a key it may use.
    call(sdk, "advance_encrypt", "AdvanceEncryptRequest", **encrypt)


def test_the_audit_records_door_instance_and_the_client_key(
    server: LiveServer, sdk: DriverSession, app: App, key_id: str
) -> None:
    body, _ = call(
        sdk, "advance_encrypt", "AdvanceEncryptRequest", key_id=key_id, plaintext=b64(b"audited plaintext")
    )
    client_key_id = json.loads(app.key_file.read_text())["KeyId"]
    records = [
        json.loads(line)
        for path in sorted((server.data_dir / "audit").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    mine = [record for record in records if record.get("request_id") == body["RequestId"]]
    assert len(mine) == 1
    record = mine[0]
    assert (record["door"], record["action"], record["result"], record["key_id"]) == (
        "instance",
        "AdvanceEncrypt",
        "Success",
        key_id,
    )
    assert record["principal"].endswith(f":applicationaccesspoint/{app.name}/{client_key_id}")
    assert all("audited plaintext" not in json.dumps(record) for record in records)


# ---- the unified SDK's TransferClient --------------------------------------------------------------


def open_transfer(server: LiveServer, app: App, folder: Path) -> DriverSession:
    """A TransferClient with both configs: the handled actions go to the instance API (client key),
    the rest to OpenAPI (access key), each over HTTPS verified with the deployment's CA."""
    session = DriverSession(DRIVER, folder / f"transfer-{uuid.uuid4().hex[:6]}", {})
    session.ok(
        "transfer",
        openapi={
            "access_key_id": ACCESS_KEY_ID,
            "access_key_secret": ACCESS_KEY_SECRET,
            "endpoint": server.endpoint,
            "protocol": "https",
            "region_id": "cn-hangzhou",
        },
        instance={
            "protocol": "https",
            "endpoint": server.endpoint,
            "client_key_file": str(app.key_file),
            "password": PASSWORD,
        },
        ca=str(server.tls_ca),
    )
    return session


@pytest.fixture(scope="module")
def transfer(server: LiveServer, app: App, folder: Path) -> Iterator[DriverSession]:
    with open_transfer(server, app, folder) as session:
        yield session


def openapi(session: DriverSession, method: str, model: str, **fields: Any) -> dict[str, Any]:
    answer: dict[str, Any] = session.ok("openapi", method=method, model=model, fields=fields)
    return answer


def test_transfer_client_routes_and_ciphertexts_cross(
    server: LiveServer, transfer: DriverSession, kms: KmsCaller, instance_id: str
) -> None:
    # Management actions go to OpenAPI through the same client...
    made = openapi(transfer, "create_key", "CreateKeyRequest", dkmsinstance_id=instance_id)
    key_id = made["KeyMetadata"]["KeyId"]
    assert (
        openapi(transfer, "describe_key", "DescribeKeyRequest", key_id=key_id)["KeyMetadata"]["KeyId"]
        == key_id
    )
    context = {"app": "billing", "env": "prod"}  # the SDK model's type: a map
    # ... the handled ones to the instance API, in OpenAPI's shapes.
    sealed = openapi(
        transfer,
        "encrypt",
        "EncryptRequest",
        key_id=key_id,
        plaintext="via the instance",
        encryption_context=context,
    )
    assert sealed["KeyVersionId"] and len(base64.b64decode(sealed["CiphertextBlob"])) > 48
    opened = openapi(
        transfer,
        "decrypt",
        "DecryptRequest",
        ciphertext_blob=sealed["CiphertextBlob"],
        encryption_context=context,
    )
    assert opened["Plaintext"] == "via the instance"
    # The instance's ciphertext opens through OpenAPI with the same context, and the reverse.
    assert (
        kms.call("Decrypt", CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext=context)["Plaintext"]
        == "via the instance"
    )
    other = kms.call("Encrypt", KeyId=key_id, Plaintext="via OpenAPI", EncryptionContext=context)
    back = openapi(
        transfer,
        "decrypt",
        "DecryptRequest",
        ciphertext_blob=other["CiphertextBlob"],
        encryption_context=context,
    )
    assert back["Plaintext"] == "via OpenAPI"
    # GenerateDataKey: the instance's data key, sealed as its base64 text (Alibaba's convention).
    data_key = openapi(
        transfer, "generate_data_key", "GenerateDataKeyRequest", key_id=key_id, number_of_bytes=32
    )
    assert (
        kms.call("Decrypt", CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"] == data_key["Plaintext"]
    )
    without = openapi(
        transfer,
        "generate_data_key_without_plaintext",
        "GenerateDataKeyWithoutPlaintextRequest",
        key_id=key_id,
    )
    assert (
        len(base64.b64decode(kms.call("Decrypt", CiphertextBlob=without["CiphertextBlob"])["Plaintext"]))
        == 32
    )
    # A short plaintext still gives a blob the SDK accepts (v2 blobs are at least 64 bytes).
    tiny = openapi(transfer, "encrypt", "EncryptRequest", key_id=key_id, plaintext="a")
    assert (
        openapi(transfer, "decrypt", "DecryptRequest", ciphertext_blob=tiny["CiphertextBlob"])["Plaintext"]
        == "a"
    )


def test_transfer_client_key_pairs(transfer: DriverSession, kms: KmsCaller, instance_id: str) -> None:
    signing = kms.call("CreateKey", DKMSInstanceId=instance_id, KeySpec="EC_P256", KeyUsage="SIGN/VERIFY")[
        "KeyMetadata"
    ]["KeyId"]
    version = kms.call("DescribeKey", KeyId=signing)["KeyMetadata"]["PrimaryKeyVersion"]
    digest = base64.b64encode(hashlib.sha256(b"doc").digest()).decode()
    signed = openapi(
        transfer,
        "asymmetric_sign",
        "AsymmetricSignRequest",
        key_id=signing,
        key_version_id=version,
        algorithm="ECDSA_SHA_256",
        digest=digest,
    )
    assert signed["KeyVersionId"] == version
    verified = openapi(
        transfer,
        "asymmetric_verify",
        "AsymmetricVerifyRequest",
        key_id=signing,
        key_version_id=version,
        algorithm="ECDSA_SHA_256",
        digest=digest,
        value=signed["Value"],
    )
    assert verified["Value"] is True
    assert (
        kms.call(
            "AsymmetricVerify",
            KeyId=signing,
            KeyVersionId=version,
            Algorithm="ECDSA_SHA_256",
            Digest=digest,
            Value=signed["Value"],
        )["Value"]
        is True
    )
    public = openapi(
        transfer, "get_public_key", "GetPublicKeyRequest", key_id=signing, key_version_id=version
    )
    assert public["PublicKey"] == kms.call("GetPublicKey", KeyId=signing, KeyVersionId=version)["PublicKey"]
    sealing = kms.call(
        "CreateKey", DKMSInstanceId=instance_id, KeySpec="RSA_2048", KeyUsage="ENCRYPT/DECRYPT"
    )["KeyMetadata"]["KeyId"]
    sealing_version = kms.call("DescribeKey", KeyId=sealing)["KeyMetadata"]["PrimaryKeyVersion"]
    plaintext = base64.b64encode(b"pair secret").decode()
    encrypted = openapi(
        transfer,
        "asymmetric_encrypt",
        "AsymmetricEncryptRequest",
        key_id=sealing,
        key_version_id=sealing_version,
        algorithm="RSAES_OAEP_SHA_256",
        plaintext=plaintext,
    )
    opened = kms.call(
        "AsymmetricDecrypt",
        KeyId=sealing,
        KeyVersionId=sealing_version,
        Algorithm="RSAES_OAEP_SHA_256",
        CiphertextBlob=encrypted["CiphertextBlob"],
    )
    assert opened["Plaintext"] == plaintext
    decrypted = openapi(
        transfer,
        "asymmetric_decrypt",
        "AsymmetricDecryptRequest",
        key_id=sealing,
        key_version_id=sealing_version,
        algorithm="RSAES_OAEP_SHA_256",
        ciphertext_blob=encrypted["CiphertextBlob"],
    )
    assert decrypted["Plaintext"] == plaintext


# ---- secrets -----------------------------------------------------------------------------------------


def test_get_secret_value_through_the_instance(
    server: LiveServer, kms: KmsCaller, instance_id: str, folder: Path, sdk: DriverSession, key_id: str
) -> None:
    name = f"inst/{uuid.uuid4().hex[:8]}"
    kms.call(
        "CreateSecret", SecretName=name, VersionId="v1", SecretData="db-password", EncryptionKeyId=key_id
    )
    kms.call("PutSecretValue", SecretName=name, VersionId="v2", SecretData="rotated")
    reader = make_app(kms, instance_id, folder, resources='["secret/inst/*"]', permissions=(SECRET_USER,))
    with open_sdk(server, reader, folder) as session:
        body, _ = call(session, "get_secret_value", "GetSecretValueRequest", secret_name=name)
        assert (body["SecretData"], body["VersionId"], body["SecretDataType"]) == ("rotated", "v2", "text")
        assert body["VersionStages"] == ["ACSCurrent"]
        previous, _ = call(
            session,
            "get_secret_value",
            "GetSecretValueRequest",
            secret_name=name,
            version_stage="ACSPrevious",
        )
        assert previous["SecretData"] == "db-password"
        # Its grant covers secrets, not the key itself.
        code = refusal(
            session, "advance_encrypt", "AdvanceEncryptRequest", key_id=key_id, plaintext=b64(b"x")
        )
        assert code == ("Forbidden.NoPermission", 403)
    # A key user may not read secrets; and no access point reads another path's secrets.
    assert refusal(sdk, "get_secret_value", "GetSecretValueRequest", secret_name=name) == (
        "Forbidden.NoPermission",
        403,
    )
    other = f"other/{uuid.uuid4().hex[:8]}"
    kms.call("CreateSecret", SecretName=other, VersionId="v1", SecretData="x", EncryptionKeyId=key_id)
    with open_sdk(server, reader, folder) as session:
        assert refusal(session, "get_secret_value", "GetSecretValueRequest", secret_name=other) == (
            "Forbidden.NoPermission",
            403,
        )


def test_transfer_client_get_secret_value_goes_to_the_instance(
    server: LiveServer, kms: KmsCaller, instance_id: str, folder: Path, key_id: str
) -> None:
    name = f"inst/{uuid.uuid4().hex[:8]}"
    kms.call(
        "CreateSecret", SecretName=name, VersionId="v1", SecretData="via transfer", EncryptionKeyId=key_id
    )
    reader = make_app(kms, instance_id, folder, resources='["secret/*"]', permissions=(SECRET_USER,))
    with open_transfer(server, reader, folder) as session:
        got = openapi(session, "get_secret_value", "GetSecretValueRequest", secret_name=name)
        assert (got["SecretData"], got["VersionId"]) == ("via transfer", "v1")
    client_key_id = json.loads(reader.key_file.read_text())["KeyId"]
    reads = [
        record
        for path in sorted((server.data_dir / "audit").glob("*.jsonl"))
        for record in map(json.loads, path.read_text().splitlines())
        if record.get("action") == "GetSecretValue" and client_key_id in record.get("principal", "")
    ]
    assert reads and all(record["door"] == "instance" for record in reads)


# ---- data key pairs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "key_format"), [("RSA_2048", "PEM"), ("EC_P256", "DER")])
def test_data_key_pairs(sdk: DriverSession, key_id: str, spec: str, key_format: str) -> None:
    load_public = (
        serialization.load_pem_public_key if key_format == "PEM" else serialization.load_der_public_key
    )
    load_private = (
        serialization.load_pem_private_key if key_format == "PEM" else serialization.load_der_private_key
    )
    made, header = call(
        sdk,
        "generate_data_key_pair",
        "GenerateDataKeyPairRequest",
        key_id=key_id,
        algorithm="AES_GCM",
        key_pair_spec=spec,
        key_format=key_format,
        aad=b64(b"pair"),
    )
    private = load_private(raw(made["PrivateKeyPlaintext"]), password=None)
    public = load_public(raw(made["PublicKey"]))
    assert private.public_key().public_numbers() == public.public_numbers()  # type: ignore[union-attr]
    # Its sealed private key opens with Decrypt (version header, IV, ct || tag) and the same Aad.
    answer = sdk.ok(
        "call",
        method="decrypt",
        model="DecryptRequest",
        fields={"ciphertext_blob": made["PrivateKeyCiphertextBlob"], "iv": made["Iv"], "aad": b64(b"pair")},
        request_headers={"x-kms-migrationkeyversionid": header},
    )
    assert raw(answer["body"]["Plaintext"]) == raw(made["PrivateKeyPlaintext"])
    without, _ = call(
        sdk,
        "generate_data_key_pair_without_plaintext",
        "GenerateDataKeyPairWithoutPlaintextRequest",
        key_id=key_id,
        algorithm="AES_GCM",
        key_pair_spec=spec,
        key_format=key_format,
    )
    assert "PrivateKeyPlaintext" not in without and raw(without["PublicKey"])
    advance, _ = call(
        sdk,
        "advance_generate_data_key_pair",
        "AdvanceGenerateDataKeyPairRequest",
        key_id=key_id,
        key_pair_spec=spec,
        key_format=key_format,
        aad=b64(b"pair"),
    )
    opened, _ = call(
        sdk,
        "advance_decrypt",
        "AdvanceDecryptRequest",
        ciphertext_blob=advance["PrivateKeyCiphertextBlob"],
        aad=b64(b"pair"),
    )
    assert raw(opened["Plaintext"]) == raw(advance["PrivateKeyPlaintext"]) and advance["KeyVersionId"]
    sealed_only, _ = call(
        sdk,
        "advance_generate_data_key_pair_without_plaintext",
        "AdvanceGenerateDataKeyPairWithoutPlaintextRequest",
        key_id=key_id,
        key_pair_spec=spec,
        key_format=key_format,
    )
    opened, _ = call(
        sdk,
        "advance_decrypt",
        "AdvanceDecryptRequest",
        ciphertext_blob=sealed_only["PrivateKeyCiphertextBlob"],
    )
    load_private(raw(opened["Plaintext"]), password=None)
    assert refusal(
        sdk,
        "generate_data_key_pair",
        "GenerateDataKeyPairRequest",
        key_id=key_id,
        key_pair_spec="EC_SM2",
        key_format="PEM",
    ) == ("InvalidParameter", 400)


# ---- the unified SDK's Client, and a TransferClient with the instance only ----------------------------


def test_unified_client_instance_methods_and_openapi_wrappers(
    server: LiveServer, app: App, folder: Path, kms: KmsCaller, instance_id: str
) -> None:
    """`alibabacloud_kms_kms20160120.client.Client`: dkms-gcs's methods go to the instance API, its
    2016-01-20 wrappers (create_key, describe_key, ...) to OpenAPI."""
    with DriverSession(DRIVER, folder / f"unified-{uuid.uuid4().hex[:6]}", {}) as session:
        session.ok(
            "unified",
            openapi={
                "access_key_id": ACCESS_KEY_ID,
                "access_key_secret": ACCESS_KEY_SECRET,
                "endpoint": server.endpoint,
                "protocol": "https",
                "region_id": "cn-hangzhou",
            },
            instance={
                "protocol": "https",
                "endpoint": server.endpoint,
                "client_key_file": str(app.key_file),
                "password": PASSWORD,
            },
            ca=str(server.tls_ca),
        )
        made = session.ok(
            "unified_call", method="create_key", model="CreateKeyRequest", shape="openapi",
            fields={"dkmsinstance_id": instance_id},
        )  # fmt: skip
        key_id = made["KeyMetadata"]["KeyId"]
        sealed = session.ok(
            "unified_call", method="advance_encrypt", model="AdvanceEncryptRequest", shape="instance",
            fields={"key_id": key_id, "plaintext": b64(b"unified"), "aad": b64(b"u")},
        )  # fmt: skip
        opened = session.ok(
            "unified_call", method="advance_decrypt", model="AdvanceDecryptRequest", shape="instance",
            fields={"ciphertext_blob": sealed["CiphertextBlob"], "aad": b64(b"u")},
        )  # fmt: skip
        assert raw(opened["Plaintext"]) == b"unified"
        described = session.ok(
            "unified_call", method="describe_key", model="DescribeKeyRequest", shape="openapi",
            fields={"key_id": key_id},
        )  # fmt: skip
        assert described["KeyMetadata"]["KeyId"] == key_id
    assert kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"


def test_transfer_client_with_the_instance_only(
    server: LiveServer, app: App, folder: Path, key_id: str
) -> None:
    """With `kms_config` alone, the handled actions go to the instance API (the rest has no OpenAPI
    credentials: the SDK's own failure, not OpenKMS's)."""
    with DriverSession(DRIVER, folder / f"transfer-only-{uuid.uuid4().hex[:6]}", {}) as session:
        session.ok(
            "transfer",
            openapi=None,
            instance={
                "protocol": "https",
                "endpoint": server.endpoint,
                "client_key_file": str(app.key_file),
                "password": PASSWORD,
            },
            ca=str(server.tls_ca),
        )
        sealed = openapi(session, "encrypt", "EncryptRequest", key_id=key_id, plaintext="instance only")
        opened = openapi(session, "decrypt", "DecryptRequest", ciphertext_blob=sealed["CiphertextBlob"])
        assert opened["Plaintext"] == "instance only"
        refused = session.error(
            "openapi", method="describe_key", model="DescribeKeyRequest", fields={"key_id": key_id}
        )
        assert refused["status"] is None  # refused by the SDK itself: no OpenAPI credentials
