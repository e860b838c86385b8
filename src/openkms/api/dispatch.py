"""The Alibaba RPC front door: what is Alibaba-specific about a request, in a fixed order:

parse -> identify scheme -> timestamp window -> access key -> signature -> version and action ->
rate limits and nonce replay -> region -> parameters -> the runner (`service/runner.py`: sealed, audit
pre-flight, use case, usage, audit record) -> response.

Nothing about a key is looked up before the caller is authenticated (P14). A nonce is spent, and a
tenant's rate budget charged, only once the signature verified and the action is known: an unsigned
request naming someone's access key costs them nothing, and a throttled request spends no nonce.
A request that fails before the runner takes it is recorded by the runner's `refuse`, with the same
fields as every other record; if no record can be written the caller gets InternalFailure and no result (P11).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from openkms import errors
from openkms.api.actions import PRODUCTS, USAGE_ACTIONS
from openkms.api.actions.base import Action
from openkms.api.params import Params, RpcRequest, parse_request
from openkms.api.render import JSON_CONTENT_TYPE, XML_CONTENT_TYPE, render_json, render_xml
from openkms.api.signature import SignedRequest, check_freshness, identify, verify
from openkms.api.wire_errors import INTERNAL_FAILURE, WireError, to_wire
from openkms.node.generation import ChangeBarrier
from openkms.node.nonces import NonceStore, SharedReplay
from openkms.node.rate_limits import RateClass, SharedRateLimiter
from openkms.service.container import Services
from openkms.service.context import Door, RequestContext
from openkms.service.ids import new_request_id
from openkms.service.offload import run_without_blocking
from openkms.service.outcome import Outcome
from openkms.service.runner import Attempt, Runner, SpentNonce
from openkms.types import RegionId

API_VERSION = "2016-01-20"
_HOST_REGION = re.compile(r"^kms(?:-vpc)?\.([a-z0-9-]+)\.aliyuncs\.com(?::\d+)?$")
RECOMMEND = "See the Code and Message; the OpenKMS error reference is docs/errors.md."


# The rate-limit class of each KMS action: the key uses are cryptographic, the rest management.
# RAM and STS actions (and anything of their versions) are RAM/STS.
_KMS_CLASSES: dict[str, RateClass] = {str(name): RateClass.CRYPTO for name in USAGE_ACTIONS}


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
    """What is known about a request so far, for its reply (and its record if it fails early)."""

    request_id: str
    request: RpcRequest | None = None
    action: str = ""
    principal: str = "anonymous"
    account_id: str | None = None
    region: str | None = None
    spent: SpentNonce | None = None


class Reply(NamedTuple):
    status: int
    content_type: bytes
    body: bytes
    request_id: str


class _Authenticated(NamedTuple):
    ctx: RequestContext
    action: Action
    audit_action: str  # "Encrypt"; "ram:CreateUser" for the other products
    params: Params


class RpcDispatcher:
    def __init__(
        self,
        services: Services,
        runner: Runner,
        nonces: NonceStore,
        regions: tuple[str, ...],
        timestamp_window: float,
        *,
        limits: SharedRateLimiter | None = None,
        future_skew: float = 300.0,
        shared_replay: SharedReplay | None = None,
        barrier: ChangeBarrier | None = None,
    ) -> None:
        self._services = services
        self._shared_replay = shared_replay
        self._barrier = barrier
        self._runner = runner
        self._nonces = nonces
        self._limits = limits
        # Inside `remember` the limiter runs under the replay cache's flock; it need not take it
        # again when that flock is its own (as `server/app.py` builds them).
        self._admit_in_remember = (
            None
            if limits is None
            else limits.admit_held
            if limits.lock is getattr(nonces, "lock", None)
            else limits.admit
        )
        self._regions = frozenset(regions)
        self._default_region = RegionId(regions[0])
        self._window = timestamp_window
        self._future_skew = future_skew
        self._host_regions: dict[str, str] = {}  # Host header -> region it names (bounded, see _region)

    async def handle(self, raw: RawRequest) -> Reply:
        started = time.perf_counter()
        trace = _Trace(request_id=new_request_id())
        try:
            authenticated = await self._authenticate(raw, trace)
        except errors.OpenKMSError as exc:
            return await self._refused(raw, trace, exc, started)
        ctx, action, audit_action, params = authenticated
        generation = self._services.generation
        before = generation.made_here
        try:
            body = await self._runner.run(
                ctx,
                audit_action,
                lambda: _answer(action.handler(params, ctx, self._services)),
                blocking=action.blocking,
                spent=trace.spent,
                started=started,
            )
        except errors.OpenKMSError as exc:
            return self._reply(trace, to_wire(exc), None)
        if self._barrier is not None and generation.made_here != before:
            # This process changed the store meanwhile (this request, as a rule): answer once every
            # node acts on it, so the client's next request sees it whichever node it reaches.
            await asyncio.to_thread(self._barrier.wait)
        return self._reply(trace, None, body)

    async def _refused(
        self, raw: RawRequest, trace: _Trace, error: errors.OpenKMSError, started: float
    ) -> Reply:
        attempt = Attempt(
            Door.RPC,
            trace.request_id,
            trace.action,
            raw.source_ip,
            trace.principal,
            trace.account_id,
            trace.region,
            trace.spent,
        )
        try:
            await self._runner.refuse(attempt, error, started=started)
        except errors.AuditUnavailable:
            return self._reply(trace, INTERNAL_FAILURE, None)
        return self._reply(trace, to_wire(error), None)

    async def _authenticate(self, raw: RawRequest, trace: _Trace) -> _Authenticated:
        """Parse, authenticate and route one request; raise on any failure."""
        if raw.too_large:
            raise errors.RequestTooLarge()  # its body was left unread (server/app.py)
        if raw.method not in ("GET", "POST"):
            raise errors.UnknownAction(f"The RPC endpoint takes GET or POST, not {raw.method}.")
        request = parse_request(raw.method, raw.path, raw.query_string, raw.headers, raw.body)
        trace.request = request
        trace.action = request.params.get("Action") or request.headers.get("x-acs-action", "")
        if self._services.keystore.sealed:
            raise errors.Sealed()  # access-key secrets are wrapped: nobody can be authenticated
        signed = identify(request)
        trace.action = signed.action
        trace.principal = f"acs:ram::unknown:access-key/{signed.access_key_id}"
        now = self._services.clock.timestamp()
        check_freshness(signed, now, self._window, self._future_skew)
        identities = self._services.identities
        credential = await run_without_blocking(
            lambda: identities.credential(signed.access_key_id, signed.security_token)
        )
        verify(request, signed, credential.secret.reveal().decode("utf-8"))
        principal = credential.principal
        trace.principal, trace.account_id = principal.arn, principal.account_id
        product = PRODUCTS.get(signed.version)
        if product is not None and product.prefix != "kms":
            trace.action = f"{product.prefix}:{signed.action}"
        action = None if product is None else product.actions.get(signed.action)
        if product is None or product.prefix == "kms":
            rate_class = _KMS_CLASSES.get(signed.action, RateClass.MANAGEMENT)
        else:
            rate_class = RateClass.RAM
        limits = self._limits
        if action is None:
            # Refused without spending a nonce; still charged, so a flood of them is throttled too.
            if limits is not None:
                limits.admit(principal.account_id, signed.access_key_id, rate_class, now)
            if product is None:
                raise errors.UnsupportedVersion(
                    f"Version {signed.version!r} is not supported; use {API_VERSION} (KMS), "
                    "2015-05-01 (RAM) or 2015-04-01 (STS)."
                )
            raise errors.UnknownAction(f"Specified api {signed.action!r} is not found.")
        # The nonce is remembered until its timestamp leaves the window (at most window + future
        # skew from now). The rate limits are charged inside the replay check, after it: a replay
        # costs the tenant nothing, a throttled request spends no nonce.
        expires = signed.timestamp + self._window
        charge = self._admit_in_remember
        admit = (
            None
            if charge is None
            else lambda: charge(principal.account_id, signed.access_key_id, rate_class, now)
        )
        if not self._nonces.remember(
            signed.access_key_id, signed.nonce, expires, now, account=principal.account_id, admit=admit
        ):
            raise errors.NonceReused()
        shared = self._shared_replay
        if shared is not None and not await shared.spend(signed.access_key_id, signed.nonce, expires):
            raise errors.NonceReused()  # spent on another node of the store
        trace.spent = SpentNonce(signed.access_key_id, signed.nonce, math.ceil(expires))
        trace.region = self._region(request, signed)
        dotted = action.check_parameters(request.params)
        ctx = RequestContext(
            trace.request_id,
            principal,
            RegionId(trace.region),
            raw.source_ip,
            received_at=now,
            secure_transport=raw.scheme == "https",
            tags_of=self._services.tags.current,
        )
        return _Authenticated(ctx, action, trace.action, Params(request.params, dotted=dotted))

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


def _answer(answer: Outcome[Mapping[str, object]] | Mapping[str, object]) -> Outcome[Mapping[str, object]]:
    return answer if isinstance(answer, Outcome) else Outcome(answer)
