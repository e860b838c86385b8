"""The RPC pipeline for one request, in a fixed order:

parse -> identify scheme -> timestamp window -> access key -> signature -> nonce replay -> version and
action -> region -> audit pre-flight -> handler -> audit record -> response.

Nothing about a key is looked up before the caller is authenticated (P14). The audit record is
accepted before any result leaves (P11); if it cannot be written the caller gets InternalFailure and
no result. Unexpected exceptions are logged with their traceback here and answered InternalFailure.
"""

from __future__ import annotations

import logging
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from starlette.concurrency import run_in_threadpool

from openkms import errors
from openkms.api.actions import PRODUCTS, USAGE_ACTIONS
from openkms.api.params import Params, RpcRequest, parse_request
from openkms.api.render import JSON_CONTENT_TYPE, XML_CONTENT_TYPE, render_json, render_xml
from openkms.api.signature import SignedRequest, check_freshness, identify, verify
from openkms.api.wire_errors import INTERNAL_FAILURE, WireError, to_wire
from openkms.audit import AuditEvent, AuditSink, audit_time
from openkms.node.nonces import NonceStore
from openkms.resource import Resource
from openkms.service.container import Services
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome
from openkms.types import RegionId

log = logging.getLogger("openkms.api")

API_VERSION = "2016-01-20"
_HOST_REGION = re.compile(r"^kms(?:-vpc)?\.([a-z0-9-]+)\.aliyuncs\.com(?::\d+)?$")
RECOMMEND = "See the Code and Message; the OpenKMS error reference is docs/errors.md."


BODY_LIMIT = 1 << 20


class RawRequest(NamedTuple):
    """One HTTP request as the ASGI server handed it over (a NamedTuple: one is built per request)."""

    method: str
    path: str
    query_string: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    source_ip: str | None
    too_large: bool = False
    scheme: str = "http"  # "https" when the server itself terminated TLS


@dataclass(slots=True)
class _Trace:
    """What is known about a request so far, for its audit record and its reply."""

    request_id: str
    request: RpcRequest | None = None
    action: str = ""
    principal: str = "anonymous"
    region: str | None = None
    ctx: RequestContext | None = None
    spent: tuple[str, str, int] | None = None  # (access key id, nonce, expiry) once the nonce is spent
    resource: Resource | None = None  # what the request acted on, from its outcome or its error


class Reply(NamedTuple):
    status: int
    content_type: bytes
    body: bytes
    request_id: str


