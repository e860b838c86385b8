"""Policy documents: RAM identity policies and key policies, parsed and validated once when written.

The shape is Alibaba's: `{"Version": "1", "Statement": [{"Sid", "Effect", "Action", "Resource",
"Principal" (key policies only, `{"RAM": [...]}`), "Condition"}]}`. `Action`, `Resource` and the
principal list take a string or a list of strings. Anything OpenKMS would not enforce as written
(`NotAction`, `NotResource`, unknown fields, unknown condition keys) is refused with the reason, so a
policy never means less than it says.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from typing import Any

from openkms.errors import MalformedPolicy
from openkms.policy.conditions import Condition, parse_condition_block


class PolicyKind(enum.Enum):
    IDENTITY = "identity"
    KEY = "key"
    TRUST = "trust"  # a RAM role's AssumeRolePolicyDocument: who may assume it; no Resource


# Size limits as Alibaba documents them: 6 KiB for a RAM policy, 32 KiB for a key policy, 2 KiB for a
# role's trust policy.
SIZE_LIMIT = {PolicyKind.IDENTITY: 6144, PolicyKind.KEY: 32768, PolicyKind.TRUST: 2048}
VERSION = "1"

_STATEMENT_FIELDS = {"Sid", "Effect", "Action", "Resource", "Principal", "Condition"}
# \Z, not $ ($ also matches before a final newline: "kms:Decrypt\n" parsed, and a Deny naming it
# never matched anything).
_ACTION = re.compile(r"^\*\Z|^[a-z0-9-]+:[A-Za-z0-9*?]+\Z", re.IGNORECASE)
_PRINCIPAL = re.compile(r"^\*\Z|^acs:ram::(\d+|\*):[A-Za-z0-9*?@._/+=,-]+\Z")
_SID = re.compile(r"^[A-Za-z0-9 _.:/@+=,-]{0,128}\Z")


@dataclass(frozen=True, slots=True)
class Statement:
    effect: str  # "Allow" or "Deny"
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    principals: tuple[str, ...] = ()  # key policies only
    conditions: tuple[Condition, ...] = ()
    sid: str | None = None

    @property
    def allows(self) -> bool:
        return self.effect == "Allow"


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    kind: PolicyKind
    statements: tuple[Statement, ...]
    text: str  # the document as written, returned by GetKeyPolicy / GetPolicy


def parse_policy(text: str, kind: PolicyKind) -> PolicyDocument:
    """Parse and validate `text`; raise MalformedPolicy naming the first problem."""
    limit = SIZE_LIMIT[kind]
    if len(text) > limit:
        raise MalformedPolicy(f"The policy document is longer than {limit} characters.")
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys)
    except ValueError as exc:
        raise MalformedPolicy(f"The policy document is not valid JSON: {exc}.") from None
    except RecursionError:
        raise MalformedPolicy("The policy document is nested too deeply.") from None
    if not isinstance(document, dict):
        raise MalformedPolicy("The policy document must be a JSON object.")
    unknown = sorted(set(document) - {"Version", "Statement"})
    if unknown:
        raise MalformedPolicy(f"The policy document has unknown field(s): {', '.join(unknown)}.")
    if document.get("Version") != VERSION:
        raise MalformedPolicy(f'The policy document must have "Version": "{VERSION}".')
    raw_statements = document.get("Statement")
    if isinstance(raw_statements, dict):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, list) or not raw_statements:
        raise MalformedPolicy("The policy document must have a non-empty Statement list.")
    statements = tuple(_statement(raw, index, kind) for index, raw in enumerate(raw_statements))
    return PolicyDocument(kind, statements, text)


def _statement(raw: object, index: int, kind: PolicyKind) -> Statement:
    where = f"Statement {index + 1}"
    if not isinstance(raw, dict):
        raise MalformedPolicy(f"{where} must be an object.")
    unknown = sorted(set(raw) - _STATEMENT_FIELDS)
    if unknown:
        raise MalformedPolicy(f"{where} has unsupported field(s): {', '.join(unknown)}.")
    sid = raw.get("Sid")
    if sid is not None and (not isinstance(sid, str) or not _SID.match(sid)):
        raise MalformedPolicy(f"{where}: Sid must be up to 128 letters, digits, spaces or _.:/@+=,-.")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise MalformedPolicy(f'{where}: Effect must be "Allow" or "Deny".')
    actions = _strings(raw.get("Action"), f"{where}: Action")
    for action in actions:
        if not _ACTION.match(action):
            raise MalformedPolicy(f"{where}: {action!r} is not an action such as kms:Encrypt or kms:List*.")
    if kind is PolicyKind.TRUST and "Resource" not in raw:
        resources: tuple[str, ...] = ("*",)
    else:
        resources = _strings(raw.get("Resource"), f"{where}: Resource")
    for resource in resources:
        if resource != "*" and not resource.startswith("acs:"):
            raise MalformedPolicy(f"{where}: {resource!r} is not * or an acs: resource name.")
    principals: tuple[str, ...] = ()
    if kind is PolicyKind.KEY:
        principals = _principals(raw.get("Principal"), where)
        if effect == "Allow" and any(p == "*" or p.startswith("acs:ram::*:") for p in principals):
            # Every account would be granted, and none would count against the instance's access quota.
            raise MalformedPolicy(
                f"{where}: an Allow statement of a key policy names each account it grants."
            )
    elif kind is PolicyKind.TRUST:
        principals = _trusted(raw.get("Principal"), where)
    elif "Principal" in raw:
        raise MalformedPolicy(
            f"{where}: an identity policy names no Principal; it applies to whom it is attached."
        )
    conditions = parse_condition_block(raw["Condition"]) if "Condition" in raw else ()
    return Statement(effect, actions, resources, principals, conditions, sid)


def _principals(raw: object, where: str) -> tuple[str, ...]:
    if not isinstance(raw, dict) or set(raw) != {"RAM"}:
        raise MalformedPolicy(f'{where}: a key policy statement needs "Principal": {{"RAM": [...]}}.')
    principals = _strings(raw["RAM"], f"{where}: Principal RAM")
    for principal in principals:
        if not _PRINCIPAL.match(principal):
            raise MalformedPolicy(
                f"{where}: {principal!r} is not a principal such as acs:ram::<uid>:* , "
                "acs:ram::<uid>:user/<name> or acs:ram::<uid>:role/<name>."
            )
    return principals


def _trusted(raw: object, where: str) -> tuple[str, ...]:
    """A trust policy names RAM principals and/or services; services are kept as `service:<name>`."""
    if not isinstance(raw, dict) or not raw or not set(raw) <= {"RAM", "Service"}:
        raise MalformedPolicy(f'{where}: a trust policy statement needs "Principal": {{"RAM": [...]}}.')
    principals = list(_principals({"RAM": raw["RAM"]}, where)) if "RAM" in raw else []
    if "Service" in raw:
        principals += [f"service:{name}" for name in _strings(raw["Service"], f"{where}: Principal Service")]
    return tuple(principals)


def _strings(raw: object, what: str) -> tuple[str, ...]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
        raise MalformedPolicy(f"{what} must be a non-empty string or list of non-empty strings.")
    return tuple(items)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise MalformedPolicy(f"The policy document repeats the field {name!r}.")
        out[name] = value
    return out
