"""The worker supervisor of `openkms serve --workers N` (cli/workers.py), without the OpenKMS app."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from openkms.cli.workers import listening_sockets
from tests.support.server import free_port


def test_sockets_share_the_port_the_first_one_got() -> None:
    sockets = listening_sockets("127.0.0.1", 0, 3)
    try:
        ports = {sock.getsockname()[1] for sock in sockets}
        assert len(ports) == 1 and ports != {0}
        assert all(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()


def test_an_address_in_use_is_refused() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            listening_sockets("127.0.0.1", taken.getsockname()[1], 2)


def test_a_second_server_cannot_join_a_running_one() -> None:
    # Another SO_REUSEPORT group on the port would take a share of the first server's connections.
    # The sockets listen as soon as they are returned (the probe is held until then), so a server
    # starting at the same moment is refused too.
    running = listening_sockets("127.0.0.1", 0, 2)
    try:
        with pytest.raises(OSError):
            listening_sockets("127.0.0.1", running[0].getsockname()[1], 2)
    finally:
        for sock in running:
            sock.close()


def _serve(tmp_path: Path, app: str, module_text: str) -> subprocess.CompletedProcess[str]:
    """Run `serve_workers` with 2 workers on `app` (defined in a module written to tmp_path)."""
    (tmp_path / "broken_app.py").write_text(textwrap.dedent(module_text))
    script = textwrap.dedent(
        f"""
        import sys, uvicorn
        from openkms.cli.workers import serve_workers
        sys.exit(serve_workers(uvicorn.Config({app!r}, factory=True, host="127.0.0.1", port=0,
                                              workers=2, log_level="warning"), 2))
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_worker_whose_app_cannot_be_imported_stops_the_supervisor(tmp_path: Path) -> None:
    done = _serve(tmp_path, "no_such_module:make_app", "")
    assert done.returncode == 1, done.stderr
    assert "could not start serving" in done.stderr


def test_a_worker_whose_app_factory_raises_stops_the_supervisor(tmp_path: Path) -> None:
    done = _serve(tmp_path, "broken_app:make_app", "def make_app():\n    raise RuntimeError('no store')\n")
    assert done.returncode == 1, done.stderr
    assert "no store" in done.stderr and "could not start serving" in done.stderr


BLOCKING_APP = """
import os, time

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/block":
        time.sleep(600)  # a handler that blocks its worker's event loop
    body = str(os.getpid()).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
"""


def test_a_worker_whose_event_loop_is_blocked_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "blocking_app.py").write_text(BLOCKING_APP)
    port = free_port()
    script = textwrap.dedent(
        f"""
        import logging, sys, uvicorn
        logging.basicConfig(level=logging.INFO)
        from openkms.cli.workers import serve_workers
        sys.exit(serve_workers(uvicorn.Config("blocking_app:app", host="127.0.0.1", port={port},
                                              workers=2, log_level="warning", lifespan="off"), 2))
        """
    )
    supervisor = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        pids: set[str] = set()
        while len(pids) < 2:  # both workers serve
            assert time.monotonic() < deadline, pids
            try:
                with httpx.Client(timeout=5) as client:
                    pids.add(client.get(url + "/").text)
            except httpx.HTTPError:
                time.sleep(0.2)
        with httpx.Client(timeout=1) as client, pytest.raises(httpx.TimeoutException):
            client.get(url + "/block")  # one worker's loop is now stuck for ten minutes
        deadline = time.monotonic() + 90
        while True:
            answered: set[str] = set()
            for _ in range(16):
                try:
                    with httpx.Client(timeout=2) as client:
                        answered.add(client.get(url + "/").text)
                except httpx.HTTPError:
                    pass
            if len(answered) == 2 and not answered <= pids:
                break  # two workers answer, one of them new
            assert time.monotonic() < deadline, answered
            time.sleep(0.5)
    finally:
        supervisor.terminate()
        _, errors = supervisor.communicate(timeout=60)
    assert supervisor.returncode == 0, errors
    assert "its event loop has been blocked" in errors
