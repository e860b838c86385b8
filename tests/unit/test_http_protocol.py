"""The limited httptools protocol (server/http_protocol.py) inside a real uvicorn server, in this
process, with a small ASGI app: header caps, the caps on a chunked body's lines (trailers, chunk
extensions), timeouts (and none while uvicorn does not read), the connection cap, keep-alive reuse,
pipelining."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http
import inspect
import json
import pickle
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from openkms.config import load_settings
from openkms.server.http_protocol import ConnectionLimits, LimitedHttpToolsProtocol, error_answer

SLACK = 10.0  # seconds a closing may take beyond its timeout on a busy machine (a bound, not a timing)
SLOW = 3.0  # seconds the app takes to answer a request for /slow: past the timeouts of LIMITS


async def _echo_app(
    scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]], send: Any
) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(SLOW)
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    answer = json.dumps({"headers": len(scope["headers"]), "body": len(body)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(answer)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": answer})


@asynccontextmanager
async def _server(limits: ConnectionLimits) -> AsyncIterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        _echo_app,
        http=functools.partial(LimitedHttpToolsProtocol, limits=limits),
        ws="none",
        lifespan="off",
        log_level="warning",
        loop="asyncio",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        sock.close()


async def _answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    status_line = await reader.readline()
    assert status_line, "the connection was closed without an answer"
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server sends until it closes the connection (fails if it stays open)."""
    return await asyncio.wait_for(reader.read(), timeout=seconds)


LIMITS = ConnectionLimits(
    header_timeout=1.0, body_timeout=1.0, max_connections=4, max_header_bytes=4096, max_headers=10
)


def test_a_well_formed_request_and_keep_alive_reuse_pass() -> None:
    async def scenario() -> None:
        async with _server(LIMITS) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(3):
                writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
                status, _headers, body = await _answer(reader)
                assert (status, json.loads(body)) == (200, {"headers": 2, "body": 5})
            writer.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(11)) + b"\r\n",  # 11 fields
        b"GET / HTTP/1.1\r\nX-Big: " + b"v" * 5000 + b"\r\n\r\n",  # one complete field past 4 KiB
        b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # a request target past 4 KiB
    ],
    ids=["too-many-fields", "too-large-field", "too-long-target"],
)
def test_header_sections_past_the_caps_get_431_and_close(head: bytes) -> None:
    async def scenario() -> None:
        async with _server(LIMITS) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head)
            status, headers, body = await _answer(reader)
            assert status == http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
            assert headers["connection"] == "close"
            document = json.loads(body)
            assert document["Code"] == "RequestHeaderFieldsTooLarge"
            assert document["HttpStatus"] == 431
            assert await _closed_within(reader, SLACK) == b""
            writer.close()

    asyncio.run(scenario())


def test_an_endless_header_line_is_refused_before_it_ends() -> None:
    """httptools buffers an unfinished line: the bytes are counted as they arrive."""

    async def scenario() -> None:
        async with _server(LIMITS) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            answer = asyncio.create_task(_answer(reader))
            writer.write(b"GET / HTTP/1.1\r\nX-Endless: ")
            sent = 0
            for _ in range(64):  # up to 64 KiB of one value, never finished
                await asyncio.sleep(0.05)
                if answer.done():
                    break
                writer.write(b"v" * 1024)
                sent += 1
            status, _headers, _body = await answer
            assert sent < 16  # refused at about the 4 KiB cap, not at the end of the line
            assert status == 431
            writer.close()

    asyncio.run(scenario())


CHUNKED = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


def test_a_chunked_body_with_a_trailer_passes_and_the_app_is_not_shown_the_trailer() -> None:
    async def scenario() -> None:
        async with _server(LIMITS) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(CHUNKED + b"5\r\nhello\r\n0\r\nX-Trailer: v\r\n\r\n")
            status, _headers, body = await _answer(reader)
            assert (status, json.loads(body)) == (200, {"headers": 2, "body": 5})
            writer.close()

    asyncio.run(scenario())


