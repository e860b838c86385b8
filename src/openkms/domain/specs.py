"""The seed's spec table (F2): which key specs each instance kind offers, with which usages and, for
asymmetric specs, which algorithms per usage.

Validation, the docs and (later) the console read this table; nothing else lists specs or algorithms.
"""

from __future__ import annotations

from dataclasses import dataclass

from openkms.errors import InvalidArgument, UnsupportedOperation
from openkms.types import AsymmetricAlgorithm, InstanceKind, KeySpec, KeyUsage


@dataclass(frozen=True, slots=True)
class SpecRule:
    spec: KeySpec
    usages: tuple[KeyUsage, ...]
    symmetric: bool
    material_bytes: int
    # Asymmetric specs only: the modulus or curve size, and the algorithms each usage admits.
    key_bits: int = 0
    sign_algorithms: tuple[AsymmetricAlgorithm, ...] = ()
    encrypt_algorithms: tuple[AsymmetricAlgorithm, ...] = ()

    def algorithms(self, usage: KeyUsage) -> tuple[AsymmetricAlgorithm, ...]:
        """The algorithms a key of this spec and usage admits (none for symmetric specs)."""
        if usage is KeyUsage.SIGN_VERIFY:
            return self.sign_algorithms
        return self.encrypt_algorithms


SPEC_RULES: dict[KeySpec, SpecRule] = {
    _aes: SpecRule(_aes, (KeyUsage.ENCRYPT_DECRYPT,), symmetric=True, material_bytes=_bytes)
    for _aes, _bytes in (
        (KeySpec.ALIYUN_AES_256, 32),
        (KeySpec.ALIYUN_AES_192, 24),
        (KeySpec.ALIYUN_AES_128, 16),
    )
}

_RSA_SIGN = (AsymmetricAlgorithm.RSA_PSS_SHA_256, AsymmetricAlgorithm.RSA_PKCS1_SHA_256)
_RSA_ENCRYPT = (AsymmetricAlgorithm.RSAES_OAEP_SHA_256, AsymmetricAlgorithm.RSAES_OAEP_SHA_1)
_ECDSA = (AsymmetricAlgorithm.ECDSA_SHA_256,)
# The first usage is the default: Alibaba's CreateKey defaults a key that can sign to SIGN/VERIFY
# (the SDK's CreateKeyRequest documents it); EC keys only sign.
_RSA_USAGES = (KeyUsage.SIGN_VERIFY, KeyUsage.ENCRYPT_DECRYPT)
for _spec, _bits in ((KeySpec.RSA_2048, 2048), (KeySpec.RSA_3072, 3072), (KeySpec.RSA_4096, 4096)):
    SPEC_RULES[_spec] = SpecRule(
        _spec,
        _RSA_USAGES,
        False,
        0,
        key_bits=_bits,
        sign_algorithms=_RSA_SIGN,
        encrypt_algorithms=_RSA_ENCRYPT,
    )
for _spec in (KeySpec.EC_P256, KeySpec.EC_P256K):
    SPEC_RULES[_spec] = SpecRule(
        _spec, (KeyUsage.SIGN_VERIFY,), False, 0, key_bits=256, sign_algorithms=_ECDSA
    )

ASYMMETRIC_SPECS = (KeySpec.RSA_2048, KeySpec.RSA_3072, KeySpec.RSA_4096, KeySpec.EC_P256, KeySpec.EC_P256K)

# Digest length of the hash inside each OAEP algorithm (label empty, MGF1 with the same hash).
_OAEP_HASH_BYTES = {AsymmetricAlgorithm.RSAES_OAEP_SHA_256: 32, AsymmetricAlgorithm.RSAES_OAEP_SHA_1: 20}

# Where a key lives decides which specs it may have. None is the default-key slot of a region.
SPECS_BY_KIND: dict[InstanceKind | None, tuple[KeySpec, ...]] = {
    None: (KeySpec.ALIYUN_AES_256,),
    InstanceKind.SOFTWARE: (KeySpec.ALIYUN_AES_256, *ASYMMETRIC_SPECS),
    # F2's hardware row: AES-128 and AES-192 only here.
    InstanceKind.HARDWARE: (
        KeySpec.ALIYUN_AES_256,
        KeySpec.ALIYUN_AES_192,
        KeySpec.ALIYUN_AES_128,
        *ASYMMETRIC_SPECS,
    ),
    # F1.4: external keys are symmetric, for encryption and decryption only.
    InstanceKind.EXTERNAL: (KeySpec.ALIYUN_AES_256,),
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


def parse_algorithm(raw: str, rule: SpecRule, usage: KeyUsage) -> AsymmetricAlgorithm:
    """The requested Algorithm if the spec and usage admit it, else InvalidArgument naming the choices."""
    offered = rule.algorithms(usage)
    for algorithm in offered:
        if algorithm.value == raw:
            return algorithm
    raise InvalidArgument(
        f"Algorithm {raw!r} is not valid for a {rule.spec} key with usage {usage}; "
        f"choose one of {', '.join(offered)}.",
        parameter="Algorithm",
    )


def max_plaintext(rule: SpecRule, algorithm: AsymmetricAlgorithm) -> int:
    """The longest plaintext RSAES-OAEP takes with this key size: k - 2 * hLen - 2 bytes."""
    return rule.key_bits // 8 - 2 * _OAEP_HASH_BYTES[algorithm] - 2


def ensure_rotation_allowed(raw_spec: str | None) -> None:
    """Automatic rotation is for symmetric keys only (F3.4): UnsupportedOperation for any other spec."""
    if raw_spec is None:
        return
    try:
        rule = SPEC_RULES[KeySpec(raw_spec)]
    except (KeyError, ValueError):
        return  # not a spec we know: CreateKey's own spec validation answers that
    if not rule.symmetric:
        raise UnsupportedOperation(f"Automatic rotation applies to symmetric keys only, not {rule.spec}.")
