"""The job runner: exactly one leader per database (a fenced lease), and a scheduler run appends one
audit event per job step; a follower does nothing; a holder that lost its lease commits nothing."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from openkms.domain.lease import Fence
from openkms.errors import AuditUnavailable, KeyNotFound, LeaseLost
from openkms.repository.database import Database
from openkms.service.keys import CreateKeyRequest
from openkms.testing.audit import FailingAuditSink, MemoryAuditSink
from openkms.testing.jobs import job_scheduler
from tests.lifecycle.conftest import Stack


def test_one_leader_per_database(stack: Stack) -> None:
    db = stack.services.db
    other = Database(db.url)  # a second process's view of the same database
    try:
        first, second = db.lease("test-one", 60), other.lease("test-one", 60)
        held = first.acquire()
        assert held is not None
        assert first.acquire() == held  # renewed: still ours, same fence
        assert second.acquire() is None
        first.release()
        taken = second.acquire()
        assert taken is not None and taken.value == held.value + 1  # a new holder: a new fence
        assert first.acquire() is None
        second.release()
    finally:
        other.dispose()


def test_an_expired_lease_is_taken_and_its_old_holder_commits_nothing(stack: Stack) -> None:
    db = stack.services.db
    other = Database(db.url)
    try:
        old, new = db.lease("test-expiry", 0.3), other.lease("test-expiry", 60)
        fence = old.acquire()
        assert fence is not None
        assert new.acquire() is None
        time.sleep(0.5)  # the old holder hung past its lease
        taken = new.acquire()
        assert taken is not None and taken.value == fence.value + 1
        key = stack.services.keys.create_key(
            stack.ctx(), CreateKeyRequest(instance_id=stack.instance_id)
        ).value
        # The old holder wakes up and tries a step: refused before anything is written.
        with db.fenced(fence), pytest.raises(LeaseLost):
            stack.services.lifecycle.schedule_deletion(stack.ctx(), key.key_id, 7)
        assert stack.services.keys.describe_key(stack.ctx(), key.key_id).value.state.value == "Enabled"
        # The new holder's steps commit.
        with other.fenced(taken), other.unit_of_work(write=True) as uow:
            assert uow.keys.get(key.key_id) is not None
    finally:
        other.dispose()


def test_a_takeover_waits_for_the_old_holders_last_step(stack: Stack) -> None:
    """A step that checked its fence before the lease expired holds the lease row until it commits:
    a taker waits for that commit, so two holders never overlap."""
    if stack.db_path is not None:
        pytest.skip("SQLite serialises every writer at BEGIN IMMEDIATE")
    db = stack.services.db
    other = Database(db.url)
    try:
        old, new = db.lease("test-overlap", 1.0), other.lease("test-overlap", 60)
        fence = old.acquire()
        assert fence is not None
        time.sleep(0.7)
        taken: list[tuple[float, object]] = []
        with db.fenced(fence), db.unit_of_work(write=True):  # checked while the lease still held
            time.sleep(0.5)  # the lease expires while the step is still running

            def take() -> None:
                got = new.acquire()
                taken.append((time.monotonic(), got))

            taker = threading.Thread(target=take)
            taker.start()
            time.sleep(0.2)
            assert taken == []  # waiting for the row
            committed = time.monotonic()
        taker.join(10)
        assert len(taken) == 1
        at, fence_taken = taken[0]
        assert at >= committed and isinstance(fence_taken, Fence) and fence_taken.value == fence.value + 1
    finally:
        other.dispose()


def test_a_step_stuck_past_its_lease_is_ended_and_the_lease_taken(stack: Stack) -> None:
    """A step that stalls inside its transaction (a hung backend call, a paused host) holds the
    lease row no longer than a lease lasts: PostgreSQL ends its session and a taker gets the lease;
    the stalled step commits nothing."""
    if stack.db_path is not None:
        pytest.skip("SQLite serialises every writer at BEGIN IMMEDIATE")
    db = stack.services.db
    other = Database(db.url)
    try:
        old, new = db.lease("test-stuck", 0.5), other.lease("test-stuck", 60)
        fence = old.acquire()
        assert fence is not None
        taken: list[object] = []

        def take() -> None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not taken:
                got = new.acquire()
                if got is not None:
                    taken.append(got)

        with pytest.raises(Exception), db.fenced(fence), db.unit_of_work(write=True) as uow:
            uow.connection.execute(sa.text("INSERT INTO regions VALUES ('xx-stuck-1', now())"))
            taker = threading.Thread(target=take)
            taker.start()
            time.sleep(2.0)  # stalled four times the lease
        taker.join(15)
        assert taken and isinstance(taken[0], Fence) and taken[0].value == fence.value + 1
        with db.unit_of_work() as uow:
            assert (
                uow.connection.execute(
                    sa.text("SELECT count(*) FROM regions WHERE region_id = 'xx-stuck-1'")
                ).scalar()
                == 0
            )
    finally:
        other.dispose()


def test_only_the_leader_runs_jobs_and_audits_each_step(stack: Stack) -> None:
    services = stack.services
    rotating = services.keys.create_key(
        stack.ctx(),
        CreateKeyRequest(
            instance_id=stack.instance_id, enable_automatic_rotation=True, rotation_interval="7d"
        ),
    ).value
    doomed = services.keys.create_key(stack.ctx(), CreateKeyRequest(instance_id=stack.instance_id)).value
    services.lifecycle.schedule_deletion(stack.ctx(), doomed.key_id, 7)
    stack.clock.advance(timedelta(days=8))
    leader_sink, follower_sink = MemoryAuditSink(), MemoryAuditSink()
    leader = job_scheduler(services, leader_sink, interval=60)
    follower = job_scheduler(services, follower_sink, interval=60)

    async def run() -> tuple[int, int, int]:
        first = await leader.run_once()
        second = await follower.run_once()
        again = await leader.run_once()
        await leader.stop()
        await follower.stop()
        return first, second, again

    assert asyncio.run(run()) == (2, 0, 0)
    assert follower_sink.events == []
    assert {(e.action, e.key_id, e.result) for e in leader_sink.events} == {
        ("CreateKeyVersion", rotating.key_id, "Success"),
        ("DeleteKey", doomed.key_id, "Success"),
    }
    assert all(not e.dev_clock and e.account_id == stack.account_id for e in leader_sink.events)


def test_a_sealed_keystore_runs_no_jobs(stack: Stack) -> None:
    services = stack.services
    services.keys.create_key(
        stack.ctx(),
        CreateKeyRequest(
            instance_id=stack.instance_id, enable_automatic_rotation=True, rotation_interval="7d"
        ),
    )
    stack.clock.advance(timedelta(days=8))
    services.keystore.seal()
    sink = MemoryAuditSink()
    scheduler = job_scheduler(services, sink, interval=60)
    assert asyncio.run(scheduler.run_once()) == 0
    asyncio.run(scheduler.stop())
    assert len(services.lifecycle.due_for_rotation()) == 1


class _FailsOnWrite(FailingAuditSink):
    """A sink that looks healthy until a record is written (a disk that fills up): `check` passes."""

    def check(self) -> None:
        return None


def _doomed(stack: Stack, count: int) -> list[str]:
    keys = []
    for _ in range(count):
        key = stack.services.keys.create_key(
            stack.ctx(), CreateKeyRequest(instance_id=stack.instance_id)
        ).value
        stack.services.lifecycle.schedule_deletion(stack.ctx(), key.key_id, 7)
        keys.append(key.key_id)
    return keys


def _pending(stack: Stack, key_ids: list[str]) -> list[str]:
    pending = []
    for key_id in key_ids:
        try:
            stack.services.keys.describe_key(stack.ctx(), key_id)
            pending.append(key_id)
        except KeyNotFound:
            pass
    return pending


def test_a_broken_audit_sink_stops_the_jobs_before_they_act(stack: Stack) -> None:
    services = stack.services
    services.keys.create_key(
        stack.ctx(),
        CreateKeyRequest(
            instance_id=stack.instance_id, enable_automatic_rotation=True, rotation_interval="7d"
        ),
    )
    doomed = _doomed(stack, 2)
    stack.clock.advance(timedelta(days=8))
    sink = FailingAuditSink()
    scheduler = job_scheduler(services, sink, interval=60)
    with pytest.raises(AuditUnavailable):
        asyncio.run(scheduler.run_once())
    asyncio.run(scheduler.stop())
    assert sink.attempts == []
    assert _pending(stack, doomed) == doomed
    assert len(services.lifecycle.due_for_rotation()) == 1


def test_each_step_is_appended_before_the_next_and_a_failed_append_stops_the_run(stack: Stack) -> None:
    services = stack.services
    doomed = _doomed(stack, 3)
    stack.clock.advance(timedelta(days=8))
    sink = _FailsOnWrite()
    scheduler = job_scheduler(services, sink, interval=60)
    with pytest.raises(AuditUnavailable):
        asyncio.run(scheduler.run_once())
    asyncio.run(scheduler.stop())
    # The first key was destroyed and its record offered; the run stopped there.
    assert [(e.action, e.result) for e in sink.attempts] == [("DeleteKey", "Success")]
    gone = sink.attempts[0].key_id
    assert set(_pending(stack, doomed)) == set(doomed) - {gone}

    healthy = MemoryAuditSink()
    scheduler = job_scheduler(services, healthy, interval=60)
    assert asyncio.run(scheduler.run_once()) == 2
    asyncio.run(scheduler.stop())
    assert {e.key_id for e in healthy.events} == set(doomed) - {gone}
    assert _pending(stack, doomed) == []
