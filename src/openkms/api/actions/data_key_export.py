"""Data-key export actions: GenerateAndExportDataKey and ExportDataKey.

PublicKeyBlob is base64 of the caller's SubjectPublicKeyInfo DER; ExportedDataKey is base64 of the data
key encrypted to it; CiphertextBlob is base64 of our blob, as for the symmetric actions.
"""

from __future__ import annotations

import binascii
from base64 import b64decode, b64encode
from collections.abc import Mapping

from openkms.api.actions.base import Action, take_dry_run
from openkms.api.params import Params
from openkms.errors import InvalidCiphertext
from openkms.service.container import Services
from openkms.service.context import RequestContext
from openkms.service.data_key_export import Exported, WrappingKey, parse_wrapping_key
from openkms.service.outcome import Outcome


def _wrapping(params: Params) -> WrappingKey:
    return parse_wrapping_key(
        params.required_str("PublicKeyBlob"),
        params.required_str("WrappingAlgorithm"),
        params.required_str("WrappingKeySpec"),
    )


def generate_and_export_data_key(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    take_dry_run(params, ctx)
    key_ref = params.required_str("KeyId")
    wrapping = _wrapping(params)
    result = services.data_key_export.generate_and_export(
        ctx,
        key_ref,
        params.optional_int("NumberOfBytes", None, minimum=1, maximum=1024),
        params.optional_str("KeySpec"),
        params.json_object("EncryptionContext"),
        wrapping,
    )
    return result.map(_exported)


def _exported(result: Exported) -> Mapping[str, object]:
    answer: dict[str, object] = {"KeyId": result.key_id, "KeyVersionId": result.version_id}
    if result.encrypted is not None:
        answer["CiphertextBlob"] = b64encode(result.encrypted.blob).decode("ascii")
    answer["ExportedDataKey"] = b64encode(result.exported).decode("ascii")
    return answer


def export_data_key(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    take_dry_run(params, ctx)
    raw = params.required_str("CiphertextBlob")
    try:
        blob = b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidCiphertext("CiphertextBlob is not valid base64.") from None
    wrapping = _wrapping(params)
    result = services.data_key_export.export(ctx, blob, params.json_object("EncryptionContext"), wrapping)
    return result.map(_exported)


_WRAPPING = frozenset(
    {"PublicKeyBlob", "WrappingAlgorithm", "WrappingKeySpec", "EncryptionContext", "DryRun"}
)

ACTIONS = (
    Action(
        "GenerateAndExportDataKey",
        generate_and_export_data_key,
        _WRAPPING | {"KeyId", "KeySpec", "NumberOfBytes"},
    ),
    Action("ExportDataKey", export_data_key, _WRAPPING | {"CiphertextBlob"}),
)
