"""Worker processes of `openkms serve --workers N`, each listening on its own socket.

uvicorn's own supervisor shares one listening socket between its workers. The worker that wakes first
accepts everything waiting, so a burst of new keep-alive connections (a client's connection pool
starting, a load test) can land on one worker and leave the others idle for as long as those
connections live. Here every worker gets its own socket, all bound to the same address with
SO_REUSEPORT, and the kernel spreads new connections over them by a hash of the client's address.

The supervisor keeps every socket open while it runs: connections that arrive for a worker that died
wait in its socket's backlog until the worker started in its place accepts them. It stops all workers
on SIGINT or SIGTERM, and stops everything when a worker fails before it could serve (the same
failure would repeat on every restart). Only processes of the same user can join a SO_REUSEPORT
group (Linux checks the effective uid), and they could read the data dir anyway.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
from multiprocessing.context import SpawnProcess
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE

log = logging.getLogger("openkms.server")

POLL_SECONDS = 0.5  # how often the supervisor looks for workers that died
STOP_GRACE_SECONDS = 30.0  # how long a worker may take to finish its requests once told to stop

_spawn = multiprocessing.get_context("spawn")


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` sockets bound to (`host`, `port`) with SO_REUSEPORT. Port 0: the first one picks a
    free port and the others join it. Raises OSError if the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _run_worker(config: uvicorn.Config, sock: socket.socket) -> None:
    """A worker process: one uvicorn server on its own socket (a fresh interpreter: spawned)."""
    config.configure_logging()
    uvicorn.Server(config).run(sockets=[sock])


class WorkerSupervisor:
    """Runs one worker process per socket, restarts workers that die, stops them all on a signal."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        self._config = config
        self._sockets = sockets
        self._workers: list[SpawnProcess] = []
        self._stop = threading.Event()
        self.failed = False  # a worker could not start serving

    def _start(self, index: int) -> SpawnProcess:
        worker = _spawn.Process(
            target=_run_worker, args=(self._config, self._sockets[index]), name=f"openkms-worker-{index}"
        )
        worker.start()
        log.info("worker %d started (pid %s)", index, worker.pid)
        return worker

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stop.set()

    def run(self) -> int:
        """Serve until SIGINT/SIGTERM (0) or until a worker fails to start (1)."""
        multiprocessing.allow_connection_pickling()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._workers = [self._start(index) for index in range(len(self._sockets))]
            while not self._stop.wait(POLL_SECONDS):
                self._replace_dead_workers()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 1 if self.failed else 0

    def _replace_dead_workers(self) -> None:
        for index, worker in enumerate(self._workers):
            if worker.is_alive():
                continue
            worker.join()
            if worker.exitcode == STARTUP_FAILURE:
                log.error("worker %d (pid %s) could not start serving; stopping", index, worker.pid)
                self.failed = True
                self._stop.set()
                return
            if self._stop.is_set():
                return
            log.warning(
                "worker %d (pid %s) exited with %s; starting another", index, worker.pid, worker.exitcode
            )
            self._workers[index] = self._start(index)

    def _stop_all(self) -> None:
        for worker in self._workers:
            if worker.is_alive():
                worker.terminate()  # SIGTERM: uvicorn finishes open requests, then the app shuts down
        for worker in self._workers:
            worker.join(STOP_GRACE_SECONDS)
            if worker.is_alive():
                log.error("worker pid %s did not stop in %.0f s; killing it", worker.pid, STOP_GRACE_SECONDS)
                worker.kill()
                worker.join()


def serve_workers(config: uvicorn.Config, workers: int) -> int:
    """Serve `config` with `workers` processes on per-worker SO_REUSEPORT sockets; the exit status."""
    try:
        sockets = listening_sockets(config.host, config.port, workers)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", config.host, config.port, exc)
        return 1
    try:
        return WorkerSupervisor(config, sockets).run()
    finally:
        for sock in sockets:
            sock.close()
