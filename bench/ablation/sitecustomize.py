"""Bench only: take parts of the Encrypt path out of `openkms serve` to bound what they cost.

`python -m bench.run --ablate audit,replay,limits` starts the server with this folder first on
PYTHONPATH and `BENCH_ABLATE` naming the parts; Python imports this module at start-up in the
server and in every worker it spawns. Nothing here is ever loaded by an OpenKMS outside the bench,
and a run that uses it is labelled ablated and never written to the README.

- `audit`: each request's record is still built and chained, then dropped: never written, never
  made durable, not waited for.
- `replay`: the replay cache's table is skipped (no fingerprint, no lookup, no entry); the rate
  limits are still charged under the same file lock.
- `limits`: the rate limits are not charged (with `replay`, the file lock is not taken either).
"""

from __future__ import annotations

import os
from collections.abc import Callable

PARTS = frozenset(part for part in os.environ.get("BENCH_ABLATE", "").split(",") if part)


def _ablate_audit() -> None:
    from openkms.audit.event import AuditEvent
    from openkms.audit.sink import JsonlAuditSink

    async def append(self: JsonlAuditSink, event: AuditEvent) -> None:
        self.check()
        self._queue_event(event)
        self.appends += 1
        self._pending = bytearray()  # dropped: nothing is written or waited for

    JsonlAuditSink.append = append  # type: ignore[method-assign]


def _ablate_replay_cache(*, table: bool, limits: bool) -> None:
    from openkms.node.nonces import SharedNonceStore

    remember = SharedNonceStore.remember

    def ablated(
        self: SharedNonceStore,
        access_key_id: str,
        nonce: str,
        expires_at: float,
        now: float,
        *,
        account: str | None = None,
        admit: Callable[[], None] | None = None,
    ) -> bool:
        if limits:
            admit = None
        if not table:
            return remember(self, access_key_id, nonce, expires_at, now, account=account, admit=admit)
        if admit is not None:
            self.lock.acquire()
            try:
                admit()
            finally:
                self.lock.release()
        return True

    SharedNonceStore.remember = ablated  # type: ignore[method-assign]


if "audit" in PARTS:
    _ablate_audit()
if PARTS & {"replay", "limits"}:
    _ablate_replay_cache(table="replay" in PARTS, limits="limits" in PARTS)
