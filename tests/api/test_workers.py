"""Several worker processes on one node behave as one server: a nonce is spent once across all of
them (P15 within a node), and a change made through one worker reaches every worker's caches. The
workers share the connections (each listens on its own SO_REUSEPORT socket), and one that dies is
replaced."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
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
    _wait_for_workers(server, lambda pids: len(pids) == 2)
    yield server
    server.stop()


def _wait_for_workers(server: LiveServer, done: Callable[[set[int]], bool], timeout: float = 60) -> set[int]:
    """Ask fresh connections which worker holds them until `done(pids)` (a worker answers once it
    listens; `LiveServer.start` returns when the first one does)."""
    deadline = time.monotonic() + timeout
    pids: set[int] = set()
    while True:
        try:
            pids = set(_pids_of_simultaneous_connections(server, 16))
        except (OSError, AssertionError, ValueError):
            pids = set()  # a connection hit a worker that was stopped or stopping: ask again
        if done(pids):
            return pids
        assert time.monotonic() < deadline, f"workers answering: {pids}"
        time.sleep(0.2)


def _fresh_connection_post(server: LiveServer, params: dict[str, str]) -> httpx.Response:
    with httpx.Client(timeout=30) as client:  # a new connection each time, so the workers share the load
        return client.post(server.url + "/", data=params)


def test_both_workers_answer(two_workers: LiveServer) -> None:
    pids = set()
    for _ in range(ATTEMPTS):
        with httpx.Client(timeout=30) as client:
            pids.add(client.get(two_workers.url + "/healthz").json()["pid"])
    assert len(pids) == 2


def _pids_of_simultaneous_connections(server: LiveServer, count: int) -> Counter[int]:
    """Open `count` keep-alive connections at once (as a load generator or a client pool does),
    then ask each which worker holds it."""
    connections = [socket.create_connection(("127.0.0.1", server.port), timeout=20) for _ in range(count)]
    try:
        pids: Counter[int] = Counter()
        for conn in connections:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        for conn in connections:
            with conn.makefile("rb") as answer:
                assert answer.readline().startswith(b"HTTP/1.1 200")
                length = 0
                while (line := answer.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                pids[httpx.Response(200, content=answer.read(length)).json()["pid"]] += 1
        return pids
    finally:
        for conn in connections:
            conn.close()


def test_a_burst_of_connections_is_spread_over_both_workers(two_workers: LiveServer) -> None:
    # With one shared listening socket, the first worker to wake could accept the whole burst.
    pids = _pids_of_simultaneous_connections(two_workers, 32)
    assert len(pids) == 2
    assert min(pids.values()) >= 4, pids  # a fair split fails this about once in 400,000 runs


def test_a_worker_that_dies_is_replaced(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data", workers=2).start()
    try:
        victim = next(iter(_wait_for_workers(server, lambda pids: len(pids) == 2)))
        os.kill(victim, signal.SIGKILL)
        _wait_for_workers(server, lambda pids: len(pids) == 2 and victim not in pids)
        assert "exited with -9; starting another" in server.log()
        params = signed_params("DescribeRegions", ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        assert _fresh_connection_post(server, params).status_code == 200
    finally:
        server.stop()
    assert server.process is not None and server.process.returncode == 0


def test_a_hung_worker_is_killed_and_replaced(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data", workers=2).start()
    victim = 0
    try:
        victim = next(iter(_wait_for_workers(server, lambda pids: len(pids) == 2)))
        os.kill(victim, signal.SIGSTOP)  # alive, but answers nothing: its connections would hang
        _wait_for_workers(server, lambda pids: len(pids) == 2 and victim not in pids, timeout=90)
        assert "does not answer; killing it" in server.log()
        assert not _alive(victim)
    finally:
        if _alive(victim):
            os.kill(victim, signal.SIGKILL)
        server.stop()


def test_workers_stop_when_the_supervisor_dies(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data", workers=2).start()
    pids = _wait_for_workers(server, lambda pids: len(pids) == 2)
    assert server.process is not None
    server.process.kill()  # no chance to stop its workers itself
    server.process.wait()
    try:
        deadline = time.monotonic() + 60
        while any(_alive(pid) for pid in pids):
            assert time.monotonic() < deadline, "workers outlived their supervisor"
            time.sleep(0.2)
    finally:
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:  # a zombie waits for its parent to collect it
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


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
        server.start()  # a restart: the clean stop gave the memory back; the audit log refills it
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
