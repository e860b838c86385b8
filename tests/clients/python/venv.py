"""The clients' own virtualenv (`.venv-clients` at the checkout's root): Alibaba's Python clients whose
pins clash with the test venv (protobuf 3, cryptography 38, pyOpenSSL < 23.3, the 2.x OpenAPI SDK).
Made once from requirements.txt, remade when that file changes, under a file lock so that parallel
test processes build it once. Tests run their drivers with `client_python()` in a subprocess."""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
ROOT = HERE.parents[2]
VENV = ROOT / ".venv-clients"


def client_python() -> Path:
    """The interpreter of the clients' venv, made (or remade) when requirements.txt changed."""
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = VENV / ".openkms-requirements-sha256"
    python = VENV / "bin" / "python"
    lock_path = ROOT / ".venv-clients.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (stamp.is_file() and stamp.read_text() == wanted and python.exists()):
            shutil.rmtree(VENV, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
            subprocess.run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-r",
                    str(REQUIREMENTS),
                ],
                check=True,
                timeout=900,
            )
            stamp.write_text(wanted)
    return python
