"""A passphrase-sealed server refuses every key operation until `openkms unseal` (P21)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.sdk import KmsCaller, KmsError
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def sealed(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path / "data", extra_env={"OPENKMS_SEAL": "passphrase"})
    server.start(wait_ready=False)
    yield server
    server.stop()


def _unseal(server: LiveServer, passphrase: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENKMS_UNSEAL_PASSPHRASE": passphrase, "OPENKMS_SEAL": "passphrase"}
    return subprocess.run(
        [sys.executable, "-m", "openkms.cli", "unseal", "--data-dir", str(server.data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _health(server: LiveServer) -> int:
    """Readiness: 503 while sealed (`/healthz`, liveness, answers 200 throughout)."""
    return httpx.get(server.url + "/readyz", timeout=10).status_code


def test_sealed_server_refuses_until_unsealed(sealed: LiveServer) -> None:
    kms = KmsCaller("tea-acs3", sealed.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    assert _health(sealed) == 503
    with pytest.raises(KmsError) as caught:
        kms.call("DescribeRegions")
    assert (caught.value.code, caught.value.status) == ("ServiceUnavailableTemporary", 503)

    first = _unseal(sealed, PASSPHRASE)
    assert first.returncode == 0, first.stdout + first.stderr
    assert PASSPHRASE not in first.stdout + first.stderr
    sealed.wait(ready=True)
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    key_id = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
    blob = kms.call("Encrypt", KeyId=key_id, Plaintext="kept")["CiphertextBlob"]

    sealed.stop()
    sealed.start(wait_ready=False)
    assert _health(sealed) == 503
    with pytest.raises(KmsError) as caught:
        kms.call("Decrypt", CiphertextBlob=blob)
    assert caught.value.status == 503

    wrong = _unseal(sealed, "not the passphrase")
    assert wrong.returncode == 1
    assert "wrong passphrase" in wrong.stdout
    assert _health(sealed) == 503

    right = _unseal(sealed, PASSPHRASE)
    assert right.returncode == 0, right.stdout + right.stderr
    assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "kept"
    assert PASSPHRASE not in sealed.log()


def test_unseal_without_a_sealed_server_says_so(tmp_path: Path) -> None:
    (tmp_path / "data" / "run").mkdir(parents=True)
    result = _unseal(LiveServer(tmp_path / "data"), PASSPHRASE)
    assert result.returncode == 1
    assert "no sealed server" in result.stdout + result.stderr
