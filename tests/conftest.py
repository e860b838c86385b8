"""Shared fixtures: live servers on SQLite and PostgreSQL, and SDK callers in every signing mode."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from openkms.service.replay import node_memory_dir
from openkms.testing.softhsm import SoftHsmToken, make_token
from tests.support.products import Caller
from tests.support.sdk import SIGNING_MODES, KmsCaller
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, STARTED_DATA_DIRS, LiveServer

POSTGRES_ADMIN_URL = os.environ.get("OPENKMS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


# Databases made by `new_postgres_database`, dropped when the session ends (`_drop_postgres_databases`).
_MADE_DATABASES: list[str] = []


@pytest.fixture(scope="session", autouse=True)
def _drop_postgres_databases() -> Iterator[None]:
    """Every database `new_postgres_database` made goes at the end, whichever test made it."""
    yield
    if not _MADE_DATABASES:
        return
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        for name in _MADE_DATABASES:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", autouse=True)
def _release_node_memory() -> Iterator[None]:
    """Test servers keep their replay cache in /dev/shm; give that memory back at the end."""
    yield
    for data_dir in STARTED_DATA_DIRS:
        shutil.rmtree(node_memory_dir(data_dir), ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    name = f"openkms_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES_ADMIN_URL} is required for the API suite: {exc}")
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{base}/{name}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def new_postgres_database() -> str:
    """A further fresh database (for tests that need an empty store); dropped at the end of the session
    (`DROP ... IF EXISTS`: a test may drop it sooner)."""
    name = f"openkms_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    _MADE_DATABASES.append(name)
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def server(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LiveServer]:
    database_url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    live = LiveServer(tmp_path_factory.mktemp(f"server-{backend}") / "data", database_url=database_url)
    live.start()
    yield live
    live.stop()


@pytest.fixture(params=SIGNING_MODES)
def kms(request: pytest.FixtureRequest, server: LiveServer) -> KmsCaller:
    return KmsCaller(str(request.param), server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)


@pytest.fixture
def ram(server: LiveServer) -> Caller:
    """The root account's RAM client."""
    return Caller("ram", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)


@pytest.fixture
def account_id(server: LiveServer) -> str:
    """The root account's id, as STS GetCallerIdentity says it."""
    sts = Caller("sts", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    return str(sts.call("GetCallerIdentity")["AccountId"])


@pytest.fixture(scope="session")
def suite_instance_id(server: LiveServer) -> str:
    """The instance the key suites make their keys in: the account's software instance here; the
    suites of hardware and external keys (tests/keystores) override it with theirs."""
    caller = KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    instances = caller.call("ListKmsInstances")["KmsInstances"]["KmsInstance"]
    return str(instances[0]["KmsInstanceId"])


@pytest.fixture
def instance_id(suite_instance_id: str) -> str:
    return suite_instance_id


@pytest.fixture
def key_id(kms: KmsCaller, instance_id: str) -> str:
    created = kms.call("CreateKey", DKMSInstanceId=instance_id, Description="test key")
    return str(created["KeyMetadata"]["KeyId"])


@pytest.fixture(scope="session")
def softhsm_tokens(tmp_path_factory: pytest.TempPathFactory) -> tuple[SoftHsmToken, SoftHsmToken]:
    """The SoftHSM2 tokens of the whole test session, made before anything in this process loads the
    module: SoftHSM2 lists its tokens once, when a process initialises it, so a token made later would
    be invisible here. The first is everyone's; the second is logged in to by no pool until the test
    of a wrong PIN (PKCS#11 login belongs to the process)."""
    folder = tmp_path_factory.mktemp("softhsm")
    return make_token(folder, label="openkms-tests"), make_token(folder, label="openkms-wrong-pin")


@pytest.fixture(scope="session")
def softhsm(softhsm_tokens: tuple[SoftHsmToken, SoftHsmToken]) -> SoftHsmToken:
    return softhsm_tokens[0]
