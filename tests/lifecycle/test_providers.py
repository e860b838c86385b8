"""Keys are served by the provider of their instance's kind. A key in a kind of key store this server
has no provider for (a hardware instance, before the PKCS#11 provider exists) is refused with a clear
UnsupportedOperation that names the key, never a crash, and nothing of its material is touched."""

from __future__ import annotations

import pytest

from openkms.domain.key import Key, KeyVersion
from openkms.errors import UnsupportedOperation
from openkms.types import (
    CreatorType,
    InstanceId,
    InstanceKind,
    KeyId,
    KeySpec,
    KeyState,
    KeyUsage,
    KeyVersionId,
    Origin,
    ProtectionLevel,
)
from tests.lifecycle.conftest import REGION, Stack


def _hardware_key(stack: Stack) -> Key:
    """A key of a hardware instance, as a node with a PKCS#11 provider would have stored it."""
    now = stack.clock.now()
    instance_id = InstanceId("kst-hardware-test")
    key = Key(
        key_id=KeyId("key-hardware-test"),
        account_id=stack.account_id,
        region_id=REGION,
        instance_id=instance_id,
        spec=KeySpec.ALIYUN_AES_256,
        usage=KeyUsage.ENCRYPT_DECRYPT,
        origin=Origin.ALIYUN_KMS,
        protection_level=ProtectionLevel.HSM,
        state=KeyState.ENABLED,
        description="",
        creator=stack.account_id,
        creator_type=CreatorType.USER,
        primary_version_id=KeyVersionId("hardware-version-1"),
        created_at=now,
    )
    with stack.services.db.unit_of_work(write=True) as uow:
        uow.instances.add(instance_id, stack.account_id, REGION, InstanceKind.HARDWARE, "hsm", now)
        uow.keys.add(key, customer_master_key=False)
        uow.keys.add_version(KeyVersion(key.key_id, KeyVersionId("hardware-version-1"), now), 1, b"handle")
    return key


def test_a_key_of_a_kind_no_provider_serves_is_refused_by_name(stack: Stack) -> None:
    key = _hardware_key(stack)
    services = stack.services
    with pytest.raises(UnsupportedOperation, match="no provider for hardware key stores") as refused:
        services.crypto.encrypt(stack.ctx(), key.key_id, b"data", None)
    assert refused.value.resource is not None and refused.value.resource.key_id == key.key_id
    with pytest.raises(UnsupportedOperation, match="no provider for hardware key stores"):
        services.crypto.generate_data_key(stack.ctx(), key.key_id, 32, None, None)
    # what needs no provider still works
    assert services.keys.describe_key(stack.ctx(), key.key_id).value.state is KeyState.ENABLED
