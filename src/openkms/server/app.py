"""The server's ASGI application: the one place where the request path is fixed.

`/` is the Alibaba RPC endpoint, served by a raw ASGI handler (the hot path pays for no framework);
everything else (`/healthz`, `/readyz`, `/metrics`: `server/observability.py`; the console at
`/console/`) is a Starlette app. The object graph comes from
`server/runtime.py`, built once per worker process and passed down: no module-global engines,
sessions or singletons. The lifespan unseals, starts the jobs and the usage flusher, and closes
everything in order.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from openkms import metrics
from openkms.api.dispatch import RawRequest, RpcDispatcher
from openkms.api.instance.dispatch import CONTENT_TYPE as INSTANCE_CONTENT_TYPE
from openkms.api.instance.dispatch import InstanceDispatcher
from openkms.audit import AuditSink
from openkms.clock import Clock, DevClock, iso_utc
from openkms.config import Settings, load_settings
from openkms.console.app import build_console
from openkms.jobs.scheduler import JobScheduler
from openkms.metrics import COHERENCE_DELAY_SECONDS
from openkms.node.nonces import SharedNonceStore
from openkms.node.rate_limits import RATE_FILE, SharedRateLimiter
from openkms.repository.change_feed import ChangeBarrier, ChangeFeed
from openkms.repository.leases import new_holder
from openkms.repository.replay_ledger import ReplayLedger
from openkms.server.file_modes import keep_new_files_private
from openkms.server.log_format import configure as configure_logging
from openkms.server.observability import Readiness, flush_metrics_periodically, metrics_response, readyz
from openkms.server.runtime import Runtime, build_runtime, key_audit_chain, tenant_limits
from openkms.server.unseal import UnsealListener
from openkms.service.bootstrap import describe_root_credentials, ensure_root_access_key
from openkms.service.replay import NONCE_FILE, node_memory_dir
from openkms.service.seal import root_of_trust
from openkms.service.usage import FLUSH_SECONDS as USAGE_FLUSH_SECONDS

log = logging.getLogger("openkms.server")


class OpenKMSApp:
    """Top-level ASGI app: routes `/` to the RPC dispatcher, the rest to Starlette."""

    def __init__(
        self,
        runtime: Runtime,
        dispatcher: RpcDispatcher,
        limits: SharedRateLimiter | None = None,
        shared_replay: ReplayLedger | None = None,
        nonces: SharedNonceStore | None = None,
        barrier: ChangeBarrier | None = None,
    ):
        self.runtime = runtime
        self.settings = settings = runtime.settings
        self.services = runtime.services
        self.dispatcher = dispatcher
        # The KMS instance API shares the port: its requests are told apart by their x-kms-apiname.
        self.instance = InstanceDispatcher(
            runtime.services,
            runtime.runner,
            settings.timestamp_window_seconds,
            settings.timestamp_future_skew_seconds,
            limits,
        )
        self.audit: AuditSink = runtime.audit
        self.jobs = JobScheduler(
            runtime.services,
            runtime.runner,
            settings.job_interval_seconds,
            lease_seconds=settings.job_lease_seconds,
        )
        self.shared_replay = shared_replay
        self.barrier = barrier
        # Several nodes on one PostgreSQL store: act on every other node's committed changes.
        self.change_feed = (
            None
            if runtime.db.is_sqlite
            else ChangeFeed(
                settings.effective_database_url,
                self._on_store_change,
                poll_seconds=settings.coherence_poll_seconds,
                worker=new_holder(),
            )
        )
        self.unseal_listener = UnsealListener(settings, runtime.keystore, self._after_unseal)
        console = build_console(runtime.services, runtime.runner, settings, limits)
        self.nonces = nonces
        self.readiness = Readiness(runtime.services, runtime.audit)
        self.web = Starlette(
            routes=[
                Route("/healthz", self.healthz),
                Route("/readyz", self.readyz),
                Route("/metrics", self.metrics),
                Route("/console", _to_console),
                Mount("/console", app=console),
            ],
            lifespan=self._lifespan,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/":
            await self._rpc(scope, receive, send)
        else:
            await self.web(scope, receive, send)

    async def _rpc(self, scope: Scope, receive: Receive, send: Send) -> None:
        read = await self._read_body(scope, receive)
        if read is None:
            return  # the client went away (or was cut off at a timeout): nobody to answer
        body, too_large = read
        client = scope.get("client")
        raw = RawRequest(
            method=scope["method"],
            path=scope["path"],
            query_string=scope["query_string"],
            headers=scope["headers"],
            body=body,
            source_ip=client[0] if client else None,
            too_large=too_large,
            scheme=scope.get("scheme", "http"),
        )
        for name, _ in scope["headers"]:
            if name == b"x-kms-apiname":  # the instance API (dkms-gcs): protobuf, client keys
                await self._instance(raw, send)
                return
        reply = await self.dispatcher.handle(raw)
        headers = [
            (b"content-type", reply.content_type),
            # A known length lets the server send the answer in one write, not chunked.
            (b"content-length", str(len(reply.body)).encode()),
            (b"x-acs-request-id", reply.request_id.encode()),
        ]
        if too_large:
            headers.append((b"connection", b"close"))  # the unread rest of the body is dropped with it
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})

    async def _instance(self, raw: RawRequest, send: Send) -> None:
        reply = await self.instance.handle(raw)
        headers = [
            (b"content-type", INSTANCE_CONTENT_TYPE),
            (b"content-length", str(len(reply.body)).encode()),
            (b"x-kms-requestid", reply.request_id.encode()),
            *reply.headers,
        ]
        if raw.too_large:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})

    async def _read_body(self, scope: Scope, receive: Receive) -> tuple[bytes, bool] | None:
        """(body, too large). A body past `max_body_bytes` is left unread: refused on its
        Content-Length before any of it is read, else (chunked) as soon as the bytes read pass the
        cap. None if the client disconnected."""
        limit = self.settings.max_body_bytes
        for name, value in scope["headers"]:
            # Digits only (no sign, no spaces); too many of them is too large without int().
            if name == b"content-length" and value.isdigit() and (len(value) > 18 or int(value) > limit):
                return b"", True
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return b"", True
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), False

    async def healthz(self, request: Request) -> JSONResponse:
        """Liveness: 200 while the process answers, sealed or not (`/readyz` says whether it can serve)."""
        sealed = self.services.keystore.sealed
        document: dict[str, object] = {"status": "sealed" if sealed else "ready", "pid": os.getpid()}
        clock = self.services.clock
        if isinstance(clock, DevClock):
            document["dev_clock"] = {"now": iso_utc(clock.now()), "offset_seconds": clock.offset()}
        return JSONResponse(document)

    async def readyz(self, request: Request) -> JSONResponse:
        return await readyz(self.readiness)

    async def metrics(self, request: Request) -> Response:
        nonces, clock = self.nonces, self.services.clock
        replay = None if nonces is None else (lambda: nonces.live_entries(clock.timestamp()))
        return await metrics_response(self.services, replay, 0 if nonces is None else nonces.slots)

    async def _flush_usage(self) -> None:
        """Write the key-usage tally every few seconds (F8), off the event loop."""
        while True:
            await asyncio.sleep(USAGE_FLUSH_SECONDS)
            await self._flush_usage_once()

    async def _flush_usage_once(self) -> None:
        try:
            await asyncio.to_thread(self.services.usage.flush)
        except Exception:
            log.exception("key usage could not be written; it is kept and retried")

    def _after_unseal(self) -> None:
        key_audit_chain(self.services, self.audit)
        created = ensure_root_access_key(
            self.services.db,
            self.services.keystore,
            self.services.clock,
            self.settings.data_dir,
            self.settings.root_access_key,
        )
        if created is not None and created.written_to is not None:
            log.warning("root account %s: %s", created.account_id, describe_root_credentials(created))

    def _on_store_change(self, delay: float | None) -> None:
        """Another node (or this one) committed a change: every worker of this node drops its caches
        and cached material (the node's change generation). `delay`: from the changing transaction's
        start to now, when the notification said it."""
        self.services.generation.bump(here=False)
        self.services.providers.follow_changes()  # this worker's cached material goes now
        if delay is not None:
            COHERENCE_DELAY_SECONDS.observe(delay)

    @asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        keystore = self.services.keystore
        if self.change_feed is not None:
            self.change_feed.start()
        try:
            root = root_of_trust(self.settings, passphrase=self.settings.unseal_passphrase)
        except Exception:
            log.exception("the root of trust could not be prepared")
            raise
        if root is not None:
            await asyncio.to_thread(keystore.unseal, root)
            await asyncio.to_thread(self._after_unseal)
        else:
            log.warning("sealed: run `openkms unseal --data-dir %s` to unseal", self.settings.data_dir)
        await self.unseal_listener.start()
        self.jobs.start()
        flusher = asyncio.create_task(self._flush_usage())
        metrics_flusher = asyncio.create_task(flush_metrics_periodically())
        try:
            yield
        finally:
            flusher.cancel()
            metrics_flusher.cancel()
            await asyncio.gather(flusher, metrics_flusher, return_exceptions=True)
            metrics.flush()  # a stopped worker's values stay in the node's metrics folder
            await self._flush_usage_once()
            await self.jobs.stop()
            await self.unseal_listener.stop()
            await self.audit.aclose()
            if self.change_feed is not None:
                await asyncio.to_thread(self.change_feed.stop)
            if self.shared_replay is not None:
                await asyncio.to_thread(self.shared_replay.close)
            if self.barrier is not None:
                await asyncio.to_thread(self.barrier.close)
            self.services.providers.close()  # HSM sessions, proxy connections
            self.services.db.dispose()


async def _to_console(request: Request) -> RedirectResponse:
    return RedirectResponse("/console/", status_code=308)


def create_app(
    settings: Settings, *, audit: AuditSink | None = None, clock: Clock | None = None
) -> OpenKMSApp:
    runtime = build_runtime(settings, audit=audit, clock=clock)
    # The replay cache is node memory shared by this machine's workers (see service/replay.py).
    node_memory = node_memory_dir(settings.data_dir)
    nonces = SharedNonceStore(
        node_memory / NONCE_FILE,
        slots=settings.replay_cache_slots,
        account_share=max(1, int(settings.replay_cache_slots * settings.nonce_account_share)),
    )
    limits = SharedRateLimiter(node_memory / RATE_FILE, tenant_limits(settings), lock=nonces.lock)
    # Several nodes on one PostgreSQL store: a nonce new to this node must also be new to the others.
    shared_replay = ReplayLedger(settings.effective_database_url) if settings.shared_replay else None
    # ... and a change it made is answered once every node acts on it (read-your-writes anywhere).
    barrier = None if runtime.db.is_sqlite else ChangeBarrier(settings.effective_database_url)
    dispatcher = RpcDispatcher(
        runtime.services,
        runtime.runner,
        nonces,
        settings.regions,
        settings.timestamp_window_seconds,
        limits=limits,
        future_skew=settings.timestamp_future_skew_seconds,
        shared_replay=shared_replay,
        barrier=barrier,
    )
    return OpenKMSApp(
        runtime, dispatcher, limits, shared_replay=shared_replay, nonces=nonces, barrier=barrier
    )


def app_from_environment() -> Any:
    """Uvicorn factory for worker processes: `openkms serve` passes the settings through OPENKMS_*."""
    keep_new_files_private()  # also when uvicorn is started by hand with this factory
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    return create_app(settings)
