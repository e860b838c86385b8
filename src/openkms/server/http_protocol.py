"""The HTTP/1.1 connection of a worker: uvicorn's httptools protocol, held to time and size limits.

Owns what a slow or oversized client may hold of a worker before any request reaches the app:
- the header section must arrive within `header_timeout` of its first byte (of the connection's
  accept, for the first request: a client that connects and says nothing is closed too);
- the body must arrive within `body_timeout` of the end of the headers;
- the header section is at most `max_header_bytes` and `max_headers` fields (431, then closed);
- so are the lines between a chunked body's data: a size line with its extensions, and after the
  last chunk the trailer section, whose fields count with the headers' (the Alibaba SDKs never send
  trailers, and the app is never shown them);
- the worker holds at most `max_connections` open connections: one more is answered 503 and closed
  before anything of it is read.
A timed-out connection is closed without an answer, as other servers do. The clocks are deadlines
the request path only writes (a float per phase change, no timer per request); one timer per
connection, ticking every `tick` seconds (a quarter of the shorter timeout, at most 1 s), closes the
connection once its deadline has passed, so a timeout fires up to one tick late. While uvicorn does not
read (a pipelined request waits for the answer before it, or the app has not taken the body buffered so
far) the client cannot be late: the deadline moves on with the clock. A refusal is written only when no
answer is under way; else (trailers refused while their request is being answered, or a header section
while a pipelined request before it is) the connection is closed unanswered, so that no 431 lands before
or inside another answer. The body's size is the app's to refuse (`server/app.py`), so that the
refusal is audited like any other.

Uvicorn has no header timeout, hence this subclass. It hooks only the protocol's documented
callbacks (asyncio's `connection_made`, `data_received`, `connection_lost`; httptools' `on_*`)
and calls each parent method it overrides, but for the fields of a refused header section and of
trailers; `tests/unit/test_http_protocol.py` pins them.
Never reads the body, and never logs what a client sent.
"""

from __future__ import annotations

import asyncio
import enum
import http
import logging
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from openkms.api.dispatch import RECOMMEND
from openkms.api.render import render_json
from openkms.config import Settings
from openkms.service.ids import new_request_id

__all__ = ["ConnectionLimits", "LimitedHttpToolsProtocol", "error_answer"]

log = logging.getLogger("openkms.server")

