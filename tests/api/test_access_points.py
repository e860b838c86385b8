"""Application access through the official SDK against a live server: network rules, permission
policies, application access points and client keys (issue 18, items 1-2), their validation and
errors, the client key file, the public half only in the store, and GetKmsInstance's CA."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.support.products import Caller
from tests.support.sdk import KmsCaller, KmsError
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

KEY_USER = "RbacPermission/Template/CryptoServiceKeyUser"
PASSWORD = "Client-key-pass1"


@pytest.fixture
def api(server: LiveServer) -> KmsCaller:
    return KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)


def openkms(server: LiveServer, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """An `openkms` command on the server's store (as its operator would run it on that machine)."""
    store = ["--data-dir", str(server.data_dir)]
    if server.database_url:
        store += ["--database-url", server.database_url]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "openkms.cli", *args, *store],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def refused(call: object, *args: object, **params: object) -> KmsError:
    assert callable(call)
    with pytest.raises(KmsError) as caught:
        call(*args, **params)
    return caught.value


def make_access_point(api: KmsCaller, instance_id: str) -> tuple[str, str, str]:
    rule, policy, point = unique("net"), unique("policy"), unique("aap")
    api.call("CreateNetworkRule", Name=rule, Type="Private", SourcePrivateIp='["10.0.0.0/8","127.0.0.1"]')
    api.call(
        "CreatePolicy",
        Name=policy,
        KmsInstance=instance_id,
        Permissions=json.dumps([KEY_USER]),
        Resources='["key/*"]',
        AccessControlRules=json.dumps({"NetworkRules": [rule]}),
    )
    api.call("CreateApplicationAccessPoint", Name=point, Policies=json.dumps([policy]))
    return rule, policy, point


def test_network_rule_lifecycle(api: KmsCaller, account_id: str) -> None:
    name = unique("net")
    created = api.call(
        "CreateNetworkRule",
        Name=name,
        Type="Private",
        SourcePrivateIp='["192.168.0.0/16","10.1.2.3"]',
        Description="office",
    )
    assert created["Arn"] == f"acs:kms:cn-hangzhou:{account_id}:network/{name}"
    assert (created["Name"], created["Type"], created["Description"]) == (name, "Private", "office")
    assert json.loads(created["SourcePrivateIp"]) == ["192.168.0.0/16", "10.1.2.3"]
    described = api.call("DescribeNetworkRule", Name=name)
    assert described["Arn"] == created["Arn"] and described["SourcePrivateIp"] == created["SourcePrivateIp"]

    api.call("UpdateNetworkRule", Name=name, SourcePrivateIp="172.16.0.0/12, 127.0.0.1")
    changed = api.call("DescribeNetworkRule", Name=name)
    assert json.loads(changed["SourcePrivateIp"]) == ["172.16.0.0/12", "127.0.0.1"]
    assert changed["Description"] == "office"

    listed = api.call("ListNetworkRules", PageSize=100)
    assert {"Name": name, "Type": "Private"} in listed["NetworkRules"]["NetworkRule"]
    assert listed["PageSize"] == 100 and listed["TotalCount"] >= 1

    api.call("DeleteNetworkRule", Name=name)
    missing = refused(api.call, "DescribeNetworkRule", Name=name)
    assert (missing.status, missing.code) == (404, "Forbidden.ResourceNotFound")


