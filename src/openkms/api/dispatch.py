"""The RPC pipeline for one request, in a fixed order:

parse -> identify scheme -> timestamp window -> access key -> signature -> nonce replay -> version and
action -> region -> audit pre-flight -> handler -> audit record -> response.

Nothing about a key is looked up before the caller is authenticated (P14). The audit record is
accepted before any result leaves (P11); if it cannot be written the caller gets InternalFailure and
no result. Unexpected exceptions are logged with their traceback here and answered InternalFailure.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from openkms import errors
from openkms.api.actions import ACTIONS
from openkms.api.params import Params, RpcRequest, parse_request
from openkms.api.render import JSON_CONTENT_TYPE, XML_CONTENT_TYPE, render_json, render_xml
from openkms.api.signature import SignedRequest, check_freshness, identify, verify
from openkms.api.wire_errors import INTERNAL_FAILURE, to_wire
from openkms.audit import AuditEvent, AuditSink
from openkms.node.nonces import NonceStore
from openkms.service.container import Services
from openkms.service.context import RequestContext
from openkms.types import RegionId

log = logging.getLogger("openkms.api")

API_VERSION = "2016-01-20"
_HOST_REGION = re.compile(r"^kms(?:-vpc)?\.([a-z0-9-]+)\.aliyuncs\.com(?::\d+)?$")
RECOMMEND = "See the Code and Message; the OpenKMS error reference is docs/errors.md."


BODY_LIMIT = 1 << 20


@dataclass(frozen=True, slots=True)
class RawRequest:
    method: str
    path: str
    query_string: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    source_ip: str | None
    too_large: bool = False


@dataclass(frozen=True, slots=True)
class Reply:
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

    async def handle(self, raw: RawRequest) -> Reply:
        request_id = str(uuid.uuid4()).upper()
        source_ip = raw.source_ip
        request = RpcRequest(raw.method, raw.path, "", {}, {}, b"")
        action_name = ""
        principal = "anonymous"
        ctx: RequestContext | None = None
        region: str | None = None
        body: Mapping[str, object] | None = None
        failure: BaseException | None = None
        try:
            if raw.too_large:
                raise errors.InvalidArgument(f"The request is larger than {BODY_LIMIT} bytes.")
            if raw.method not in ("GET", "POST"):
                raise errors.UnknownAction(f"The RPC endpoint takes GET or POST, not {raw.method}.")
            request = parse_request(raw.method, raw.path, raw.query_string, raw.headers, raw.body)
            action_name = request.params.get("Action") or request.headers.get("x-acs-action", "")
            if self._services.keystore.sealed:
                raise errors.Sealed()
            signed = identify(request)
            action_name = signed.action
            principal = f"acs:ram::unknown:access-key/{signed.access_key_id}"
            check_freshness(signed, self._services.clock.timestamp(), self._window)
            credential = self._services.identities.credential(signed.access_key_id)
            verify(request, signed, credential.secret.reveal().decode("utf-8"))
            principal = credential.principal.arn
            if not self._nonces.remember(
                signed.access_key_id,
                signed.nonce,
                signed.timestamp + self._window,
                self._services.clock.timestamp(),
            ):
                raise errors.NonceReused()
            if signed.version != API_VERSION:
                raise errors.UnsupportedVersion(
                    f"Version {signed.version!r} is not supported; use {API_VERSION}."
                )
            action = ACTIONS.get(signed.action)
            if action is None:
                raise errors.UnknownAction(f"Specified api {signed.action!r} is not found.")
            region = self._region(request, signed)
            ctx = RequestContext(request_id, credential.principal, RegionId(region), source_ip)
            self._audit.check()
            params = Params(request.params)
            if action.blocking:
                body = await run_in_threadpool(action.handler, params, ctx, self._services)
            else:
                body = action.handler(params, ctx, self._services)
        except errors.OpenKMSError as exc:
            failure = exc
        except Exception as exc:
            log.exception("request %s (%s) failed unexpectedly", request_id, action_name)
            failure = exc

        wire = None if failure is None else to_wire(failure)
        event = AuditEvent(
            request_id=request_id,
            time=self._services.clock.now().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            principal=principal,
            account_id=None if ctx is None else ctx.principal.account_id,
            action=action_name,
            key_id=None if ctx is None else ctx.key_id,
            key_version_id=None if ctx is None else ctx.key_version_id,
            result="Success" if wire is None else wire.code,
            http_status=200 if wire is None else wire.status,
            source_ip=source_ip,
            region=region,
            reason=None if wire is None or wire.status >= 500 else wire.message,
        )
        try:
            await self._audit.append(event)
        except errors.AuditUnavailable:
            log.error("request %s: audit record could not be written; answering InternalFailure", request_id)
            wire, body = INTERNAL_FAILURE, None
        except Exception:
            log.exception("request %s: audit sink failed; answering InternalFailure", request_id)
            wire, body = INTERNAL_FAILURE, None

        as_xml = request.params.get("Format", "").lower() == "xml"
        if wire is None and body is not None:
            document = {"RequestId": request_id, **body}
            if as_xml:
                return Reply(200, XML_CONTENT_TYPE, render_xml(f"{action_name}Response", document), request_id)
            return Reply(200, JSON_CONTENT_TYPE, render_json(document), request_id)
        assert wire is not None
        error = {
            "RequestId": request_id,
            "HostId": request.headers.get("host", ""),
            "Code": wire.code,
            "Message": wire.message,
            "Recommend": RECOMMEND,
            "HttpStatus": wire.status,
        }
        if as_xml:
            return Reply(wire.status, XML_CONTENT_TYPE, render_xml("Error", error), request_id)
        return Reply(wire.status, JSON_CONTENT_TYPE, render_json(error), request_id)

    def _region(self, request: RpcRequest, signed: SignedRequest) -> str:
        """RegionId param, else the ACS4 credential scope, else the endpoint host, else the default."""
        region = request.params.get("RegionId") or signed.region
        if not region:
            match = _HOST_REGION.match(request.headers.get("host", ""))
            region = match.group(1) if match else self._default_region
        if region not in self._regions:
            raise errors.InvalidArgument(
                f"Region {region!r} is not served here; regions: {', '.join(sorted(self._regions))}.",
                parameter="RegionId",
            )
        return region
