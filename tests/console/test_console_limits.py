"""Console actions are charged to the tenant rate limits like API requests: a signed-in principal
that runs management actions faster than its account's rate gets Rejected.Throttling (429), recorded
with door console, and nothing is done."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.server import LiveServer

PASSWORD = "Console-Limit-Pass1"


def test_console_actions_are_throttled_per_account(tmp_path: Path) -> None:
    server = LiveServer(
        tmp_path / "data",
        extra_env={"OPENKMS_RATE_MANAGEMENT_PER_ACCOUNT": "1", "OPENKMS_RATE_BURST_SECONDS": "2"},
    ).start()
    try:
        account = json.loads((server.data_dir / "root-credentials.json").read_text())["AccountId"]
        env = {name: value for name, value in os.environ.items() if not name.startswith("OPENKMS_")}
        subprocess.run(
            [sys.executable, "-m", "openkms.cli", "account", "password", "--account-id", account,
             "--password-stdin", "--data-dir", str(server.data_dir)],
            input=PASSWORD + "\n", capture_output=True, text=True, env=env, timeout=120, check=True,
        )  # fmt: skip
        with httpx.Client(base_url=server.url, timeout=30) as client:
            form = client.get("/console/signin")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert token is not None
            signed_in = client.post(
                "/console/signin",
                data={"csrf_token": token.group(1), "sign_in_name": account, "password": PASSWORD},
                follow_redirects=False,
            )
            assert signed_in.status_code == 303
            # Each view of the key list runs management actions (ListKmsInstances, ListKeys, ...):
            # a bucket of two is spent at once.
            statuses = [client.get("/console/keys").status_code for _ in range(4)]
        assert 429 in statuses
        lines = "".join(p.read_text() for p in sorted((server.data_dir / "audit").glob("*.jsonl")))
        records = [json.loads(line) for line in lines.splitlines() if line.strip()]
        throttled = [r for r in records if r.get("result") == "Rejected.Throttling"]
        assert throttled and all(r["door"] == "console" and r["http_status"] == 429 for r in throttled)
        assert all(r["account_id"] == account for r in throttled)
    finally:
        server.stop()
