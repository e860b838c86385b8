"""The audit event: one record per request, allowed, denied or failed, whatever the front door.

Owns the event's fields and their JSON form. Every door (the RPC API, the jobs, the admin CLI) writes
the same fields through the one runner (`service/runner.py`). An event names who did what to which
resource and how it ended; it never contains plaintext, ciphertext, data keys, signatures, passwords
or any other secret.
`reason` says why a request was denied or failed in words fit for an operator, never a secret value.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import NamedTuple

JsonScalar = str | int | bool | None

ACTION_LIMIT = 64  # characters of an action name kept in a record
REASON_LIMIT = 256  # characters of a reason (and of any other text field) kept in a record
INVALID_ACTION = "<invalid>"
_ACTION_TOKEN = re.compile(rf"[A-Za-z0-9:]{{1,{ACTION_LIMIT}}}")


def action_token(action: str) -> str:
    """What a record says for an action a client named: the first characters from the action
    charset (at most `ACTION_LIMIT`), else `<invalid>`. Known actions pass through unchanged."""
    if not action:
        return action  # the request named none
    match = _ACTION_TOKEN.match(action)
    return match.group() if match else INVALID_ACTION


def cap(text: str | None, limit: int = REASON_LIMIT) -> str | None:
    """`text` cut to `limit` characters, marked with an ellipsis when cut."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "\u2026"


def bounded_record(record: dict[str, JsonScalar]) -> dict[str, JsonScalar]:
    """A copy of `record` whose action is a token and whose text fields are capped: what the sink
    writes when a record is longer than it should ever be (a client sent something huge)."""
    bounded: dict[str, JsonScalar] = {}
    for name, value in record.items():
        if not isinstance(value, str) or name in ("prev", "hash"):
            bounded[name] = value
        else:
            bounded[name] = action_token(value) if name == "action" else cap(value)
    return bounded


class AuditEvent(NamedTuple):
    """Immutable. A NamedTuple rather than a frozen dataclass: one is built per request, and a frozen
    dataclass of 16 fields costs about 2 us more to build (measured on the reference machine)."""

    request_id: str
    time: str  # ISO-8601 UTC with milliseconds, see `audit_time`
    principal: str  # e.g. "acs:ram::1234567890123456:root"; "anonymous" before authentication
    account_id: str | None
    action: str  # the API action, e.g. "Encrypt", "ram:CreateUser"
    key_id: str | None  # the key of `resource`, when it is a key (for operators searching by key id)
    key_version_id: str | None
    result: str  # "Success" or the API's error Code, whatever the door
    http_status: int | None  # None for doors that do not speak HTTP (jobs, admin CLI)
    source_ip: str | None
    region: str | None
    reason: str | None  # why denied or failed; never a secret
    door: str = "rpc"  # how the request came in: rpc, console, job, cli
    resource: str | None = None  # the ARN of what the request acted on (key, alias, user, role, ...)
    dev_clock: bool = False  # the development clock was in effect
    # Set once the request's SignatureNonce was spent, so a node that lost its replay cache (a
    # reboot) can rebuild it from the log. A nonce is not a secret: it travels in the clear.
    access_key_id: str | None = None
    nonce: str | None = None
    nonce_expires: int | None = None  # epoch seconds after which a replay fails the time window
    dry_run: bool = False  # DryRun=true: checked, not done (its result: DryRunOperation if it would succeed)

    def to_json_dict(self) -> dict[str, JsonScalar]:
        return self._asdict()


# [(the second, its "YYYY-MM-DDTHH:MM:SS")]: the pair is replaced whole, so threads never mix two.
_last_second: list[tuple[datetime | None, str]] = [(None, "")]


def audit_time(moment: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC, the format of `AuditEvent.time`.

    One is made per request: the text of the current second is kept, so most calls only add the
    milliseconds (about a third of the cost of `isoformat`)."""
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    second = utc.replace(microsecond=0)
    cached_second, prefix = _last_second[0]
    if second != cached_second:
        prefix = utc.replace(microsecond=0, tzinfo=None).isoformat()
        _last_second[0] = (second, prefix)
    return f"{prefix}.{utc.microsecond // 1000:03d}Z"
