"""The instance API's operations: each parses its protobuf request, runs the use case of the
services as the OpenAPI action does (the same pipeline: resolve, authorize, lifecycle, provider), and
builds the protobuf response, with the key version it used for the `x-kms-migrationkeyversionid`
header.

Ciphertexts are the CiphertextBlob v2 of `domain/ciphertext.py`, Alibaba's shape: the Advance
operations return it whole behind `ADVANCE_PREFIX` (so the unified SDK hands the same bytes to
OpenAPI Decrypt), the plain ones split it into the version id (the header), the IV and ct || tag.
The request's `Aad` is bound as given. Keys are used at their primary version (the instance API names
none). Never logs or returns anything but what each response defines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from google.protobuf.message import Message

from openkms.api.actions.secrets import value_fields
from openkms.api.instance import kms_instance_pb2 as pb
from openkms.domain.ciphertext import ADVANCE_PREFIX, IV_LEN, V2_ID_LEN, strip_advance_prefix
from openkms.errors import InvalidArgument, InvalidCiphertext, SignatureInvalid, UnsupportedOperation
from openkms.providers.base import random_bytes
from openkms.service.authorization import authorize_application_source
from openkms.service.container import Services
from openkms.service.context import RequestContext
from openkms.service.crypto import Encrypted
from openkms.service.outcome import Outcome
from openkms.service.secret_versions import SecretValue, ValueRequest

VERSION_HEADER = "x-kms-migrationkeyversionid"
SYMMETRIC_ALGORITHM = "AES_GCM"
RANDOM_LIMIT = 1024
_DIGESTS = {"SHA_256": hashlib.sha256, "SHA_384": hashlib.sha384, "SHA_512": hashlib.sha512}


class Answer(NamedTuple):
    """A response message and the key version it used (None: the operation used none)."""

    message: Message
    version_id: str | None = None


@dataclass(frozen=True, slots=True)
class Call:
    """One instance request, parsed: its message and the request headers (by lowercase name)."""

    message: Any  # the operation's request message type
    headers: Mapping[str, str]
    with_plaintext: bool = True  # the data key pair operations: False for the WithoutPlaintext forms


Handler = Callable[[Call, RequestContext, Services], Outcome[Answer]]


@dataclass(frozen=True, slots=True)
class Operation:
    request: type[Message]
    handler: Handler
    with_plaintext: bool = True


def _split(encrypted: Encrypted) -> tuple[str, bytes, bytes]:
    """(version id as the blob writes it, IV, ct || tag) of a v2 blob."""
    blob = encrypted.blob
    return (
        blob[:V2_ID_LEN].decode("ascii"),
        blob[V2_ID_LEN : V2_ID_LEN + IV_LEN],
        blob[V2_ID_LEN + IV_LEN :],
    )


def _no_iv(iv: bytes) -> None:
    if iv:
        raise InvalidArgument("The IV is chosen by the server; send no Iv.", parameter="Iv")


def _symmetric(algorithm: str) -> bool:
    return algorithm in ("", SYMMETRIC_ALGORITHM, "AES_GCM_256")


# -- symmetric ------------------------------------------------------------------------------------


def encrypt(call: Call, ctx: RequestContext, services: Services) -> Outcome[Answer]:
    request = call.message
    if not _symmetric(request.Algorithm):
        return _asymmetric_encrypt(call, ctx, services)
    _no_iv(request.Iv)
    sealed = services.crypto.encrypt(ctx, request.KeyId, request.Plaintext, None, aad=request.Aad)

    def answer(encrypted: Encrypted) -> Answer:
        version, iv, ciphertext = _split(encrypted)
        response = pb.EncryptResponse(
            KeyId=encrypted.key_id,
            CiphertextBlob=ciphertext,
            Iv=iv,
            RequestId=ctx.request_id,
            Algorithm=SYMMETRIC_ALGORITHM,
            PaddingMode=request.PaddingMode,
        )
        return Answer(response, version)

    return sealed.map(answer)


def decrypt(call: Call, ctx: RequestContext, services: Services) -> Outcome[Answer]:
    """The version id comes from the request's `x-kms-migrationkeyversionid` header (the unified SDK
    sends back what Encrypt answered), else it is the key's primary version."""
    request = call.message
    if not _symmetric(request.Algorithm):
        return _asymmetric_decrypt(call, ctx, services)
    version = call.headers.get(VERSION_HEADER, "").strip()
    if not version:
        if not request.KeyId:
            raise InvalidArgument("KeyId is required without the key version header.", parameter="KeyId")
        version = services.crypto.primary_version(ctx, request.KeyId)
    if len(request.Iv) != IV_LEN:
        raise InvalidCiphertext()
    blob = version.encode("ascii", errors="replace") + request.Iv + request.CiphertextBlob
    opened = services.crypto.decrypt(ctx, blob, None, aad=request.Aad)
    return opened.map(
        lambda found: Answer(
            pb.DecryptResponse(
                KeyId=found.key_id,
                Plaintext=found.plaintext.reveal(),
                RequestId=ctx.request_id,
                Algorithm=SYMMETRIC_ALGORITHM,
                PaddingMode=request.PaddingMode,
            ),
            found.version_id,
        )
    )