def test_policy_lifecycle_and_the_sdk_field_types(api: KmsCaller, account_id: str, instance_id: str) -> None:
    rule = unique("net")
    api.call("CreateNetworkRule", Name=rule, Type="Private", SourcePrivateIp="127.0.0.1")
    name = unique("policy")
    created = api.call(
        "CreatePolicy",
        Name=name,
        KmsInstance=instance_id,
        Permissions=json.dumps([KEY_USER]),
        Resources='["key/*","secret/*"]',
        AccessControlRules=json.dumps({"NetworkRules": [rule]}),
        Description="apps",
    )
    assert created["Arn"] == f"acs:kms:cn-hangzhou:{account_id}:policy/{name}"
    assert created["KmsInstance"] == instance_id and created["Description"] == "apps"
    assert json.loads(created["Permissions"]) == [KEY_USER]  # the SDK model says string
    assert json.loads(created["AccessControlRules"]) == {"NetworkRules": [rule]}

    described = api.call("DescribePolicy", Name=name)
    assert described["Permissions"] == [KEY_USER]  # the SDK model says List[str]
    assert described["Resources"] == ["key/*", "secret/*"]

    api.call(
        "UpdatePolicy", Name=name, Resources='["key/key-hzz0123"]', AccessControlRules='{"NetworkRules":[]}'
    )
    changed = api.call("DescribePolicy", Name=name)
    assert changed["Resources"] == ["key/key-hzz0123"] and changed["Permissions"] == [KEY_USER]
    assert json.loads(changed["AccessControlRules"]) == {"NetworkRules": []}

    assert {"Name": name} in api.call("ListPolicies", PageSize=100)["Policies"]["Policy"]
    api.call("DeletePolicy", Name=name)
    assert refused(api.call, "DescribePolicy", Name=name).code == "Forbidden.ResourceNotFound"


def test_access_point_lifecycle(api: KmsCaller, account_id: str, instance_id: str) -> None:
    _, policy, name = make_access_point(api, instance_id)
    described = api.call("DescribeApplicationAccessPoint", Name=name)
    assert described["Arn"] == f"acs:kms:cn-hangzhou:{account_id}:applicationaccesspoint/{name}"
    assert described["AuthenticationMethod"] == "ClientKey"
    assert json.loads(described["Policies"]) == [policy]
    listed = api.call("ListApplicationAccessPoints", PageSize=100)["ApplicationAccessPoints"]
    assert {"Name": name, "AuthenticationMethod": "ClientKey"} in listed["ApplicationAccessPoint"]

    other = unique("policy")
    api.call("CreatePolicy", Name=other, KmsInstance=instance_id, Permissions=KEY_USER, Resources="key/*")
    api.call(
        "UpdateApplicationAccessPoint", Name=name, Policies=json.dumps([policy, other]), Description="two"
    )
    changed = api.call("DescribeApplicationAccessPoint", Name=name)
    assert json.loads(changed["Policies"]) == [policy, other] and changed["Description"] == "two"

    key_id = api.call("CreateClientKey", AapName=name, Password=PASSWORD)["ClientKeyId"]
    api.call("DeleteApplicationAccessPoint", Name=name)
    assert refused(api.call, "DescribeApplicationAccessPoint", Name=name).status == 404
    # Its client keys went with it.
    assert refused(api.call, "GetClientKey", ClientKeyId=key_id).code == "Forbidden.ResourceNotFound"


def test_client_key_is_a_password_protected_pkcs12_and_only_its_public_half_is_kept(
    api: KmsCaller, server: LiveServer, instance_id: str
) -> None:
    _, _, point = make_access_point(api, instance_id)
    created = api.call("CreateClientKey", AapName=point, Password=PASSWORD)
    key_id = created["ClientKeyId"]
    assert key_id.startswith("KAAP.") and uuid.UUID(key_id[5:])
    assert created["KeyAlgorithm"] == "RSA_2048"
    assert created["NotBefore"].endswith("Z") and created["NotAfter"].endswith("Z")
    assert int(created["NotAfter"][:4]) - int(created["NotBefore"][:4]) == 5  # five years by default

    bundle = base64.b64decode(created["PrivateKeyData"])
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(bundle, b"wrong-password-1")
    private_key, certificate, _ = pkcs12.load_key_and_certificates(bundle, PASSWORD.encode())
    assert isinstance(private_key, rsa.RSAPrivateKey) and private_key.key_size == 2048
    assert certificate is not None
    assert certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == key_id

    got = api.call("GetClientKey", ClientKeyId=key_id)
    assert (got["AapName"], got["KeyOrigin"], got["KeyAlgorithm"]) == (point, "KMS_PROVIDED", "RSA_2048")
    assert (got["NotBefore"], got["NotAfter"]) == (created["NotBefore"], created["NotAfter"])
    assert "PrivateKeyData" not in got
    public_key = serialization.load_pem_public_key(got["PublicKeyData"].encode())
    assert isinstance(public_key, rsa.RSAPublicKey)
    # The stored public key is the private key's: what the instance endpoint will verify with.
    message = b"POST\n...string to sign"
    signature = private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())

    listed = api.call("ListClientKeys", AapName=point)["ClientKeys"]
    assert [key["ClientKeyId"] for key in listed] == [key_id]
    assert listed[0]["PublicKeyData"] == got["PublicKeyData"]

    secrets = [
        private_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
        private_key.private_numbers().d.to_bytes(256, "big"),
        private_key.private_numbers().p.to_bytes(128, "big"),
        bundle,
        PASSWORD.encode(),
    ]
    assert not _stored_anywhere(server, secrets)
    audit = "".join(path.read_text() for path in sorted((server.data_dir / "audit").glob("*.jsonl")))
    assert key_id in audit and created["PrivateKeyData"][:64] not in audit and PASSWORD not in audit

    api.call("DeleteClientKey", ClientKeyId=key_id)
    assert api.call("ListClientKeys", AapName=point)["ClientKeys"] == []


