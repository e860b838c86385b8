"""Unwrapping imported key material: the RSA wrapping of GetParametersForImport, the
asymmetric envelope, the checks against the key spec and the keyed fingerprint.

Owns the one rule that makes ImportKeyMaterial no padding oracle: every step runs whatever the
previous one found (a failed RSA unwrap continues with a random key of the expected length, as
implicit rejection does), the outcome is one flag, and the only failure is one IncorrectKeyMaterial
raised at the end. OpenSSL 3.2+ already answers a bad RSAES-PKCS1-v1_5 padding with a synthetic
message instead of an error; on older OpenSSL the ValueError is absorbed the same way. The price of
implicit rejection: symmetric material has no integrity check of its own, so a PKCS#1 v1.5 ciphertext
that was not made with the wrapping key can, with probability about 1/245, decrypt to 32 synthetic
bytes that are imported into a key that never had material (never into one with a fingerprint).
Prefer the OAEP algorithms; asymmetric envelopes are protected by the AES key wrap's integrity check.

Envelope of an asymmetric key: RSA(wrapping key, ephemeral AES-256 key) || AES-KWP(ephemeral key,
PKCS#8 DER of the private key) (RFC 5649), as Alibaba documents it for RSA and EC keys.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from dataclasses import dataclass, field
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap_with_padding

from openkms.domain.key_import import WrappingAlgorithm
from openkms.domain.specs import SPEC_RULES
from openkms.errors import IncorrectKeyMaterial, UnsupportedOperation
from openkms.providers import keypairs
from openkms.secret import SecretBytes
from openkms.types import KeyId, KeySpec

WRAPPING_KEY_BITS: Final = 2048
EPHEMERAL_KEY_BYTES: Final = 32
_FINGERPRINT_LABEL: Final = b"openkms-import-fingerprint/v1\0"


@dataclass(frozen=True, slots=True)
class ImportedMaterial:
    """What to store for an imported version: the canonical material (for the keystore to wrap) and
    its keyed fingerprint."""

    material: SecretBytes = field(repr=False)
    fingerprint: bytes = field(repr=False)


def new_wrapping_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=keypairs.RSA_PUBLIC_EXPONENT, key_size=WRAPPING_KEY_BITS)


def _padding(algorithm: WrappingAlgorithm) -> padding.AsymmetricPadding:
    if algorithm is WrappingAlgorithm.RSAES_OAEP_SHA_256:
        return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    if algorithm is WrappingAlgorithm.RSAES_OAEP_SHA_1:
        return padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303
    return padding.PKCS1v15()


@functools.cache
def pkcs1_v15_rejects_implicitly() -> bool:
    """Whether this OpenSSL answers a bad PKCS#1 v1.5 padding with a synthetic message (implicit
    rejection, OpenSSL 3.2+) rather than an error: only then is RSAES_PKCS1_V1_5 unwrapping free of a
    Bleichenbacher/Marvin-style difference between bad padding and a bad length. Checked once."""
    probe = new_wrapping_key()
    modulus = probe.public_key().public_numbers().n
    block = (probe.key_size + 7) // 8
    garbage = (int.from_bytes(os.urandom(block), "big") % modulus).to_bytes(block, "big")
    try:
        probe.decrypt(garbage, padding.PKCS1v15())
    except ValueError:
        return False
    return True


def ensure_wrapping_algorithm_safe(algorithm: WrappingAlgorithm) -> None:
    """Refuse RSAES_PKCS1_V1_5 where the cryptography library would leak padding failures."""
    if algorithm is WrappingAlgorithm.RSAES_PKCS1_V1_5 and not pkcs1_v15_rejects_implicitly():
        raise UnsupportedOperation(
            "RSAES_PKCS1_V1_5 needs OpenSSL 3.2 or later (implicit rejection) on this server; "
            "use RSAES_OAEP_SHA_256."
        )


def _rsa_unwrap(
    wrapping_key: rsa.RSAPrivateKey, algorithm: WrappingAlgorithm, wrapped: bytes, length: int
) -> tuple[bytes, bool]:
    """(`length` bytes, whether they are really what was wrapped). On any failure the bytes are random
    and the caller carries on with them."""
    substitute = os.urandom(length)
    try:
        plain = wrapping_key.decrypt(wrapped, _padding(algorithm))
    except ValueError:
        return substitute, False
    ok = len(plain) == length
    return (plain if ok else substitute), ok


def fingerprint(fingerprint_key: SecretBytes, key_id: KeyId, spec: KeySpec, material: bytes) -> bytes:
    """HMAC-SHA-256 under the server's fingerprint secret, bound to the key: equal material in two keys
    gives unrelated fingerprints, and nothing about the material can be tested without the secret."""
    message = _FINGERPRINT_LABEL + key_id.encode() + b"\0" + spec.value.encode() + b"\0" + material
    return hmac.digest(fingerprint_key.reveal(), message, hashlib.sha256)


def unwrap_imported(
    wrapping_key: rsa.RSAPrivateKey,
    algorithm: WrappingAlgorithm,
    encrypted: bytes,
    key_id: KeyId,
    spec: KeySpec,
    fingerprint_key: SecretBytes,
    expected_fingerprint: bytes | None,
) -> ImportedMaterial:
    """The material inside `encrypted`, checked against the spec and, after a deletion or expiry, against
    the fingerprint of the material imported before. IncorrectKeyMaterial for every failure."""
    ensure_wrapping_algorithm_safe(algorithm)
    block = (wrapping_key.key_size + 7) // 8
    ok = len(encrypted) >= block
    head = encrypted[:block].rjust(block, b"\0")
    rule = SPEC_RULES[spec]
    if rule.symmetric:
        length = rule.material_bytes
        if not length:
            raise IncorrectKeyMaterial()
        plain, unwrapped = _rsa_unwrap(wrapping_key, algorithm, head, length)
        ok = ok and unwrapped and len(encrypted) == block
        canonical = plain
    else:
        ephemeral, unwrapped = _rsa_unwrap(wrapping_key, algorithm, head, EPHEMERAL_KEY_BYTES)
        ok = ok and unwrapped
        canonical = b""
        try:
            der = aes_key_unwrap_with_padding(ephemeral, encrypted[block:])
        except (InvalidUnwrap, ValueError):
            ok = False
        else:
            key = keypairs.load_imported_private_key(der, spec)
            if key is None:
                ok = False
            else:
                canonical = keypairs.private_key_der(key).reveal()
    mac = fingerprint(fingerprint_key, key_id, spec, canonical)
    if expected_fingerprint is not None and not hmac.compare_digest(mac, expected_fingerprint):
        ok = False
    if not ok:
        raise IncorrectKeyMaterial()
    return ImportedMaterial(SecretBytes(canonical), mac)
