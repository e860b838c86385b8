"""Worker processes of `openkms serve --workers N`, each listening on its own socket (Linux).

uvicorn's own supervisor shares one listening socket between its workers. The worker that wakes first
accepts everything waiting, so a burst of new keep-alive connections (a client's connection pool
starting, a load test) can land on one worker and leave the others idle for as long as those
connections live. Here every worker gets its own socket, all bound to the same address with
SO_REUSEPORT, and the kernel spreads new connections over them by a hash of each connection's
addresses and ports.

The supervisor:
- refuses an address that is already in use, even by another SO_REUSEPORT group (a second server on
  the same port would otherwise silently take a share of the connections);
- asks each worker every few seconds whether it is alive and whether its event loop still runs; one
  that does not answer, or whose loop has been blocked for `STALL_SECONDS`, is killed, and one that
  died is started again, with a growing delay (at most 10 s) if it keeps dying. Connections that
  arrive for it meanwhile wait in its socket's backlog;
- stops everything when a worker fails before it ever served (the same failure would repeat);
- stops all workers on SIGINT, SIGTERM, SIGHUP or SIGQUIT (workers have their own process groups,
  so a terminal's signals reach only the supervisor), and workers stop by themselves, within
  `STOP_GRACE_SECONDS`, if the supervisor dies.
Only processes of the same user can join a SO_REUSEPORT group (Linux checks the effective uid).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnProcess
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from openkms.server.runtime import WORKER_SLOT_ENV

log = logging.getLogger("openkms.server")

POLL_SECONDS = 0.5  # how often the supervisor looks at its workers
PING_EVERY_SECONDS = 5.0  # how often a worker is asked whether it is alive
PING_TIMEOUT_SECONDS = 5.0  # a worker that does not answer in this time is hung: killed, replaced
STOP_GRACE_SECONDS = 30.0  # how long the workers together may take to stop once told to
RESTART_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)  # after the 1st, 2nd, ... death in a row
STALL_SECONDS = 10.0  # a serving worker whose event loop has not ticked for this long is hung
STEADY_SECONDS = 30.0  # a worker that served this long before dying restarts without delay
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)

_spawn = multiprocessing.get_context("spawn")


def listening_sockets(host: str, port: int, count: int, backlog: int = 2048) -> list[socket.socket]:
    """`count` listening sockets on (`host`, `port`) with SO_REUSEPORT. Port 0: the first one picks a
    free port and the others join it. Raises OSError if the address is in use, by anyone."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # A socket without SO_REUSEPORT cannot bind where any other socket listens, so the probe refuses
    # an address taken by another server, including another SO_REUSEPORT group; held until the group
    # listens, it also keeps a second server starting at the same moment from joining this one.
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        port = probe.getsockname()[1]
        sockets: list[socket.socket] = []
        try:
            for _ in range(count):
                sock = socket.socket(family, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.bind((host, port))
                sock.listen(backlog)
        except OSError:
            for sock in sockets:
                sock.close()
            raise
    return sockets


class _Server(uvicorn.Server):
    """uvicorn's server, noting when its event loop last ticked (every 0.1 s while it runs)."""

    ticked_at = 0.0

    async def on_tick(self, counter: int) -> bool:
        self.ticked_at = time.monotonic()
        return await super().on_tick(counter)


def _run_worker(config: uvicorn.Config, sock: socket.socket, pings: Connection, slot: int) -> None:
    """A worker process (spawned: a fresh interpreter): one uvicorn server on its own socket. Its
    audit files form one line per slot (the socket's index), each linked to the one before."""
    os.environ[WORKER_SLOT_ENV] = str(slot)
    os.setpgrp()  # a terminal's signals go to the supervisor, which stops the workers in order
    config.configure_logging()
    server = _Server(config)

    def answer_pings() -> None:
        # (serving, seconds since the event loop last ticked): a blocked loop counts as hung.
        try:
            while pings.recv() is not None:
                stalled = time.monotonic() - server.ticked_at if server.started else 0.0
                pings.send((server.started, stalled))
        except (EOFError, OSError):
            pass

    def stop_with_the_supervisor() -> None:
        parent = multiprocessing.parent_process()
        if parent is not None:
            wait([parent.sentinel])
            os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's graceful shutdown, bounded:
            time.sleep(STOP_GRACE_SECONDS)
            os._exit(1)

    threading.Thread(target=answer_pings, daemon=True).start()
    threading.Thread(target=stop_with_the_supervisor, daemon=True).start()
    try:
        server.run(sockets=[sock])
    except Exception:
        log.exception("worker failed")
    if not server.started and not server.should_exit:
        sys.exit(STARTUP_FAILURE)


class _Worker:
    """One worker process and what the supervisor knows about it."""

    def __init__(self, index: int, process: SpawnProcess, pings: Connection) -> None:
        self.index = index
        self.process = process
        self.pings = pings
        self.started_at = time.monotonic()
        self.pinged_at: float | None = None  # a ping is out, unanswered, since then
        self.next_ping = self.started_at + PING_EVERY_SECONDS
        self.served = False  # answered a ping with "started" at least once

    @property
    def pid(self) -> int | None:
        return self.process.pid


class WorkerSupervisor:
    """Runs one worker process per socket, replaces workers that die or hang, stops them all on a
    signal. `run` returns 0 after a signal, 1 if a worker could not start serving."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        self._config = config
        self._sockets = sockets
        self._workers: list[_Worker] = []
        self._signals: list[int] = []  # appended by the handler only: nothing there may take a lock
        self._deaths = [0] * len(sockets)  # deaths in a row, per socket
        self._restart_at: dict[int, float] = {}  # socket index -> when to start its next worker
        self._everyone_served = False
        self.failed = False

    def _start(self, index: int) -> _Worker:
        ours, theirs = _spawn.Pipe()
        process = _spawn.Process(
            target=_run_worker,
            args=(self._config, self._sockets[index], theirs, index),
            name=f"openkms-worker-{index}",
        )
        process.start()
        theirs.close()
        log.info("worker %d started (pid %s)", index, process.pid)
        return _Worker(index, process, ours)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals.append(signum)

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        try:
            host, port = self._sockets[0].getsockname()[:2]
            log.info("listening on %s:%s with %d workers", host, port, len(self._sockets))
            for index in range(len(self._sockets)):
                self._workers.append(self._start(index))
            while not self._signals and not self.failed:
                time.sleep(POLL_SECONDS)
                if self._signals:
                    break
                self._look_after_workers()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 1 if self.failed else 0

    def _look_after_workers(self) -> None:
        now = time.monotonic()
        for position, worker in enumerate(self._workers):
            due = self._restart_at.get(worker.index)
            if due is not None:  # dead, waiting for its restart delay
                if now >= due:
                    try:
                        self._workers[position] = self._start(worker.index)
                        del self._restart_at[worker.index]
                    except OSError as exc:  # no process could be made (EAGAIN, EMFILE): try later
                        log.error("worker %d could not be started: %s", worker.index, exc)
                        self._restart_at[worker.index] = now + RESTART_DELAYS[-1]
                continue
            if worker.process.is_alive():
                self._ping(worker, now)
                if worker.process.is_alive():
                    continue
            worker.process.join()
            worker.pings.close()
            code = worker.process.exitcode
            if code == STARTUP_FAILURE and not self._everyone_served:
                log.error("worker %d (pid %s) could not start serving; stopping", worker.index, worker.pid)
                self.failed = True
                return
            steady = now - worker.started_at >= STEADY_SECONDS
            deaths = self._deaths[worker.index] = 0 if steady else self._deaths[worker.index] + 1
            delay = 0.0 if deaths == 0 else RESTART_DELAYS[min(deaths, len(RESTART_DELAYS)) - 1]
            log.warning(
                "worker %d (pid %s) exited with %s; starting another in %.1f s",
                worker.index,
                worker.pid,
                code,
                delay,
            )
            self._restart_at[worker.index] = now + delay
        self._everyone_served = self._everyone_served or all(worker.served for worker in self._workers)

    def _ping(self, worker: _Worker, now: float) -> None:
        """Ask a worker whether it is alive; kill it if it has not answered for too long."""
        try:
            while worker.pings.poll():
                serving, stalled = worker.pings.recv()
                worker.served = worker.served or bool(serving)
                worker.pinged_at = None
                if stalled > STALL_SECONDS:
                    log.error(
                        "worker %d (pid %s): its event loop has been blocked for %.0f s; killing it",
                        worker.index,
                        worker.pid,
                        stalled,
                    )
                    worker.process.kill()
                    worker.process.join(STOP_GRACE_SECONDS)
                    return
            if worker.pinged_at is None and now >= worker.next_ping:
                worker.pings.send(True)
                worker.pinged_at, worker.next_ping = now, now + PING_EVERY_SECONDS
        except (EOFError, OSError):
            pass  # it is exiting; the next look finds it dead
        if worker.pinged_at is not None and now - worker.pinged_at > PING_TIMEOUT_SECONDS:
            log.error("worker %d (pid %s) does not answer; killing it", worker.index, worker.pid)
            worker.process.kill()
            worker.process.join(STOP_GRACE_SECONDS)

    def _stop_all(self) -> None:
        for worker in self._workers:
            if worker.process.is_alive():
                worker.process.terminate()  # SIGTERM: uvicorn finishes open requests, the app shuts down
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for worker in self._workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                log.error("worker %d (pid %s) did not stop in time; killing it", worker.index, worker.pid)
                worker.process.kill()
                worker.process.join()
            worker.pings.close()


def serve_one(config: uvicorn.Config, sock: socket.socket) -> int:
    """Serve `config` in this process on the bound socket `sock` (`--workers 1`); the exit status.

    After its graceful shutdown uvicorn raises the stop signal again for the handler it found; the
    one installed here only notes it, so that this returns and the caller cleans up (0 after a
    signal, as `WorkerSupervisor.run`)."""
    stopped: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda signum, _frame: stopped.append(signum)) for sig in STOP_SIGNALS
    }
    try:
        server = uvicorn.Server(config)
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if server.started else STARTUP_FAILURE


def serve_workers(config: uvicorn.Config, workers: int) -> int:
    """Serve `config` with `workers` processes on per-worker SO_REUSEPORT sockets; the exit status."""
    try:
        sockets = listening_sockets(config.host, config.port, workers, config.backlog)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", config.host, config.port, exc)
        return 1
    try:
        return WorkerSupervisor(config, sockets).run()
    finally:
        for sock in sockets:
            sock.close()
