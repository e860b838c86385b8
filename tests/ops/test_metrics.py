"""What a node tells its operators: `/metrics` (Prometheus text, summed over two workers), `/readyz`
and `/healthz`, and JSON log lines. Live servers on SQLite, driven through the official SDK."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from openkms.node.nonces import SharedNonceStore
from tests.conftest import POSTGRES_ADMIN_URL, new_postgres_database
from tests.support.products import Caller
from tests.support.raw import send, signed_params
from tests.support.sdk import KmsCaller, KmsError
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Two workers (the metrics of both are summed), JSON logs."""
    server = LiveServer(
        tmp_path_factory.mktemp("metrics") / "data", workers=2, extra_args=["--log-format", "json"]
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def scrape(server: LiveServer) -> tuple[str, Samples]:
    response = httpx.get(f"{server.url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape_until(server: LiveServer, ready: Callable[[Samples], bool]) -> tuple[str, Samples]:
    """Scrape until `ready` holds: cache tallies reach the node's counters within a second or so."""
    deadline = time.monotonic() + 15
    while True:
        text, samples = scrape(server)
        if ready(samples) or time.monotonic() > deadline:
            return text, samples
        time.sleep(0.2)


def test_metrics_count_requests_by_action_and_code_and_name_no_tenant(node: LiveServer) -> None:
    kms = KmsCaller("tea-acs3", node.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    ram = Caller("ram", node.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    sts = Caller("sts", node.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    account_id = str(sts.call("GetCallerIdentity")["AccountId"])
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    key_id = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
    encrypts = 6
    for _ in range(encrypts):
        blob = kms.call("Encrypt", KeyId=key_id, Plaintext="counted")["CiphertextBlob"]
    kms.call("Decrypt", CiphertextBlob=blob)

    user = f"metrics-{uuid.uuid4().hex[:8]}"
    ram.call("CreateUser", UserName=user)
    access = ram.call("CreateAccessKey", UserName=user)["AccessKey"]
    stranger = KmsCaller("tea-acs3", node.endpoint, access["AccessKeyId"], access["AccessKeySecret"])
    with pytest.raises(KmsError) as denied:
        stranger.call("Encrypt", KeyId=key_id, Plaintext="not yours")
    assert denied.value.code == "Forbidden.NoPermission"
    wrong_secret = KmsCaller("tea-acs3", node.endpoint, ACCESS_KEY_ID, "not-the-secret-0123456789")
    with pytest.raises(KmsError) as forged:
        wrong_secret.call("Encrypt", KeyId=key_id, Plaintext="forged")
    # A signed request for an action of the client's own naming: its label must not be that name.
    made_up = f"Leak{key_id.replace('-', '')}"
    refused = send(node.url, signed_params(made_up, ACCESS_KEY_ID, ACCESS_KEY_SECRET))
    assert refused.status_code == 404

    rpc = {"door": "rpc"}
    expected = [  # (labels, at least): each worker's counts reach the node's within a second
        ({**rpc, "action": "Encrypt", "code": "Success"}, encrypts),
        ({**rpc, "action": "Decrypt", "code": "Success"}, 1),
        ({**rpc, "action": "ram:CreateUser", "code": "Success"}, 1),
        ({**rpc, "action": "Encrypt", "code": "Forbidden.NoPermission"}, 1),
        ({**rpc, "action": "Encrypt", "code": forged.value.code}, 1),
        ({**rpc, "action": "other", "code": refused.json()["Code"]}, 1),
    ]

    def settled(samples: Samples) -> bool:
        hits = value(samples, "openkms_cache_lookups_total", cache="keys", result="hit")
        return hits > 0 and all(
            value(samples, "openkms_requests_total", **labels) >= least for labels, least in expected
        )

    text, samples = scrape_until(node, settled)
    for labels, least in expected:
        assert value(samples, "openkms_requests_total", **labels) >= least, labels
    # Latency by action and code: a histogram whose count is the requests'.
    encrypt = {**rpc, "action": "Encrypt", "code": "Success"}
    assert value(samples, "openkms_request_duration_seconds_count", **encrypt) >= encrypts
    assert value(samples, "openkms_request_duration_seconds_bucket", **encrypt, le="+Inf") >= encrypts
    assert value(samples, "openkms_request_duration_seconds_sum", **encrypt) > 0
    # The audit log's group commits, the caches, the replay cache, the job loop.
    assert value(samples, "openkms_audit_batch_records_count") >= 1
    assert value(samples, "openkms_audit_batch_records_sum") >= encrypts
    assert value(samples, "openkms_audit_sync_seconds_count") >= 1
    assert value(samples, "openkms_cache_lookups_total", cache="keys", result="hit") > 0
    assert value(samples, "openkms_cache_lookups_total", cache="credentials", result="miss") > 0
    assert value(samples, "openkms_replay_cache_entries") >= encrypts
    assert value(samples, "openkms_replay_cache_slots") == 65536
    assert value(samples, "openkms_job_runs_total", result="ok") >= 1
    assert value(samples, "openkms_sealed") == 0
    assert "openkms_coherence_delay_seconds_count" in text
    assert "openkms_key_store_backends" in text
    # Nothing that names a tenant: no key id, account, access key id, user name, or what a client sent.
    for secret_or_id in (key_id, account_id, ACCESS_KEY_ID, access["AccessKeyId"], user, made_up,
                         ACCESS_KEY_SECRET, access["AccessKeySecret"], instance):  # fmt: skip
        assert secret_or_id not in text


def test_metrics_are_the_nodes_whichever_worker_answers(node: LiveServer) -> None:
    kms = KmsCaller("tea-rpc", node.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    labels = {"door": "rpc", "action": "DescribeRegions", "code": "Success"}  # called by no other test
    for _ in range(4):
        kms.call("DescribeRegions")
    # Each worker adds its counts to the node's within a second; then every scrape, whichever worker
    # answers it (new connections spread over both, SO_REUSEPORT), sums both workers' files.
    scrape_until(node, lambda samples: value(samples, "openkms_requests_total", **labels) == 4)
    for _ in range(6):
        assert value(scrape(node)[1], "openkms_requests_total", **labels) == 4


def test_readyz_and_healthz_when_ready(node: LiveServer) -> None:
    ready = httpx.get(f"{node.url}/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"unsealed": "ok", "database": "ok", "audit": "ok"}}
    assert httpx.get(f"{node.url}/healthz", timeout=10).status_code == 200


def test_log_lines_are_json(node: LiveServer) -> None:
    lines = [line for line in node.log().splitlines() if line.strip()]
    assert len(lines) > 5
    records = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= record.keys() for record in records)
    assert any(f"listening on http://{node.endpoint}" in record["message"] for record in records)
    assert not any("color_message" in record for record in records)


def test_a_sealed_node_is_alive_but_not_ready(tmp_path: Path) -> None:
    passphrase = "metrics and readiness"
    server = LiveServer(tmp_path / "data", extra_env={"OPENKMS_SEAL": "passphrase"})
    server.start(wait_ready=False)
    try:
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        sealed = httpx.get(f"{server.url}/readyz", timeout=10)
        assert sealed.status_code == 503
        assert sealed.json()["checks"] == {"unsealed": "sealed", "database": "ok", "audit": "ok"}
        _, samples = scrape(server)
        assert value(samples, "openkms_sealed") == 1

        env = {**os.environ, "OPENKMS_UNSEAL_PASSPHRASE": passphrase, "OPENKMS_SEAL": "passphrase"}
        unsealed = subprocess.run(
            [sys.executable, "-m", "openkms.cli", "unseal", "--data-dir", str(server.data_dir)],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert unsealed.returncode == 0, unsealed.stdout + unsealed.stderr
        server.wait(ready=True)
        assert httpx.get(f"{server.url}/readyz", timeout=10).json()["status"] == "ready"
        assert passphrase not in server.log()
    finally:
        server.stop()


@pytest.mark.postgres
def test_readyz_names_a_database_that_is_gone(tmp_path: Path) -> None:
    url = new_postgres_database()
    server = LiveServer(tmp_path / "data", database_url=url)
    server.start()
    try:
        assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        gone = httpx.get(f"{server.url}/readyz", timeout=10)
        assert gone.status_code == 503
        assert gone.json()["checks"] == {"unsealed": "ok", "database": "unreachable", "audit": "ok"}
        assert name not in gone.text
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
    finally:
        server.stop()


def test_the_replay_cache_fill_counts_live_entries_only(tmp_path: Path) -> None:
    with SharedNonceStore(tmp_path / "nonces.shm", slots=4096) as store:
        now = 1_000_000.0
        for index in range(30):
            store.remember("LTAIfill", f"n{index}", now + 600, now, account=f"acct-{index % 3}")
        store.remember("LTAIfill", "short", now + 60, now, account="acct-0")
        assert store.live_entries(now) == 31
        assert store.live_entries(now + 200) == 30  # the short one's bucket has passed
        assert store.live_entries(now + 700) == 0


def test_a_flushed_meter_is_a_prometheus_histogram_of_its_requests() -> None:
    """The meter adds to plain numbers and `flush` moves them into the counter and the histogram
    (buckets are "less than or equal", exposed cumulative)."""
    from prometheus_client import REGISTRY

    from openkms.metrics import RequestMeter, flush

    meter = RequestMeter(frozenset({"Probe"}))
    labels = {"door": f"test-{uuid.uuid4().hex[:6]}", "action": meter.bounded("Probe"), "code": "Success"}
    for seconds in (0.0001, 0.0005, 0.003, 20.0):
        meter.record(labels["door"], labels["action"], labels["code"], seconds)
    assert REGISTRY.get_sample_value("openkms_requests_total", labels) == 0  # not before a flush
    flush()
    flush()  # a second flush adds nothing

    def sample(name: str, **more: str) -> float | None:
        return REGISTRY.get_sample_value(name, {**labels, **more})

    assert sample("openkms_requests_total") == 4
    assert sample("openkms_request_duration_seconds_count") == 4
    assert sample("openkms_request_duration_seconds_bucket", le="0.0005") == 2
    assert sample("openkms_request_duration_seconds_bucket", le="0.005") == 3
    assert sample("openkms_request_duration_seconds_bucket", le="10.0") == 3
    assert sample("openkms_request_duration_seconds_bucket", le="+Inf") == 4
    assert sample("openkms_request_duration_seconds_sum") == pytest.approx(20.0036)
    assert meter.bounded("Leak-key-123") == "other"
