"""Imported material on real services and a frozen clock (SQLite and PostgreSQL): tokens expire after
24 hours and survive a restart, a token row altered in storage is refused, the expiry job destroys
material past MaterialExpireTime, and the same material brings old ciphertext back."""

from __future__ import annotations

import asyncio
import base64
import os
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from openkms.domain.key_import import WRAPPING_KEY_BINDING
from openkms.errors import (
    ImportTokenExpired,
    IncorrectKeyMaterial,
    InvalidCiphertext,
    InvalidImportToken,
    InvalidKeyState,
)
from openkms.node.generation import LocalGeneration
from openkms.providers import keypairs
from openkms.repository.database import Database
from openkms.repository.tables import import_tokens, key_imports, key_versions
from openkms.service.container import build_services, software_providers
from openkms.service.keys import CreateKeyRequest
from openkms.testing.audit import MemoryAuditSink
from openkms.testing.jobs import expire_due_material, job_scheduler
from openkms.types import KeyId, KeySpec, KeyState
from tests.lifecycle.conftest import Stack
from tests.support.byok import wrap

OAEP = "RSAES_OAEP_SHA_256"


def _external(stack: Stack) -> KeyId:
    return stack.services.keys.create_key(
        stack.ctx(), CreateKeyRequest(instance_id=stack.instance_id, origin="EXTERNAL")
    ).value.key_id


def _wrapped(stack: Stack, key_id: KeyId, material: bytes) -> tuple[str, bytes]:
    found = stack.services.key_import.get_parameters(stack.ctx(), key_id, OAEP, "RSA_2048").value
    return found.import_token, base64.b64decode(
        wrap(base64.b64encode(found.public_key_der).decode(), OAEP, material)
    )


def _state(stack: Stack, key_id: KeyId) -> KeyState:
    with stack.services.db.unit_of_work() as uow:
        key = uow.keys.get(key_id)
    assert key is not None
    return key.state


def test_a_token_expires_after_24_hours(stack: Stack) -> None:
    key_id = _external(stack)
    token, encrypted = _wrapped(stack, key_id, os.urandom(32))
    stack.clock.advance(timedelta(hours=24))
    with pytest.raises(ImportTokenExpired):
        stack.services.key_import.import_material(stack.ctx(), key_id, token, encrypted, None)
    assert _state(stack, key_id) is KeyState.PENDING_IMPORT
    # the expiry job destroys the expired token's wrapping key at once; the token still answers expired
    asyncio.run(_run_jobs(stack))
    with stack.services.db.unit_of_work() as uow:
        stored = uow.imports.token(token.split(".")[1])
    assert stored is not None and stored.wrapped_private_key == b""
    with pytest.raises(ImportTokenExpired):
        stack.services.key_import.import_material(stack.ctx(), key_id, token, encrypted, None)
    # a week later the token is forgotten
    stack.clock.advance(timedelta(days=7))
    asyncio.run(_run_jobs(stack))
    with stack.services.db.unit_of_work() as uow:
        assert uow.imports.token(token.split(".")[1]) is None
    with pytest.raises(InvalidImportToken):
        stack.services.key_import.import_material(stack.ctx(), key_id, token, encrypted, None)


def test_a_token_survives_a_restart_and_its_wrapping_key_is_stored_wrapped(stack: Stack) -> None:
    key_id = _external(stack)
    token, encrypted = _wrapped(stack, key_id, os.urandom(32))
    db = stack.services.db
    with db.unit_of_work() as uow:
        stored = uow.imports.token(token.split(".")[1])
    assert stored is not None
    # the stored private key is a keystore wrap bound to the key and token, not PKCS#8
    keystore = stack.services.keystore
    der = keystore.unwrap(key_id, stored.token_id, WRAPPING_KEY_BINDING, stored.wrapped_private_key)
    assert der.reveal() not in stored.wrapped_private_key
    assert keypairs.public_key_der(keypairs.load_private_key(der, KeySpec.RSA_2048).public_key()) == (
        stored.public_key_der
    )
    # a restart: the keystore seals (every cache and derived secret goes), a new database handle and new
    # services take the token
    keystore.seal()
    keystore.unseal()
    fresh_db = Database(db.url)
    try:
        generation = LocalGeneration()
        providers = software_providers(keystore, generation)
        restarted = build_services(
            fresh_db, keystore, stack.clock, generation, cache_ttl=0.0, providers=providers
        )
        restarted.key_import.import_material(stack.ctx(), key_id, token, encrypted, None)
    finally:
        fresh_db.dispose()
    assert _state(stack, key_id) is KeyState.ENABLED


def test_a_token_row_altered_in_storage_is_refused(stack: Stack) -> None:
    key_id = _external(stack)
    token, encrypted = _wrapped(stack, key_id, os.urandom(32))
    token_id = token.split(".")[1]
    with stack.services.db.unit_of_work(write=True) as uow:
        uow.connection.execute(
            update(import_tokens)
            .where(import_tokens.c.token_id == token_id)
            .values(expires_at=stack.clock.now() + timedelta(days=365))
        )
    with pytest.raises(InvalidImportToken):
        stack.services.key_import.import_material(stack.ctx(), key_id, token, encrypted, None)
    assert _state(stack, key_id) is KeyState.PENDING_IMPORT


async def _run_jobs(stack: Stack) -> list[tuple[str, str | None, str]]:
    sink = MemoryAuditSink()
    scheduler = job_scheduler(stack.services, sink, interval=60)
    await scheduler.run_once()
    await scheduler.stop()
    return [(e.action, e.key_id, e.result) for e in sink.events]


