"""Cryptographic actions: Encrypt, Decrypt, ReEncrypt, GenerateDataKey, GenerateDataKeyWithoutPlaintext.

Wire encodings live here: Encrypt's Plaintext is an opaque UTF-8 string (Decrypt returns it as
given); CiphertextBlob is base64 of our blob; GenerateDataKey's Plaintext is base64 of the key.
"""

from __future__ import annotations

import binascii
from base64 import b64decode, b64encode
from collections.abc import Mapping

from openkms.api.actions.base import Action, refuse_recipient, take_dry_run
from openkms.api.params import Params
from openkms.errors import InvalidArgument, InvalidCiphertext
from openkms.policy.actions import KmsAction
from openkms.secret import SecretBytes
from openkms.service.container import Services
from openkms.service.context import RequestContext
from openkms.service.crypto import DataKey, Encrypted
from openkms.service.outcome import Outcome


def _blob(params: Params, name: str = "CiphertextBlob") -> bytes:
    raw = params.required_str(name)
    try:
        return b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidCiphertext(f"{name} is not valid base64.") from None


def _encrypted(result: Encrypted) -> Mapping[str, object]:
    return {
        "CiphertextBlob": b64encode(result.blob).decode("ascii"),
        "KeyId": result.key_id,
        "KeyVersionId": result.version_id,
    }


def encrypt(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    take_dry_run(params, ctx)
    plaintext = params.required_str("Plaintext").encode("utf-8")
    result = services.crypto.encrypt(
        ctx, params.required_str("KeyId"), plaintext, params.json_object("EncryptionContext")
    )
    return result.map(_encrypted)


def decrypt(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    refuse_recipient(params)
    take_dry_run(params, ctx)
    opened = services.crypto.decrypt(ctx, _blob(params), params.json_object("EncryptionContext"))
    try:
        text = opened.value.plaintext.reveal().decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidCiphertext() from None
    return opened.map(
        lambda found: {"KeyId": found.key_id, "KeyVersionId": found.version_id, "Plaintext": text}
    )


def re_encrypt(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    take_dry_run(params, ctx)
    source_key = params.optional_str("SourceKeyId")
    if source_key:
        return _re_encrypt_from_key_pair(params, ctx, services, source_key)
    for name in ("SourceEncryptionAlgorithm", "SourceKeyVersionId"):
        if params.optional_str(name):
            raise InvalidArgument(
                f"{name} applies to a ciphertext of an asymmetric key, named by SourceKeyId.", parameter=name
            )
    result = services.crypto.re_encrypt(
        ctx,
        _blob(params),
        params.json_object("SourceEncryptionContext"),
        params.required_str("DestinationKeyId"),
        params.json_object("DestinationEncryptionContext"),
    )
    return result.map(_encrypted)


def _re_encrypt_from_key_pair(
    params: Params, ctx: RequestContext, services: Services, source_key: str
) -> Outcome[Mapping[str, object]]:
    """ReEncrypt of an AsymmetricEncrypt result: the source key pair's version and algorithm open it
    (authorized as ReEncrypt on the source, like a symmetric source), the destination seals it."""
    version_id = params.required_str("SourceKeyVersionId")
    algorithm = params.required_str("SourceEncryptionAlgorithm")
    if params.json_object("SourceEncryptionContext") is not None:
        raise InvalidArgument(
            "SourceEncryptionContext applies to a symmetric source; an asymmetric ciphertext has none.",
            parameter="SourceEncryptionContext",
        )
    ciphertext = _blob(params)

    def open_source() -> SecretBytes:
        opened = services.asymmetric.decrypt(
            ctx, source_key, version_id, algorithm, ciphertext, action=KmsAction.RE_ENCRYPT
        )
        # Sealed as its base64 text, the form AsymmetricEncrypt took it in: Decrypt then answers the
        # very Plaintext the caller gave AsymmetricEncrypt (binary data included), as a data key's
        # blob answers GenerateDataKey's base64 text.
        return SecretBytes(b64encode(opened.value[1].reveal()))

    result = services.crypto.re_encrypt_opened(
        ctx,
        open_source,
        params.required_str("DestinationKeyId"),
        params.json_object("DestinationEncryptionContext"),
    )
    return result.map(_encrypted)


def _generate(params: Params, ctx: RequestContext, services: Services, action: KmsAction) -> Outcome[DataKey]:
    take_dry_run(params, ctx)
    number_of_bytes = params.optional_int("NumberOfBytes", None, minimum=1, maximum=1024)
    return services.crypto.generate_data_key(
        ctx,
        params.required_str("KeyId"),
        number_of_bytes,
        params.optional_str("KeySpec"),
        params.json_object("EncryptionContext"),
        action=action,
    )


def generate_data_key(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    refuse_recipient(params)
    made = _generate(params, ctx, services, KmsAction.GENERATE_DATA_KEY)
    return made.map(
        lambda key: {**_encrypted(key.encrypted), "Plaintext": key.plaintext_base64.reveal().decode("ascii")}
    )


def generate_data_key_without_plaintext(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    made = _generate(params, ctx, services, KmsAction.GENERATE_DATA_KEY_WITHOUT_PLAINTEXT)
    return made.map(lambda key: _encrypted(key.encrypted))


_DATA_KEY = frozenset({"KeyId", "KeySpec", "NumberOfBytes", "EncryptionContext", "DryRun"})
_RE_ENCRYPT = frozenset(
    {
        "CiphertextBlob",
        "DestinationKeyId",
        "DestinationEncryptionContext",
        "SourceEncryptionAlgorithm",
        "SourceEncryptionContext",
        "SourceKeyId",
        "SourceKeyVersionId",
        "DryRun",
    }
)

ACTIONS = (
    Action(
        "Encrypt", encrypt, frozenset({"KeyId", "Plaintext", "EncryptionContext", "DryRun"}), blocking=False
    ),
    Action(
        "Decrypt",
        decrypt,
        frozenset({"CiphertextBlob", "EncryptionContext", "DryRun", "Recipient"}),
        blocking=False,
    ),
    Action("ReEncrypt", re_encrypt, _RE_ENCRYPT, blocking=False),
    Action("GenerateDataKey", generate_data_key, _DATA_KEY | {"Recipient"}, blocking=False),
    Action(
        "GenerateDataKeyWithoutPlaintext",
        generate_data_key_without_plaintext,
        _DATA_KEY,
        blocking=False,
    ),
)
