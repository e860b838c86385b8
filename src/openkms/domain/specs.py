"""The seed's spec table (F2): which key specs each instance kind offers, with which usages.

Validation, the docs and (later) the console read this table; nothing else lists specs.
"""

from __future__ import annotations

from dataclasses import dataclass

from openkms.errors import InvalidArgument
from openkms.types import InstanceKind, KeySpec, KeyUsage


@dataclass(frozen=True, slots=True)
class SpecRule:
    spec: KeySpec
    usages: tuple[KeyUsage, ...]
    symmetric: bool
    material_bytes: int


SPEC_RULES: dict[KeySpec, SpecRule] = {
    KeySpec.ALIYUN_AES_256: SpecRule(
        KeySpec.ALIYUN_AES_256, (KeyUsage.ENCRYPT_DECRYPT,), symmetric=True, material_bytes=32
    ),
}

# Where a key lives decides which specs it may have. None is the default-key slot of a region.
SPECS_BY_KIND: dict[InstanceKind | None, tuple[KeySpec, ...]] = {
    None: (KeySpec.ALIYUN_AES_256,),
    InstanceKind.SOFTWARE: (KeySpec.ALIYUN_AES_256,),
}


def parse_spec(raw: str | None, kind: InstanceKind | None) -> SpecRule:
    """The rule for a requested KeySpec (default Aliyun_AES_256), or InvalidArgument."""
    if raw is None or raw == "":
        raw = KeySpec.ALIYUN_AES_256.value
    offered = SPECS_BY_KIND.get(kind, ())
    for spec in offered:
        if spec.value == raw:
            return SPEC_RULES[spec]
    where = "a default key" if kind is None else f"a {kind} instance"
    raise InvalidArgument(
        f"KeySpec {raw!r} is not offered for {where}; choose one of {', '.join(offered)}.",
        parameter="KeySpec",
    )


def parse_usage(raw: str | None, rule: SpecRule) -> KeyUsage:
    """The requested KeyUsage (default: the spec's first usage), or InvalidArgument."""
    if raw is None or raw == "":
        return rule.usages[0]
    for usage in rule.usages:
        if usage.value == raw:
            return usage
    raise InvalidArgument(
        f"KeyUsage {raw!r} is not valid for {rule.spec}; choose one of {', '.join(rule.usages)}.",
        parameter="KeyUsage",
    )
