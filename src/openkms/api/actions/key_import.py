"""Imported key material actions: GetParametersForImport, ImportKeyMaterial, DeleteKeyMaterial.

Wire encodings: PublicKey is base64 of SubjectPublicKeyInfo DER, EncryptedKeyMaterial base64,
TokenExpireTime ISO-8601 UTC, KeyMaterialExpireUnix Unix seconds (0 or absent: never expires).
"""

from __future__ import annotations

import binascii
from base64 import b64decode, b64encode
from collections.abc import Mapping

from openkms.api.actions.base import Action, empty
from openkms.api.params import Params
from openkms.clock import iso_utc
from openkms.errors import InvalidArgument
from openkms.service.container import Services
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome


def get_parameters_for_import(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    found = services.key_import.get_parameters(
        ctx,
        params.required_str("KeyId"),
        params.required_str("WrappingAlgorithm"),
        params.required_str("WrappingKeySpec"),
    )
    return found.map(
        lambda parameters: {
            "KeyId": parameters.key_id,
            "ImportToken": parameters.import_token,
            "PublicKey": b64encode(parameters.public_key_der).decode("ascii"),
            "TokenExpireTime": iso_utc(parameters.token_expire_time),
        }
    )


def import_key_material(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    raw = params.required_str("EncryptedKeyMaterial")
    try:
        material = b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument(
            "EncryptedKeyMaterial is not valid base64.", parameter="EncryptedKeyMaterial"
        ) from None
    return empty(
        services.key_import.import_material(
            ctx,
            params.required_str("KeyId"),
            params.required_str("ImportToken"),
            material,
            params.optional_int("KeyMaterialExpireUnix", None, minimum=0, maximum=2**53),
        )
    )


def delete_key_material(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    return empty(services.key_import.delete_material(ctx, params.required_str("KeyId")))


ACTIONS = (
    Action(
        "GetParametersForImport",
        get_parameters_for_import,
        frozenset({"KeyId", "WrappingAlgorithm", "WrappingKeySpec"}),
    ),
    Action(
        "ImportKeyMaterial",
        import_key_material,
        frozenset({"KeyId", "ImportToken", "EncryptedKeyMaterial", "KeyMaterialExpireUnix"}),
    ),
    Action("DeleteKeyMaterial", delete_key_material, frozenset({"KeyId"})),
)
