"""A Hypothesis stateful test of the key lifecycle against a simple model: create, enable, disable,
schedule, cancel, protect, rotate, alias, tag, encrypt, and time passing (the jobs run), on real
services over SQLite and PostgreSQL with a frozen clock."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from openkms.errors import (
    AliasNotFound,
    Conflict,
    DeletionProtected,
    InvalidCiphertext,
    InvalidKeyState,
    KeyDisabled,
    KeyNotFound,
    OpenKMSError,
)
from openkms.service.keys import CreateKeyRequest
from openkms.testing.jobs import delete_due_keys, rotate_due_keys
from tests.lifecycle.conftest import Stack

WEEK = timedelta(days=7)


@dataclass
class ModelKey:
    state: str = "Enabled"
    versions: int = 1
    rotation: timedelta | None = None
    next_rotation: datetime | None = None
    delete_date: datetime | None = None
    protected: bool = False
    aliases: set[str] = field(default_factory=set)
    tags: dict[str, str] = field(default_factory=dict)
    blobs: list[tuple[bytes, bytes]] = field(default_factory=list)
    destroyed: bool = False


def machine_for(stack: Stack) -> type[RuleBasedStateMachine]:
    services = stack.services

    class Lifecycle(RuleBasedStateMachine):
        keys = Bundle("keys")

        def __init__(self) -> None:
            super().__init__()
            self.model: dict[str, ModelKey] = {}
            self.run = uuid.uuid4().hex[:8]  # alias names are unique per run

        def _expect(self, key_id: str, error: type[OpenKMSError] | None, call: object) -> bool:
            assert callable(call)
            if error is None:
                call()
                return True
            try:
                call()
            except error:
                return False
            raise AssertionError(f"expected {error.__name__}")

        @rule(target=keys, rotating=st.booleans())
        def create(self, rotating: bool) -> str:
            key = services.keys.create_key(
                stack.ctx(),
                CreateKeyRequest(
                    instance_id=stack.instance_id,
                    enable_automatic_rotation=rotating,
                    rotation_interval="7d" if rotating else None,
                ),
            ).value
            now = stack.clock.now()
            self.model[key.key_id] = ModelKey(
                rotation=WEEK if rotating else None, next_rotation=now + WEEK if rotating else None
            )
            return key.key_id

        @rule(key_id=keys, enable=st.booleans())
        def enable_or_disable(self, key_id: str, enable: bool) -> None:
            m = self.model[key_id]
            if m.destroyed:
                self._expect(key_id, KeyNotFound, lambda: services.keys.enable_key(stack.ctx(), key_id))
                return
            call = services.keys.enable_key if enable else services.keys.disable_key
            error = InvalidKeyState if m.state == "PendingDeletion" else None
            if self._expect(key_id, error, lambda: call(stack.ctx(), key_id)):
                m.state = "Enabled" if enable else "Disabled"

        @rule(key_id=keys, days=st.integers(min_value=7, max_value=20))
        def schedule(self, key_id: str, days: int) -> None:
            m = self.model[key_id]
            error: type[OpenKMSError] | None = None
            if m.destroyed:
                error = KeyNotFound
            elif m.protected:
                error = DeletionProtected
            elif m.state == "PendingDeletion":
                error = InvalidKeyState
            if self._expect(
                key_id, error, lambda: services.lifecycle.schedule_deletion(stack.ctx(), key_id, days)
            ):
                m.state = "PendingDeletion"
                m.delete_date = stack.clock.now() + timedelta(days=days)

        @rule(key_id=keys)
        def cancel(self, key_id: str) -> None:
            m = self.model[key_id]
            error = KeyNotFound if m.destroyed else None if m.state == "PendingDeletion" else InvalidKeyState
            if self._expect(key_id, error, lambda: services.lifecycle.cancel_deletion(stack.ctx(), key_id)):
                m.state, m.delete_date = "Enabled", None

        @rule(key_id=keys, on=st.booleans())
        def protect(self, key_id: str, on: bool) -> None:
            m = self.model[key_id]
            error = (
                KeyNotFound
                if m.destroyed
                else InvalidKeyState
                if on and m.state == "PendingDeletion"
                else None
            )
            call = lambda: services.lifecycle.set_deletion_protection(stack.ctx(), key_id, on, "model")  # noqa: E731
            if self._expect(key_id, error, call):
                m.protected = on

        @rule(key_id=keys)
        def rotate(self, key_id: str) -> None:
            m = self.model[key_id]
            error = {
                "Enabled": None,
                "Disabled": KeyDisabled,
                "PendingDeletion": InvalidKeyState,
            }[m.state]
            if m.destroyed:
                error = KeyNotFound
            if self._expect(
                key_id, error, lambda: services.lifecycle.create_key_version(stack.ctx(), key_id)
            ):
                m.versions += 1
                if m.rotation is not None:
                    m.next_rotation = stack.clock.now() + m.rotation

        @rule(key_id=keys, name=st.sampled_from(["a", "b", "c"]))
        def alias(self, key_id: str, name: str) -> None:
            m = self.model[key_id]
            full = f"alias/model-{self.run}-{name}"
            taken = any(full in other.aliases for other in self.model.values())
            error = KeyNotFound if m.destroyed else Conflict if taken else None
            if self._expect(key_id, error, lambda: services.aliases.create_alias(stack.ctx(), full, key_id)):
                m.aliases.add(full)

        @rule(key_id=keys, tag=st.sampled_from(["env", "team"]), value=st.sampled_from(["x", "y"]))
        def tag(self, key_id: str, tag: str, value: str) -> None:
            m = self.model[key_id]
            error = KeyNotFound if m.destroyed else None
            if self._expect(
                key_id, error, lambda: services.tags.tag(stack.ctx(), [key_id], {tag: value}, "TagResource")
            ):
                m.tags[tag] = value

        @rule(key_id=keys, text=st.binary(min_size=1, max_size=16))
        def encrypt(self, key_id: str, text: bytes) -> None:
            m = self.model[key_id]
            if m.destroyed or m.state != "Enabled":
                return
            sealed = services.crypto.encrypt(stack.ctx(), key_id, text, None).value
            m.blobs.append((sealed.blob, text))

        @rule(days=st.integers(min_value=1, max_value=25))
        def time_passes(self, days: int) -> None:
            now = stack.clock.advance(timedelta(days=days))
            rotate_due_keys(services)
            delete_due_keys(services)
            for m in self.model.values():
                if m.destroyed:
                    continue
                if m.state == "Enabled" and m.next_rotation is not None and m.next_rotation <= now:
                    m.versions += 1
                    m.next_rotation = now + WEEK
                if m.state == "PendingDeletion" and m.delete_date is not None and m.delete_date <= now:
                    m.destroyed = True
                    m.aliases.clear()
                    m.tags.clear()

        @invariant()
        def matches_the_model(self) -> None:
            for key_id, m in self.model.items():
                if m.destroyed:
                    try:
                        services.keys.describe_key(stack.ctx(), key_id)
                    except KeyNotFound:
                        pass
                    else:
                        raise AssertionError("a destroyed key is still there")
                    for blob, _ in m.blobs:
                        try:
                            services.crypto.decrypt(stack.ctx(), blob, None)
                        except InvalidCiphertext:
                            continue
                        raise AssertionError("a destroyed key's ciphertext decrypted")
                    continue
                key = services.keys.describe_key(stack.ctx(), key_id).value
                assert key.state.value == m.state
                assert key.deletion_protection == m.protected
                assert key.delete_date == m.delete_date
                assert key.next_rotation_date == m.next_rotation
                _, total = services.lifecycle.list_key_versions(stack.ctx(), key_id, 1, 1).value
                assert total == m.versions
                for name in m.aliases:
                    assert services.keys.describe_key(stack.ctx(), name).value.key_id == key_id
                with services.db.unit_of_work() as uow:
                    assert uow.tags.of(key.key_id) == m.tags
                if m.state == "Enabled":
                    for blob, text in m.blobs:
                        assert (
                            services.crypto.decrypt(stack.ctx(), blob, None).value.plaintext.reveal() == text
                        )
            assert not any(m.aliases for m in self.model.values() if m.destroyed)
            for name in {f"alias/model-{self.run}-{n}" for n in "abc"}:
                if not any(name in m.aliases for m in self.model.values()):
                    try:
                        services.keys.describe_key(stack.ctx(), name)
                    except AliasNotFound:
                        continue
                    raise AssertionError(f"{name} resolves but the model has no such alias")

    return Lifecycle


def test_lifecycle_matches_the_model(stack: Stack) -> None:
    run_state_machine_as_test(
        machine_for(stack),
        settings=settings(
            max_examples=15,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
