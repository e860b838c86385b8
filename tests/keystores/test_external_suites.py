"""The SDK suite of symmetric keys (tests/api/test_crypto.py, and the data-key export suite), run
unchanged against keys of the external instance (double encryption through `openkms xks-proxy`)."""

from __future__ import annotations

import pytest

from tests.api.test_crypto import *  # noqa: F403
from tests.api.test_data_key_export import *  # noqa: F403
from tests.keystores.conftest import KeyStores, extension_call
from tests.support.server import LiveServer


@pytest.fixture(scope="module")
def suite_instance_id(key_stores: KeyStores) -> str:
    return key_stores.external


@pytest.fixture
def key_id(server: LiveServer, suite_instance_id: str) -> str:
    """Keys of an external instance name their external key (OpenKMS's extension parameter)."""
    created = extension_call(
        server,
        "CreateKey",
        DKMSInstanceId=suite_instance_id,
        Description="test key",
        OpenKMSExternalKeyId="ext-key-1",
    )["KeyMetadata"]
    assert isinstance(created, dict)
    return str(created["KeyId"])