def test_bodies_and_chunks_past_the_header_cap_pass() -> None:
    """Only the lines of a chunked body count against the cap, not its data, even when a chunk's
    data arrives in a read of its own after its size line."""

    async def scenario() -> None:
        async with _server(LIMITS) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n" + b"a" * 10000)
            status, _headers, body = await _answer(reader)
            assert (status, json.loads(body)) == (200, {"headers": 2, "body": 10000})
            writer.write(CHUNKED)
            for _ in range(3):
                writer.write(b"2000\r\n")  # 8 KiB, twice the header cap
                await writer.drain()
                await asyncio.sleep(0.05)  # let the server read the size line alone
                writer.write(b"a" * 0x2000 + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            status, _headers, body = await _answer(reader)
            assert (status, json.loads(body)) == (200, {"headers": 2, "body": 3 * 0x2000})
            writer.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "start",
    [
        b"5\r\nhello\r\n0\r\nX-Endless: ",  # a trailer's value
        b"5\r\nhello\r\n0\r\n",  # a trailer's name
        b"5;ext=",  # the first chunk's extension
        b"5\r\nhello\r\n5;ext=",  # a later chunk's extension
    ],
    ids=["trailer-value", "trailer-name", "first-extension", "later-extension"],
)
def test_endless_lines_of_a_chunked_body_are_cut_at_the_header_cap(start: bytes) -> None:
    """httptools would grow a trailer with every read until the body timeout: its bytes are counted
    like a header section's, so the connection is cut long before 16 MiB are read."""

    async def scenario() -> None:
        limits = ConnectionLimits(header_timeout=60.0, body_timeout=60.0, max_header_bytes=4096)
        async with _server(limits) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(CHUNKED + start + b"v" * (16 << 20))
            with pytest.raises(ConnectionError):  # reset: the server closed with all that unread
                await asyncio.wait_for(writer.drain(), timeout=SLACK)
            writer.close()
            # ... and it goes on serving.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await _answer(reader))[0] == 200
            writer.close()

    asyncio.run(scenario())


def test_trailers_past_the_field_cap_close_the_connection_unanswered() -> None:
    """The app is serving the request when its trailers arrive: a 431 would land inside its answer."""

    async def scenario() -> None:
        async with _server(LIMITS) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            trailers = b"".join(b"X-%d: v\r\n" % i for i in range(LIMITS.max_headers))
            writer.write(CHUNKED + b"5\r\nhello\r\n0\r\n" + trailers + b"\r\n")
            assert await _closed_within(reader, SLACK) == b""
            writer.close()

    asyncio.run(scenario())


def test_a_pipelined_request_is_not_timed_out_while_it_waits_for_the_one_before() -> None:
    """uvicorn stops reading while a pipelined request waits: its body cannot arrive meanwhile."""

    async def scenario() -> None:
        async with _server(LIMITS) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
            )
            await writer.drain()
            await asyncio.sleep(0.2)  # the server reads both heads and stops reading
            writer.write(b"hello")  # read once the slow answer is out, SLOW seconds later
            status, _headers, body = await _answer(reader)
            assert (status, json.loads(body)) == (200, {"headers": 1, "body": 0})
            status, _headers, body = await _answer(reader)
            assert (status, json.loads(body)) == (200, {"headers": 2, "body": 5})
            writer.close()

    asyncio.run(scenario())


def test_a_refusal_behind_an_unfinished_pipelined_answer_closes_unanswered() -> None:
    """The 431 would reach the client before (or inside) the answer to the request before it."""

    async def scenario() -> None:
        async with _server(LIMITS) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            too_many = b"".join(b"X-%d: v\r\n" % i for i in range(LIMITS.max_headers + 1))
            writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n" + too_many + b"\r\n")
            assert await _closed_within(reader, SLACK) == b""
            writer.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET / HTTP/1.1\r\nHost", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"],
    ids=["silent", "partial-headers", "partial-body"],
)
def test_an_unfinished_request_is_closed_at_its_timeout_without_an_answer(sent: bytes) -> None:
    async def scenario() -> None:
        async with _server(LIMITS) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(sent)
            assert await _closed_within(reader, LIMITS.header_timeout + SLACK) == b""
            writer.close()

    asyncio.run(scenario())