def advance_encrypt(call: Call, ctx: RequestContext, services: Services) -> Outcome[Answer]:
    request = call.message
    if not _symmetric(request.Algorithm):
        raise UnsupportedOperation("AdvanceEncrypt takes symmetric keys (AES_GCM).")
    _no_iv(request.Iv)
    sealed = services.crypto.encrypt(ctx, request.KeyId, request.Plaintext, None, aad=request.Aad)

    def answer(encrypted: Encrypted) -> Answer:
        _, iv, _ = _split(encrypted)
        response = pb.AdvanceEncryptResponse(
            KeyId=encrypted.key_id,
            CiphertextBlob=ADVANCE_PREFIX + encrypted.blob,
            Iv=iv,
            RequestId=ctx.request_id,
            Algorithm=SYMMETRIC_ALGORITHM,
            PaddingMode=request.PaddingMode,
            KeyVersionId=encrypted.version_id,
        )
        return Answer(response, encrypted.version_id)

    return sealed.map(answer)


def advance_decrypt(call: Call, ctx: RequestContext, services: Services) -> Outcome[Answer]:
    """The blob names its key version; the request's KeyId and Iv are not needed (the unified SDK
    sends an Iv sliced from the blob)."""
    request = call.message
    blob = strip_advance_prefix(request.CiphertextBlob)
    opened = services.crypto.decrypt(ctx, blob, None, aad=request.Aad)
    return opened.map(
        lambda found: Answer(
            pb.AdvanceDecryptResponse(
                KeyId=found.key_id,
                Plaintext=found.plaintext.reveal(),
                RequestId=ctx.request_id,
                Algorithm=SYMMETRIC_ALGORITHM,
                PaddingMode=request.PaddingMode,
                KeyVersionId=found.version_id,
            ),
            found.version_id,
        )
    )


def _data_key_length(number_of_bytes: int) -> int:
    return number_of_bytes if number_of_bytes else 32


def generate_data_key(call: Call, ctx: RequestContext, services: Services) -> Outcome[Answer]:
    request = call.message
    if not _symmetric(request.Algorithm):
        raise UnsupportedOperation("GenerateDataKey takes symmetric keys (AES_GCM).")
    made = services.crypto.generate_raw_data_key(
        ctx, request.KeyId, _data_key_length(request.NumberOfBytes), aad=request.Aad
    )

    def answer(found: tuple[Any, Encrypted]) -> Answer:
        plaintext, encrypted = found
        version, iv, ciphertext = _split(encrypted)
        response = pb.GenerateDataKeyResponse(
            KeyId=encrypted.key_id,
            Iv=iv,
            Plaintext=plaintext.reveal(),
            CiphertextBlob=ciphertext,
            RequestId=ctx.request_id,
            Algorithm=SYMMETRIC_ALGORITHM,
        )
        return Answer(response, version)

    return made.map(answer)


def advance_generate_data_key(call: Call, ctx: RequestContext, services: Services) -> Outcome[Answer]:
    request = call.message
    made = services.crypto.generate_raw_data_key(
        ctx, request.KeyId, _data_key_length(request.NumberOfBytes), aad=request.Aad
    )

    def answer(found: tuple[Any, Encrypted]) -> Answer:
        plaintext, encrypted = found
        _, iv, _ = _split(encrypted)
        response = pb.AdvanceGenerateDataKeyResponse(
            KeyId=encrypted.key_id,
            Iv=iv,
            Plaintext=plaintext.reveal(),
            CiphertextBlob=ADVANCE_PREFIX + encrypted.blob,
            RequestId=ctx.request_id,
            Algorithm=SYMMETRIC_ALGORITHM,
            KeyVersionId=encrypted.version_id,
        )
        return Answer(response, encrypted.version_id)

    return made.map(answer)


def generate_random(call: Call, ctx: RequestContext, services: Services) -> Outcome[Answer]:
    length = call.message.Length
    authorize_application_source(ctx, "kms:GenerateRandom")
    if not 1 <= length <= RANDOM_LIMIT:
        raise InvalidArgument(f"Length must be between 1 and {RANDOM_LIMIT}.", parameter="Length")
    random = random_bytes(length).reveal()
    return Outcome(Answer(pb.GenerateRandomResponse(Random=random, RequestId=ctx.request_id)))


