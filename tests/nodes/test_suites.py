"""The official-SDK suites of keys, aliases, tags, lifecycle, import and identities, run unchanged
with every request alternating between two nodes of one PostgreSQL store (tests/nodes/conftest.py):
whatever node answers, the answer is the same."""

from __future__ import annotations

from tests.api.test_aliases import *  # noqa: F403
from tests.api.test_asymmetric import *  # noqa: F403
from tests.api.test_crypto import *  # noqa: F403
from tests.api.test_csr import *  # noqa: F403
from tests.api.test_data_key_export import *  # noqa: F403
from tests.api.test_identities import *  # noqa: F403
from tests.api.test_key_import import *  # noqa: F403
from tests.api.test_keys import *  # noqa: F403
from tests.api.test_lifecycle import *  # noqa: F403
from tests.api.test_sharing import *  # noqa: F403
from tests.api.test_tags import *  # noqa: F403