def test_a_trickling_client_is_closed_at_the_header_timeout() -> None:
    """Slowloris: each byte arrives well within any per-read timeout, the whole never does."""

    async def scenario() -> None:
        async with _server(LIMITS) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            sent = 0
            for byte in b"GET / HTTP/1.1\r\nX-Slow: " + b"v" * 1000:
                if reader.at_eof():
                    break
                try:
                    writer.write(bytes([byte]))
                    await writer.drain()
                except ConnectionError:
                    break
                sent += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reader.read(1), timeout=0.2)
            # 0.2 s a byte: the 1 s header timeout ends it long before the line would end.
            assert sent < 200
            writer.close()

    asyncio.run(scenario())


def test_keep_alive_clock_restarts_at_each_request() -> None:
    """A second request on the same connection gets its own header timeout, from its first byte."""

    async def scenario() -> None:
        async with _server(LIMITS) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await _answer(reader))[0] == 200
            writer.write(b"GET / HTTP/1.1\r\n")  # and never the rest
            assert await _closed_within(reader, LIMITS.header_timeout + SLACK) == b""
            writer.close()

    asyncio.run(scenario())


def test_connections_past_the_cap_get_503_before_anything_is_read() -> None:
    async def scenario() -> None:
        limits = ConnectionLimits(header_timeout=30.0, max_connections=3)
        async with _server(limits) as port:
            held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
            await asyncio.sleep(0.2)  # let the server accept them
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            status, _headers, body = await _answer(reader)
            assert status == 503
            assert json.loads(body)["Code"] == "ServiceUnavailableTemporary"
            writer.close()
            for _reader, held_writer in held:
                held_writer.close()
            await asyncio.sleep(0.2)  # the server sees them go
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await _answer(reader))[0] == 200
            writer.close()

    asyncio.run(scenario())


def test_limits_come_from_the_settings_and_travel_to_spawned_workers() -> None:
    settings = load_settings(
        environ={
            "OPENKMS_HEADER_TIMEOUT_SECONDS": "3.5",
            "OPENKMS_BODY_TIMEOUT_SECONDS": "7",
            "OPENKMS_MAX_CONNECTIONS": "12",
            "OPENKMS_MAX_HEADER_BYTES": "2048",
            "OPENKMS_MAX_HEADERS": "9",
        }
    )
    limits = ConnectionLimits.from_settings(settings)
    assert limits == ConnectionLimits(3.5, 7.0, 12, 2048, 9)
    factory = functools.partial(LimitedHttpToolsProtocol, limits=limits)
    assert pickle.loads(pickle.dumps(factory)).keywords == {"limits": limits}


def test_the_hooked_parent_methods_exist() -> None:
    """A uvicorn upgrade that renamed a hooked callback would silently switch a limit off."""
    hooked = {
        name
        for name, member in vars(LimitedHttpToolsProtocol).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }
    own = {"on_chunk_complete"}  # httptools calls it; uvicorn's protocol has none (else: call it)
    assert hooked == {
        "connection_made",
        "data_received",
        "connection_lost",
        "on_message_begin",
        "on_url",
        "on_header",
        "on_headers_complete",
        "on_body",
        "on_message_complete",
        "shutdown",  # aborts an idle TLS connection, else uvicorn's
        *own,
    }
    for name in hooked - own:
        assert callable(getattr(HttpToolsProtocol, name, None)), name
    for name in own:
        assert not hasattr(HttpToolsProtocol, name), name
    for attribute in ("loop", "connections", "transport", "cycle", "flow"):
        assert attribute in inspect.getsource(HttpToolsProtocol.__init__), attribute
    assert "self.read_paused" in inspect.getsource(FlowControl.__init__)
    assert "self.response_complete" in inspect.getsource(RequestResponseCycle.__init__)


def test_error_answer_is_a_complete_alibaba_error() -> None:
    raw = error_answer(http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "RequestHeaderFieldsTooLarge", "m")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert f"content-length: {len(body)}".encode() in head
    document = json.loads(body)
    assert set(document) == {"RequestId", "HostId", "Code", "Message", "Recommend", "HttpStatus"}
