"""Sealing and opening secret values: envelope encryption through the key pipeline.

Each version's value is sealed with AES-256-GCM under a fresh data key from GenerateDataKey on the
secret's encryption key (authorized as the caller's `kms:GenerateDataKey`), and opened by Decrypt of
that data key (the caller's `kms:Decrypt`), both through `service.crypto`, so a disabled, deleted or
unreachable key, or a caller without the right, leaves the value unreadable. The data key's blob is
bound to the secret's ARN and the version id (its EncryptionContext), and so is the sealed value
(its AAD): a blob or value moved to another secret or version does not open. Every data key made or
opened is counted as a use of the key (F8). Values cross this module only as SecretBytes; it never
logs them.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openkms.errors import StorageIntegrityError
from openkms.policy.actions import KmsAction
from openkms.secret import SecretBytes
from openkms.service.context import RequestContext
from openkms.service.crypto import CryptoService
from openkms.service.usage import UsageRecorder

FORMAT = b"\x01"  # the sealed value's format byte: AES-256-GCM, 12-byte nonce
NONCE_BYTES = 12


class Sealed(NamedTuple):
    key_id: str
    key_version_id: str
    data_key_blob: bytes
    sealed_value: bytes


class Opened(NamedTuple):
    value: SecretBytes
    key_id: str
    key_version_id: str


def _context(secret_arn: str, version_id: str) -> dict[str, str]:
    return {"SecretArn": secret_arn, "SecretVersionId": version_id}


def _aad(secret_arn: str, version_id: str) -> bytes:
    return b"openkms-secret-value\x00" + secret_arn.encode() + b"\x00" + version_id.encode()


def _data_key(plaintext_base64: SecretBytes) -> bytes:
    try:
        key = base64.b64decode(plaintext_base64.reveal(), validate=True)
    except (binascii.Error, ValueError):
        raise StorageIntegrityError() from None
    if len(key) != 32:
        raise StorageIntegrityError()
    return key


class SecretSealer:
    def __init__(self, crypto: CryptoService, usage: UsageRecorder) -> None:
        self._crypto = crypto
        self._usage = usage

    def seal(
        self, ctx: RequestContext, key_ref: str, secret_arn: str, version_id: str, value: SecretBytes
    ) -> Sealed:
        made = self._crypto.generate_data_key(
            ctx, key_ref, 32, None, _context(secret_arn, version_id), action=KmsAction.GENERATE_DATA_KEY
        ).value
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(_data_key(made.plaintext_base64)).encrypt(
            nonce, value.reveal(), _aad(secret_arn, version_id)
        )
        encrypted = made.encrypted
        self._usage.record(encrypted.key_id, ctx.principal, ctx.received_at)
        return Sealed(encrypted.key_id, encrypted.version_id, encrypted.blob, FORMAT + nonce + sealed)

    def open(
        self, ctx: RequestContext, secret_arn: str, version_id: str, data_key_blob: bytes, sealed_value: bytes
    ) -> Opened:
        opened = self._crypto.decrypt(ctx, data_key_blob, _context(secret_arn, version_id)).value
        if sealed_value[:1] != FORMAT:
            raise StorageIntegrityError()
        nonce, body = sealed_value[1 : 1 + NONCE_BYTES], sealed_value[1 + NONCE_BYTES :]
        try:
            value = AESGCM(_data_key(opened.plaintext)).decrypt(nonce, body, _aad(secret_arn, version_id))
        except InvalidTag:
            raise StorageIntegrityError() from None
        self._usage.record(opened.key_id, ctx.principal, ctx.received_at)
        return Opened(SecretBytes(value), opened.key_id, opened.version_id)
