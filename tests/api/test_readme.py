"""The README's SDK example works as pasted against a fresh server (with its port swapped in)."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

from tests.support.server import LiveServer

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_example_prints_hello(tmp_path: Path) -> None:
    snippet = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert snippet is not None
    server = LiveServer(tmp_path / "openkms-data")
    env_without_preset = {k: v for k, v in os.environ.items() if not k.startswith("OPENKMS_ROOT_ACCESS_KEY")}
    server.extra_env = {"OPENKMS_ROOT_ACCESS_KEY_ID": "", "OPENKMS_ROOT_ACCESS_KEY_SECRET": ""}
    server.start()
    try:
        credentials = tmp_path / "openkms-data" / "root-credentials.json"
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
        assert set(json.loads(credentials.read_text())) == {
            "AccountId",
            "AccessKeyId",
            "AccessKeySecret",
            "ConsoleSignInName",
            "ConsolePassword",
        }
        code = snippet.group(1).replace("127.0.0.1:9600", server.endpoint)
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env=env_without_preset,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "hello"
        assert "root-credentials.json" in server.log()
        written = json.loads(credentials.read_text())
        assert written["AccessKeySecret"] not in server.log()
        assert written["ConsolePassword"] not in server.log()
    finally:
        server.stop()