def test_the_expiry_job_destroys_material_and_the_same_material_restores_it(stack: Stack) -> None:
    services = stack.services
    key_id, keeper = _external(stack), _external(stack)
    material = os.urandom(32)
    token, encrypted = _wrapped(stack, key_id, material)
    expire = int((stack.clock.now() + timedelta(days=1)).timestamp())
    services.key_import.import_material(stack.ctx(), key_id, token, encrypted, expire)
    token2, encrypted2 = _wrapped(stack, keeper, os.urandom(32))
    services.key_import.import_material(stack.ctx(), keeper, token2, encrypted2, None)
    blob = services.crypto.encrypt(stack.ctx(), key_id, b"before expiry", None).value.blob
    stack.clock.advance(timedelta(hours=23))
    assert services.key_import.due_for_expiry() == []
    assert expire_due_material(services) == []
    stack.clock.advance(timedelta(hours=2))
    assert asyncio.run(_run_jobs(stack)) == [("DeleteKeyMaterial", key_id, "Success")]
    assert _state(stack, key_id) is KeyState.PENDING_IMPORT
    assert _state(stack, keeper) is KeyState.ENABLED
    with services.db.unit_of_work() as uow:
        assert uow.keys.versions(key_id) == []
        key = uow.keys.get(key_id)
    assert key is not None and key.material_expire_time is None
    with pytest.raises(InvalidCiphertext):  # its version holds no material
        services.crypto.decrypt(stack.ctx(), blob, None)
    # other material is refused; the same material brings the old ciphertext back
    token, other = _wrapped(stack, key_id, os.urandom(32))
    with pytest.raises(IncorrectKeyMaterial):
        services.key_import.import_material(stack.ctx(), key_id, token, other, None)
    assert _state(stack, key_id) is KeyState.PENDING_IMPORT
    token, encrypted = _wrapped(stack, key_id, material)
    services.key_import.import_material(stack.ctx(), key_id, token, encrypted, None)
    assert services.crypto.decrypt(stack.ctx(), blob, None).value.plaintext.reveal() == b"before expiry"


def test_deleting_an_external_key_destroys_its_tokens_and_record(stack: Stack) -> None:
    services = stack.services
    key_id = _external(stack)
    _wrapped(stack, key_id, os.urandom(32))
    services.lifecycle.schedule_deletion(stack.ctx(), key_id, 7)
    services.lifecycle.cancel_deletion(stack.ctx(), key_id)
    assert _state(stack, key_id) is KeyState.PENDING_IMPORT  # still no material to use
    services.lifecycle.schedule_deletion(stack.ctx(), key_id, 7)
    stack.clock.advance(timedelta(days=8))
    assert ("DeleteKey", key_id, "Success") in asyncio.run(_run_jobs(stack))
    with services.db.unit_of_work() as uow:
        for table in (import_tokens, key_imports, key_versions):
            assert uow.connection.execute(select(table).where(table.c.key_id == key_id)).first() is None


def test_the_default_key_slot_takes_imported_material(stack: Stack) -> None:
    services = stack.services
    key = services.keys.create_key(stack.ctx(), CreateKeyRequest(origin="EXTERNAL")).value
    assert key.instance_id is None and key.state is KeyState.PENDING_IMPORT
    token, encrypted = _wrapped(stack, key.key_id, os.urandom(32))
    services.key_import.import_material(stack.ctx(), key.key_id, token, encrypted, None)
    blob = services.crypto.encrypt(stack.ctx(), key.key_id, b"default", None).value.blob
    assert services.crypto.decrypt(stack.ctx(), blob, None).value.plaintext.reveal() == b"default"


def test_a_key_pending_deletion_takes_no_material(stack: Stack) -> None:
    services = stack.services
    key_id = _external(stack)
    material = os.urandom(32)
    token, encrypted = _wrapped(stack, key_id, material)
    services.lifecycle.schedule_deletion(stack.ctx(), key_id, 7)
    with pytest.raises(InvalidKeyState):
        services.key_import.import_material(stack.ctx(), key_id, token, encrypted, None)
    with pytest.raises(InvalidKeyState):
        services.key_import.get_parameters(stack.ctx(), key_id, OAEP, "RSA_2048")
    with pytest.raises(InvalidKeyState):
        services.key_import.delete_material(stack.ctx(), key_id)
    assert _state(stack, key_id) is KeyState.PENDING_DELETION
    with services.db.unit_of_work() as uow:
        record = uow.imports.record(key_id)
    assert record is not None and record[1] is None  # no material was recorded


def test_importing_the_same_material_again_keeps_the_version(stack: Stack) -> None:
    services = stack.services
    key_id = _external(stack)
    material = os.urandom(32)
    token, encrypted = _wrapped(stack, key_id, material)
    services.key_import.import_material(stack.ctx(), key_id, token, encrypted, None)
    with services.db.unit_of_work() as uow:
        before = uow.keys.versions(key_id)
    stack.clock.advance(timedelta(days=3))
    expire = int((stack.clock.now() + timedelta(days=30)).timestamp())
    token, encrypted = _wrapped(stack, key_id, material)
    services.key_import.import_material(stack.ctx(), key_id, token, encrypted, expire)
    with services.db.unit_of_work() as uow:
        after = uow.keys.versions(key_id)
        key = uow.keys.get(key_id)
    assert [v.version for v in after] == [v.version for v in before]  # same id, same creation date
    assert after[0].wrapped_material != before[0].wrapped_material  # wrapped afresh
    assert key is not None and key.material_expire_time is not None