# -- key pairs ------------------------------------------------------------------------------------


def _asymmetric_encrypt(call: Call, ctx: RequestContext, services: Services) -> Outcome[Answer]:
    request = call.message
    _no_iv(request.Iv)
    encrypted = services.asymmetric.encrypt(ctx, request.KeyId, None, request.Algorithm, request.Plaintext)
    return encrypted.map(
        lambda found: Answer(
            pb.EncryptResponse(
                KeyId=found[0].key_id,
                CiphertextBlob=found[1],
                RequestId=ctx.request_id,
                Algorithm=request.Algorithm,
                PaddingMode=request.PaddingMode,
            ),
            found[0].version_id,
        )
    )


def _asymmetric_decrypt(call: Call, ctx: RequestContext, services: Services) -> Outcome[Answer]:
    request = call.message
    version = call.headers.get(VERSION_HEADER, "").strip() or None
    decrypted = services.asymmetric.decrypt(
        ctx, request.KeyId, version, request.Algorithm, request.CiphertextBlob
    )
    return decrypted.map(
        lambda found: Answer(
            pb.DecryptResponse(
                KeyId=found[0].key_id,
                Plaintext=found[1].reveal(),
                RequestId=ctx.request_id,
                Algorithm=request.Algorithm,
                PaddingMode=request.PaddingMode,
            ),
            found[0].version_id,
        )
    )


def _digest(request: Any) -> bytes:
    """What is signed: `Message` as the digest (MessageType DIGEST, the SDKs' way), the digest of
    `Message` under the algorithm's hash (RAW), or the `Digest` field when `Message` is empty."""
    message_type = request.MessageType or "DIGEST"
    if message_type == "DIGEST":
        return bytes(request.Message or request.Digest)
    if message_type == "RAW":
        for suffix, digest in _DIGESTS.items():
            if request.Algorithm.endswith(suffix):
                return digest(request.Message).digest()
        raise UnsupportedOperation(f"MessageType RAW is not supported with {request.Algorithm}.")
    raise InvalidArgument("MessageType must be RAW or DIGEST.", parameter="MessageType")


def sign(call: Call, ctx: RequestContext, services: Services) -> Outcome[Answer]:
    request = call.message
    signed = services.asymmetric.sign(ctx, request.KeyId, None, request.Algorithm, _digest(request))
    return signed.map(
        lambda found: Answer(
            pb.SignResponse(
                KeyId=found[0].key_id,
                Signature=found[1],
                RequestId=ctx.request_id,
                Algorithm=request.Algorithm,
                MessageType=request.MessageType or "DIGEST",
            ),
            found[0].version_id,
        )
    )


def verify(call: Call, ctx: RequestContext, services: Services) -> Outcome[Answer]:
    request = call.message
    digest = _digest(request)

    def response(key_id: str, value: bool) -> Message:
        return pb.VerifyResponse(
            KeyId=key_id,
            Value=value,
            RequestId=ctx.request_id,
            Algorithm=request.Algorithm,
            MessageType=request.MessageType or "DIGEST",
        )

    try:
        verified = services.asymmetric.verify(
            ctx, request.KeyId, None, request.Algorithm, digest, request.Signature
        )
    except SignatureInvalid as invalid:
        resource = invalid.resource
        if resource is None or resource.key_id is None:  # refused before a version was found
            raise
        return Outcome(Answer(response(resource.key_id, False), resource.key_version_id), resource)
    return verified.map(lambda used: Answer(response(used.key_id, True), used.version_id))


def get_public_key(call: Call, ctx: RequestContext, services: Services) -> Outcome[Answer]:
    request = call.message
    found = services.asymmetric.get_public_key(ctx, request.KeyId, None)
    return found.map(
        lambda pair: Answer(
            pb.GetPublicKeyResponse(KeyId=pair[0].key_id, PublicKey=pair[1], RequestId=ctx.request_id),
            pair[0].version_id,
        )
    )


# -- data key pairs ---------------------------------------------------------------------------------


def _data_key_pair(call: Call, ctx: RequestContext, services: Services) -> Outcome[tuple[Any, Encrypted]]:
    request = call.message
    if not _symmetric(getattr(request, "Algorithm", "")):
        raise UnsupportedOperation("Data key pairs are sealed by symmetric keys (AES_GCM).")
    return services.crypto.generate_data_key_pair(
        ctx, request.KeyId, request.KeyPairSpec, request.KeyFormat, aad=request.Aad
    )


