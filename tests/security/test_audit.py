"""Audit before answer (P11-P13): one chained record per request, verified by `openkms audit verify`;
an audit log that cannot be written makes every request answer InternalFailure with no result."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from openkms.audit import JsonlAuditSink
from openkms.config import load_settings
from openkms.server.app import create_app
from tests.support.sdk import KmsCaller, KmsError
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer, free_port


def _kms(endpoint: str) -> KmsCaller:
    return KmsCaller("tea-acs3", endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)


def _audit_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openkms.cli", "audit", "verify", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_one_chained_record_per_request_and_the_verifier(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data").start()
    try:
        kms = _kms(server.endpoint)
        instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
        key_id = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
        kms.call("Encrypt", KeyId=key_id, Plaintext="audited")
        with pytest.raises(KmsError):
            kms.call("DescribeKey", KeyId="key-hzzmissing000000000000000")
        bad = KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, "wrong")
        with pytest.raises(KmsError):
            bad.call("DescribeRegions")
    finally:
        server.stop()

    files = sorted((server.data_dir / "audit").glob("*.jsonl"))
    assert len(files) == 1
    records = [json.loads(line) for line in files[0].read_text().splitlines()]
    requests = [r for r in records if r["action"] not in ("AuditLogOpened", "AuditChainKeyed")]
    assert [r["action"] for r in requests] == [
        "ListKmsInstances",
        "CreateKey",
        "Encrypt",
        "DescribeKey",
        "DescribeRegions",
    ]
    assert [r["result"] for r in requests] == [
        "Success",
        "Success",
        "Success",
        "Forbidden.KeyNotFound",
        "SignatureDoesNotMatch",
    ]
    encrypt = requests[2]
    assert encrypt["key_id"] == key_id and encrypt["key_version_id"]
    assert encrypt["principal"].startswith("acs:ram::") and encrypt["source_ip"] == "127.0.0.1"
    assert len({r["request_id"] for r in requests}) == 5
    assert "audited" not in files[0].read_text()

    ok = _audit_cli(str(server.data_dir / "audit"))
    assert ok.returncode == 0, ok.stdout + ok.stderr

    lines = files[0].read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if '"Encrypt"' in line)
    lines[at] = lines[at].replace('"Encrypt"', '"Decrypt"')
    files[0].write_text("".join(lines))
    broken = _audit_cli(str(files[0]), "--data-dir", str(server.data_dir))
    assert broken.returncode == 1
    assert f"line {at + 1}" in broken.stdout + broken.stderr


@contextmanager
def _in_process_server(data_dir: Path, audit_path: Path) -> Iterator[str]:
    """The real application in this process, with the audit log pointed at `audit_path`."""
    settings = load_settings(
        environ={
            "OPENKMS_DATA_DIR": str(data_dir),
            "OPENKMS_ROOT_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "OPENKMS_ROOT_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
        }
    )
    app = create_app(settings, audit=JsonlAuditSink(audit_path, fsync=True))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _key_count(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "openkms.db") as db:
        return int(db.execute("SELECT count(*) FROM keys").fetchone()[0])


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full to make writes fail")
def test_an_unwritable_audit_log_refuses_every_request(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = LiveServer(data_dir).start()
    kms = _kms(server.endpoint)
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    key_id = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
    blob = kms.call("Encrypt", KeyId=key_id, Plaintext="guarded")["CiphertextBlob"]
    server.stop()
    keys_before = _key_count(data_dir)

    with _in_process_server(data_dir, Path("/dev/full")) as endpoint:
        kms = _kms(endpoint)
        for action, params in [
            ("Decrypt", {"CiphertextBlob": blob}),
            ("GenerateDataKey", {"KeyId": key_id}),
            ("CreateKey", {"DKMSInstanceId": instance}),
            ("Encrypt", {"KeyId": key_id, "Plaintext": "x"}),
        ]:
            with pytest.raises(KmsError) as caught:
                kms.call(action, **params)
            assert (caught.value.code, caught.value.status) == ("InternalFailure", 500), action
        raw = httpx.post(f"http://{endpoint}/", timeout=10)
        assert raw.status_code == 500 and "guarded" not in raw.text and "Plaintext" not in raw.text
    assert _key_count(data_dir) == keys_before


def test_acknowledged_records_survive_a_crash_and_a_lost_log_tail(tmp_path: Path) -> None:
    """P11 through the ring: SIGKILL the server, then cut its log as a power loss may (the file's
    tail had not reached the disk). The next start copies every acknowledged record back."""
    server = LiveServer(tmp_path / "data").start()
    kms = _kms(server.endpoint)
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    key_id = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
    answered = [kms.call("Encrypt", KeyId=key_id, Plaintext=f"record {n}")["RequestId"] for n in range(12)]
    assert server.process is not None
    server.process.kill()
    server.process.wait()

    [log] = sorted((server.data_dir / "audit").glob("*.jsonl"))
    assert log.with_name(log.name + ".wal").exists()  # no clean close: the ring is still there
    content = log.read_bytes()
    log.write_bytes(content[: len(content) // 3 + 7])  # lost the tail, cut inside a line

    server.start()
    server.stop()

    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert set(answered) <= {record.get("request_id") for record in records}
    assert not log.with_name(log.name + ".wal").exists()
    verified = _audit_cli("--data-dir", str(server.data_dir))
    assert verified.returncode == 0, verified.stdout + verified.stderr
