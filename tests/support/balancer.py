"""A small HTTP/1.1 load balancer for tests: each request goes to the next node in turn, whatever
connection it came on, so a client's consecutive requests alternate between the nodes (as a
round-robin balancer with request-level routing does). Bytes pass through unchanged (the Host header
too: the signatures cover it). It runs on its own event loop in a thread of the test process."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from dataclasses import dataclass, field

_HOP = (b"connection", b"keep-alive")


@dataclass
class Balancer:
    upstreams: list[int]  # the nodes' ports on 127.0.0.1
    port: int = 0
    served: list[int] = field(default_factory=list)  # requests sent to each upstream
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: asyncio.Server = field(init=False)
    _done: asyncio.Event = field(init=False)
    _clients: set[asyncio.Task[None]] = field(default_factory=set)

    def start(self) -> Balancer:
        self.served = [0] * len(self.upstreams)
        ready = threading.Event()
        turns = itertools.cycle(range(len(self.upstreams)))

        async def main() -> None:
            self._done = asyncio.Event()
            self._server = await asyncio.start_server(
                lambda r, w: self._client(r, w, turns), "127.0.0.1", self.port or 0
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            await self._done.wait()

        def run() -> None:
            self._loop = loop = asyncio.new_event_loop()
            loop.run_until_complete(main())
            loop.close()

        self._thread = threading.Thread(target=run, name="test-balancer", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        """Close the listener and every connection, wait for them, then end the loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        async def shutdown() -> None:
            self._server.close()
            tasks = list(self._clients)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._done.set()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, turns: itertools.cycle[int]
    ) -> None:
        upstreams: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            while True:
                request = await _read_message(reader, response=False)
                if request is None:
                    return
                index = next(turns)
                self.served[index] += 1
                response = await self._forward(upstreams, index, request)
                writer.write(response)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            for _, upstream_writer in upstreams.values():
                upstream_writer.close()
                with contextlib.suppress(Exception):
                    await upstream_writer.wait_closed()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._clients.discard(task)

    async def _forward(
        self,
        upstreams: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]],
        index: int,
        request: bytes,
    ) -> bytes:
        for attempt in range(2):
            if index not in upstreams:
                upstreams[index] = await asyncio.open_connection("127.0.0.1", self.upstreams[index])
            upstream_reader, upstream_writer = upstreams[index]
            try:
                upstream_writer.write(request)
                await upstream_writer.drain()
                response = await _read_message(upstream_reader, response=True)
            except (ConnectionError, asyncio.IncompleteReadError):
                response = None
            if response is not None:
                return response
            upstream_writer.close()
            del upstreams[index]  # the node closed a kept-alive connection: once more on a new one
            if attempt:
                break
        return b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n"


async def _read_message(reader: asyncio.StreamReader, *, response: bool) -> bytes | None:
    """One whole HTTP/1.1 message (head and body) as bytes; None at a clean end of the stream."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = b""
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            body += size_line + chunk
            if size == 0:
                return head + body
    length = int(headers.get(b"content-length", b"0"))
    return head + await reader.readexactly(length)
