"""Concurrent lifecycle changes on one key: each waits for the other's transaction and then sees its
outcome, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import text

from openkms.errors import InvalidKeyState
from openkms.service.keys import CreateKeyRequest
from openkms.types import KeyId, KeyState
from tests.lifecycle.conftest import Stack


def _wait_until_blocked(stack: Stack) -> None:
    """Until another transaction waits for a lock (PostgreSQL), or a moment (SQLite, whose writers
    wait at BEGIN IMMEDIATE)."""
    if stack.db_path is not None:
        time.sleep(0.5)
        return
    deadline = time.monotonic() + 20
    with stack.services.db.engine.connect() as connection:
        while time.monotonic() < deadline:
            if connection.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar_one():
                return
            connection.rollback()
            time.sleep(0.02)
    pytest.fail("the DisableKey call never waited for the key's lock")


def test_disable_key_racing_schedule_deletion_sees_the_pending_deletion(stack: Stack) -> None:
    services = stack.services
    key_id = KeyId(
        services.keys.create_key(stack.ctx(), CreateKeyRequest(instance_id=stack.instance_id)).value.key_id
    )
    delete_date = stack.clock.now() + timedelta(days=7)
    outcome: list[BaseException | None] = []

    def disable() -> None:
        try:
            services.keys.disable_key(stack.ctx(), key_id)
            outcome.append(None)
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    # ScheduleKeyDeletion's transaction, held open while DisableKey starts.
    with services.db.unit_of_work(write=True) as uow:
        uow.lifecycle.lock_key(key_id)
        uow.lifecycle.set_state_and_delete_date(key_id, KeyState.PENDING_DELETION, delete_date)
        worker = threading.Thread(target=disable)
        worker.start()
        _wait_until_blocked(stack)
    worker.join(timeout=60)
    assert not worker.is_alive()

    assert len(outcome) == 1 and isinstance(outcome[0], InvalidKeyState)
    key = services.keys.describe_key(stack.ctx(), key_id).value
    assert key.state is KeyState.PENDING_DELETION and key.delete_date == delete_date