def _stored_anywhere(server: LiveServer, secrets: list[bytes]) -> list[str]:
    """Which of `secrets` appear in any value of any table (and, on SQLite, anywhere in its files)."""
    url = server.database_url or f"sqlite:///{server.data_dir / 'openkms.db'}"
    engine = sa.create_engine(url)
    found: list[str] = []
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        with engine.connect() as connection:
            for table in meta.sorted_tables:
                for row in connection.execute(sa.select(table)):
                    for value in row:
                        data = value if isinstance(value, bytes) else str(value).encode()
                        found += [f"{table.name}" for secret in secrets if secret in data]
    finally:
        engine.dispose()
    if server.database_url is None:
        for path in server.data_dir.glob("openkms.db*"):
            data = path.read_bytes()
            found += [path.name for secret in secrets if secret in data]
    return found


def test_client_key_validity_is_checked_and_given_times_are_kept(api: KmsCaller, instance_id: str) -> None:
    _, _, point = make_access_point(api, instance_id)
    made = api.call(
        "CreateClientKey",
        AapName=point,
        Password=PASSWORD,
        NotBefore="2026-01-01T00:00:00Z",
        NotAfter="2036-01-01T00:00:00Z",
    )
    assert (made["NotBefore"], made["NotAfter"]) == ("2026-01-01T00:00:00Z", "2036-01-01T00:00:00Z")
    for params, parameter in (
        ({"NotBefore": "2026-01-01T00:00:00Z"}, "NotAfter"),
        ({"NotBefore": "2030-01-01T00:00:00Z", "NotAfter": "2029-01-01T00:00:00Z"}, "NotAfter"),
        ({"NotBefore": "2026-01-01", "NotAfter": "2036-01-01T00:00:00Z"}, "NotBefore"),
    ):
        error = refused(api.call, "CreateClientKey", AapName=point, Password=PASSWORD, **params)
        assert (error.status, error.code) == (400, "InvalidParameter") and parameter in error.message
    for password in ("short1A", "onlyletterslong", "has space 123", "x" * 65 + "1"):
        error = refused(api.call, "CreateClientKey", AapName=point, Password=password)
        assert (error.code, "Password" in error.message) == ("InvalidParameter", True)
    error = refused(api.call, "CreateClientKey", AapName=unique("nothing"), Password=PASSWORD)
    assert (error.status, error.code) == (404, "Forbidden.ResourceNotFound")
    assert refused(api.call, "CreateClientKey", AapName=point).code in ("MissingPassword", "MissingParameter")


