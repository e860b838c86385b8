"""Rotation with a frozen clock: the rotation job, old versions keep decrypting (P1/P2), a crash
mid-rotation leaves the old primary (P19), concurrent rotations never duplicate or lose a version (P20)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from openkms.domain.key import KeyVersion
from openkms.errors import InvalidKeyState, KeyDisabled
from openkms.service import ids
from openkms.service.keys import CreateKeyRequest
from openkms.testing.jobs import rotate_due_keys
from tests.lifecycle.conftest import Stack

DAY = timedelta(days=1)


def _rotating_key(stack: Stack, interval: str = "7d") -> str:
    key = stack.services.keys.create_key(
        stack.ctx(),
        CreateKeyRequest(
            instance_id=stack.instance_id, enable_automatic_rotation=True, rotation_interval=interval
        ),
    ).value
    return key.key_id


def _versions(stack: Stack, key_id: str) -> list[KeyVersion]:
    found, total = stack.services.lifecycle.list_key_versions(stack.ctx(), key_id, 1, 100).value
    assert total == len(found)
    return found


def test_the_job_rotates_due_keys_once_and_old_ciphertexts_still_decrypt(stack: Stack) -> None:
    services = stack.services
    key_id = _rotating_key(stack)
    created = services.keys.describe_key(stack.ctx(), key_id).value
    assert created.rotation_interval == 7 * 86400
    assert created.next_rotation_date == created.created_at + 7 * DAY
    old = services.crypto.encrypt(stack.ctx(), key_id, b"before rotation", None).value

    stack.clock.advance(7 * DAY - timedelta(seconds=1))
    assert rotate_due_keys(services) == []
    assert len(_versions(stack, key_id)) == 1

    stack.clock.advance(timedelta(seconds=1))
    events = rotate_due_keys(services)
    assert [(e.action, e.key_id, e.result) for e in events] == [("CreateKeyVersion", key_id, "Success")]
    assert events[0].principal.endswith(":system/rotation-job")
    assert events[0].account_id == stack.account_id
    # The same record fields as an API call: the door, the key's ARN, no HTTP status (no HTTP here).
    assert (events[0].door, events[0].http_status) == ("job", None)
    assert events[0].resource == f"acs:kms:cn-hangzhou:{stack.account_id}:key/{key_id}"
    versions = _versions(stack, key_id)
    assert len(versions) == 2
    rotated = services.keys.describe_key(stack.ctx(), key_id).value
    assert rotated.primary_version_id == versions[1].version_id == events[0].key_version_id
    assert rotated.last_rotation_date == stack.clock.now()
    assert rotated.next_rotation_date == stack.clock.now() + 7 * DAY
    assert rotate_due_keys(services) == []  # not due again until the next interval

    new = services.crypto.encrypt(stack.ctx(), key_id, b"after rotation", None).value
    assert (old.version_id, new.version_id) == (versions[0].version_id, versions[1].version_id)
    assert services.crypto.decrypt(stack.ctx(), old.blob, None).value.plaintext.reveal() == b"before rotation"
    assert services.crypto.decrypt(stack.ctx(), new.blob, None).value.plaintext.reveal() == b"after rotation"

    stack.clock.advance(30 * DAY)  # overdue by several intervals: still one version per run
    assert len(rotate_due_keys(services)) == 1
    assert len(_versions(stack, key_id)) == 3


def test_disabled_and_pending_keys_are_not_rotated(stack: Stack) -> None:
    services = stack.services
    disabled = _rotating_key(stack)
    services.keys.disable_key(stack.ctx(), disabled)
    pending = _rotating_key(stack)
    services.lifecycle.schedule_deletion(stack.ctx(), pending, 30)
    stack.clock.advance(8 * DAY)
    assert rotate_due_keys(services) == []
    assert len(_versions(stack, disabled)) == len(_versions(stack, pending)) == 1
    with pytest.raises(KeyDisabled):
        services.lifecycle.create_key_version(stack.ctx(), disabled)
    with pytest.raises(InvalidKeyState):
        services.lifecycle.create_key_version(stack.ctx(), pending)


def test_rotation_policy_update_moves_the_next_date(stack: Stack) -> None:
    services = stack.services
    key = services.keys.create_key(stack.ctx(), CreateKeyRequest(instance_id=stack.instance_id)).value
    assert key.rotation_interval is None and key.next_rotation_date is None
    stack.clock.advance(10 * DAY)
    services.lifecycle.update_rotation_policy(stack.ctx(), key.key_id, True, "604800s")
    updated = services.keys.describe_key(stack.ctx(), key.key_id).value
    assert updated.rotation_interval == 604800
    # last rotation was at creation, ten days ago: it is overdue and the job takes it now
    assert updated.next_rotation_date == key.created_at + 7 * DAY
    assert len(rotate_due_keys(services)) == 1
    services.lifecycle.update_rotation_policy(stack.ctx(), key.key_id, False, None)
    stopped = services.keys.describe_key(stack.ctx(), key.key_id).value
    assert stopped.rotation_interval is None and stopped.next_rotation_date is None
    stack.clock.advance(400 * DAY)
    assert rotate_due_keys(services) == []


def test_a_crash_before_commit_leaves_the_old_primary(stack: Stack) -> None:
    """P19: the new version row and the new primary are written in one transaction."""
    services = stack.services
    key_id = _rotating_key(stack)
    before = services.keys.describe_key(stack.ctx(), key_id).value
    version_id = ids.new_version_id()
    wrapped = b"\x00" * 60

    class Crash(Exception):
        pass

    with pytest.raises(Crash), services.db.unit_of_work(write=True) as uow:
        assert uow.lifecycle.promote(
            KeyVersion(before.key_id, version_id, stack.clock.now()),
            2,
            wrapped,
            before.primary_version_id,
            None,
        )
        raise Crash
    after = services.keys.describe_key(stack.ctx(), key_id).value
    assert after.primary_version_id == before.primary_version_id
    assert [v.version_id for v in _versions(stack, key_id)] == [before.primary_version_id]
    with services.db.unit_of_work() as uow:
        assert uow.keys.version(version_id) is None
    # and the key still works
    sealed = services.crypto.encrypt(stack.ctx(), key_id, b"x", None).value
    assert sealed.version_id == before.primary_version_id


def test_concurrent_manual_rotations_make_distinct_ordered_versions(stack: Stack) -> None:
    """P20: eight threads rotate the same key at once; every rotation lands, none duplicated."""
    services = stack.services
    key_id = _rotating_key(stack)
    made: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def rotate() -> None:
        try:
            barrier.wait()
            version = services.lifecycle.create_key_version(stack.ctx(), key_id).value
            with lock:
                made.append(version.version_id)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=rotate) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Each rotation locks the key row and reads the primary under the lock: all eight land, in turn.
    assert errors == []
    versions = _versions(stack, key_id)
    assert len(made) == 8
    assert len(versions) == 1 + len(made)
    assert len({v.version_id for v in versions}) == len(versions)
    with services.db.unit_of_work() as uow:
        seqs = [stored.seq for stored in uow.keys.versions(key_id)]
    assert seqs == list(range(1, len(versions) + 1))
    assert services.keys.describe_key(stack.ctx(), key_id).value.primary_version_id == versions[-1].version_id
    assert set(made) <= {v.version_id for v in versions}


def test_concurrent_rotation_jobs_rotate_a_due_key_once(stack: Stack) -> None:
    """Two job runners racing (e.g. a lost leader lock) still add exactly one version."""
    services = stack.services
    key_id = _rotating_key(stack)
    stack.clock.advance(8 * DAY)
    barrier = threading.Barrier(4)
    results: list[int] = []

    def run() -> None:
        barrier.wait()
        results.append(len(rotate_due_keys(services)))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 1
    assert len(_versions(stack, key_id)) == 2


def test_rotation_rules(stack: Stack) -> None:
    services = stack.services
    for interval in ("6d", "366d", "7x", "", "d"):
        with pytest.raises(Exception) as caught:
            services.keys.create_key(
                stack.ctx(),
                CreateKeyRequest(
                    instance_id=stack.instance_id, enable_automatic_rotation=True, rotation_interval=interval
                ),
            )
        assert type(caught.value).__name__ in ("InvalidArgument", "MissingParameter"), interval
    for interval in ("7d", "365d", "168h", "604800s", "31536000s"):
        _rotating_key(stack, interval)
