"""Scheduled deletion with a frozen clock: the window, cancellation, deletion protection, and the
deletion job destroying material, aliases and tags for good, also in the database files (P10)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from openkms.domain.key import KeyFilter
from openkms.errors import (
    AliasNotFound,
    DeletionProtected,
    InvalidArgument,
    InvalidCiphertext,
    InvalidKeyState,
    KeyNotFound,
)
from openkms.service.keys import CreateKeyRequest
from openkms.testing.audit import MemoryAuditSink
from openkms.testing.jobs import delete_due_keys, job_scheduler
from tests.lifecycle.conftest import Stack

DAY = timedelta(days=1)


def _key(stack: Stack) -> str:
    return stack.services.keys.create_key(
        stack.ctx(), CreateKeyRequest(instance_id=stack.instance_id)
    ).value.key_id


def _wrapped_material(stack: Stack, key_id: str) -> list[bytes]:
    with stack.services.db.unit_of_work() as uow:
        return [stored.wrapped_material for stored in uow.keys.versions(key_id)]


def _files_holding(db_path: Path, canaries: list[bytes]) -> list[str]:
    found = []
    for path in (db_path, db_path.with_name(db_path.name + "-wal")):
        if path.exists():
            data = path.read_bytes()
            found += [f"{path.name}:{i}" for i, canary in enumerate(canaries) if canary in data]
    return found


def test_pending_key_refuses_crypto_until_cancelled(stack: Stack) -> None:
    services = stack.services
    key_id = _key(stack)
    sealed = services.crypto.encrypt(stack.ctx(), key_id, b"data", None).value
    services.lifecycle.schedule_deletion(stack.ctx(), key_id, 7)
    key = services.keys.describe_key(stack.ctx(), key_id).value
    assert key.state.value == "PendingDeletion"
    assert key.delete_date == stack.clock.now() + 7 * DAY
    with pytest.raises(InvalidKeyState):
        services.crypto.encrypt(stack.ctx(), key_id, b"x", None)
    with pytest.raises(InvalidKeyState):
        services.crypto.decrypt(stack.ctx(), sealed.blob, None)
    with pytest.raises(InvalidKeyState):
        services.keys.enable_key(stack.ctx(), key_id)
    with pytest.raises(InvalidKeyState):
        services.lifecycle.schedule_deletion(stack.ctx(), key_id, 7)
    with pytest.raises(InvalidKeyState):
        services.lifecycle.set_deletion_protection(stack.ctx(), key_id, True, "in use")
    listed, _ = services.keys.list_keys(stack.ctx(), KeyFilter(), 1, 100).value
    assert key_id in {k.key_id for k in listed}
    services.lifecycle.cancel_deletion(stack.ctx(), key_id)
    back = services.keys.describe_key(stack.ctx(), key_id).value
    assert back.state.value == "Enabled" and back.delete_date is None
    assert services.crypto.decrypt(stack.ctx(), sealed.blob, None).value.plaintext.reveal() == b"data"
    with pytest.raises(InvalidKeyState):
        services.lifecycle.cancel_deletion(stack.ctx(), key_id)
    stack.clock.advance(30 * DAY)
    assert delete_due_keys(services) == []


def test_window_bounds_and_protection(stack: Stack) -> None:
    services = stack.services
    key_id = _key(stack)
    for days in (6, 367, 0, -1):
        with pytest.raises(InvalidArgument):
            services.lifecycle.schedule_deletion(stack.ctx(), key_id, days)
    services.lifecycle.set_deletion_protection(stack.ctx(), key_id, True, "used by orders")
    protected = services.keys.describe_key(stack.ctx(), key_id).value
    assert protected.deletion_protection and protected.deletion_protection_description == "used by orders"
    with pytest.raises(DeletionProtected):
        services.lifecycle.schedule_deletion(stack.ctx(), key_id, 7)
    assert services.keys.describe_key(stack.ctx(), key_id).value.state.value == "Enabled"
    services.lifecycle.set_deletion_protection(stack.ctx(), key_id, False, "")
    services.lifecycle.schedule_deletion(stack.ctx(), key_id, 366)
    assert services.keys.describe_key(stack.ctx(), key_id).value.delete_date == stack.clock.now() + 366 * DAY


def test_the_job_destroys_material_aliases_and_tags_after_the_window(stack: Stack) -> None:
    services = stack.services
    key_id = _key(stack)
    keep = _key(stack)
    services.lifecycle.create_key_version(stack.ctx(), key_id)
    services.aliases.create_alias(stack.ctx(), "alias/doomed", key_id)
    services.tags.tag(stack.ctx(), [key_id], {"team": "orders"}, "TagResource")
    sealed = services.crypto.encrypt(stack.ctx(), key_id, b"gone soon", None).value
    kept = services.crypto.encrypt(stack.ctx(), keep, b"stays", None).value
    canaries = _wrapped_material(stack, key_id)
    assert len(canaries) == 2 and all(len(c) > 32 for c in canaries)
    if stack.db_path is not None:
        assert _files_holding(stack.db_path, canaries), "the canaries must be findable before deletion"

    services.lifecycle.schedule_deletion(stack.ctx(), key_id, 7)
    stack.clock.advance(7 * DAY - timedelta(seconds=1))
    assert delete_due_keys(services) == []
    assert services.keys.describe_key(stack.ctx(), key_id).value.state.value == "PendingDeletion"

    stack.clock.advance(timedelta(seconds=1))
    events = delete_due_keys(services)
    assert [(e.action, e.key_id, e.result) for e in events] == [("DeleteKey", key_id, "Success")]
    assert events[0].principal.endswith(":system/deletion-job")

    with pytest.raises(KeyNotFound):
        services.keys.describe_key(stack.ctx(), key_id)
    with pytest.raises(AliasNotFound):
        services.keys.describe_key(stack.ctx(), "alias/doomed")
    with pytest.raises(InvalidCiphertext):
        services.crypto.decrypt(stack.ctx(), sealed.blob, None)
    with services.db.unit_of_work() as uow:
        assert uow.keys.versions(key_id) == []
        assert uow.tags.of(key_id) == {}
    assert _wrapped_material(stack, key_id) == []
    # other keys are untouched
    assert services.crypto.decrypt(stack.ctx(), kept.blob, None).value.plaintext.reveal() == b"stays"
    assert delete_due_keys(services) == []
    if stack.db_path is not None:
        assert _files_holding(stack.db_path, canaries) == []  # P10: not in the database file nor the WAL


def test_a_service_key_is_made_on_first_use_by_its_service(stack: Stack) -> None:
    from openkms.service.context import RequestContext, service_principal
    from tests.lifecycle.conftest import REGION

    services = stack.services
    ctx = RequestContext("r1", service_principal(stack.account_id, "ecs"), REGION)
    # resolving a key never makes one: only a cryptographic use by the service itself does
    with pytest.raises(AliasNotFound):
        services.keys.describe_key(ctx, "alias/acs/ecs")
    assert services.service_keys.find(ctx, "ecs") is None
    first = services.crypto.encrypt(ctx, "alias/acs/ecs", b"disk key", None).value
    again = services.crypto.encrypt(ctx, "alias/acs/ecs", b"disk key", None).value
    assert first.key_id == again.key_id
    key = services.keys.describe_key(stack.ctx(), "alias/acs/ecs").value
    assert (key.creator, key.creator_type.value, key.instance_id) == ("ecs", "Service", None)
    # a user naming a missing service alias does not create anything
    with pytest.raises(AliasNotFound):
        services.crypto.encrypt(stack.ctx(), "alias/acs/rds", b"x", None)
    # another service cannot claim it either
    other = RequestContext("r2", service_principal(stack.account_id, "oss"), REGION)
    with pytest.raises(AliasNotFound):
        services.crypto.encrypt(other, "alias/acs/rds", b"x", None)


def test_a_busy_wal_leaves_the_scrub_pending_until_the_next_job_run(stack: Stack) -> None:
    if stack.db_path is None:
        pytest.skip("the WAL checkpoint is SQLite's")
    services = stack.services
    key_id = _key(stack)
    canaries = _wrapped_material(stack, key_id)
    services.lifecycle.schedule_deletion(stack.ctx(), key_id, 7)
    stack.clock.advance(8 * DAY)
    scheduler = job_scheduler(services, MemoryAuditSink(), interval=60)
    reader = sqlite3.connect(stack.db_path)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM key_versions").fetchone()  # holds an older snapshot
        assert asyncio.run(scheduler.run_once()) == 1
        with pytest.raises(KeyNotFound):
            services.keys.describe_key(stack.ctx(), key_id)
        assert scheduler.scrub_pending and services.db.scrub_pending
        assert _files_holding(stack.db_path, canaries), "the busy WAL still holds the material"
        assert asyncio.run(scheduler.run_once()) == 0
        assert scheduler.scrub_pending  # still busy while the reader lives
    finally:
        reader.rollback()
        reader.close()
    assert asyncio.run(scheduler.run_once()) == 0
    asyncio.run(scheduler.stop())
    assert not scheduler.scrub_pending
    assert _files_holding(stack.db_path, canaries) == []


def test_destroying_a_key_starts_returning_the_quota_units_of_its_grants(stack: Stack) -> None:
    """F4.3: a grant ends with its key; the other account's unit comes back after the release delay."""
    from openkms.errors import QuotaExceeded
    from openkms.policy.key_policy import custom_key_policy

    services = stack.services
    services.access.set_quota(stack.instance_id, 1)

    def grant(account: str) -> str:
        return custom_key_policy(stack.account_id, other_account_users=[f"acs:ram::{account}:user/app"])

    doomed = services.keys.create_key(
        stack.ctx(), CreateKeyRequest(instance_id=stack.instance_id, policy=grant("2000000000000001"))
    ).value.key_id
    other = _key(stack)
    with pytest.raises(QuotaExceeded):
        services.key_policies.set(stack.ctx(), other, "default", grant("2000000000000002"))
    services.lifecycle.schedule_deletion(stack.ctx(), doomed, 7)
    stack.clock.advance(timedelta(days=8))
    assert len(delete_due_keys(services)) == 1
    with pytest.raises(QuotaExceeded):  # the unit is returning, not back yet
        services.key_policies.set(stack.ctx(), other, "default", grant("2000000000000002"))
    stack.clock.advance(timedelta(seconds=services.access.release.total_seconds() + 1))
    services.key_policies.set(stack.ctx(), other, "default", grant("2000000000000002"))
