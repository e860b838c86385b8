"""The processes of a `LiveServer` as the kernel sees them (/proc, Linux), and SIGKILL for them:
a crash of one worker, or of the whole server."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def children(pid: int) -> list[int]:
    """The direct children of `pid` (none once it is gone)."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(child) for child in (task / "children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return found


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    for child in children(pid):
        found += [child, *descendants(child)]
    return found


def worker_pids(supervisor: int) -> list[int]:
    """The worker processes of `openkms serve --workers N` (spawned interpreters; not the
    multiprocessing resource tracker)."""
    workers = []
    for child in children(supervisor):
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(child)
        except FileNotFoundError:
            pass
    return workers


def kill(pid: int) -> bool:
    """SIGKILL `pid`; False if it was already gone."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def kill_server(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a server and every process under it at once (its workers have process groups of their
    own), the way a power cut or the OOM killer ends it: nothing gets to clean up."""
    everyone = descendants(process.pid)
    kill(process.pid)
    for pid in everyone:
        kill(pid)
    process.wait()
    for pid in everyone:  # reaped by init once their parent is gone; wait until they are
        while Path(f"/proc/{pid}").exists() and _state(pid) != "Z":
            time.sleep(0.005)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "X"
