"""What every `make bench` scenario shares: servers in their own sessions, wrk runs and their parsing,
CPU accounting of the box and of a server's processes, and the server's own account of a run (its
audit log and log file). Never decides what to measure: the scenarios in bench/run.py do.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.presign import Credentials

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
LUA_SCRIPT = BENCH_DIR / "replay.lua"
NOISE_CORES = 0.3  # busy cores outside server + wrk above which a run is flagged as disturbed


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def loud(message: str) -> None:
    bar = "!" * 78
    print(f"\n{bar}\n!! {message}\n{bar}\n", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------------
# machine and process accounting


def machine_facts() -> dict[str, Any]:
    model = "unknown"
    flags: set[str] = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    versions: dict[str, str | None] = {}
    for package in ("uvicorn", "uvloop", "httptools", "cryptography", "orjson", "starlette", "SQLAlchemy"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    wrk_text = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout
    wrk_version = re.search(r"wrk (\S+)", wrk_text)
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "cpu_flags": sorted(flags & {"aes", "vaes", "avx512f", "sha_ni", "pclmulqdq", "vpclmulqdq"}),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
        "wrk": f"wrk {wrk_version.group(1)}" if wrk_version else None,
        "openssl_bundled_by_cryptography": _cryptography_openssl(),
    }


def _cryptography_openssl() -> str | None:
    try:
        from cryptography.hazmat.backends.openssl.backend import backend

        return str(backend.openssl_version_text())
    except Exception:
        return None


def _cpu_stat() -> tuple[int, int, int]:
    """(total, idle + iowait, steal) jiffies of the whole box."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values[:8]), values[3] + values[4], values[7]


def _session_cpu(session: int) -> dict[int, int]:
    """utime + stime jiffies of every process in `session`."""
    out: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        rest = text[text.rfind(")") + 2 :].split()
        if int(rest[3]) == session:
            out[int(entry.name)] = int(rest[11]) + int(rest[12])
    return out


def _named_cpu(name: str) -> dict[int, int]:
    """utime + stime jiffies of every process whose command name is `name` (e.g. the database's)."""
    out: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        if text[text.find("(") + 1 : text.rfind(")")] == name:
            rest = text[text.rfind(")") + 2 :].split()
            out[int(entry.name)] = int(rest[11]) + int(rest[12])
    return out


@dataclass
class Usage:
    wrk_cores: float
    box_busy: float
    steal: float
    server_cores: list[float]
    """Cores used by each process of the server's session, largest first (workers split the load)."""
    other_cores: float
    """Busy cores not used by the server, wrk or the database: kernel work, and anything else running."""
    database_cores: float = 0.0
    """Cores used by the database server's processes (PostgreSQL), when the meter was told its name."""


class UsageMeter:
    """CPU of the box, of the server's session and of the load generators during one measurement.

    wrk runs waited for inside `measure()` are counted from rusage; load generators still running
    when it ends (a background wrk in its own session) are named in `load_sessions`; a database
    server on the same box by its processes' command name (`database`, e.g. "postgres")."""

    def __init__(
        self, session: int | None, load_sessions: Sequence[int] = (), database: str | None = None
    ) -> None:
        self._session = session
        self._load_sessions = tuple(load_sessions)
        self._database = database
        self._ticks = os.sysconf("SC_CLK_TCK")

    def _database_ticks(self) -> dict[int, int]:
        return _named_cpu(self._database) if self._database else {}

    def _load_ticks(self) -> int:
        return sum(sum(_session_cpu(session).values()) for session in self._load_sessions)

    @contextlib.contextmanager
    def measure(self) -> Iterator[list[Usage]]:
        out: list[Usage] = []
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        s0 = _cpu_stat()
        p0 = _session_cpu(self._session) if self._session else {}
        l0 = self._load_ticks()
        d0 = self._database_ticks()
        t0 = time.monotonic()
        yield out
        elapsed = max(time.monotonic() - t0, 1e-9)
        d1 = self._database_ticks()
        l1 = self._load_ticks()
        p1 = _session_cpu(self._session) if self._session else {}
        s1 = _cpu_stat()
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        total = max(s1[0] - s0[0], 1)
        wrk = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / elapsed
        wrk += (l1 - l0) / self._ticks / elapsed
        cores = sorted(
            ((p1[pid] - p0.get(pid, 0)) / self._ticks / elapsed for pid in p1 if pid in p0), reverse=True
        )
        busy = 1 - (s1[1] - s0[1]) / total
        database = sum(d1[pid] - d0[pid] for pid in d1 if pid in d0) / self._ticks / elapsed
        out.append(
            Usage(
                wrk_cores=round(wrk, 3),
                box_busy=round(busy, 3),
                steal=round((s1[2] - s0[2]) / total, 4),
                server_cores=[round(c, 2) for c in cores if c >= 0.01],
                other_cores=round(busy * (os.cpu_count() or 1) - sum(cores) - wrk - database, 2),
                database_cores=round(database, 2),
            )
        )


