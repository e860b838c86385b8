"""Asymmetric use cases over real services on SQLite: every version of a key pair keeps its own public
key and signs for itself, and a version is found only under its own key.

Issue 3 brings CreateKeyVersion; until then the second version is stored the way it will store one (a
new key pair from the provider, added through the repository), so this suite is ready for it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from openkms.clock import SystemClock
from openkms.domain.key import KeyVersion
from openkms.errors import KeyVersionNotFound, SignatureInvalid
from openkms.keystore import Keystore
from openkms.node.generation import LocalGeneration
from openkms.providers.base import NewVersion
from openkms.providers.software import SoftwareProvider
from openkms.repository.database import Database
from openkms.repository.migrate import upgrade_to_head
from openkms.service.bootstrap import bootstrap_store
from openkms.service.container import Services, build_services, software_providers
from openkms.service.context import Principal, RequestContext
from openkms.service.keys import CreateKeyRequest
from openkms.testing.keyring import MemoryKeyringStore, StaticRoot
from openkms.types import KeyVersionId, RegionId

REGION = RegionId("cn-hangzhou")
DIGEST = hashlib.sha256(b"versions").digest()


@dataclass
class World:
    services: Services
    keystore: Keystore
    ctx: RequestContext
    instance_id: str

    def add_version(self, key_id: str, seq: int) -> KeyVersionId:
        """Store a new key-pair version the way CreateKeyVersion will."""
        key = self.services.keys.describe_key(self.ctx, key_id).value
        version_id = KeyVersionId(str(uuid.uuid4()))
        wrapped = SoftwareProvider(self.keystore).generate_key_pair(
            NewVersion(key.key_id, version_id, key.spec)
        )
        with self.services.db.unit_of_work(write=True) as uow:
            uow.keys.add_version(KeyVersion(key.key_id, version_id, SystemClock().now()), seq, wrapped)
        return version_id


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    db = Database(f"sqlite:///{tmp_path / 'openkms.db'}")
    upgrade_to_head(db.engine)
    clock = SystemClock()
    account = bootstrap_store(db, (REGION,), clock)
    with db.unit_of_work() as uow:
        instance_id = uow.instances.in_region(account, REGION)[0].instance_id
    keystore = Keystore(StaticRoot(), MemoryKeyringStore())
    keystore.unseal()
    generation = LocalGeneration()
    services = build_services(
        db, keystore, clock, generation, cache_ttl=60, providers=software_providers(keystore, generation)
    )
    ctx = RequestContext(uuid.uuid4().hex, Principal(account, "root"), REGION)
    yield World(services, keystore, ctx, instance_id)
    db.dispose()


def test_each_version_has_its_own_key_pair(world: World) -> None:
    asymmetric = world.services.asymmetric
    key = world.services.keys.create_key(
        world.ctx, CreateKeyRequest(key_spec="EC_P256", instance_id=world.instance_id)
    ).value
    assert key.primary_version_id is not None
    first = key.primary_version_id
    second = world.add_version(key.key_id, 2)
    _, first_pem = asymmetric.get_public_key(world.ctx, key.key_id, first).value
    used, second_pem = asymmetric.get_public_key(world.ctx, key.key_id, second).value
    assert (used.key_id, used.version_id) == (key.key_id, second)
    assert first_pem != second_pem
    assert serialization.load_pem_public_key(second_pem.encode()) is not None

    _, signature = asymmetric.sign(world.ctx, key.key_id, first, "ECDSA_SHA_256", DIGEST).value
    asymmetric.verify(world.ctx, key.key_id, first, "ECDSA_SHA_256", DIGEST, signature)
    with pytest.raises(SignatureInvalid):
        asymmetric.verify(world.ctx, key.key_id, second, "ECDSA_SHA_256", DIGEST, signature)


def test_a_version_is_found_only_under_its_own_key(world: World) -> None:
    request = CreateKeyRequest(key_spec="EC_P256K", instance_id=world.instance_id)
    one = world.services.keys.create_key(world.ctx, request).value
    other = world.services.keys.create_key(world.ctx, request).value
    assert other.primary_version_id is not None
    with pytest.raises(KeyVersionNotFound):
        world.services.asymmetric.get_public_key(world.ctx, one.key_id, other.primary_version_id)
    with pytest.raises(KeyVersionNotFound):
        world.services.asymmetric.sign(
            world.ctx, one.key_id, other.primary_version_id, "ECDSA_SHA_256", DIGEST
        )
