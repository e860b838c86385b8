"""The SDK suites of symmetric and asymmetric keys (tests/api/test_crypto.py, test_asymmetric.py,
test_csr.py, test_data_key_export.py, test_lifecycle.py), run unchanged against keys of the hardware
instance: the suites take their instance from `suite_instance_id`, overridden here."""

from __future__ import annotations

import pytest

from tests.api.test_asymmetric import *  # noqa: F403
from tests.api.test_crypto import *  # noqa: F403
from tests.api.test_csr import *  # noqa: F403
from tests.api.test_data_key_export import *  # noqa: F403
from tests.keystores.conftest import KeyStores


@pytest.fixture(scope="module")
def suite_instance_id(key_stores: KeyStores) -> str:
    return key_stores.hardware
