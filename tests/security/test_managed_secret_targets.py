"""Where an OpenKMS.PostgreSQL secret may point, and who may point it at a master secret (from a
security review of issue 19): only hosts the operator admits (`managed_secret_hosts`); only a caller
who may read the master secret itself may bind a secret to it (the rotation job later signs in with
it for the account); libpq never hands a password to a server that asks for it in clear; a secret
policy given at creation is a SetSecretPolicy; BatchGetSecretValue records every secret it read."""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from openkms.domain.secret_rotation import Credentials, PostgresTarget
from openkms.errors import RotationFailed
from openkms.secret import SecretBytes
from openkms.service.postgres_roles import PostgresRoles
from tests.api.test_identities import new_user, unique
from tests.api.test_secrets_deletion import _records
from tests.api.test_secrets_rotation import config, create_pg_secret, credentials, refused
from tests.support.postgres_roles import ScratchRole, scram_matches, scratch_role, verifier
from tests.support.products import Caller
from tests.support.sdk import KmsCaller
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer


@pytest.fixture
def owner(server: LiveServer) -> KmsCaller:
    return KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)


@pytest.fixture
def role() -> Iterator[ScratchRole]:
    with scratch_role() as made:
        yield made


def user_with(server: LiveServer, ram: Caller, *statements: dict[str, object]) -> KmsCaller:
    user, key, secret = new_user(ram)
    policy = unique("policy")
    ram.call(
        "CreatePolicy",
        PolicyName=policy,
        PolicyDocument=json.dumps({"Version": "1", "Statement": statements}),
    )
    ram.call("AttachPolicyToUser", UserName=user, PolicyType="Custom", PolicyName=policy)
    return KmsCaller("tea-acs3", server.endpoint, key, secret)


def test_only_who_may_read_a_master_secret_binds_a_secret_to_it(
    server: LiveServer, owner: KmsCaller, ram: Caller, account_id: str, role: ScratchRole
) -> None:
    with scratch_role(createrole=True, database=False) as admin:
        master = unique("admin/master")
        owner.call(
            "CreateSecret",
            SecretName=master,
            VersionId="v1",
            SecretData=credentials(admin.role, admin.password),
        )
        everything_but_the_master = user_with(
            server,
            ram,
            {"Effect": "Allow", "Action": ["kms:*"], "Resource": ["*"]},
            {
                "Effect": "Deny",
                "Action": ["kms:GetSecretValue"],
                "Resource": [f"acs:kms:cn-hangzhou:{account_id}:secret/admin/*"],
            },
        )
        refused(
            lambda: everything_but_the_master.call("GetSecretValue", SecretName=master),
            "Forbidden.NoPermission",
            403,
        )
        bound = unique("dev/bound")
        refused(
            lambda: create_pg_secret(
                everything_but_the_master,
                role,
                bound,
                config(role, MasterSecretName=master),
                EnableAutomaticRotation=True,
                RotationInterval="6h",
            ),
            "Forbidden.NoPermission",
            403,
        )
        refused(lambda: owner.call("DescribeSecret", SecretName=bound), "Forbidden.ResourceNotFound", 404)
        # Made by the owner without rotation, it may not be switched on by that user either.
        create_pg_secret(owner, role, bound, config(role, MasterSecretName=master))
        refused(
            lambda: everything_but_the_master.call(
                "UpdateSecretRotationPolicy",
                SecretName=bound,
                EnableAutomaticRotation=True,
                RotationInterval="6h",
            ),
            "Forbidden.NoPermission",
            403,
        )
        assert owner.call("DescribeSecret", SecretName=bound)["AutomaticRotation"] == "Disabled"
        refused(
            lambda: everything_but_the_master.call("RotateSecret", SecretName=bound, VersionId="v2"),
            "Forbidden.NoPermission",
            403,
        )
        assert scram_matches(verifier(role.role), role.password)
        listed = owner.call("ListSecretVersionIds", SecretName=bound, IncludeDeprecated="true")
        assert [v["VersionId"] for v in listed["VersionIds"]["VersionId"]] == ["v1"]  # nothing staged
        # The owner, who reads the master, may.
        owner.call(
            "UpdateSecretRotationPolicy",
            SecretName=bound,
            EnableAutomaticRotation=True,
            RotationInterval="6h",
        )
        # A master whose value is not credentials is refused at once.
        plain = unique("admin/plain")
        owner.call("CreateSecret", SecretName=plain, VersionId="v1", SecretData="not credentials")
        refused(
            lambda: create_pg_secret(owner, role, unique("dev/other"), config(role, MasterSecretName=plain)),
            "InvalidParameter",
            400,
        )


@pytest.mark.parametrize(
    "host",
    [
        "/var/run/postgresql",
        "127.0.0.1,169.254.169.254",
        "user@127.0.0.1",
        "10.9.8.7",
        "db.elsewhere.example",
    ],
)
def test_a_host_the_operator_does_not_admit_is_refused(
    owner: KmsCaller, role: ScratchRole, host: str
) -> None:
    refused(
        lambda: create_pg_secret(owner, role, unique("pg"), {**config(role), "Host": host}),
        "InvalidParameter",
        400,
    )