class RpcDispatcher:
    def __init__(
        self,
        services: Services,
        nonces: NonceStore,
        audit: AuditSink,
        regions: tuple[str, ...],
        timestamp_window: float,
    ) -> None:
        self._services = services
        self._nonces = nonces
        self._audit = audit
        self._regions = frozenset(regions)
        self._default_region = RegionId(regions[0])
        self._window = timestamp_window
        self._dev_clock = bool(getattr(services.clock, "dev", False))
        self._host_regions: dict[str, str] = {}  # Host header -> region it names (bounded, see _region)

    async def handle(self, raw: RawRequest) -> Reply:
        trace = _Trace(request_id=str(uuid.uuid4()).upper())
        body: Mapping[str, object] | None = None
        failure: BaseException | None = None
        try:
            body = await self._execute(raw, trace)
        except errors.OpenKMSError as exc:
            failure = exc
            trace.resource = exc.resource
        except Exception as exc:
            log.exception("request %s (%s) failed unexpectedly", trace.request_id, trace.action)
            failure = exc
        wire = None if failure is None else to_wire(failure)
        try:
            await self._audit.append(self._event(trace, raw.source_ip, wire))
        except errors.AuditUnavailable:
            log.error("request %s: audit record not written; answering InternalFailure", trace.request_id)
            wire, body = INTERNAL_FAILURE, None
        except Exception:
            log.exception("request %s: audit sink failed; answering InternalFailure", trace.request_id)
            wire, body = INTERNAL_FAILURE, None
        return self._reply(trace, wire, body)

    async def _execute(self, raw: RawRequest, trace: _Trace) -> Mapping[str, object]:
        """Authenticate, authorize and run one request; raise on any failure."""
        if raw.too_large:
            raise errors.InvalidArgument(f"The request is larger than {BODY_LIMIT} bytes.")
        if raw.method not in ("GET", "POST"):
            raise errors.UnknownAction(f"The RPC endpoint takes GET or POST, not {raw.method}.")
        request = parse_request(raw.method, raw.path, raw.query_string, raw.headers, raw.body)
        trace.request = request
        trace.action = request.params.get("Action") or request.headers.get("x-acs-action", "")
        if self._services.keystore.sealed:
            raise errors.Sealed()
        signed = identify(request)
        trace.action = signed.action
        trace.principal = f"acs:ram::unknown:access-key/{signed.access_key_id}"
        now = self._services.clock.timestamp()
        check_freshness(signed, now, self._window)
        credential = self._services.identities.credential(signed.access_key_id, signed.security_token)
        verify(request, signed, credential.secret.reveal().decode("utf-8"))
        trace.principal = credential.principal.arn
        # Only a verified request may spend a nonce; it is remembered until its timestamp expires.
        expires = signed.timestamp + self._window
        if not self._nonces.remember(signed.access_key_id, signed.nonce, expires, now):
            raise errors.NonceReused()
        trace.spent = (signed.access_key_id, signed.nonce, math.ceil(expires))
        product = PRODUCTS.get(signed.version)
        if product is None:
            raise errors.UnsupportedVersion(
                f"Version {signed.version!r} is not supported; use {API_VERSION} (KMS), "
                "2015-05-01 (RAM) or 2015-04-01 (STS)."
            )
        if product.prefix != "kms":
            trace.action = f"{product.prefix}:{signed.action}"
        action = product.actions.get(signed.action)
        if action is None:
            raise errors.UnknownAction(f"Specified api {signed.action!r} is not found.")
        trace.region = self._region(request, signed)
        ctx = RequestContext(
            trace.request_id,
            credential.principal,
            RegionId(trace.region),
            raw.source_ip,
            received_at=now,
            secure_transport=raw.scheme == "https",
            tags_of=self._services.tags.current,
        )
        trace.ctx = ctx
        action.check_parameters(request.params)
        # Refuse before acting when the audit log is known to be broken, so nothing changes unrecorded.
        self._audit.check()
        params = Params(request.params)
        if action.blocking:
            answer = await run_in_threadpool(action.handler, params, ctx, self._services)
        else:
            answer = action.handler(params, ctx, self._services)
        if isinstance(answer, Outcome):
            trace.resource = answer.resource
            answer = answer.value
        key_id = ctx.key_id if trace.resource is None else trace.resource.key_id
        if key_id is not None and action.name in USAGE_ACTIONS and product.prefix == "kms":
            self._services.usage.record(key_id, ctx.principal, now)
        return answer

    def _event(self, trace: _Trace, source_ip: str | None, wire: WireError | None) -> AuditEvent:
        ctx = trace.ctx
        resource = trace.resource
        if resource is not None:
            key_id, version_id = resource.key_id, resource.key_version_id
        else:
            key_id = None if ctx is None else ctx.key_id
            version_id = None if ctx is None else ctx.key_version_id
        return AuditEvent(
            request_id=trace.request_id,
            time=audit_time(self._services.clock.now()),
            principal=trace.principal,
            account_id=None if ctx is None else ctx.principal.account_id,
            action=trace.action,
            key_id=key_id,
            key_version_id=version_id,
            result="Success" if wire is None else wire.code,
            http_status=200 if wire is None else wire.status,
            source_ip=source_ip,
            region=trace.region,
            reason=None if wire is None or wire.status >= 500 else wire.message,
            dev_clock=self._dev_clock,
            access_key_id=None if trace.spent is None else trace.spent[0],
            nonce=None if trace.spent is None else trace.spent[1],
            nonce_expires=None if trace.spent is None else trace.spent[2],
        )

    def _reply(self, trace: _Trace, wire: WireError | None, body: Mapping[str, object] | None) -> Reply:
        request = trace.request
        as_xml = request is not None and request.params.get("Format", "").lower() == "xml"
        if wire is None and body is not None:
            document: dict[str, object] = {"RequestId": trace.request_id, **body}
            root = f"{trace.action.rpartition(':')[2]}Response"
        else:
            wire = wire or INTERNAL_FAILURE
            document = {
                "RequestId": trace.request_id,
                "HostId": "" if request is None else request.headers.get("host", ""),
                "Code": wire.code,
                "Message": wire.message,
                "Recommend": RECOMMEND,
                "HttpStatus": wire.status,
            }
            if wire.access_denied_detail:
                document["AccessDeniedDetail"] = wire.access_denied_detail
            root = "Error"
        status = 200 if wire is None else wire.status
        if as_xml:
            return Reply(status, XML_CONTENT_TYPE, render_xml(root, document), trace.request_id)
        return Reply(status, JSON_CONTENT_TYPE, render_json(document), trace.request_id)

    def _region(self, request: RpcRequest, signed: SignedRequest) -> str:
        """RegionId param, else the ACS4 credential scope, else the endpoint host, else the default."""
        region = request.params.get("RegionId") or signed.region
        if not region:
            host = request.headers.get("host", "")
            region = self._host_regions.get(host)
            if region is None:
                match = _HOST_REGION.match(host)
                region = match.group(1) if match else self._default_region
                # Callers choose the Host header: keep the cache bounded in entries and in size.
                if len(self._host_regions) < 1024 and len(host) <= 255:
                    self._host_regions[host] = region
        if region not in self._regions:
            raise errors.InvalidArgument(
                f"Region {region!r} is not served here; regions: {', '.join(sorted(self._regions))}.",
                parameter="RegionId",
            )
        return region
