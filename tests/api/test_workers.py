"""Several worker processes on one node behave as one server: a nonce is spent once across all of
them (P15 within a node), and a change made through one worker reaches every worker's caches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.raw import signed_params
from tests.support.sdk import KmsCaller, KmsError
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

ATTEMPTS = 40


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("workers") / "data", workers=2).start()
    yield server
    server.stop()


def _fresh_connection_post(server: LiveServer, params: dict[str, str]) -> httpx.Response:
    with httpx.Client(timeout=30) as client:  # a new connection each time, so the workers share the load
        return client.post(server.url + "/", data=params)


def test_both_workers_answer(two_workers: LiveServer) -> None:
    pids = set()
    for _ in range(ATTEMPTS):
        with httpx.Client(timeout=30) as client:
            pids.add(client.get(two_workers.url + "/healthz").json()["pid"])
    assert len(pids) == 2


def test_a_nonce_is_spent_once_across_workers(two_workers: LiveServer) -> None:
    params = signed_params("DescribeRegions", ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    codes = [_fresh_connection_post(two_workers, params).status_code for _ in range(ATTEMPTS)]
    assert codes.count(200) == 1
    assert codes.count(400) == ATTEMPTS - 1


def test_disabling_a_key_reaches_every_worker_at_once(two_workers: LiveServer) -> None:
    kms = KmsCaller("tea-acs3", two_workers.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    key_id = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
    for _ in range(ATTEMPTS):  # warm both workers' caches with the Enabled record
        params = signed_params("Encrypt", ACCESS_KEY_ID, ACCESS_KEY_SECRET, KeyId=key_id, Plaintext="x")
        assert _fresh_connection_post(two_workers, params).status_code == 200
    kms.call("DisableKey", KeyId=key_id)
    for _ in range(ATTEMPTS):
        params = signed_params("Encrypt", ACCESS_KEY_ID, ACCESS_KEY_SECRET, KeyId=key_id, Plaintext="x")
        response = _fresh_connection_post(two_workers, params)
        assert (response.status_code, response.json()["Code"]) == (400, "Rejected.Disabled")
    with pytest.raises(KmsError):
        kms.call("Encrypt", KeyId=key_id, Plaintext="x")


def test_replay_protection_survives_a_restart_and_a_reboot(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data").start()
    try:
        params = signed_params("DescribeRegions", ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        assert _fresh_connection_post(server, params).status_code == 200
        server.stop()
        server.start()  # a restart: the workers attach to the node's replay cache again
        assert _fresh_connection_post(server, params).json()["Code"] == "SignatureNonceUsed"
        server.stop()
        server.forget_node_memory()  # a reboot: the cache is rebuilt from the audit log
        server.start()
        assert _fresh_connection_post(server, params).json()["Code"] == "SignatureNonceUsed"
        assert "replay cache rebuilt" in server.log()
        fresh = signed_params("DescribeRegions", ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        assert _fresh_connection_post(server, fresh).status_code == 200
    finally:
        server.stop()
        server.forget_node_memory()