# ----------------------------------------------------------------------------------------------------
# servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ManagedServer:
    """A server started in its own session; `stop()` kills the whole process group."""

    def __init__(self, name: str, args: Sequence[str], env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.args = list(args)
        self.env = dict(env)
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.ready_path = "/healthz"  # what answers 200 once the server serves

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def session(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, timeout: float = 90.0) -> None:
        args = [a.replace("{port}", str(self.port)) for a in self.args]
        log(f"starting {self.name}: {' '.join(args)}")
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                args, env=self.env, cwd=REPO_DIR, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited early (rc {self.process.returncode}):\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=1) as answer:
                    if answer.status == 200:
                        log(f"{self.name} is ready on {self.url} (session {self.process.pid})")
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not become ready in {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        self.process = None
        for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                process.poll()
                if not _session_cpu(process.pid) and process.returncode is not None:
                    log(f"{self.name} stopped")
                    return
                time.sleep(0.1)
        loud(f"{self.name}: processes of session {process.pid} survived SIGKILL")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """Our environment without OPENKMS_* settings (the server runs its defaults), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENKMS_", "BENCH_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_DIR), os.environ.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


# One account drives the whole load: raise its limits far above what the box can serve, so the bench
# measures the cost of the checks (they still run on every request), not the limits themselves.
BENCH_LIMITS = {
    **{
        f"OPENKMS_RATE_{kind}_PER_{scope}": "10000000"
        for kind in ("CRYPTO", "MANAGEMENT", "RAM")
        for scope in ("ACCOUNT", "ACCESS_KEY")
    },
    "OPENKMS_NONCE_ACCOUNT_SHARE": "1",
}


def openkms_server(
    work: Path, creds: Credentials, workers: int, server_env: Mapping[str, str]
) -> ManagedServer:
    data_dir = work / "openkms-data"
    env = _child_env(
        {
            "OPENKMS_ROOT_ACCESS_KEY_ID": creds.access_key_id,
            "OPENKMS_ROOT_ACCESS_KEY_SECRET": creds.secret,
            **BENCH_LIMITS,
            **server_env,
        }
    )
    args = [
        sys.executable, "-m", "openkms.cli", "serve",
        "--data-dir", str(data_dir), "--port", "{port}", "--workers", str(workers),
    ]  # fmt: skip
    return ManagedServer("openkms", args, env, work / "openkms-server.log")


def bare_server(work: Path, creds: Credentials, workers: int) -> ManagedServer:
    env = _child_env({"BENCH_ACCESS_KEY_ID": creds.access_key_id, "BENCH_ACCESS_KEY_SECRET": creds.secret})
    args = [sys.executable, "-m", "bench.bare_app", "--port", "{port}", "--workers", str(workers)]
    return ManagedServer("bare", args, env, work / "bare-server.log")


# ----------------------------------------------------------------------------------------------------
# wrk


@dataclass
class RunResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non200: int
    statuses: dict[str, int]
    socket_errors: dict[str, int]
    exhausted: int
    loaded: int
    signed: int
    max_ms: float = 0.0
    usage: Usage | None = None

    @property
    def errors(self) -> int:
        return self.non200 + sum(self.socket_errors.values())

    @property
    def valid(self) -> bool:
        return self.errors == 0 and self.exhausted == 0


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str, signed: int) -> RunResult:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    lua = re.search(r"^BENCH-RESULT (\{.*\})$", output, re.M)
    if not (rps and p50 and p99 and lua):
        raise RuntimeError(f"cannot parse wrk output:\n{output}")
    extra = json.loads(lua.group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    socket_errors = dict(
        zip(("connect", "read", "write", "timeout"), (int(x) for x in sockets.groups()), strict=True)
        if sockets
        else {}
    )
    non200 = max(int(extra["non200"]), int(non2xx.group(1)) if non2xx else 0)
    return RunResult(
        rps=float(rps.group(1)),
        # the Lua percentiles are exact microseconds; the text ones are rounded to 2 decimals
        p50_ms=round(float(extra["p50_us"]) / 1000, 3) if extra.get("p50_us") else _ms(p50.group(1)),
        p99_ms=round(float(extra["p99_us"]) / 1000, 3) if extra.get("p99_us") else _ms(p99.group(1)),
        requests=int(extra["requests"]),
        non200=non200,
        statuses={str(k): int(v) for k, v in extra["statuses"].items()},
        socket_errors={k: v for k, v in socket_errors.items() if v},
        exhausted=int(extra["exhausted"]),
        loaded=int(extra["loaded"]),
        signed=signed,
        max_ms=round(float(extra.get("max_us") or 0) / 1000, 3),
    )


def wrk_command(
    url: str, bodies: Path, connections: int, duration: float, threads: int, raw: bool = False
) -> list[str]:
    """wrk replaying a file of pre-signed bodies, each once; `raw`: one whole request, again and again."""
    threads = max(1, min(threads, connections))
    return [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency",
        "-s", str(LUA_SCRIPT), url + "/", "--", str(bodies), str(threads), *(["raw"] if raw else []),
    ]  # fmt: skip


def run_wrk(
    url: str,
    bodies: Path,
    signed: int,
    connections: int,
    duration: float,
    threads: int,
    meter: UsageMeter,
    raw: bool = False,
) -> RunResult:
    cmd = wrk_command(url, bodies, connections, duration, threads, raw)
    with meter.measure() as usage:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed (rc {done.returncode}):\n{done.stdout}\n{done.stderr}")
    result = parse_wrk(done.stdout, signed)
    result.usage = usage[0]
    return result


class BackgroundWrk:
    """A wrk run that goes on while the caller measures something else: in its own session, so
    `UsageMeter(load_sessions=...)` can count its CPU and `stop()` can kill it by process group."""

    def __init__(
        self, url: str, bodies: Path, signed: int, connections: int, duration: float, threads: int
    ) -> None:
        self._signed = signed
        self._duration = duration
        self._process = subprocess.Popen(
            wrk_command(url, bodies, connections, duration, threads),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    @property
    def session(self) -> int:
        return self._process.pid

    def result(self) -> RunResult:
        """Wait for the end of the run and parse it."""
        stdout, stderr = self._process.communicate(timeout=self._duration + 120)
        if self._process.returncode != 0:
            raise RuntimeError(f"wrk failed (rc {self._process.returncode}):\n{stdout}\n{stderr}")
        return parse_wrk(stdout, self._signed)

    def stop(self) -> None:
        if self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.communicate()


def audit_outcomes(data_dir: Path) -> dict[str, Any]:
    """Tally the server's audit records that are not Success (the server's own account of the errors)."""
    failures: Counter[str] = Counter()
    total = 0
    for path in sorted((data_dir / "audit").glob("*.jsonl")):
        with path.open("rb") as lines:
            for line in lines:
                total += 1
                if b'"result":"Success"' in line or b'"AuditLogOpened"' in line:
                    continue
                record = json.loads(line)
                failures[f"{record.get('action')} {record.get('http_status')} {record.get('result')}"] += 1
    return {"records": total, "not_success": dict(failures.most_common())}


def server_log_issues(server: ManagedServer) -> list[str]:
    try:
        text = server.log_path.read_text(errors="replace")
    except OSError:
        return []
    lines = [line for line in text.splitlines() if re.search(r"ERROR|CRITICAL|Traceback|WARNING", line)]
    return lines[:50]
