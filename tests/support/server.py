"""Start `openkms serve` in a subprocess on a free loopback port and wait until it is ready."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from openkms.service.replay import node_memory_dir

ACCESS_KEY_ID = "LTAItestRootAccessKey01"
ACCESS_KEY_SECRET = "testRootSecret0123456789abcdefXYZ"


_RATE_KINDS = ("CRYPTO", "MANAGEMENT", "RAM")
_SCOPES = ("ACCOUNT", "ACCESS_KEY")

STARTED_DATA_DIRS: set[Path] = set()  # for the session's clean-up of node memory


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    data_dir: Path
    database_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    workers: int = 1
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    # The CA that signed the server's certificate, for a server started with --tls-cert/--tls-key.
    tls_ca: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls_ca else 'http'}://{self.endpoint}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What httpx should verify this server's certificate against."""
        return ssl.create_default_context(cafile=str(self.tls_ca)) if self.tls_ca else True

    def start(self, *, wait_ready: bool = True) -> LiveServer:
        env = {
            **os.environ,
            "OPENKMS_ROOT_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "OPENKMS_ROOT_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
            "OPENKMS_NONCE_SLOTS": "65536",  # 1.5 MiB of shared memory per test server
            # The suite drives one account of a session-long server faster than the production
            # defaults admit (a sequential client makes 300-500 management calls a second): its
            # servers charge every bucket but refuse nothing. Tests of the limits set their own
            # (tests/api/test_limits.py).
            "OPENKMS_NONCE_ACCOUNT_SHARE": "1",
            **{f"OPENKMS_RATE_{kind}_PER_{scope}": "1000000" for kind in _RATE_KINDS for scope in _SCOPES},
            # OpenKMS.PostgreSQL secrets may name the development PostgreSQL (tests of the setting
            # itself give their own value).
            "OPENKMS_MANAGED_SECRET_HOSTS": "127.0.0.1,localhost",
            **self.extra_env,
        }
        args = [
            sys.executable,
            "-m",
            "openkms.cli",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        if self.database_url:
            args += ["--database-url", self.database_url]
        args += self.extra_args
        self.data_dir.mkdir(parents=True, exist_ok=True)
        STARTED_DATA_DIRS.add(self.data_dir)
        self.log_path = self.data_dir.parent / f"server-{uuid.uuid4().hex[:8]}.log"
        with self.log_path.open("wb") as log:  # the server keeps its own copy of the descriptor
            self.process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.wait(ready=wait_ready)
        return self

    def wait(self, *, ready: bool = True, timeout: float = 60.0) -> None:
        """Until the server can serve (`/readyz` 200), or only answers (`/healthz`, sealed or not)."""
        deadline = time.monotonic() + timeout
        path = "/readyz" if ready else "/healthz"
        verify = self.verify
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}{path}", timeout=1.0, verify=verify).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not become ready:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def forget_node_memory(self) -> None:
        """What a reboot does to a stopped server: its shared memory (the replay cache) is gone."""
        shutil.rmtree(node_memory_dir(self.data_dir), ignore_errors=True)
