"""A driver script run by the clients' venv (`client_python()`) and spoken to one JSON line at a time.

The script answers each command with one line, `{"ok": ...}` or `{"error": {...}}`
(tests/clients/python/secrets_driver.py). Its stderr (the libraries' own logging) goes to a file in
the session's folder and is shown when an answer is not the one a test expects."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
from pathlib import Path
from typing import IO, Any

from tests.clients.python.venv import client_python

# A guard against a driver that hangs, not a measure of anything: an answer normally takes well
# under a second.
ANSWER_TIMEOUT_SECONDS = 300

# Settings that the clients read from the environment (their credential chains and CA bundles): a
# session passes only those its test gives, never the ones of the machine running the tests.
_CLIENT_SETTINGS = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
_CLIENT_PREFIXES = ("credentials_", "cache_client_", "ALIBABA_CLOUD_", "ALICLOUD_")


def client_environment(settings: dict[str, str]) -> dict[str, str]:
    """This process's environment without any client setting, plus `settings`."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if name not in _CLIENT_SETTINGS and not name.startswith(_CLIENT_PREFIXES)
    }
    return {**kept, **settings}


class DriverSession:
    """One driver process; `ok` and `error` send a command and expect that kind of answer."""

    def __init__(self, script: Path, folder: Path, settings: dict[str, str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._log_path = folder / "driver-stderr.log"
        self._log = self._log_path.open("wb")
        self._process = subprocess.Popen(
            [str(client_python()), str(script)],
            cwd=folder,
            env=client_environment(settings),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self._answers: queue.Queue[str] = queue.Queue()
        assert self._process.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self._process.stdout,), daemon=True)
        self._reader.start()

    def __enter__(self) -> DriverSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _read(self, stdout: IO[str]) -> None:
        for line in stdout:
            self._answers.put(line)
        self._answers.put("")  # the driver has exited

    def log(self) -> str:
        return self._log_path.read_text(errors="replace")[-4000:]

    def ask(self, op: str, **fields: Any) -> dict[str, Any]:
        stdin = self._process.stdin
        assert stdin is not None
        stdin.write(json.dumps({"op": op, **fields}) + "\n")
        stdin.flush()
        try:
            line = self._answers.get(timeout=ANSWER_TIMEOUT_SECONDS)
        except queue.Empty:
            raise AssertionError(f"the driver did not answer {op}:\n{self.log()}") from None
        assert line, f"the driver exited before answering {op}:\n{self.log()}"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ok(self, op: str, **fields: Any) -> Any:
        answer = self.ask(op, **fields)
        assert "ok" in answer, f"{op} failed: {answer['error']}\n{self.log()}"
        return answer["ok"]

    def error(self, op: str, **fields: Any) -> dict[str, Any]:
        answer = self.ask(op, **fields)
        assert "error" in answer, f"{op} succeeded: {answer['ok']}"
        error: dict[str, Any] = answer["error"]
        return error

    def close(self) -> None:
        if self._process.poll() is None:
            self.ask("close")
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=60)
        self._reader.join(timeout=60)
        assert self._process.stdout is not None
        self._process.stdout.close()
        self._log.close()