def test_refusals_change_nothing(api: KmsCaller, instance_id: str) -> None:
    rule, policy, point = make_access_point(api, instance_id)
    cases = [
        ("CreateNetworkRule", {"Name": unique("n"), "Type": "Public", "SourcePrivateIp": "10.0.0.1"}, "Type"),
        (
            "CreateNetworkRule",
            {"Name": unique("n"), "Type": "Private", "SourcePrivateIp": "10.0.0.300"},
            "SourcePrivateIp",
        ),
        ("CreateNetworkRule", {"Name": "bad name!", "Type": "Private"}, "Name"),
        (
            "CreatePolicy",
            {"Name": unique("p"), "KmsInstance": instance_id, "Permissions": "Admin", "Resources": "key/*"},
            "Permissions",
        ),
        (
            "CreatePolicy",
            {"Name": unique("p"), "KmsInstance": instance_id, "Permissions": KEY_USER, "Resources": "keys/*"},
            "Resources",
        ),
        (
            "CreatePolicy",
            {
                "Name": unique("p"),
                "KmsInstance": "kst-hzzdoesnotexist",
                "Permissions": KEY_USER,
                "Resources": "key/*",
            },
            "KmsInstance",
        ),
        ("CreatePolicy", {"Name": unique("p"), "Permissions": KEY_USER, "Resources": "key/*"}, "KmsInstance"),
        (
            "CreatePolicy",
            {
                "Name": unique("p"),
                "KmsInstance": instance_id,
                "Permissions": KEY_USER,
                "Resources": "key/*",
                "AccessControlRules": '{"NetworkRules":["no-such-rule"]}',
            },
            "AccessControlRules",
        ),
        (
            "CreatePolicy",
            {
                "Name": unique("p"),
                "KmsInstance": instance_id,
                "Permissions": KEY_USER,
                "Resources": "key/*",
                "AccessControlRules": "[1]",
            },
            "AccessControlRules",
        ),
        ("CreateApplicationAccessPoint", {"Name": unique("a"), "Policies": '["no-such-policy"]'}, "Policies"),
        (
            "CreateApplicationAccessPoint",
            {"Name": unique("a"), "Policies": json.dumps([policy] * 2)},
            "Policies",
        ),
        (
            "CreateApplicationAccessPoint",
            {"Name": unique("a"), "Policies": json.dumps([policy]), "AuthenticationMethod": "Password"},
            "AuthenticationMethod",
        ),
        ("UpdateApplicationAccessPoint", {"Name": point, "Policies": '["a","b","c","d"]'}, "Policies"),
    ]
    for action, params, parameter in cases:
        error = refused(api.call, action, **params)
        assert (error.status, error.code) == (400, "InvalidParameter"), (action, params, error)
        assert parameter in error.message, (action, error.message)
    names = {
        item["Name"]
        for item in api.call("ListApplicationAccessPoints", PageSize=100)["ApplicationAccessPoints"][
            "ApplicationAccessPoint"
        ]
    }
    assert not any(name.startswith("a_") for name in names)
    assert json.loads(api.call("DescribeApplicationAccessPoint", Name=point)["Policies"]) == [policy]

    taken = refused(api.call, "CreateNetworkRule", Name=rule, Type="Private", SourcePrivateIp="10.9.9.9")
    assert (taken.status, taken.code) == (400, "Rejected.ResourceExist")
    assert json.loads(api.call("DescribeNetworkRule", Name=rule)["SourcePrivateIp"]) == [
        "10.0.0.0/8",
        "127.0.0.1",
    ]
    assert refused(api.call, "DeletePolicy", Name=unique("none")).code == "Forbidden.ResourceNotFound"


def test_a_ram_user_needs_the_actions_in_its_policies(
    api: KmsCaller, server: LiveServer, instance_id: str
) -> None:
    ram = Caller("ram", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    user = unique("aapuser").replace("_", "-")
    ram.call("CreateUser", UserName=user)
    keys = ram.call("CreateAccessKey", UserName=user)["AccessKey"]
    as_user = KmsCaller("tea-acs3", server.endpoint, keys["AccessKeyId"], keys["AccessKeySecret"])
    denied = refused(
        as_user.call, "CreateNetworkRule", Name=unique("n"), Type="Private", SourcePrivateIp="10.0.0.1"
    )
    assert (denied.status, denied.code) == (403, "Forbidden.NoPermission")
    policy = unique("aapadmin").replace("_", "-")
    document = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": ["kms:*NetworkRule*"], "Resource": ["*"]}],
    }
    ram.call("CreatePolicy", PolicyName=policy, PolicyDocument=json.dumps(document))
    ram.call("AttachPolicyToUser", PolicyName=policy, PolicyType="Custom", UserName=user)
    name = unique("n")
    as_user.call("CreateNetworkRule", Name=name, Type="Private", SourcePrivateIp="10.0.0.1")
    assert as_user.call("DescribeNetworkRule", Name=name)["Type"] == "Private"
    refusal = refused(as_user.call, "CreateApplicationAccessPoint", Name=unique("a"), Policies='["x"]')
    assert refusal.code == "Forbidden.NoPermission"


