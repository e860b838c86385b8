"""Cryptographic use cases on symmetric keys: Encrypt, Decrypt, ReEncrypt, GenerateDataKey(+WithoutPlaintext).

One pipeline checks usability for all of them (`_usable`): resolve, authorize, lifecycle guard.
Plaintext and data keys cross this boundary only as SecretBytes. The steady state does no database
round trip: key records and version references come from the caches.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass

from openkms.clock import Clock, SystemClock
from openkms.domain.ciphertext import Ciphertext, blob_aad, header_for, parse_ciphertext
from openkms.domain.encryption_context import canonical_context
from openkms.domain.key import Key
from openkms.domain.lifecycle import ensure_material_current, ensure_usable
from openkms.domain.specs import SPEC_RULES
from openkms.errors import InvalidArgument, InvalidCiphertext, UnsupportedOperation
from openkms.node.generation import Generation
from openkms.providers.base import CryptoProvider, MaterialRef, random_bytes
from openkms.repository.database import Database
from openkms.secret import SecretBytes
from openkms.service.authorization import authorize
from openkms.service.cache import TtlCache
from openkms.service.context import RequestContext
from openkms.service.keys import KeyService
from openkms.types import DataKeySpec, KeyId, KeyUsage, KeyVersionId

PLAINTEXT_LIMIT = 6144
DATA_KEY_BYTES = {DataKeySpec.AES_128: 16, DataKeySpec.AES_256: 32}


@dataclass(frozen=True, slots=True)
class Sealed:
    """A ciphertext blob and the key version that made it."""

    blob: bytes
    key_id: KeyId
    version_id: KeyVersionId


@dataclass(frozen=True, slots=True)
class Opened:
    plaintext: SecretBytes
    key_id: KeyId
    version_id: KeyVersionId


@dataclass(frozen=True, slots=True)
class DataKey:
    plaintext_base64: SecretBytes  # the base64 text of the data key, as GenerateDataKey returns it
    sealed: Sealed


class CryptoService:
    def __init__(
        self,
        db: Database,
        keys: KeyService,
        provider: CryptoProvider,
        generation: Generation,
        cache_ttl: float,
        clock: Clock | None = None,
    ) -> None:
        self._db = db
        self._keys = keys
        self._provider = provider
        self._clock: Clock = clock or SystemClock()
        self._versions: TtlCache[str, MaterialRef] = TtlCache(cache_ttl, generation)

    # -- the shared pipeline ----------------------------------------------------------------------
    def _usable(self, ctx: RequestContext, key: Key, action: str) -> None:
        ctx.touched(key.key_id)
        authorize(ctx, action, key)
        ensure_usable(key.state)
        if key.material_expire_time is not None:  # imported material: usable until it expires
            ensure_material_current(key.material_expire_time, self._clock.now().timestamp())
        if not SPEC_RULES[key.spec].symmetric:
            raise UnsupportedOperation(f"{action} needs a symmetric key; this key is {key.spec}.")
        if key.usage is not KeyUsage.ENCRYPT_DECRYPT:
            raise UnsupportedOperation(f"{action} needs a key with usage ENCRYPT/DECRYPT.")

    def _material(self, version_id: str) -> MaterialRef | None:
        cached = self._versions.get(version_id)
        if cached is not None:
            return cached
        with self._db.unit_of_work() as uow:
            stored = uow.keys.version(version_id)
            key = None if stored is None else uow.keys.get(stored.version.key_id)
        if stored is None or key is None:
            return None
        ref = MaterialRef(key.key_id, stored.version.version_id, key.spec, stored.wrapped_material)
        self._versions.put(version_id, ref)
        return ref

    def _seal(
        self, ctx: RequestContext, key: Key, plaintext: bytes, context: Mapping[str, str] | None
    ) -> Sealed:
        if key.primary_version_id is None:
            raise UnsupportedOperation("The key has no key material.")
        ref = self._material(key.primary_version_id)
        if ref is None:
            raise UnsupportedOperation("The key has no key material.")
        header = header_for(ref.version_id)
        iv, sealed = self._provider.encrypt(ref, plaintext, blob_aad(header, canonical_context(context)))
        ctx.touched(key.key_id, ref.version_id)
        return Sealed(Ciphertext(ref.version_id, iv, sealed).to_bytes(), key.key_id, ref.version_id)

    def _open(
        self, ctx: RequestContext, blob: bytes, context: Mapping[str, str] | None, action: str
    ) -> Opened:
        ciphertext = parse_ciphertext(blob)
        ref = self._material(ciphertext.version_id)
        if ref is None or not SPEC_RULES[ref.spec].symmetric:
            # The blob names no symmetric version we hold (key pairs never make blobs): indistinguishable
            # from a forged blob.
            raise InvalidCiphertext()
        key = self._keys.resolve(ctx, ref.key_id)
        self._usable(ctx, key, action)
        ctx.touched(key.key_id, ref.version_id)
        aad = blob_aad(ciphertext.header(), canonical_context(context))
        plaintext = self._provider.decrypt(ref, ciphertext.iv, ciphertext.sealed, aad)
        return Opened(plaintext, key.key_id, ref.version_id)

    # -- use cases --------------------------------------------------------------------------------
    def encrypt(
        self, ctx: RequestContext, key_ref: str, plaintext: bytes, context: Mapping[str, str] | None
    ) -> Sealed:
        if len(plaintext) > PLAINTEXT_LIMIT:
            raise InvalidArgument(f"Plaintext is longer than {PLAINTEXT_LIMIT} bytes.", parameter="Plaintext")
        key = self._keys.resolve(ctx, key_ref)
        self._usable(ctx, key, "Encrypt")
        return self._seal(ctx, key, plaintext, context)

    def decrypt(self, ctx: RequestContext, blob: bytes, context: Mapping[str, str] | None) -> Opened:
        return self._open(ctx, blob, context, "Decrypt")

    def open_for(
        self, ctx: RequestContext, blob: bytes, context: Mapping[str, str] | None, action: str
    ) -> Opened:
        """Decrypt a blob for another use case (ExportDataKey), authorizing `action` instead of Decrypt."""
        return self._open(ctx, blob, context, action)

    def re_encrypt(
        self,
        ctx: RequestContext,
        blob: bytes,
        source_context: Mapping[str, str] | None,
        destination_key_ref: str,
        destination_context: Mapping[str, str] | None,
    ) -> Sealed:
        destination = self._keys.resolve(ctx, destination_key_ref)
        opened = self._open(ctx, blob, source_context, "ReEncrypt")
        self._usable(ctx, destination, "ReEncrypt")
        return self._seal(ctx, destination, opened.plaintext.reveal(), destination_context)

    def generate_data_key(
        self,
        ctx: RequestContext,
        key_ref: str,
        number_of_bytes: int | None,
        key_spec: str | None,
        context: Mapping[str, str] | None,
        *,
        action: str = "GenerateDataKey",
    ) -> DataKey:
        length = data_key_length(number_of_bytes, key_spec)
        key = self._keys.resolve(ctx, key_ref)
        self._usable(ctx, key, action)
        # The CiphertextBlob seals the base64 text of the data key, so Decrypt returns the same text
        # GenerateDataKey returned (Alibaba's envelope convention).
        encoded = SecretBytes(base64.b64encode(random_bytes(length).reveal()))
        return DataKey(encoded, self._seal(ctx, key, encoded.reveal(), context))


def data_key_length(number_of_bytes: int | None, key_spec: str | None) -> int:
    """NumberOfBytes wins over KeySpec; neither means 32 bytes."""
    if number_of_bytes is not None:
        if not 1 <= number_of_bytes <= 1024:
            raise InvalidArgument("NumberOfBytes must be between 1 and 1024.", parameter="NumberOfBytes")
        return number_of_bytes
    if key_spec is None or key_spec == "":
        return 32
    try:
        return DATA_KEY_BYTES[DataKeySpec(key_spec)]
    except ValueError:
        raise InvalidArgument(
            f"KeySpec {key_spec!r} is not AES_128 or AES_256.", parameter="KeySpec"
        ) from None
