"""Material made in a token is kept only with its version: `service/backend_material.py` on the real
hardware provider (a failed transaction or a rotation that was not due leaves no orphan object, and
destruction reaches the token)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from openkms.domain.instance import Instance
from openkms.providers.base import NewVersion
from openkms.providers.hardware import HardwareProvider, parse_reference
from openkms.providers.registry import ProviderRegistry
from openkms.service.backend_material import NewMaterial, destroy_in_backend
from openkms.testing.softhsm import SoftHsmToken
from openkms.types import (
    AccountId,
    InstanceId,
    InstanceKind,
    KeyId,
    KeySpec,
    KeyUsage,
    KeyVersionId,
    RegionId,
)


@pytest.fixture
def registry(hardware: HardwareProvider) -> ProviderRegistry:
    made = ProviderRegistry()
    made.register_factory(InstanceKind.HARDWARE, lambda instance, secret: hardware)
    return made


INSTANCE = Instance(
    InstanceId("kst-backend"),
    AccountId("1"),
    RegionId("cn-hangzhou"),
    InstanceKind.HARDWARE,
    "hsm",
    datetime(2026, 1, 1, tzinfo=UTC),
    0,
)


def _new(spec: KeySpec = KeySpec.ALIYUN_AES_256) -> NewVersion:
    usages = (KeyUsage.ENCRYPT_DECRYPT,) if spec.value.startswith("Aliyun") else (KeyUsage.SIGN_VERIFY,)
    return NewVersion(KeyId(f"key-{uuid.uuid4().hex[:8]}"), KeyVersionId(str(uuid.uuid4())), spec, usages)


def test_material_not_kept_is_destroyed_and_kept_material_stays(
    registry: ProviderRegistry, softhsm: SoftHsmToken
) -> None:
    with pytest.raises(RuntimeError), NewMaterial(registry, INSTANCE, _new()) as failed:
        failed_id = parse_reference(failed.stored)[1]
        assert failed_id in softhsm.object_ids()
        raise RuntimeError("the transaction failed")
    assert failed_id not in softhsm.object_ids()
    with NewMaterial(registry, INSTANCE, _new(KeySpec.EC_P256)) as skipped:  # e.g. a rotation not due
        skipped_id = parse_reference(skipped.stored)[1]
    assert skipped_id not in softhsm.object_ids()
    with NewMaterial(registry, INSTANCE, _new()) as kept:
        kept.keep()
    kept_id = parse_reference(kept.stored)[1]
    assert kept_id in softhsm.object_ids()
    new = _new()
    destroy_in_backend(registry, INSTANCE, new.key_id, new.spec, [(new.version_id, kept.stored)])
    assert kept_id not in softhsm.object_ids()
    destroy_in_backend(
        registry, None, new.key_id, new.spec, [(new.version_id, kept.stored)]
    )  # software: nothing
