"""The instance API's front door: one protobuf request in, one protobuf answer out.

In this order: refuse a body over the cap and a sealed store -> the `date` window and the body's
`content-sha256` -> the client key (its access point, policies and network rules, read in one
snapshot) -> its RSA signature -> its validity -> run the operation through the one runner with door
`instance` and the client key as principal, where the key pipeline authorizes it against the access
point's policies and the key's policy (`service/authorization.py`) and the audit record is written
before the answer. A request refused before it had a principal is recorded by `Runner.refuse`.

Every failure answers the protobuf `Error` message (StatusCode, ErrorCode, ErrorMessage, RequestId)
with the HTTP status of the error, as the SDKs parse it whatever the content type; a server fault is
InternalFailure, never a trace.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import NamedTuple

from google.protobuf.message import DecodeError

from openkms import errors
from openkms.api.dispatch import RawRequest
from openkms.api.instance import kms_instance_pb2 as pb
from openkms.api.instance.operations import OPERATIONS, VERSION_HEADER, Answer, Call, Operation
from openkms.api.instance.signature import (
    AUTHORIZATION_INVALID,
    CLIENT_KEY_HEADER,
    check_body,
    check_date,
    header_map,
    verify,
)
from openkms.api.wire_errors import INTERNAL_FAILURE, WireError, to_wire
from openkms.domain.access_decision import AccessGrant
from openkms.node.rate_limits import RateClass, SharedRateLimiter
from openkms.service.container import Services
from openkms.service.context import Door, RequestContext, application_principal
from openkms.service.ids import new_request_id
from openkms.service.offload import run_without_blocking
from openkms.service.outcome import Outcome
from openkms.service.runner import Attempt, Runner
from openkms.types import RegionId

CONTENT_TYPE = b"application/x-protobuf"
CLAIMED_ID_LIMIT = 64  # characters of an unproven client key id the audit record keeps

log = logging.getLogger("openkms.instance")


class InstanceReply(NamedTuple):
    status: int
    body: bytes
    request_id: str
    headers: tuple[tuple[bytes, bytes], ...] = ()


class _Claimed:
    """Who a refused request is recorded as: the client key it claimed (a bounded token, before the
    store knew it), then the access point's principal and account once its grant was read."""

    __slots__ = ("account_id", "principal", "region")

    def __init__(self) -> None:
        self.principal = "anonymous"
        self.account_id: str | None = None
        self.region: str | None = None


class InstanceDispatcher:
    def __init__(
        self,
        services: Services,
        runner: Runner,
        timestamp_window: float,
        future_skew: float,
        limits: SharedRateLimiter | None = None,
    ) -> None:
        self._services = services
        self._runner = runner
        self._window = timestamp_window
        self._future_skew = future_skew
        self._limits = limits

    async def handle(self, raw: RawRequest) -> InstanceReply:
        started = time.perf_counter()
        request_id = new_request_id()
        headers = header_map(raw.headers)
        api_name = headers.get("x-kms-apiname", "")
        claimed = _Claimed()
        try:
            ctx, operation = await self._authenticate(raw, headers, request_id, api_name, claimed)
        except Exception as exc:
            if isinstance(exc, errors.OpenKMSError):
                wire = to_wire(exc)
            else:
                # A fault of ours before the use case (the store unreachable, say): recorded and
                # answered as InternalFailure, never the trace.
                log.exception("instance request %s failed before its operation", request_id)
                wire = INTERNAL_FAILURE
            attempt = Attempt(
                Door.INSTANCE,
                request_id,
                api_name,
                raw.source_ip,
                claimed.principal,
                claimed.account_id,
                claimed.region,
            )
            try:
                await self._runner.refuse(attempt, exc, started=started)
            except errors.AuditUnavailable:
                return _error(INTERNAL_FAILURE, request_id)
            return _error(wire, request_id)

        def use_case() -> Outcome[Answer]:
            try:
                message = operation.request.FromString(raw.body)
            except DecodeError:
                raise errors.InvalidArgument("The request body is not a valid protobuf message.") from None
            return operation.handler(Call(message, headers, operation.with_plaintext), ctx, self._services)

        try:
            # On the event loop: a use case that needs the database or a private key moves itself to a
            # worker thread (`service/offload.py`), so AdvanceEncrypt on a warm key takes no thread hop.
            answer = await self._runner.run(ctx, api_name, use_case, blocking=False, started=started)
        except errors.OpenKMSError as exc:
            return _error(to_wire(exc), request_id)
        extra = () if answer.version_id is None else ((VERSION_HEADER.encode(), answer.version_id.encode()),)
        return InstanceReply(200, answer.message.SerializeToString(), request_id, extra)

    async def _authenticate(
        self,
        raw: RawRequest,
        headers: dict[str, str],
        request_id: str,
        api_name: str,
        claimed: _Claimed,
    ) -> tuple[RequestContext, Operation]:
        if raw.too_large:
            raise errors.RequestTooLarge()
        if raw.method != "POST":
            raise errors.UnknownAction("The instance API takes POST.")
        if self._services.keystore.sealed:
            raise errors.Sealed()
        client_key_id = headers.get(CLIENT_KEY_HEADER, "")
        if client_key_id:
            claimed.principal = f"acs:ram::unknown:client-key/{client_key_id[:CLAIMED_ID_LIMIT]}"
        now = self._services.clock.timestamp()
        check_date(headers, now, self._window, self._future_skew)
        check_body(headers, raw.body)
        if not client_key_id:
            raise errors.InstanceInvalidParam(AUTHORIZATION_INVALID)
        access_points = self._services.access_points
        grant = await run_without_blocking(lambda: access_points.grant_of(client_key_id))
        if grant is None:
            raise errors.InstanceUnauthorized()
        verify(headers, grant.client_key.public_key_der)
        principal = application_principal(grant)
        claimed.principal, claimed.account_id = principal.arn, principal.account_id
        claimed.region = grant.client_key.region_id
        _check_validity(grant, self._services.clock.now())
        # Charged once the signature proved the client key: a flood under one access point's keys
        # is throttled per account and per client key, as the OpenAPI door does per access key.
        if self._limits is not None:
            self._limits.admit(principal.account_id, client_key_id, RateClass.CRYPTO, now)
        operation = OPERATIONS.get(api_name)
        if operation is None:
            raise errors.UnknownAction(f"Specified api {api_name!r} is not found.")
        ctx = RequestContext(
            request_id,
            principal,
            RegionId(grant.client_key.region_id),
            raw.source_ip,
            door=Door.INSTANCE,
            received_at=now,
            secure_transport=raw.scheme == "https",
            tags_of=self._services.tags.current,
        )
        return ctx, operation


def _check_validity(grant: AccessGrant, moment: datetime) -> None:
    """A client key outside NotBefore..NotAfter at the server's time (the development clock's, when it
    runs one, as STS sessions expire by it) is refused whatever it asks (key operations ask again in
    `decide_access`, with the rest of the access point's rules)."""
    key = grant.client_key
    if not key.not_before <= moment < key.not_after:
        raise errors.AccessDenied("The client key is not valid at this time (NotBefore / NotAfter).")


def _error(wire: WireError, request_id: str) -> InstanceReply:
    body = pb.Error(
        StatusCode=wire.status, ErrorCode=wire.code, ErrorMessage=wire.message, RequestId=request_id
    ).SerializeToString()
    return InstanceReply(wire.status, body, request_id)
