"""The one request runner every front door calls: the RPC API, the jobs and the admin CLI.

For an authenticated request (`run`), in this order: refuse while the audit log is known broken
(nothing changes unrecorded) -> refuse while sealed -> run the use case (it authorizes against the
resource it resolves) -> count the key's usage -> write the audit record, failing closed -> hand
back the result or raise the error. A request that failed before it had a principal (a bad
signature, a malformed request) is recorded by `refuse`, with the same fields.

Owns the audit record's vocabulary: the same fields whatever the door, the result as the API's code
(`describe`, given by the composition root, maps an error to it), the HTTP status only for doors
that speak HTTP. Unexpected exceptions are logged with their traceback here and become
`InternalError`. Never records a secret: a record names who did what to which resource.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import NamedTuple, TypeVar

from openkms import errors
from openkms.audit import AuditEvent, AuditSink, audit_time
from openkms.audit.event import action_token, cap
from openkms.clock import Clock
from openkms.keystore import Keystore
from openkms.metrics import RequestMeter
from openkms.policy.actions import INSTANCE_USAGE_ACTIONS, USAGE_ACTIONS
from openkms.resource import Resource
from openkms.service.context import Door, RequestContext
from openkms.service.offload import run_without_blocking
from openkms.service.outcome import Outcome
from openkms.service.usage import UsageRecorder

__all__ = ["Attempt", "ErrorCode", "Runner", "SpentNonce"]

log = logging.getLogger("openkms.runner")

PRINCIPAL_LIMIT = 128  # characters of an unauthenticated principal (it names an access key id) or region

T = TypeVar("T")

_DOOR_NAMES = {door: door.value for door in Door}  # `Enum.value` is a descriptor call; this a lookup
_HTTP_DOORS = frozenset(door for door in Door if door.speaks_http)
INTERNAL_FAILURE = "InternalFailure"  # the code a caller gets when its record cannot be written


class ErrorCode(NamedTuple):
    """How an error reads in the audit log: the API's code, its HTTP status, and the reason."""

    code: str
    status: int
    reason: str | None  # None for server-side faults: their detail is in the server log only


class SpentNonce(NamedTuple):
    """The signature nonce a request spent, so a node's replay cache can be rebuilt from the log."""

    access_key_id: str
    nonce: str
    expires: int  # epoch seconds


class Attempt(NamedTuple):
    """Who asked what, as the audit record names it (a NamedTuple: one is built per request)."""

    door: Door
    request_id: str
    action: str
    source_ip: str | None
    principal: str = "anonymous"
    account_id: str | None = None
    region: str | None = None
    spent: SpentNonce | None = None


