"""Cryptographic use cases on symmetric keys: Encrypt, Decrypt, ReEncrypt, GenerateDataKey(+WithoutPlaintext).

Every one runs the key-operation pipeline (`service.key_ops`): resolve, authorize, lifecycle guard,
provider. Plaintext and data keys cross this boundary only as SecretBytes. The steady state does no
database round trip: key records and version references come from the caches.
Owns which blobs carry the data-key mark (`domain.ciphertext`): the ones GenerateDataKey makes, and
ReEncrypt's output exactly when its input had it, so no operation turns an Encrypt result into a blob
that ExportDataKey accepts. Owns which blob version is written: v2 (Alibaba's shape, bound to the
context's derived Aad, or to the instance API's Aad bytes as given), except for a context whose
derived Aad would be ambiguous, which gets a v1 blob bound to its canonical JSON
(`domain.encryption_context`).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from openkms.domain.ciphertext import (
    FORMAT_V2,
    Ciphertext,
    blob_aad,
    data_key_header_for,
    header_for,
    join_blob,
    parse_ciphertext,
    v2_data_key_header_for,
    v2_header_for,
)
from openkms.domain.data_key_pairs import DataKeyPair
from openkms.domain.data_key_pairs import generate_data_key_pair as new_data_key_pair
from openkms.domain.encryption_context import canonical_context, derived_aad
from openkms.domain.specs import SPEC_RULES
from openkms.errors import InvalidArgument, InvalidCiphertext, NotADataKey, OpenKMSError
from openkms.policy.actions import KmsAction
from openkms.providers.base import MaterialRef, SymmetricCipher, random_bytes
from openkms.repository.blocking import ensure_may_block
from openkms.resource import Resource
from openkms.secret import SecretBytes
from openkms.service.context import RequestContext
from openkms.service.key_ops import SYMMETRIC_KEY, KeyOperations, Target, end_dry_run
from openkms.service.outcome import Outcome, acting_on
from openkms.types import DataKeySpec, KeyId, KeyVersionId

__all__ = [
    "DATA_KEY_BYTES",
    "PLAINTEXT_LIMIT",
    "CryptoService",
    "DataKey",
    "Encrypted",
    "Opened",
    "data_key_length",
]

PLAINTEXT_LIMIT = 6144
DATA_KEY_BYTES = {DataKeySpec.AES_128: 16, DataKeySpec.AES_256: 32}


class Encrypted(NamedTuple):
    """A ciphertext blob and the key version that made it (NamedTuples here: one per request)."""

    blob: bytes
    key_id: KeyId
    version_id: KeyVersionId


class Opened(NamedTuple):
    plaintext: SecretBytes
    key_id: KeyId
    version_id: KeyVersionId
    data_key: bool  # the blob carried the data-key mark


@dataclass(frozen=True, slots=True)
class DataKey:
    plaintext_base64: SecretBytes  # the base64 text of the data key, as GenerateDataKey returns it
    encrypted: Encrypted


class CryptoService:
    def __init__(self, operations: KeyOperations) -> None:
        self._ops = operations

    # -- the operations, after the pipeline ---------------------------------------------------------
    def _seal(
        self,
        ctx: RequestContext,
        action: KmsAction,
        target: Target[SymmetricCipher],
        plaintext: bytes,
        context: Mapping[str, str] | None,
        data_key: bool = False,
        instance_aad: bytes | None = None,
    ) -> Outcome[Encrypted]:
        """Encrypt under the key's primary version, marking the blob as a data key or not; errors name
        the key (try/except, not `acting_on`: free when nothing is raised, and this is the hot path).
        `instance_aad` (the instance API's Aad) is bound as given, in place of a context."""
        key = target.key
        try:
            ref = self._ops.primary(key)
            bound = instance_aad if instance_aad is not None else derived_aad(context)
            if bound is not None:
                header = v2_data_key_header_for(ref.version_id) if data_key else v2_header_for(ref.version_id)
            else:  # a context the derived Aad cannot tell apart from another: the injective v1 binding
                header = data_key_header_for(ref.version_id) if data_key else header_for(ref.version_id)
                bound = canonical_context(context)
            aad = blob_aad(header, bound)
            if ctx.dry_run:
                end_dry_run(ctx, self._ops.resource(key, ref.version_id))
            iv, sealed = target.provider.encrypt(ref, plaintext, aad, target.invocation(ctx, action))
        except OpenKMSError as exc:
            exc.about(self._ops.resource(key))
            raise
        encrypted = Encrypted(join_blob(header, iv, sealed), key.key_id, ref.version_id)
        return Outcome(encrypted, self._ops.resource(key, ref.version_id))

    def _source(
        self, ctx: RequestContext, blob: bytes, action: KmsAction, data_keys_only: bool = False
    ) -> tuple[Ciphertext, MaterialRef, Target[SymmetricCipher], Resource]:
        """The pipeline for a blob: the version it names, its key resolved, authorized and checked."""
        ciphertext = parse_ciphertext(blob)
        ref = self._ops.material(ciphertext.version_id)
        if ref is None or not SPEC_RULES[ref.spec].symmetric:
            # The blob names no symmetric version we hold (key pairs never make blobs): indistinguishable
            # from a forged blob.
            raise InvalidCiphertext()
        target = self._ops.prepare(ctx, self._ops.key_of_blob(ctx, ref.key_id), action, SYMMETRIC_KEY)
        resource = self._ops.resource(target.key, ref.version_id)
        if data_keys_only and not ciphertext.data_key:
            # Refused before anything is decrypted, on the mark alone (which the caller can read in the
            # blob anyway); a forged mark is caught below, since the mark is part of the AAD.
            raise NotADataKey().about(resource)
        return ciphertext, ref, target, resource

    def _open(
        self,
        ctx: RequestContext,
        blob: bytes,
        context: Mapping[str, str] | None,
        action: KmsAction,
        data_keys_only: bool = False,
        instance_aad: bytes | None = None,
    ) -> Outcome[Opened]:
        ciphertext, ref, target, resource = self._source(ctx, blob, action, data_keys_only)
        try:
            aad = blob_aad(ciphertext.header(), _bound_context(ciphertext, context, instance_aad))
            if ctx.dry_run:  # a dry run does not decrypt: the blob's authenticity is not checked
                end_dry_run(ctx, resource)
            invocation = target.invocation(ctx, action)
            plaintext = target.provider.decrypt(ref, ciphertext.iv, ciphertext.sealed, aad, invocation)
        except OpenKMSError as exc:
            exc.about(resource)
            raise
        return Outcome(Opened(plaintext, target.key.key_id, ref.version_id, ciphertext.data_key), resource)

    # -- use cases --------------------------------------------------------------------------------
    def encrypt(
        self,
        ctx: RequestContext,
        key_ref: str,
        plaintext: bytes,
        context: Mapping[str, str] | None,
        *,
        aad: bytes | None = None,
    ) -> Outcome[Encrypted]:
        """Encrypt `plaintext`, bound to `context` (OpenAPI) or to the instance API's `aad` bytes."""
        if len(plaintext) > PLAINTEXT_LIMIT:
            raise InvalidArgument(f"Plaintext is longer than {PLAINTEXT_LIMIT} bytes.", parameter="Plaintext")
        target = self._ops.prepare(ctx, key_ref, KmsAction.ENCRYPT, SYMMETRIC_KEY)
        return self._seal(ctx, KmsAction.ENCRYPT, target, plaintext, context, instance_aad=aad)

    def decrypt(
        self,
        ctx: RequestContext,
        blob: bytes,
        context: Mapping[str, str] | None,
        *,
        aad: bytes | None = None,
    ) -> Outcome[Opened]:
        """Decrypt a blob of either version, with the `context` (OpenAPI) or the instance `aad` it was
        made with."""
        return self._open(ctx, blob, context, KmsAction.DECRYPT, instance_aad=aad)

    def primary_version(self, ctx: RequestContext, key_ref: str) -> str:
        """The version id a blob of the key's primary version names (v2: as its header writes it),
        for the instance API's plain Decrypt, which may name only the key; authorized as Decrypt."""
        target = self._ops.prepare(ctx, key_ref, KmsAction.DECRYPT, SYMMETRIC_KEY)
        with acting_on(self._ops.resource(target.key)):
            return self._ops.primary(target.key).version_id

    def open_data_key(
        self, ctx: RequestContext, blob: bytes, context: Mapping[str, str] | None, action: KmsAction
    ) -> Outcome[Opened]:
        """Decrypt a data-key blob for another use case (ExportDataKey), authorizing `action` instead of
        Decrypt. A blob without the data-key mark (an Encrypt result, or any blob made before the mark)
        is refused with NotADataKey before it is decrypted, whatever the caller may do."""
        return self._open(ctx, blob, context, action, data_keys_only=True)

    def re_encrypt(
        self,
        ctx: RequestContext,
        blob: bytes,
        source_context: Mapping[str, str] | None,
        destination_key_ref: str,
        destination_context: Mapping[str, str] | None,
    ) -> Outcome[Encrypted]:
        destination = self._ops.key(ctx, destination_key_ref)
        if ctx.dry_run:  # both keys through the pipeline; nothing decrypted or encrypted
            self._source(ctx, blob, KmsAction.RE_ENCRYPT)
            target = self._ops.prepare(ctx, destination, KmsAction.RE_ENCRYPT, SYMMETRIC_KEY)
            end_dry_run(ctx, self._ops.resource(target.key))
        opened = self._open(ctx, blob, source_context, KmsAction.RE_ENCRYPT).value
        target = self._ops.prepare(ctx, destination, KmsAction.RE_ENCRYPT, SYMMETRIC_KEY)
        # A re-encrypted data key is still one; anything else stays unmarked (no laundering).
        return self._seal(
            ctx, KmsAction.RE_ENCRYPT, target, opened.plaintext.reveal(), destination_context, opened.data_key
        )

    def re_encrypt_opened(
        self,
        ctx: RequestContext,
        open_source: Callable[[], SecretBytes],
        destination_key_ref: str,
        destination_context: Mapping[str, str] | None,
    ) -> Outcome[Encrypted]:
        """ReEncrypt from a source this service does not open itself (a key pair's ciphertext, opened
        by `open_source` through the asymmetric pipeline). The destination passes its checks first,
        so a dry run, which `open_source` ends before decrypting, has checked both keys. A private-key
        operation takes milliseconds: it runs in a worker thread, never on the event loop."""
        ensure_may_block()
        target = self._ops.prepare(ctx, destination_key_ref, KmsAction.RE_ENCRYPT, SYMMETRIC_KEY)
        plaintext = open_source()
        return self._seal(ctx, KmsAction.RE_ENCRYPT, target, plaintext.reveal(), destination_context)

    def generate_data_key(
        self,
        ctx: RequestContext,
        key_ref: str,
        number_of_bytes: int | None,
        key_spec: str | None,
        context: Mapping[str, str] | None,
        *,
        action: KmsAction = KmsAction.GENERATE_DATA_KEY,
    ) -> Outcome[DataKey]:
        length = data_key_length(number_of_bytes, key_spec)
        target = self._ops.prepare(ctx, key_ref, action, SYMMETRIC_KEY)
        # The CiphertextBlob seals the base64 text of the data key, so Decrypt returns the same text
        # GenerateDataKey returned (Alibaba's envelope convention).
        encoded = SecretBytes(base64.b64encode(random_bytes(length).reveal()))
        return self._seal(ctx, action, target, encoded.reveal(), context, data_key=True).map(
            lambda encrypted: DataKey(encoded, encrypted)
        )

    def generate_data_key_pair(
        self, ctx: RequestContext, key_ref: str, spec: str, key_format: str, *, aad: bytes
    ) -> Outcome[tuple[DataKeyPair, Encrypted]]:
        """The instance API's GenerateDataKeyPair: a new key pair, its private key sealed under
        `key_ref` bound to `aad` (authorized as Encrypt). Making an RSA pair takes a while: never on
        the event loop."""
        ensure_may_block()
        pair = new_data_key_pair(spec, key_format)
        target = self._ops.prepare(ctx, key_ref, KmsAction.ENCRYPT, SYMMETRIC_KEY)
        sealed = self._seal(ctx, KmsAction.ENCRYPT, target, pair.private_key, None, instance_aad=aad)
        return sealed.map(lambda encrypted: (pair, encrypted))

    def generate_raw_data_key(
        self, ctx: RequestContext, key_ref: str, length: int, *, aad: bytes
    ) -> Outcome[tuple[SecretBytes, Encrypted]]:
        """The instance API's GenerateDataKey: `length` random bytes and a blob that seals those bytes
        themselves (the instance API's Decrypt returns bytes), bound to `aad`. The blob carries no
        data-key mark: ExportDataKey's data keys are the base64 text GenerateDataKey seals, and these
        are not, so ExportDataKey refuses them as it refuses any Encrypt result."""
        length = data_key_length(length, None)
        target = self._ops.prepare(ctx, key_ref, KmsAction.GENERATE_DATA_KEY, SYMMETRIC_KEY)
        data_key = random_bytes(length)
        return self._seal(
            ctx, KmsAction.GENERATE_DATA_KEY, target, data_key.reveal(), None, instance_aad=aad
        ).map(lambda encrypted: (data_key, encrypted))


def _bound_context(
    ciphertext: Ciphertext, context: Mapping[str, str] | None, instance_aad: bytes | None
) -> bytes:
    """What the blob's AAD binds after its header, from what the caller presents. The instance API's
    Aad is taken as given for either version (a v1 blob was bound to JSON, so only an empty Aad, the
    empty context, can match it); a context is encoded the way the blob's version binds it. A context
    whose derived Aad is ambiguous never matches a v2 blob: refused like a wrong context."""
    if instance_aad is not None:
        return instance_aad
    if ciphertext.form != FORMAT_V2:
        return canonical_context(context)
    bound = derived_aad(context)
    if bound is None:
        raise InvalidCiphertext()
    return bound


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
