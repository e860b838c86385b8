"""Rotation through the official SDK against a live server and the real PostgreSQL: RotateSecret and
UpdateSecretRotationPolicy refused for Generic secrets, and the OpenKMS.PostgreSQL managed secret
(an OpenKMS extension) rotated on RotateSecret, as a master secret's admin, and on schedule under the
dev clock. Each test makes a scratch role (and database) and drops it; the password on the database
is checked against the role's SCRAM verifier (the development server trusts 127.0.0.1)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.test_dev_clock import _advance, _eventually
from tests.api.test_secrets_deletion import _records
from tests.conftest import new_postgres_database
from tests.support.postgres_roles import ScratchRole, scram_matches, scratch_role, verifier
from tests.support.sdk import KmsCaller, KmsError
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

PG = "OpenKMS.PostgreSQL"


def unique(prefix: str = "pg") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def sdk(server: LiveServer) -> KmsCaller:
    return KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)


@pytest.fixture
def role() -> Iterator[ScratchRole]:
    with scratch_role() as made:
        yield made


def refused(call: object, code: str, status: int) -> KmsError:
    assert callable(call)
    with pytest.raises(KmsError) as caught:
        call()
    assert (caught.value.code, caught.value.status) == (code, status), caught.value.message
    return caught.value


def config(role: ScratchRole, **more: object) -> dict[str, object]:
    return {"Host": "127.0.0.1", "Port": 5432, "DBName": role.database, "AccountName": role.role, **more}


def credentials(role: str, password: str) -> str:
    return json.dumps({"AccountName": role, "AccountPassword": password})


def create_pg_secret(
    kms: KmsCaller, role: ScratchRole, name: str, target: dict[str, object] | None = None, **more: object
) -> dict[str, object]:
    """CreateSecret of an OpenKMS.PostgreSQL secret for `role` (ExtendedConfig `target`, else the
    role's own on the development PostgreSQL)."""
    return kms.call(
        "CreateSecret",
        SecretName=name,
        VersionId="v1",
        SecretType=PG,
        SecretData=credentials(role.role, role.password),
        ExtendedConfig=config(role) if target is None else target,
        **more,
    )


def value(kms: KmsCaller, name: str, **which: str) -> dict[str, object]:
    return kms.call("GetSecretValue", SecretName=name, **which)


def password(found: dict[str, object]) -> str:
    return str(json.loads(str(found["SecretData"]))["AccountPassword"])


def test_generic_secrets_refuse_rotation_actions(sdk: KmsCaller) -> None:
    name = unique("generic")
    sdk.call("CreateSecret", SecretName=name, VersionId="v1", SecretData="x")
    refused(lambda: sdk.call("RotateSecret", SecretName=name, VersionId="v2"), "UnsupportedOperation", 400)
    refused(
        lambda: sdk.call(
            "UpdateSecretRotationPolicy", SecretName=name, EnableAutomaticRotation=True, RotationInterval="7d"
        ),
        "UnsupportedOperation",
        400,
    )
    described = sdk.call("DescribeSecret", SecretName=name)
    assert "AutomaticRotation" not in described and "LastRotationDate" not in described
    refused(
        lambda: sdk.call("RotateSecret", SecretName=unique(), VersionId="v2"),
        "Forbidden.ResourceNotFound",
        404,
    )
    refused(
        lambda: sdk.call(
            "CreateSecret", SecretName=unique(), VersionId="v1", SecretData="x", SecretType="Rds"
        ),
        "UnsupportedOperation",
        400,
    )


def test_create_checks_the_postgres_secret(sdk: KmsCaller, role: ScratchRole) -> None:
    name = unique()

    def create(**changed: object) -> object:
        fields: dict[str, object] = {
            "SecretName": name,
            "VersionId": "v1",
            "SecretType": PG,
            "SecretData": credentials(role.role, role.password),
            "ExtendedConfig": config(role),
            **changed,
        }
        return sdk.call("CreateSecret", **fields)

    refused(lambda: create(ExtendedConfig=None), "InvalidParameter", 400)
    refused(lambda: create(ExtendedConfig={"Host": "127.0.0.1"}), "InvalidParameter", 400)
    refused(lambda: create(ExtendedConfig=config(role, Bogus=1)), "InvalidParameter", 400)
    refused(lambda: create(ExtendedConfig=config(role, Port=70000)), "InvalidParameter", 400)
    refused(lambda: create(SecretData="not json"), "InvalidParameter", 400)
    refused(lambda: create(SecretData=credentials("someone_else", "x")), "InvalidParameter", 400)
    refused(lambda: create(EnableAutomaticRotation=True), "MissingRotationInterval", 400)
    refused(lambda: create(EnableAutomaticRotation=True, RotationInterval="1h"), "InvalidParameter", 400)
    refused(lambda: create(EnableAutomaticRotation=True, RotationInterval="7x"), "InvalidParameter", 400)
    refused(lambda: sdk.call("DescribeSecret", SecretName=name), "Forbidden.ResourceNotFound", 404)
    made = create(EnableAutomaticRotation=True, RotationInterval="7d")
    assert isinstance(made, dict)
    assert made["SecretType"] == PG and made["AutomaticRotation"] == "Enabled"
    assert made["RotationInterval"] == "604800s" and "NextRotationDate" in made


def test_rotate_secret_sets_a_new_password_on_the_database(
    sdk: KmsCaller, role: ScratchRole, server: LiveServer
) -> None:
    name = unique()
    create_pg_secret(sdk, role, name)
    before = verifier(role.role)
    assert scram_matches(before, role.password)
    described = sdk.call("DescribeSecret", SecretName=name)
    assert described["SecretType"] == PG and described["AutomaticRotation"] == "Disabled"
    assert "LastRotationDate" not in described and "NextRotationDate" not in described
    # A managed secret's versions are made by its rotation only.
    refused(
        lambda: sdk.call("PutSecretValue", SecretName=name, VersionId="mine", SecretData="x"),
        "UnsupportedOperation",
        400,
    )
    refused(
        lambda: sdk.call(
            "UpdateSecretVersionStage", SecretName=name, VersionStage="custom", MoveToVersion="v1"
        ),
        "UnsupportedOperation",
        400,
    )

    rotated = sdk.call("RotateSecret", SecretName=name, VersionId="r2")
    assert rotated["VersionId"] == "r2" and rotated["SecretName"] == name
    assert str(rotated["Arn"]).endswith(f":secret/{name}")
    current = value(sdk, name)
    assert current["VersionId"] == "r2" and current["VersionStages"]["VersionStage"] == ["ACSCurrent"]
    new_password = password(current)
    assert new_password != role.password and len(new_password) == 32
    assert json.loads(str(current["SecretData"]))["AccountName"] == role.role
    previous = value(sdk, name, VersionStage="ACSPrevious")
    assert previous["VersionId"] == "v1" and password(previous) == role.password
    # The database holds the new password, not the old one.
    after = verifier(role.role)
    assert after != before
    assert scram_matches(after, new_password) and not scram_matches(after, role.password)
    described = sdk.call("DescribeSecret", SecretName=name)
    assert "LastRotationDate" in described and "NextRotationDate" not in described
    fetched = value(sdk, name, FetchExtendedConfig="true")
    assert json.loads(str(fetched["ExtendedConfig"]))["AccountName"] == role.role
    assert "LastRotationDate" in fetched

    # The same VersionId again: success, nothing changes (Alibaba's idempotence).
    sdk.call("RotateSecret", SecretName=name, VersionId="r2")
    assert password(value(sdk, name)) == new_password
    assert scram_matches(verifier(role.role), new_password)

    # A second rotation signs in with the password the first one set.
    sdk.call("RotateSecret", SecretName=name, VersionId="r3")
    third = password(value(sdk, name))
    assert scram_matches(verifier(role.role), third)
    assert password(value(sdk, name, VersionStage="ACSPrevious")) == new_password
    listed = sdk.call("ListSecretVersionIds", SecretName=name, IncludeDeprecated="true")
    stages = {v["VersionId"]: v["VersionStages"]["VersionStage"] for v in listed["VersionIds"]["VersionId"]}
    assert stages == {"v1": [], "r2": ["ACSPrevious"], "r3": ["ACSCurrent"]}
    # No password, old or new, in the server's log or the audit log.
    assert server.log_path is not None
    places = [server.log_path, *sorted((server.data_dir / "audit").glob("*.jsonl"))]
    for path in places:
        data = path.read_text(errors="replace")
        assert not any(p in data for p in (role.password, new_password, third)), path.name


def test_rotation_as_the_admin_of_a_master_secret(sdk: KmsCaller) -> None:
    with scratch_role(createrole=True, database=False) as admin, scratch_role() as app:
        master = unique("master")
        sdk.call(
            "CreateSecret",
            SecretName=master,
            VersionId="v1",
            SecretData=credentials(admin.role, admin.password),
        )
        name = unique()
        sdk.call(
            "CreateSecret",
            SecretName=name,
            VersionId="v1",
            SecretType=PG,
            SecretData=credentials(app.role, app.password),
            ExtendedConfig=config(app, MasterSecretName=master),
        )
        sdk.call("RotateSecret", SecretName=name, VersionId="v2")
        new_password = password(value(sdk, name))
        assert scram_matches(verifier(app.role), new_password)
        assert scram_matches(verifier(admin.role), admin.password)  # the admin's own is untouched


def test_an_unreachable_database_fails_the_rotation_and_keeps_the_password(
    sdk: KmsCaller, role: ScratchRole
) -> None:
    name = unique()
    sdk.call(
        "CreateSecret",
        SecretName=name,
        VersionId="v1",
        SecretType=PG,
        SecretData=credentials(role.role, role.password),
        ExtendedConfig=config(role, Port=1),  # nothing listens there
    )
    error = refused(
        lambda: sdk.call("RotateSecret", SecretName=name, VersionId="v2"), "Rejected.RotationFailed", 503
    )
    assert role.password not in error.message and "127.0.0.1:1" in error.message
    current = value(sdk, name)
    assert current["VersionId"] == "v1" and password(current) == role.password
    pending = value(sdk, name, VersionStage="ACSPending")
    assert pending["VersionId"] == "v2" and pending["VersionStages"]["VersionStage"] == ["ACSPending"]
    assert scram_matches(verifier(role.role), role.password)


@pytest.fixture(params=["sqlite", "postgres"])
def dev_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    url = new_postgres_database() if request.param == "postgres" else None
    live = LiveServer(
        tmp_path / "data",
        database_url=url,
        extra_env={"OPENKMS_JOB_INTERVAL_SECONDS": "0.2"},
        extra_args=["--dev-clock"],
    ).start()
    yield live
    live.stop()


def test_automatic_rotation_on_schedule(dev_server: LiveServer, role: ScratchRole) -> None:
    kms = KmsCaller("tea-acs3", dev_server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    create_pg_secret(kms, role, "scheduled", EnableAutomaticRotation=True, RotationInterval="2d")
    create_pg_secret(kms, role, "manual")  # same role, no schedule: never rotated by the job
    first = kms.call("DescribeSecret", SecretName="scheduled")
    assert first["AutomaticRotation"] == "Enabled" and first["RotationInterval"] == "172800s"
    assert "LastRotationDate" not in first
    assert _advance(dev_server, "1d").status_code == 200
    assert value(kms, "scheduled")["VersionId"] == "v1"  # not due for another day

    assert _advance(dev_server, "25h").status_code == 200

    def rotated() -> bool:
        return value(kms, "scheduled")["VersionId"] != "v1"

    _eventually(rotated)
    current = value(kms, "scheduled")
    assert scram_matches(verifier(role.role), password(current))
    assert password(value(kms, "scheduled", VersionStage="ACSPrevious")) == role.password
    described = kms.call("DescribeSecret", SecretName="scheduled")
    assert described["LastRotationDate"] < described["NextRotationDate"]
    assert value(kms, "manual")["VersionId"] == "v1"
    jobs = [r for r in _records(dev_server) if r["action"] == "RotateSecret" and r["door"] == "job"]
    assert len(jobs) == 1 and str(jobs[0]["resource"]).endswith(":secret/scheduled")
    assert str(jobs[0]["principal"]).endswith(":system/secret-rotation-job")

    # Turning the schedule off stops it; UpdateSecretRotationPolicy back on plans from the last one.
    kms.call("UpdateSecretRotationPolicy", SecretName="scheduled", EnableAutomaticRotation=False)
    off = kms.call("DescribeSecret", SecretName="scheduled")
    assert off["AutomaticRotation"] == "Disabled" and "NextRotationDate" not in off
    kms.call(
        "UpdateSecretRotationPolicy",
        SecretName="scheduled",
        EnableAutomaticRotation=True,
        RotationInterval="7d",
    )
    on = kms.call("DescribeSecret", SecretName="scheduled")
    assert on["RotationInterval"] == "604800s" and on["NextRotationDate"] > on["LastRotationDate"]
    refused(
        lambda: kms.call("UpdateSecretRotationPolicy", SecretName="scheduled", EnableAutomaticRotation=True),
        "MissingRotationInterval",
        400,
    )