def test_a_connection_string_as_dbname_is_refused(owner: KmsCaller, role: ScratchRole) -> None:
    refused(
        lambda: create_pg_secret(
            owner, role, unique("pg"), config(role, DBName="host=10.9.8.7 dbname=postgres")
        ),
        "InvalidParameter",
        400,
    )


def test_managed_secrets_are_off_until_the_operator_lists_hosts(tmp_path: Path, role: ScratchRole) -> None:
    live = LiveServer(tmp_path / "data", extra_env={"OPENKMS_MANAGED_SECRET_HOSTS": ""}).start()
    try:
        kms = KmsCaller("tea-acs3", live.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        refused(
            lambda: create_pg_secret(kms, role, "pg"),
            "UnsupportedOperation",
            400,
        )
        kms.call("CreateSecret", SecretName="generic", VersionId="v1", SecretData="still fine")
    finally:
        live.stop()


def test_a_password_is_never_sent_to_a_server_that_asks_for_it_in_clear() -> None:
    """A listener that answers libpq's startup with AuthenticationCleartextPassword: libpq, told to
    accept SCRAM or nothing, hangs up instead of sending the password."""
    received: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        for _ in range(2):  # one login, then the next
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(5)
                chunks = b""
                try:
                    length = struct.unpack("!I", conn.recv(4))[0]
                    startup = conn.recv(length - 4)
                    if struct.unpack("!I", startup[:4])[0] == 80877103:  # SSLRequest: no
                        conn.sendall(b"N")
                        length = struct.unpack("!I", conn.recv(4))[0]
                        conn.recv(length - 4)
                    conn.sendall(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
                    while chunk := conn.recv(4096):
                        chunks += chunk
                except OSError:
                    pass
                received.append(chunks)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    roles = PostgresRoles(["127.0.0.1"], connect_timeout=5)
    target = PostgresTarget("127.0.0.1", port, "postgres", "victim")
    logins = [
        Credentials("dbadmin", SecretBytes(b"MASTER-pw-1")),
        Credentials("victim", SecretBytes(b"own-pw-2")),
    ]
    with pytest.raises(RotationFailed):
        roles.set_password(target, logins, SecretBytes(b"N3w-password"))
    thread.join(10)
    listener.close()
    assert len(received) == 2
    assert not any(secret in chunk for chunk in received for secret in (b"MASTER-pw-1", b"own-pw-2", b"N3w"))


def test_rotation_refuses_a_host_the_operator_no_longer_admits() -> None:
    roles = PostgresRoles(["10.0.0.0/8"])
    with pytest.raises(RotationFailed) as caught:
        roles.set_password(
            PostgresTarget("127.0.0.1", 5432, "postgres", "victim"),
            [Credentials("victim", SecretBytes(b"pw"))],
            SecretBytes(b"new"),
        )
    assert "managed_secret_hosts" in caught.value.message


def test_a_policy_given_at_creation_needs_set_secret_policy(
    server: LiveServer, ram: Caller, account_id: str
) -> None:
    creator = user_with(
        server,
        ram,
        {"Effect": "Allow", "Action": ["kms:CreateSecret", "kms:GenerateDataKey"], "Resource": ["*"]},
    )
    shared = json.dumps(
        {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"RAM": ["acs:ram::1999999999999999:*"]},
                    "Action": ["kms:GetSecretValue"],
                    "Resource": ["*"],
                }
            ],
        }
    )
    name = unique("shared")
    refused(
        lambda: creator.call("CreateSecret", SecretName=name, VersionId="v1", SecretData="x", Policy=shared),
        "Forbidden.NoPermission",
        403,
    )
    creator.call("CreateSecret", SecretName=name, VersionId="v1", SecretData="x")


def test_batch_get_secret_value_records_each_secret(server: LiveServer, owner: KmsCaller) -> None:
    names = [unique("batch"), unique("batch")]
    for name in names:
        owner.call("CreateSecret", SecretName=name, VersionId="v1", SecretData=f"value of {name}")
    missing = unique("missing")
    listed = [{"SecretName": name} for name in (*names, missing)]
    answer = owner.call("BatchGetSecretValue", SecretsList=listed)
    mine: Callable[[dict[str, object]], bool] = lambda record: record.get("request_id") == answer["RequestId"]  # noqa: E731
    records = [record for record in _records(server) if mine(record)]
    assert [record["result"] for record in records] == [
        "Success",
        "Success",
        "Success",
        "Forbidden.ResourceNotFound",
    ]
    for name, record in zip(names, records[1:3], strict=True):
        assert str(record["resource"]).endswith(f":secret/{name}") and record["key_id"]
    assert all("value of" not in json.dumps(record) for record in records)