def test_get_kms_instance_answers_the_deployment_ca(
    api: KmsCaller, server: LiveServer, instance_id: str
) -> None:
    pem = api.call("GetKmsInstance", KmsInstanceId=instance_id)["KmsInstance"]["CaCertificateChainPem"]
    ca = x509.load_pem_x509_certificate(pem.encode())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert ca.subject == ca.issuer
    assert "PRIVATE KEY" not in pem
    out = server.data_dir.parent / f"ca-{uuid.uuid4().hex[:6]}.pem"
    openkms(server, "instance", "ca", "--out", str(out))
    assert Path(out).read_text() == pem


def test_openkms_aap_create_writes_the_client_key_file_and_its_password(
    api: KmsCaller, server: LiveServer, instance_id: str, tmp_path: Path
) -> None:
    name = unique("cliaap")
    done = openkms(
        server,
        "aap",
        "create",
        name,
        "--instance",
        instance_id,
        "--source",
        "127.0.0.1,10.0.0.0/8",
        "--out-dir",
        str(tmp_path),
    )
    written = json.loads(done.stdout)
    key_file, password_file = Path(written["ClientKeyFile"]), Path(written["PasswordFile"])
    for path in (key_file, password_file):
        assert path.stat().st_mode & 0o777 == 0o600
    content = json.loads(key_file.read_text())
    assert set(content) == {"KeyId", "PrivateKeyData"} and content["KeyId"].startswith("KAAP.")
    assert key_file.name == f"clientKey_{content['KeyId']}.json"
    assert password_file.name == f"clientKey_{content['KeyId']}_Password.txt"
    password = password_file.read_text()
    assert password not in done.stdout + done.stderr
    private_key, _, _ = pkcs12.load_key_and_certificates(
        base64.b64decode(content["PrivateKeyData"]), password.encode()
    )
    assert isinstance(private_key, rsa.RSAPrivateKey)

    got = api.call("GetClientKey", ClientKeyId=content["KeyId"])
    assert got["AapName"] == name
    public_key = serialization.load_pem_public_key(got["PublicKeyData"].encode())
    assert public_key.public_numbers() == private_key.public_key().public_numbers()  # type: ignore[union-attr]
    policy = api.call("DescribePolicy", Name=f"{name}-policy")
    assert policy["KmsInstance"] == instance_id and policy["Permissions"] == [KEY_USER]
    assert policy["Resources"] == ["key/*"]
    assert json.loads(policy["AccessControlRules"]) == {"NetworkRules": [f"{name}-network"]}
    rule = api.call("DescribeNetworkRule", Name=f"{name}-network")
    assert json.loads(rule["SourcePrivateIp"]) == ["127.0.0.1", "10.0.0.0/8"]

    audit = "".join(path.read_text() for path in sorted((server.data_dir / "audit").glob("*.jsonl")))
    assert '"door":"cli"' in audit.replace(" ", "") and content["PrivateKeyData"][:64] not in audit

    again = openkms(
        server,
        "aap",
        "client-key",
        name,
        "--out-dir",
        str(tmp_path),
        "--password-stdin",
        stdin="Own-passw0rd\n",
    )
    second = json.loads(Path(json.loads(again.stdout)["ClientKeyFile"]).read_text())
    assert second["KeyId"] != content["KeyId"]
    listed = json.loads(openkms(server, "aap", "list").stdout)
    mine = next(item for item in listed if item["Name"] == name)
    assert {key["ClientKeyId"] for key in mine["ClientKeys"]} == {content["KeyId"], second["KeyId"]}
    openkms(server, "aap", "delete", name)
    assert api.call("ListClientKeys", AapName=name)["ClientKeys"] == []
