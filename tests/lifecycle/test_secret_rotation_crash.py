"""The crash window of a PostgreSQL secret's rotation (OpenKMS extension): a fault injected between
its steps never loses the working password, and the next RotateSecret or job step finishes the
rotation; a failed scheduled rotation waits an hour; the role's name is quoted and each sign-in tried
in turn. Real services on SQLite and PostgreSQL stores, a frozen clock and the real PostgreSQL
holding a scratch role (its password checked against its SCRAM verifier)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from openkms.domain.secret_rotation import Credentials, PostgresTarget
from openkms.domain.secrets import SecretDataType, SecretType
from openkms.errors import RotationFailed, SecretNotFound
from openkms.secret import SecretBytes
from openkms.service.context import Door, RequestContext, system_principal
from openkms.service.postgres_roles import PostgresRoles
from openkms.service.secret_versions import ValueRequest
from openkms.service.secrets import NewSecret
from tests.lifecycle.conftest import REGION, Stack
from tests.support.postgres_roles import ScratchRole, scram_matches, scratch_role, verifier


class Crash(Exception):
    """The process dies here (nothing after this step runs)."""


@pytest.fixture
def role() -> Iterator[ScratchRole]:
    with scratch_role() as made:
        yield made


def _create(stack: Stack, role: ScratchRole, automatic: bool = False, port: int = 5432) -> str:
    name = f"pg-{uuid.uuid4().hex[:8]}"
    value = json.dumps({"AccountName": role.role, "AccountPassword": role.password})
    config = {"Host": "127.0.0.1", "Port": port, "DBName": role.database, "AccountName": role.role}
    stack.services.secrets.create(
        stack.ctx(),
        NewSecret(
            name=name,
            version_id="v1",
            data=SecretBytes(value.encode()),
            data_type=SecretDataType.TEXT,
            encryption_key_id=None,
            instance_id=None,
            description="",
            secret_type=SecretType.POSTGRESQL,
            policy=None,
            tags={},
            extended_config=json.dumps(config),
            automatic_rotation=automatic,
            rotation_interval=86400 if automatic else None,
        ),
    )
    return name


def _password(stack: Stack, name: str, stage: str) -> tuple[str, str]:
    found = stack.services.secret_versions.get_value(stack.ctx(), ValueRequest(name, stage=stage)).value
    return found.version.version_id, json.loads(found.value.reveal())["AccountPassword"]


def _job_ctx(stack: Stack) -> RequestContext:
    return RequestContext(
        str(uuid.uuid4()), system_principal(stack.account_id, "secret-rotation-job"), REGION, door=Door.JOB
    )


def test_a_crash_after_the_database_changed_is_finished_by_the_job(
    stack: Stack, role: ScratchRole, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _create(stack, role)
    rotation = stack.services.secret_rotation

    def crash(*_: object) -> None:
        raise Crash()

    monkeypatch.setattr(rotation, "_promote", crash)
    with pytest.raises(Crash):
        rotation.rotate(stack.ctx(), name, "v2")
    # The window: the database has the pending password; ACSCurrent still names the old one, and
    # the pending one is stored (so it is not lost), and the secret is due at once.
    assert _password(stack, name, "ACSCurrent") == ("v1", role.password)
    pending_id, pending = _password(stack, name, "ACSPending")
    assert pending_id == "v2" and pending != role.password
    assert scram_matches(verifier(role.role), pending)
    due = [secret.name for secret in rotation.due_for_rotation(10)]
    assert due == [name]

    monkeypatch.undo()  # the process restarts
    done = rotation.rotate_if_due(_job_ctx(stack), rotation.due_for_rotation(10)[0].secret_id)
    assert done.acted
    assert _password(stack, name, "ACSCurrent") == ("v2", pending)
    assert _password(stack, name, "ACSPrevious") == ("v1", role.password)
    assert scram_matches(verifier(role.role), pending)
    with pytest.raises(Exception, match="ACSPending"):
        _password(stack, name, "ACSPending")
    assert rotation.due_for_rotation(10) == []  # no schedule: nothing more is due


def test_a_crash_before_the_database_changed_is_finished_by_the_next_rotate_secret(
    stack: Stack, role: ScratchRole, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _create(stack, role, automatic=True)
    rotation = stack.services.secret_rotation

    class Dying(PostgresRoles):
        def set_password(self, *_: object) -> None:
            raise Crash()

    monkeypatch.setattr(rotation, "_roles", Dying(["127.0.0.1"]))
    with pytest.raises(Crash):
        rotation.rotate(stack.ctx(), name, "v2")
    assert _password(stack, name, "ACSCurrent") == ("v1", role.password)
    assert scram_matches(verifier(role.role), role.password)  # the database did not change
    _, pending = _password(stack, name, "ACSPending")

    monkeypatch.undo()
    # RotateSecret to another version: the rotation left half done is finished first.
    rotation.rotate(stack.ctx(), name, "v3")
    assert _password(stack, name, "ACSPrevious") == ("v2", pending)
    version, newest = _password(stack, name, "ACSCurrent")
    assert version == "v3" and newest not in (pending, role.password)
    assert scram_matches(verifier(role.role), newest)
    described = stack.services.secrets.describe(stack.ctx(), name, False).value.secret
    assert described.last_rotation_date == stack.clock.now()
    assert described.next_rotation_date == stack.clock.now() + timedelta(days=1)


def test_the_job_rotates_when_the_interval_passes(stack: Stack, role: ScratchRole) -> None:
    name = _create(stack, role, automatic=True)
    rotation = stack.services.secret_rotation
    assert rotation.due_for_rotation(10) == []
    stack.clock.advance(timedelta(hours=23))
    assert rotation.due_for_rotation(10) == []
    stack.clock.advance(timedelta(hours=2))
    (due,) = rotation.due_for_rotation(10)
    assert rotation.rotate_if_due(_job_ctx(stack), due.secret_id).acted
    version, newest = _password(stack, name, "ACSCurrent")
    assert version.startswith("rotation-") and scram_matches(verifier(role.role), newest)
    assert not rotation.rotate_if_due(_job_ctx(stack), due.secret_id).acted  # no longer due


def test_a_failed_scheduled_rotation_is_tried_again_an_hour_later(stack: Stack, role: ScratchRole) -> None:
    name = _create(stack, role, automatic=True, port=1)  # nothing listens there
    rotation = stack.services.secret_rotation
    stack.clock.advance(timedelta(days=1, minutes=1))
    (due,) = rotation.due_for_rotation(10)
    with pytest.raises(RotationFailed):
        rotation.rotate_if_due(_job_ctx(stack), due.secret_id)
    assert _password(stack, name, "ACSCurrent") == ("v1", role.password)
    assert rotation.due_for_rotation(10) == []  # not at the job's next run ...
    stack.clock.advance(timedelta(minutes=59))
    assert rotation.due_for_rotation(10) == []
    stack.clock.advance(timedelta(minutes=2))
    assert [s.name for s in rotation.due_for_rotation(10)] == [name]  # ... but an hour later
    with pytest.raises(RotationFailed):
        rotation.rotate_if_due(_job_ctx(stack), due.secret_id)
    # The one pending version is reused, not a new one per attempt.
    listed = stack.services.secret_versions.list_versions(stack.ctx(), name, True).value[1]
    assert [(v.version_id == "v1", v.stages) for v in listed] == [
        (True, ("ACSCurrent",)),
        (False, ("ACSPending",)),
    ]
    assert scram_matches(verifier(role.role), role.password)


def test_set_password_quotes_the_role_and_tries_each_login_in_turn() -> None:
    with scratch_role(suffix=' Odd"Name') as odd:
        target = PostgresTarget("127.0.0.1", 5432, odd.database, odd.role)
        logins = [
            Credentials("okms_rot_no_such_role", SecretBytes(b"x")),  # refused at sign-in
            Credentials(odd.role, SecretBytes(odd.password.encode())),
        ]
        PostgresRoles(["127.0.0.1"]).set_password(target, logins, SecretBytes(b"N3w-password"))
        assert scram_matches(verifier(odd.role), "N3w-password")
        with pytest.raises(RotationFailed) as caught:
            PostgresRoles(["127.0.0.1"]).set_password(target, logins[:1], SecretBytes(b"other"))
        assert "other" not in caught.value.message
        assert scram_matches(verifier(odd.role), "N3w-password")


def test_a_host_no_longer_admitted_fails_the_rotation_before_anything_is_staged(
    stack: Stack, role: ScratchRole, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _create(stack, role)
    rotation = stack.services.secret_rotation
    monkeypatch.setattr(rotation, "_roles", PostgresRoles(["10.0.0.0/8"]))  # the operator narrowed it
    with pytest.raises(RotationFailed) as caught:
        rotation.rotate(stack.ctx(), name, "v2")
    assert "managed_secret_hosts" in caught.value.message
    with pytest.raises(SecretNotFound):
        _password(stack, name, "ACSPending")  # nothing staged
    assert _password(stack, name, "ACSCurrent") == ("v1", role.password)
