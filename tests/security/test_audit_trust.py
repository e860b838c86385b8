"""The audit log can be trusted: an unauthenticated client cannot inflate it, a wrongly signed request
leaves no trace of its parameters in it, and `openkms audit verify` notices a record edited (even with
the chain recomputed by someone without the server's keys), records cut off the end and a file deleted."""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from openkms.audit.sink import canonical_json
from tests.support.sdk import KmsCaller, KmsError
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path / "data").start()
    yield server
    server.stop()


def _audit_bytes(data_dir: Path) -> int:
    return sum(path.stat().st_size for path in (data_dir / "audit").glob("*.jsonl"))


def _verify(data_dir: Path) -> subprocess.CompletedProcess[str]:
    """`openkms audit verify`, its report (printed on stderr) in `stdout`."""
    done = subprocess.run(
        [sys.executable, "-m", "openkms.cli", "audit", "verify", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout + done.stderr, "")


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_huge_unauthenticated_values_grow_the_log_by_under_1kb_per_request(live: LiveServer) -> None:
    huge = "A" * 1_040_000  # about 1 MB: the largest request body the server reads is 1 MiB
    requests = [
        {"data": {"Action": huge}},  # no credentials at all
        {"data": {"Action": "Encrypt", "SignatureMethod": huge}},
        {"data": {"Action": huge[:500_000] + "<script>", "AccessKeyId": "K" * 500_000}},
        {"data": {"Action": "Encrypt", "RegionId": "r" * 500_000, "SignatureNonce": "n" * 500_000}},
        {"params": {"Action": "A" * 60_000, "SignatureMethod": "m"}},  # in the query string
    ]
    with httpx.Client(base_url=f"http://{live.endpoint}", timeout=30) as client:
        client.post("/", params={"Action": "DescribeRegions"})  # the log file exists and is keyed
        for request in requests:
            before = _audit_bytes(live.data_dir)
            answer = client.post("/", **request)  # type: ignore[arg-type]
            assert answer.status_code in (400, 403, 404), answer.text[:200]
            assert _audit_bytes(live.data_dir) - before < 1024


def test_a_wrongly_signed_encrypt_leaves_no_trace_of_its_plaintext(live: LiveServer) -> None:
    canary = "canary-" + secrets.token_hex(16)
    kms = KmsCaller("tea-acs3", live.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    key_id = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
    context = json.dumps({"canary": canary})
    for mode in ("tea-rpc", "legacy"):  # the RPC signature: its string to sign holds every parameter
        wrong = KmsCaller(mode, live.endpoint, ACCESS_KEY_ID, "not-the-secret")
        with pytest.raises(KmsError) as refused:
            wrong.call("Encrypt", KeyId=key_id, Plaintext=canary, EncryptionContext=context)
        if mode == "tea-rpc":
            assert refused.value.code == "SignatureDoesNotMatch"
            assert canary in str(refused.value)  # the caller gets the string to sign back
        else:  # the legacy SDK compares the string to sign it got back with its own, and says so
            assert refused.value.code == "InvalidAccessKeySecret"
    live.stop()
    needles = [canary.encode(), canary.encode().hex().encode()]
    for path in [p for p in live.data_dir.rglob("*") if p.is_file()] + [live.log_path]:
        assert path is not None
        content = path.read_bytes()
        for needle in needles:
            assert needle not in content, f"{path} holds the plaintext"
    records = [r for p in (live.data_dir / "audit").glob("*.jsonl") for r in _records(p)]
    refusals = [r for r in records if r.get("result") == "SignatureDoesNotMatch"]
    assert len(refusals) == 2
    assert all("string to sign" not in str(r["reason"]) for r in refusals)


def _traffic(server: LiveServer, calls: int = 5) -> None:
    kms = KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    for _ in range(calls):
        kms.call("DescribeRegions")


def test_verify_detects_an_edit_with_the_chain_recomputed_without_the_key(live: LiveServer) -> None:
    _traffic(live, 6)
    live.stop()
    assert _verify(live.data_dir).returncode == 0
    (path,) = (live.data_dir / "audit").glob("*.jsonl")
    records = _records(path)
    middle = len(records) // 2
    records[middle]["result"] = "Forbidden.NoPermission"  # rewrite history
    prev = records[middle - 1]["hash"]
    for record in records[middle:]:  # an attacker recomputes the chain with what verify used to use
        record["prev"] = prev
        record.pop("hash")
        record["hash"] = prev = hashlib.sha256(canonical_json(record)).hexdigest()  # type: ignore[arg-type]
    path.write_bytes(b"".join(canonical_json(r) + b"\n" for r in records))  # type: ignore[arg-type]

    result = _verify(live.data_dir)
    assert result.returncode == 1
    assert f"line {middle + 1}" in result.stdout
    assert "keyed hash does not match" in result.stdout


def test_verify_detects_records_cut_off_the_end(live: LiveServer) -> None:
    _traffic(live, 6)
    live.stop()
    (path,) = (live.data_dir / "audit").glob("*.jsonl")
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-2]))  # whole lines: every remaining link still holds

    result = _verify(live.data_dir)
    assert result.returncode == 1
    assert "cut off the end" in result.stdout


def test_verify_detects_a_deleted_log_file(live: LiveServer) -> None:
    _traffic(live, 2)
    live.stop()
    live.start()
    _traffic(live, 2)
    live.stop()
    live.start()
    _traffic(live, 2)
    live.stop()
    files = sorted((live.data_dir / "audit").glob("*.jsonl"), key=lambda p: _records(p)[0]["time"])
    assert len(files) == 3
    assert _records(files[1])[0]["previous_file"] == files[0].name  # each file links to the one before
    assert _verify(live.data_dir).returncode == 0

    files[1].unlink()  # one in the middle
    result = _verify(live.data_dir)
    assert result.returncode == 1
    assert f"{files[1].name}, is missing (deleted)" in result.stdout
    assert f"{files[1].name}: the file is missing (deleted)" in result.stdout

    files[2].unlink()  # and the newest: only the sealed head knows it existed
    result = _verify(live.data_dir)
    assert result.returncode == 1
    assert f"{files[2].name}: the file is missing (deleted)" in result.stdout
