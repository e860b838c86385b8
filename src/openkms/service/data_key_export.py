"""GenerateAndExportDataKey and ExportDataKey: a data key encrypted to a caller's RSA public key.

Owns the rules for the wrapping public key (PublicKeyBlob, WrappingKeySpec, WrappingAlgorithm) and what
is exported: the raw data key bytes, RSAES-OAEP-encrypted, so a cryptographic module holding the private
key imports the key itself. (The KMS CiphertextBlob keeps Alibaba's convention and holds the base64 text
of the key, so base64(unwrapped ExportedDataKey) equals Decrypt(CiphertextBlob).Plaintext.)
Every wrapping parameter is checked before a data key is made or a blob is opened. The wrap itself is
the provider's (`ExportWrapping`), the provider of the key the data key belongs to.

ExportDataKey exports only data keys: blobs that carry the data-key mark (`domain.ciphertext`), which
only GenerateDataKey, GenerateDataKeyWithoutPlaintext, GenerateAndExportDataKey and ReEncrypt of such a
blob make. Any other blob is refused with NotADataKey (UnsupportedOperation.NotDataKey) before it is
decrypted, whatever the caller's rights, so ExportDataKey is never a Decrypt that `Deny kms:Decrypt`
does not stop. Blobs made before the mark existed cannot be told from Encrypt results, so they are
refused too (the safe default); they still Decrypt and ReEncrypt as before, and a fresh
GenerateDataKeyWithoutPlaintext makes an exportable one.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass

from openkms.domain.specs import SPEC_RULES, max_plaintext
from openkms.errors import InternalError, InvalidArgument, UnsupportedOperation
from openkms.policy.actions import KmsAction
from openkms.providers import keypairs
from openkms.providers.base import EXPORT_WRAPPING
from openkms.resource import Resource
from openkms.secret import SecretBytes
from openkms.service.context import RequestContext
from openkms.service.crypto import CryptoService, Encrypted, data_key_length
from openkms.service.keys import KeyService
from openkms.service.outcome import Outcome, acting_on
from openkms.types import AsymmetricAlgorithm, KeyId, KeySpec, KeyVersionId

WRAPPING_KEY_SPECS = (KeySpec.RSA_2048,)
WRAPPING_ALGORITHMS = (AsymmetricAlgorithm.RSAES_OAEP_SHA_256, AsymmetricAlgorithm.RSAES_OAEP_SHA_1)
# Alibaba values for SM2 wrapping keys: valid requests this server does not support.
_SM2 = ("EC_SM2", "SM2PKE")


@dataclass(frozen=True, slots=True)
class WrappingKey:
    """The caller's public key (checked: an RSA-2048 SubjectPublicKeyInfo) and how to wrap for it."""

    public_key_der: bytes
    algorithm: AsymmetricAlgorithm
    limit: int  # the longest data key this key and algorithm can carry


@dataclass(frozen=True, slots=True)
class Exported:
    exported: bytes  # the data key encrypted to the caller's public key
    key_id: KeyId
    version_id: KeyVersionId
    encrypted: Encrypted | None = None  # the KMS CiphertextBlob (GenerateAndExportDataKey only)


def parse_wrapping_key(public_key_blob: str, algorithm: str, key_spec: str) -> WrappingKey:
    """The caller's public key and algorithm, or InvalidArgument/UnsupportedOperation naming the parameter."""
    if key_spec in _SM2:
        raise UnsupportedOperation("SM2 wrapping keys (EC_SM2) are not supported; use RSA_2048.")
    spec = next((spec for spec in WRAPPING_KEY_SPECS if spec.value == key_spec), None)
    if spec is None:
        raise InvalidArgument(f"WrappingKeySpec {key_spec!r} is not RSA_2048.", parameter="WrappingKeySpec")
    if algorithm in _SM2:
        raise UnsupportedOperation(
            "SM2PKE wrapping is not supported; use RSAES_OAEP_SHA_256 or RSAES_OAEP_SHA_1."
        )
    chosen = next((choice for choice in WRAPPING_ALGORITHMS if choice.value == algorithm), None)
    if chosen is None:
        raise InvalidArgument(
            f"WrappingAlgorithm {algorithm!r} is not one of {', '.join(WRAPPING_ALGORITHMS)}.",
            parameter="WrappingAlgorithm",
        )
    rule = SPEC_RULES[spec]
    try:
        der = base64.b64decode(public_key_blob, validate=True)
        keypairs.load_rsa_public_key(der, rule.key_bits)
    except (binascii.Error, ValueError):
        raise InvalidArgument(
            f"PublicKeyBlob is not the base64 of an {spec} public key (SubjectPublicKeyInfo DER).",
            parameter="PublicKeyBlob",
        ) from None
    return WrappingKey(der, chosen, max_plaintext(rule, chosen))