def generate_data_key_pair(call: Call, ctx: RequestContext, services: Services) -> Outcome[Answer]:
    request = call.message

    def answer(found: tuple[Any, Encrypted]) -> Answer:
        pair, encrypted = found
        version, iv, ciphertext = _split(encrypted)
        fields: dict[str, Any] = {
            "KeyId": encrypted.key_id,
            "Iv": iv,
            "KeyPairSpec": request.KeyPairSpec,
            "PrivateKeyCiphertextBlob": ciphertext,
            "PublicKey": pair.public_key,
            "RequestId": ctx.request_id,
            "Algorithm": SYMMETRIC_ALGORITHM,
        }
        if call.with_plaintext:
            return Answer(
                pb.GenerateDataKeyPairResponse(PrivateKeyPlaintext=pair.private_key, **fields), version
            )
        return Answer(pb.GenerateDataKeyPairWithoutPlaintextResponse(**fields), version)

    return _data_key_pair(call, ctx, services).map(answer)


def advance_generate_data_key_pair(call: Call, ctx: RequestContext, services: Services) -> Outcome[Answer]:
    request = call.message

    def answer(found: tuple[Any, Encrypted]) -> Answer:
        pair, encrypted = found
        _, iv, _ = _split(encrypted)
        fields: dict[str, Any] = {
            "KeyId": encrypted.key_id,
            "Iv": iv,
            "KeyPairSpec": request.KeyPairSpec,
            "PrivateKeyCiphertextBlob": ADVANCE_PREFIX + encrypted.blob,
            "PublicKey": pair.public_key,
            "RequestId": ctx.request_id,
            "Algorithm": SYMMETRIC_ALGORITHM,
            "KeyVersionId": encrypted.version_id,
        }
        response: Message
        if call.with_plaintext:
            response = pb.AdvanceGenerateDataKeyPairResponse(PrivateKeyPlaintext=pair.private_key, **fields)
        else:
            response = pb.AdvanceGenerateDataKeyPairWithoutPlaintextResponse(**fields)
        return Answer(response, encrypted.version_id)

    return _data_key_pair(call, ctx, services).map(answer)


# -- secrets --------------------------------------------------------------------------------------


def get_secret_value(call: Call, ctx: RequestContext, services: Services) -> Outcome[Answer]:
    """GetSecretValue as OpenAPI answers it, for a client key whose access point may read the secret
    (CryptoServiceSecretUser) and whose secret policy allows it; its value is decrypted under the
    secret's key as part of that grant."""
    request = call.message
    wanted = ValueRequest(request.SecretName, request.VersionId or None, request.VersionStage or None)

    def answer(found: SecretValue) -> Answer:
        fields = value_fields(found, bool(request.FetchExtendedConfig))
        stages = fields.pop("VersionStages")
        assert isinstance(stages, Mapping)
        response = pb.GetSecretValueResponse(
            RequestId=ctx.request_id,
            VersionStages=list(stages["VersionStage"]),
            **{name: str(value) for name, value in fields.items()},
        )
        return Answer(response)

    return services.secret_versions.get_value(ctx, wanted).map(answer)


OPERATIONS: Mapping[str, Operation] = {
    "Encrypt": Operation(pb.EncryptRequest, encrypt),
    "Decrypt": Operation(pb.DecryptRequest, decrypt),
    "AdvanceEncrypt": Operation(pb.AdvanceEncryptRequest, advance_encrypt),
    "AdvanceDecrypt": Operation(pb.AdvanceDecryptRequest, advance_decrypt),
    "GenerateDataKey": Operation(pb.GenerateDataKeyRequest, generate_data_key),
    "AdvanceGenerateDataKey": Operation(pb.AdvanceGenerateDataKeyRequest, advance_generate_data_key),
    "GenerateRandom": Operation(pb.GenerateRandomRequest, generate_random),
    "Sign": Operation(pb.SignRequest, sign),
    "Verify": Operation(pb.VerifyRequest, verify),
    "GetPublicKey": Operation(pb.GetPublicKeyRequest, get_public_key),
    "GetSecretValue": Operation(pb.GetSecretValueRequest, get_secret_value),
    "GenerateDataKeyPair": Operation(pb.GenerateDataKeyPairRequest, generate_data_key_pair),
    "GenerateDataKeyPairWithoutPlaintext": Operation(
        pb.GenerateDataKeyPairWithoutPlaintextRequest, generate_data_key_pair, with_plaintext=False
    ),
    "AdvanceGenerateDataKeyPair": Operation(
        pb.AdvanceGenerateDataKeyPairRequest, advance_generate_data_key_pair
    ),
    "AdvanceGenerateDataKeyPairWithoutPlaintext": Operation(
        pb.AdvanceGenerateDataKeyPairWithoutPlaintextRequest,
        advance_generate_data_key_pair,
        with_plaintext=False,
    ),
}
