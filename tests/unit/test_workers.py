"""The worker supervisor of `openkms serve --workers N` (cli/workers.py), without the OpenKMS app."""

from __future__ import annotations

import socket
import time

import pytest
import uvicorn

from openkms.cli.workers import listening_sockets, serve_workers


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


def test_a_worker_that_cannot_start_stops_the_supervisor() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config("tests.unit.no_such_module:app", host="127.0.0.1", port=port, workers=2)
    started = time.monotonic()
    assert serve_workers(config, 2) == 1
    assert time.monotonic() - started < 60
    with socket.socket() as again:  # the supervisor closed its sockets
        again.bind(("127.0.0.1", port))