class Runner:
    def __init__(
        self,
        keystore: Keystore,
        audit: AuditSink,
        usage: UsageRecorder,
        clock: Clock,
        describe: Callable[[BaseException], ErrorCode],
        meter: RequestMeter | None = None,
    ) -> None:
        self._keystore = keystore
        self._audit = audit
        self._usage = usage
        self._clock = clock
        self._describe = describe
        self._dev_clock = bool(getattr(clock, "dev", False))
        self._meter = meter or RequestMeter()

    @property
    def audit(self) -> AuditSink:
        return self._audit

    def describe(self, error: BaseException) -> ErrorCode:
        return self._describe(error)

    async def run(
        self,
        ctx: RequestContext,
        action: str,
        call: Callable[[], Outcome[T]],
        *,
        blocking: bool = True,
        spent: SpentNonce | None = None,
        started: float | None = None,
    ) -> T:
        """Run one authenticated request's use case; its value, or its error once it is recorded.

        `blocking` use cases run in a worker thread; the others run on the event loop and move to a
        thread only if they would wait on the database (a cold cache). Raises `AuditUnavailable`
        when the record cannot be written: then no result may leave. `started` (`time.perf_counter`)
        is when the door received the request, for the latency metric; default: now."""
        started = time.perf_counter() if started is None else started
        # A sink known to be broken refuses before anything runs; there is nowhere to record that.
        try:
            self._audit.check()
        except errors.AuditUnavailable:
            self._meter.record(_DOOR_NAMES[ctx.door], action, INTERNAL_FAILURE, time.perf_counter() - started)
            raise
        try:
            if self._keystore.sealed:
                raise errors.Sealed()
            if blocking:
                outcome = await asyncio.to_thread(call)
            else:
                outcome = await run_without_blocking(call)
        except errors.OpenKMSError as exc:
            await self._append(self._event_of(ctx, action, spent, exc.resource, exc), started)
            raise
        except Exception as exc:
            log.exception("request %s (%s) failed unexpectedly", ctx.request_id, action)
            failure = errors.InternalError()
            await self._append(self._event_of(ctx, action, spent, None, failure), started)
            raise failure from exc
        if not outcome.acted:
            return outcome.value  # nothing was done (a job found its key no longer due)
        resource = outcome.resource
        if (
            resource is not None
            and (action in USAGE_ACTIONS or (ctx.door is Door.INSTANCE and action in INSTANCE_USAGE_ACTIONS))
            and resource.key_id is not None
        ):
            self._usage.record(resource.key_id, ctx.principal, ctx.received_at)
        event = self._event_of(ctx, action, spent, resource, None)
        if not outcome.parts:
            await self._append(event, started)
            return outcome.value
        # A batch: its own record, then one per resource it acted on, queued in that order and made
        # durable together (one group commit, not one per part).
        await asyncio.gather(
            self._append(event, started),
            *(
                self._append(self._event_of(ctx, action, None, part, part_failure), started, metered=False)
                for part, part_failure in outcome.parts
            ),
        )
        return outcome.value

    def _event_of(
        self,
        ctx: RequestContext,
        action: str,
        spent: SpentNonce | None,
        resource: Resource | None,
        failure: BaseException | None,
    ) -> AuditEvent:
        """The record of an authenticated request, from its context."""
        principal = ctx.principal
        return self._event(
            ctx.door, ctx.request_id, action, ctx.source_ip, principal.arn, principal.account_id,
            ctx.region_id, spent, resource, failure, ctx.dry_run,
        )  # fmt: skip

    async def refuse(self, attempt: Attempt, error: BaseException, *, started: float | None = None) -> None:
        """Record a request that failed before a use case ran; raises `AuditUnavailable` if it cannot.
        Its action is counted in the metrics only if it is a known one (else as "other")."""
        started = time.perf_counter() if started is None else started
        resource = error.resource if isinstance(error, errors.OpenKMSError) else None
        # Nothing the unauthenticated client sent goes into the record beyond a bounded token.
        event = self._event(
            attempt.door,
            attempt.request_id,
            action_token(attempt.action),
            attempt.source_ip,
            cap(attempt.principal, PRINCIPAL_LIMIT) or "",
            attempt.account_id,
            cap(attempt.region, PRINCIPAL_LIMIT),
            attempt.spent,
            resource,
            error,
        )
        await self._append(event, started, self._meter.bounded(attempt.action))

    def _event(
        self,
        door: Door,
        request_id: str,
        action: str,
        source_ip: str | None,
        principal: str,
        account_id: str | None,
        region: str | None,
        spent: SpentNonce | None,
        resource: Resource | None,
        failure: BaseException | None,
        dry_run: bool = False,
    ) -> AuditEvent:
        """The record of one request, whatever the door (positional parts: built once per request
        on the hot path, so no intermediate object carries them here)."""
        if failure is None:
            result, status, reason = "Success", 200, None
        else:
            result, status, reason = self._describe(failure)
            reason = cap(reason)
        return AuditEvent(
            request_id=request_id,
            time=audit_time(self._clock.now()),
            principal=principal,
            account_id=account_id,
            action=action,
            key_id=None if resource is None else resource.key_id,
            key_version_id=None if resource is None else resource.key_version_id,
            result=result,
            http_status=status if door in _HTTP_DOORS else None,
            source_ip=source_ip,
            region=region,
            reason=reason,
            door=_DOOR_NAMES[door],
            resource=None if resource is None else resource.arn,
            dev_clock=self._dev_clock,
            access_key_id=None if spent is None else spent.access_key_id,
            nonce=None if spent is None else spent.nonce,
            nonce_expires=None if spent is None else spent.expires,
            dry_run=dry_run,
        )

    async def _append(
        self, event: AuditEvent, started: float, action: str | None = None, *, metered: bool = True
    ) -> None:
        """Write the record, then count the request (as InternalFailure if the record failed: that is
        what its caller is answered); a batch's records of its parts are not requests (`metered`)."""
        code = event.result
        try:
            await self._audit.append(event)
        except errors.AuditUnavailable:
            log.error("request %s: audit record not written; answering InternalFailure", event.request_id)
            code = INTERNAL_FAILURE
            raise
        except Exception as exc:
            log.exception("request %s: audit sink failed; answering InternalFailure", event.request_id)
            code = INTERNAL_FAILURE
            raise errors.AuditUnavailable() from exc
        finally:
            if metered:
                self._meter.record(
                    event.door,
                    event.action if action is None else action,
                    code,
                    time.perf_counter() - started,
                )
