"""Asymmetric actions: AsymmetricSign, AsymmetricVerify, AsymmetricEncrypt, AsymmetricDecrypt,
GetPublicKey, and the OpenKMS extension GenerateCertificateSigningRequest (no Alibaba counterpart).

Wire encodings live here: Digest, Value (signature), Plaintext and CiphertextBlob are base64 of raw
bytes; PublicKey and Csr are PEM. AsymmetricVerify answers `Value: false` for a signature that does not
verify and never an error. All run in a worker thread: private-key operations cost milliseconds.
"""

from __future__ import annotations

import binascii
from base64 import b64decode, b64encode
from collections.abc import Mapping

from openkms.api.actions.base import Action, refuse_recipient, take_dry_run
from openkms.api.params import Params
from openkms.domain.csr import make_subject
from openkms.errors import InvalidArgument, InvalidCiphertext, SignatureInvalid
from openkms.service.asymmetric import VersionOf
from openkms.service.container import Services
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome


def _base64(params: Params, name: str) -> bytes:
    raw = params.required_str(name)
    try:
        return b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        if name == "CiphertextBlob":
            raise InvalidCiphertext(f"{name} is not valid base64.") from None
        raise InvalidArgument(f"{name} is not valid base64.", parameter=name) from None


def _names(used: VersionOf) -> dict[str, object]:
    return {"KeyId": used.key_id, "KeyVersionId": used.version_id}


def _target(params: Params) -> tuple[str, str]:
    return params.required_str("KeyId"), params.required_str("KeyVersionId")


def asymmetric_sign(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    take_dry_run(params, ctx)
    key_ref, version_id = _target(params)
    algorithm = params.required_str("Algorithm")
    digest = _base64(params, "Digest")
    signed = services.asymmetric.sign(ctx, key_ref, version_id, algorithm, digest)
    return signed.map(lambda found: {**_names(found[0]), "Value": b64encode(found[1]).decode("ascii")})


def asymmetric_verify(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    take_dry_run(params, ctx)
    key_ref, version_id = _target(params)
    algorithm = params.required_str("Algorithm")
    digest = _base64(params, "Digest")
    signature = _base64(params, "Value")
    try:
        verified = services.asymmetric.verify(ctx, key_ref, version_id, algorithm, digest, signature)
    except SignatureInvalid as invalid:
        # Verification raises; the answer is `Value: false`, naming the key and version that refused.
        resource = invalid.resource
        if resource is None:  # raised before a version was found: not a verdict on the signature
            raise
        answer = {"KeyId": resource.key_id, "KeyVersionId": resource.key_version_id, "Value": False}
        return Outcome(answer, resource)
    return verified.map(lambda used: {**_names(used), "Value": True})


def asymmetric_encrypt(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    take_dry_run(params, ctx)
    key_ref, version_id = _target(params)
    algorithm = params.required_str("Algorithm")
    plaintext = _base64(params, "Plaintext")
    encrypted = services.asymmetric.encrypt(ctx, key_ref, version_id, algorithm, plaintext)
    return encrypted.map(
        lambda found: {**_names(found[0]), "CiphertextBlob": b64encode(found[1]).decode("ascii")}
    )


def asymmetric_decrypt(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    refuse_recipient(params)
    take_dry_run(params, ctx)
    key_ref, version_id = _target(params)
    algorithm = params.required_str("Algorithm")
    ciphertext = _base64(params, "CiphertextBlob")
    decrypted = services.asymmetric.decrypt(ctx, key_ref, version_id, algorithm, ciphertext)
    return decrypted.map(
        lambda found: {**_names(found[0]), "Plaintext": b64encode(found[1].reveal()).decode("ascii")}
    )


def get_public_key(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    take_dry_run(params, ctx)
    key_ref, version_id = _target(params)
    found = services.asymmetric.get_public_key(ctx, key_ref, version_id)
    return found.map(lambda pair: {**_names(pair[0]), "PublicKey": pair[1]})


def generate_certificate_signing_request(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    key_ref, version_id = _target(params)
    algorithm = params.required_str("Algorithm")
    subject = make_subject(
        params.optional_str("CommonName"),
        organization=params.optional_str("Organization"),
        organizational_unit=params.optional_str("OrganizationalUnit"),
        province=params.optional_str("Province"),
        locality=params.optional_str("Locality"),
        country=params.optional_str("Country"),
        email=params.optional_str("Email"),
    )
    made = services.asymmetric.certificate_signing_request(ctx, key_ref, version_id, algorithm, subject)
    return made.map(lambda pair: {**_names(pair[0]), "Csr": pair[1]})


_VERSION = frozenset({"KeyId", "KeyVersionId", "DryRun"})
_CSR = frozenset(
    {
        "KeyId",
        "KeyVersionId",
        "Algorithm",
        "CommonName",
        "Organization",
        "OrganizationalUnit",
        "Province",
        "Locality",
        "Country",
        "Email",
    }
)

ACTIONS = (
    Action("AsymmetricSign", asymmetric_sign, _VERSION | {"Algorithm", "Digest"}),
    Action("AsymmetricVerify", asymmetric_verify, _VERSION | {"Algorithm", "Digest", "Value"}),
    Action("AsymmetricEncrypt", asymmetric_encrypt, _VERSION | {"Algorithm", "Plaintext"}),
    Action("AsymmetricDecrypt", asymmetric_decrypt, _VERSION | {"Algorithm", "CiphertextBlob", "Recipient"}),
    Action("GetPublicKey", get_public_key, _VERSION),
    Action("GenerateCertificateSigningRequest", generate_certificate_signing_request, _CSR),
)
