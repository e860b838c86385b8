"""Slow and oversized clients against a live server: slowloris and silent connections are closed at
their timeouts, a slow body is cut, an oversized body is refused (413, audited) without being read,
oversized header sections get 431, an endless chunked trailer is cut at the header cap, and 200
trickling connections do not keep normal clients out. The limits reach every worker of a multi-worker
server."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.raw import send, signed_params
from tests.support.sdk import KmsCaller
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0
BODY_CAP = 64 * 1024
SLACK = 15.0  # a bound on how late a closing may come on a busy machine; not a timing assertion

LIMITS_ENV = {
    "OPENKMS_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
    "OPENKMS_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
    "OPENKMS_MAX_BODY_BYTES": str(BODY_CAP),
    "OPENKMS_MAX_HEADER_BYTES": "8192",
    "OPENKMS_MAX_HEADERS": "30",
}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("slow") / "data", extra_env=LIMITS_ENV).start()
    yield server
    server.stop()


def _connect(server: LiveServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=30)


def _read_answer(conn: socket.socket) -> tuple[int, dict[str, str], bytes]:
    with conn.makefile("rb") as stream:
        status_line = stream.readline()
        assert status_line, "closed without an answer"
        headers: dict[str, str] = {}
        while (line := stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = stream.read(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


def _closed_by_server(conn: socket.socket, within: float) -> bytes:
    """What the server sends until it closes the connection; fails if it is still open after `within`."""
    conn.settimeout(within)
    received = b""
    try:
        while chunk := conn.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for {within} s")
    return received


def _is_closed(conn: socket.socket) -> bool:
    readable, _, _ = select.select([conn], [], [], 0)
    if not readable:
        return False
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except ConnectionResetError:
        return True


def test_a_client_that_connects_and_says_nothing_is_disconnected(limited: LiveServer) -> None:
    with _connect(limited) as conn:
        started = time.monotonic()
        assert _closed_by_server(conn, HEADER_TIMEOUT + SLACK) == b""
        assert time.monotonic() - started >= HEADER_TIMEOUT * 0.5  # closed by the timeout, not at once


def test_slowloris_trickling_one_header_byte_a_second_is_disconnected(limited: LiveServer) -> None:
    request = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: " + b"s" * 100
    with _connect(limited) as conn:
        deadline = time.monotonic() + HEADER_TIMEOUT + SLACK
        sent = 0
        while not _is_closed(conn):
            assert time.monotonic() < deadline, f"still open after {sent} bytes"
            try:
                conn.sendall(request[sent : sent + 1])
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
            time.sleep(1.0)
        assert sent < len(request)  # cut off long before the headers could have ended


def test_a_slow_body_is_cut_at_the_body_timeout_and_not_dispatched(limited: LiveServer) -> None:
    params = signed_params("ListKmsInstances", ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    body = "&".join(f"{name}={value}" for name, value in params.items()).encode()
    head = (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    with _connect(limited) as conn:
        conn.sendall(head + body[:10])
        deadline = time.monotonic() + BODY_TIMEOUT + SLACK
        sent = 10
        while not _is_closed(conn):
            assert time.monotonic() < deadline, "a slow body was not cut"
            try:
                conn.sendall(body[sent : sent + 1])
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
            time.sleep(0.5)
        assert sent < len(body)
        assert _closed_by_server(conn, SLACK) == b""  # cut, not answered


def test_a_declared_oversized_body_gets_413_before_any_of_it_is_sent(limited: LiveServer) -> None:
    params = signed_params("ListKmsInstances", ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    query = "&".join(f"{name}={value}" for name, value in params.items())
    with _connect(limited) as conn:
        # Only the headers: the answer arrives although not one byte of the 10 MiB is sent.
        conn.sendall(
            b"POST /?%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n"
            % (query.encode(), 10 << 20)
        )
        status, headers, body = _read_answer(conn)
        assert status == 413
        assert headers["connection"] == "close"
        document = json.loads(body)
        assert (document["Code"], document["HttpStatus"]) == ("EntityTooLarge", 413)
        assert document["RequestId"] == headers["x-acs-request-id"]
        assert _closed_by_server(conn, SLACK) == b""


def test_a_chunked_body_is_refused_at_the_cap_without_reading_the_rest(limited: LiveServer) -> None:
    with _connect(limited) as conn:
        conn.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"a" * 16384
        for _ in range(BODY_CAP // len(chunk) + 2):  # past the cap; the body never ends
            conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        status, headers, body = _read_answer(conn)
        assert status == 413
        assert json.loads(body)["Code"] == "EntityTooLarge"
        assert headers["connection"] == "close"


def test_the_refusal_of_an_oversized_body_is_audited(limited: LiveServer) -> None:
    with _connect(limited) as conn:
        conn.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n" % (BODY_CAP + 1))
        _status, headers, _body = _read_answer(conn)
    request_id = headers["x-acs-request-id"]
    deadline = time.monotonic() + SLACK
    while True:
        records = [
            json.loads(line)
            for path in (limited.data_dir / "audit").glob("*.jsonl")
            for line in path.read_text().splitlines()
            if request_id in line
        ]
        if records or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(records) == 1
    assert records[0]["result"] == "EntityTooLarge"


def test_a_chunked_body_with_an_endless_trailer_is_cut_at_the_header_cap(limited: LiveServer) -> None:
    """A trailer httptools would grow with every read until the body timeout: the server closes the
    connection once the trailer passes the header cap, with most of the 16 MiB unread (so the
    client's write is reset), and goes on serving."""
    with _connect(limited) as conn:
        conn.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        conn.sendall(b"5\r\nhello\r\n0\r\nX-Endless: ")
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            conn.sendall(b"v" * (16 << 20))
    params = signed_params("ListKmsInstances", ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    assert send(limited.url, params).status_code == 200


@pytest.mark.parametrize(
    "head",
    [
        b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(40)) + b"\r\n",
        b"GET /healthz HTTP/1.1\r\nX-Big: " + b"v" * 10000 + b"\r\n\r\n",
    ],
    ids=["too-many-headers", "too-large-headers"],
)
def test_oversized_header_sections_get_431(limited: LiveServer, head: bytes) -> None:
    with _connect(limited) as conn:
        conn.sendall(head)
        status, _headers, body = _read_answer(conn)
        assert status == 431
        assert json.loads(body)["Code"] == "RequestHeaderFieldsTooLarge"


def test_a_normal_request_still_passes(limited: LiveServer) -> None:
    params = signed_params("ListKmsInstances", ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    assert send(limited.url, params).status_code == 200


class _Tricklers:
    """`count` connections, each sending one more header byte every `every` seconds until closed."""

    def __init__(self, server: LiveServer, count: int, every: float) -> None:
        self.connections = [_connect(server) for _ in range(count)]
        self.closed: set[int] = set()
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Tricklers:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self.connections:
            conn.close()

    def _run(self) -> None:
        request = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"s" * 10000
        sent = 0
        while not self._stop.is_set():
            for index, conn in enumerate(self.connections):
                if index in self.closed:
                    continue
                if _is_closed(conn):
                    self.closed.add(index)
                    continue
                try:
                    conn.sendall(request[sent : sent + 1])
                except OSError:
                    self.closed.add(index)
            sent += 1
            self._stop.wait(self._every)


def test_200_slow_connections_do_not_keep_normal_clients_out(tmp_path: Path) -> None:
    # A header timeout long enough for the normal calls to run while all 200 are held.
    timeout = 20.0
    server = LiveServer(tmp_path / "data", extra_env={"OPENKMS_HEADER_TIMEOUT_SECONDS": str(timeout)}).start()
    try:
        kms = KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        with _Tricklers(server, 200, every=1.0) as tricklers:
            started = time.monotonic()
            instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
            key_id = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
            for index in range(10):
                blob = kms.call("Encrypt", KeyId=key_id, Plaintext=f"hello {index}")["CiphertextBlob"]
                assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == f"hello {index}"
                params = signed_params("DescribeKey", ACCESS_KEY_ID, ACCESS_KEY_SECRET, KeyId=key_id)
                assert send(server.url, params).status_code == 200
            # Every slow connection was held the whole time the normal calls were served ...
            if time.monotonic() - started < timeout * 0.5:
                assert not tricklers.closed
            # ... and each is closed at the header timeout.
            deadline = started + timeout + SLACK
            while len(tricklers.closed) < 200 and time.monotonic() < deadline:
                time.sleep(0.5)
            assert len(tricklers.closed) == 200
    finally:
        server.stop()


def test_the_limits_reach_every_worker(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data", workers=2, extra_env=LIMITS_ENV).start()
    try:
        pids = set()
        deadline = time.monotonic() + 60
        while len(pids) < 2:  # both workers answer (each listens on its own socket)
            assert time.monotonic() < deadline, pids
            with _connect(server) as conn:
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                status, _headers, body = _read_answer(conn)
                if status == 200:
                    pids.add(json.loads(body)["pid"])
        # New connections land on both workers: every one is closed at the header timeout and
        # gets 413 over the (lowered) body cap, whichever worker holds it.
        silent = [_connect(server) for _ in range(8)]
        for conn in silent:
            assert _closed_by_server(conn, HEADER_TIMEOUT + SLACK) == b""
            conn.close()
        for _ in range(8):
            with _connect(server) as conn:
                conn.sendall(
                    b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n" % (BODY_CAP + 1)
                )
                assert _read_answer(conn)[0] == 413
    finally:
        server.stop()