class DataKeyExportService:
    """Makes or opens the data key through the symmetric pipeline (`CryptoService`), then has the
    provider of the same key wrap it for the caller (`ExportWrapping`)."""

    def __init__(self, crypto: CryptoService, keys: KeyService) -> None:
        self._crypto = crypto
        self._keys = keys

    def generate_and_export(
        self,
        ctx: RequestContext,
        key_ref: str,
        number_of_bytes: int | None,
        key_spec: str | None,
        context: Mapping[str, str] | None,
        wrapping: WrappingKey,
    ) -> Outcome[Exported]:
        length = data_key_length(number_of_bytes, key_spec)
        if length > wrapping.limit:
            raise InvalidArgument(
                f"A {length}-byte data key does not fit {wrapping.algorithm} with RSA_2048 "
                f"(at most {wrapping.limit} bytes).",
                parameter="NumberOfBytes",
            )
        made = self._crypto.generate_data_key(
            ctx, key_ref, length, None, context, action=KmsAction.GENERATE_AND_EXPORT_DATA_KEY
        )
        encrypted = made.value.encrypted
        raw = SecretBytes(base64.b64decode(made.value.plaintext_base64.reveal()))
        exported = self._wrap(ctx, encrypted.key_id, _named(made), raw, wrapping)
        return Outcome(Exported(exported, encrypted.key_id, encrypted.version_id, encrypted), made.resource)

    def export(
        self, ctx: RequestContext, blob: bytes, context: Mapping[str, str] | None, wrapping: WrappingKey
    ) -> Outcome[Exported]:
        opened = self._crypto.open_data_key(ctx, blob, context, KmsAction.EXPORT_DATA_KEY)
        with acting_on(_named(opened)):
            try:
                raw = base64.b64decode(opened.value.plaintext.reveal(), validate=True)
            except (binascii.Error, ValueError):  # pragma: no cover - every marked blob holds base64
                raise InternalError() from None
            if not raw or len(raw) > wrapping.limit:
                raise InvalidArgument(
                    f"The data key is {len(raw)} bytes; {wrapping.algorithm} with RSA_2048 carries 1 to "
                    f"{wrapping.limit}.",
                    parameter="CiphertextBlob",
                )
        found = opened.value
        exported = self._wrap(ctx, found.key_id, _named(opened), SecretBytes(raw), wrapping)
        return Outcome(Exported(exported, found.key_id, found.version_id), opened.resource)

    def _wrap(
        self,
        ctx: RequestContext,
        key_id: KeyId,
        resource: Resource,
        data_key: SecretBytes,
        wrapping: WrappingKey,
    ) -> bytes:
        """The data key wrapped for the caller by the provider of the key it belongs to."""
        with acting_on(resource):
            key = self._keys.resolve(ctx, key_id)
            wrapper = self._keys.provider(key, EXPORT_WRAPPING)
            return wrapper.wrap_for_export(wrapping.public_key_der, wrapping.algorithm, data_key)


def _named(done: Outcome[object]) -> Resource:
    """The key and version a data key came from (the symmetric pipeline always names them)."""
    if done.resource is None:  # pragma: no cover - every symmetric outcome names its key
        raise InternalError()
    return done.resource
