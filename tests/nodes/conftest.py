"""Two nodes on one PostgreSQL store, behind a balancer that alternates every request between them.

Node A makes the store (first start); node B joins it with a copy of A's root key file, the same
database and the same root access key, as an operator adds a node. Both run the jobs loop each
second with a 3-second jobs lease, so failover is quick to observe. The `server` fixture is the
balancer (with node A's data dir and database URL, for the suites' CLI calls), so the SDK suites run
unchanged with their requests alternating between the nodes."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import new_postgres_database
from tests.support.balancer import Balancer
from tests.support.sdk import KmsCaller
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

NODE_ENV = {"OPENKMS_JOB_INTERVAL_SECONDS": "1", "OPENKMS_JOB_LEASE_SECONDS": "3"}


@dataclass
class Nodes:
    a: LiveServer
    b: LiveServer
    balancer: Balancer

    def caller(self, node: LiveServer, mode: str = "tea-acs3") -> KmsCaller:
        return KmsCaller(mode, node.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)

    def stop(self) -> None:
        self.balancer.stop()
        self.a.stop()
        self.b.stop()


def start_nodes(base: Path, *, env: dict[str, str] | None = None) -> Nodes:
    database_url = new_postgres_database()
    extra = {**NODE_ENV, **(env or {})}
    a = LiveServer(base / "node-a", database_url=database_url, extra_env=extra).start()
    joining = base / "node-b"
    joining.mkdir(parents=True, mode=0o700)
    shutil.copy2(a.data_dir / "root.key", joining / "root.key")
    b = LiveServer(joining, database_url=database_url, extra_env=extra).start()
    balancer = Balancer([a.port, b.port]).start()
    return Nodes(a, b, balancer)


@pytest.fixture(scope="session")
def nodes(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[Nodes]:
    started = start_nodes(tmp_path_factory.mktemp("nodes"))
    yield started
    started.stop()


@pytest.fixture(scope="session")
def server(nodes: Nodes) -> LiveServer:
    """The store as the suites see it: the balancer's address, node A's files."""
    return dataclasses.replace(nodes.a, port=nodes.balancer.port)


@pytest.fixture(scope="session")
def suite_instance_id(server: LiveServer) -> str:
    """The software instance of the nodes' store (the session's other stores have their own)."""
    caller = KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    instances = caller.call("ListKmsInstances")["KmsInstances"]["KmsInstance"]
    return str(instances[0]["KmsInstanceId"])