# Bytes a header line costs beyond its name and value (": " and CRLF), and the request line
# beyond its target (method, version, spaces, CRLF), counted the same way for every request.
_LINE_OVERHEAD = 4
_REQUEST_LINE_OVERHEAD = 20


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """What one connection may hold of a worker (picklable: it travels to spawned workers)."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000
    max_header_bytes: int = 64 * 1024
    max_headers: int = 100

    @property
    def tick(self) -> float:
        """How often a connection looks at its deadline."""
        return min(1.0, self.header_timeout / 4, self.body_timeout / 4)

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            header_timeout=settings.header_timeout_seconds,
            body_timeout=settings.body_timeout_seconds,
            max_connections=settings.max_connections,
            max_header_bytes=settings.max_header_bytes,
            max_headers=settings.max_headers,
        )


class _Phase(enum.Enum):
    IDLE = "idle"  # between requests (or before the first): no byte of a request yet
    HEADERS = "headers"  # a request began; its header section is incomplete
    BODY = "body"  # the headers are complete; the body's data is still arriving
    # Between the headers or a chunk's data and the next data: lines of a chunked body. A size line
    # may carry extensions of any length, and after the last chunk (size 0) comes the trailer section,
    # which httptools buffers like header lines (a field grows with every read until its line ends):
    # their bytes are counted like the headers'. The first byte of data (of any body) ends it.
    LINES = "chunk lines"


def error_answer(status: http.HTTPStatus, code: str, message: str) -> bytes:
    """A complete HTTP response in the Alibaba error shape, closing the connection."""
    request_id = new_request_id()
    body = render_json(
        {
            "RequestId": request_id,
            "HostId": "",
            "Code": code,
            "Message": message,
            "Recommend": RECOMMEND,
            "HttpStatus": int(status),
        }
    )
    head = (
        f"HTTP/1.1 {int(status)} {status.phrase}\r\n"
        "content-type: application/json;charset=utf-8\r\n"
        f"content-length: {len(body)}\r\n"
        f"x-acs-request-id: {request_id}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of `ConnectionLimits`. Pass it to uvicorn as
    `http=functools.partial(LimitedHttpToolsProtocol, limits=...)`."""

    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._phase = _Phase.IDLE
        self._deadline: float | None = None  # loop time by which the current phase must end
        self._ticker: asyncio.TimerHandle | None = None
        self._head_bytes = 0  # bytes of the current header section received so far
        self._head_fields = 0
        self._head_size = 0  # of its complete lines, as parsed
        self._refused = False
        self._looked_at = 0.0  # loop time of the last tick

    # asyncio callbacks

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            log.warning("refused a connection: this worker holds %d", self.limits.max_connections)
            self._refuse(
                http.HTTPStatus.SERVICE_UNAVAILABLE,
                "ServiceUnavailableTemporary",
                "The server holds too many connections; retry later.",
            )
            return
        self._arm(self.limits.header_timeout)  # a client that connects and says nothing
        self._looked_at = self.loop.time()
        self._ticker = self.loop.call_later(self.limits.tick, self._look_at_the_clock)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # the connection is closing; what else the client sends is dropped
        if self._phase is _Phase.IDLE and self._deadline is None:
            self._arm(self.limits.header_timeout)  # the first byte of a request starts the clock
        if self._phase is not _Phase.BODY:
            # Every byte from here to the end of the headers (or the chunk lines) belongs to that
            # section, which httptools buffers until a line is complete: count it before the parser
            # holds it. (The body's data takes the phase to BODY, uncounted.)
            self._head_bytes += len(data)
        super().data_received(data)
        unfinished = not self._refused and self._phase in (_Phase.HEADERS, _Phase.LINES)
        if unfinished and self._head_bytes > self.limits.max_header_bytes:
            self._refuse_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        super().connection_lost(exc)

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown, but an idle TLS connection is aborted: closing it would wait
        for the client's close_notify, which an idle pooled client never sends, and hold the worker's
        exit for asyncio's TLS shutdown timeout (30 s)."""
        idle = self.cycle is None or self.cycle.response_complete
        if idle and self.transport.get_extra_info("sslcontext") is not None:
            self.transport.abort()
            return
        super().shutdown()

    # httptools callbacks (called from inside `data_received`)

    def on_message_begin(self) -> None:
        self._phase = _Phase.HEADERS
        self._head_fields = 0
        self._head_size = _REQUEST_LINE_OVERHEAD
        if self._deadline is None:
            self._arm(self.limits.header_timeout)
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        if self._refused:
            return
        self._head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refused:
            return
        self._head_fields += 1
        self._head_size += len(name) + len(value) + _LINE_OVERHEAD
        if self._head_fields > self.limits.max_headers or self._head_size > self.limits.max_header_bytes:
            self._refuse_headers()
            return
        if self._phase is _Phase.LINES:  # a trailer: uvicorn would add it to the headers the app
            return  # is already serving the request with
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        if self._head_size > self.limits.max_header_bytes:  # a long request target
            self._refuse_headers()
            return
        self._phase = _Phase.LINES  # a chunked body's first size line, if any, comes next
        self._head_bytes = 0
        self._arm(self.limits.body_timeout)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        if self._phase is _Phase.LINES:
            self._phase = _Phase.BODY
            self._head_bytes = 0
        super().on_body(body)

    def on_chunk_complete(self) -> None:
        """A chunk's data and its line end arrived: the next size line follows (or, after the trailer
        section, the end of the message). uvicorn's protocol has no such callback."""
        if self._refused:
            return
        self._phase = _Phase.LINES

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._phase = _Phase.IDLE
        self._head_bytes = 0
        self._disarm()  # until the next request's first byte; uvicorn's keep-alive timer runs now
        super().on_message_complete()

    # limits

    def _arm(self, seconds: float) -> None:
        self._deadline = self.loop.time() + seconds

    def _disarm(self) -> None:
        self._deadline = None

    def _look_at_the_clock(self) -> None:
        """The connection's tick: close it if its deadline passed, else look again a tick later."""
        self._ticker = None
        if self._refused or self.transport.is_closing():
            return
        now = self.loop.time()
        deadline = self._deadline
        if deadline is not None:
            # While uvicorn does not read, the client cannot send: that time is not counted.
            if self.flow.read_paused:
                self._deadline = deadline + (now - self._looked_at)
            elif now >= deadline:
                self._timed_out()
                return
        self._looked_at = now
        self._ticker = self.loop.call_later(self.limits.tick, self._look_at_the_clock)

    def _timed_out(self) -> None:
        self._deadline = None
        log.info("closed a connection: its request %s did not arrive in time", self._phase.value)
        self._refused = True
        self.transport.close()

    def _refuse_headers(self) -> None:
        self._refuse(
            http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
            "RequestHeaderFieldsTooLarge",
            f"The request's header section passes {self.limits.max_header_bytes} bytes "
            f"or {self.limits.max_headers} fields.",
        )

    def _refuse(self, status: http.HTTPStatus, code: str, message: str) -> None:
        """Answer `status` in the Alibaba error shape and close; nothing more is read or parsed. While
        an answer is under way (the request's own, if its trailers are refused, or a request's before
        it, pipelined), close without one: the refusal would land before or inside it."""
        self._refused = True
        self._disarm()
        if not self.transport.is_closing():
            if self.cycle is None or self.cycle.response_complete:
                self.transport.write(error_answer(status, code, message))
            self.transport.close()
