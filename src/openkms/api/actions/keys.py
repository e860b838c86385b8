"""Key management actions: CreateKey, DescribeKey, ListKeys, EnableKey, DisableKey."""

from __future__ import annotations

from collections.abc import Mapping

from openkms.api.actions.base import Action, empty, page_params, parse_filters
from openkms.api.actions.tags import parse_old_tags
from openkms.api.params import Params
from openkms.clock import iso_utc
from openkms.domain.key import Key, KeyFilter
from openkms.domain.specs import ensure_rotation_allowed
from openkms.errors import InvalidArgument, UnsupportedOperation
from openkms.service.container import Services
from openkms.service.context import RequestContext
from openkms.service.keys import CreateKeyRequest
from openkms.service.outcome import Outcome
from openkms.types import KeyState

_FILTER_FIELDS = {
    "KeyState": "states",
    "KeySpec": "specs",
    "KeyUsage": "usages",
    "ProtectionLevel": "protection_levels",
    "CreatorType": "creator_types",
    "Creator": "creators",
    "DKMSInstanceId": "instance_ids",
    "keyId": "key_ids",
    "AliasName": "alias_names",
    "TagKey": "tag_keys",
    "TagValue": "tag_values",
}


def _automatic_rotation(key: Key) -> str:
    """`Suspended` as Alibaba shows it: rotation is configured but the rotation job passes the key by
    (it rotates Enabled keys only: a disabled key, one pending deletion or awaiting its material)."""
    if key.rotation_interval is None:
        return "Disabled"
    return "Enabled" if key.state is KeyState.ENABLED else "Suspended"


def key_metadata(key: Key) -> dict[str, object]:
    """KeyMetadata exactly as the SDK models it; fields without a value are left out."""
    metadata: dict[str, object] = {
        "KeyId": key.key_id,
        "Arn": key.arn,
        "KeyState": key.state.value,
        "CreationDate": iso_utc(key.created_at),
        "Creator": key.creator,
        "Description": key.description,
        "KeySpec": key.spec.value,
        "KeyUsage": key.usage.value,
        "Origin": key.origin.value,
        "ProtectionLevel": key.protection_level.value,
        "AutomaticRotation": _automatic_rotation(key),
        "DeletionProtection": "Enabled" if key.deletion_protection else "Disabled",
        "DeletionProtectionDescription": key.deletion_protection_description,
        "MaterialExpireTime": "" if key.material_expire_time is None else iso_utc(key.material_expire_time),
        "LastRotationDate": iso_utc(key.last_rotation_date or key.created_at),
    }
    if key.rotation_interval is not None:
        metadata["RotationInterval"] = f"{key.rotation_interval}s"
    if key.next_rotation_date is not None:
        metadata["NextRotationDate"] = iso_utc(key.next_rotation_date)
    if key.primary_version_id is not None:
        metadata["PrimaryKeyVersion"] = key.primary_version_id
    if key.instance_id is not None:
        metadata["DKMSInstanceId"] = key.instance_id
    if key.delete_date is not None:
        metadata["DeleteDate"] = iso_utc(key.delete_date)
    # OpenKMS extensions (docs/hsm.md, docs/external-keys.md); the SDK's model ignores unknown fields.
    if key.additional_usages:
        metadata["OpenKMSAdditionalKeyUsages"] = ",".join(usage.value for usage in key.additional_usages)
    if key.external_key_id is not None:
        metadata["OpenKMSExternalKeyId"] = key.external_key_id
    return metadata


# CreateKey's KeyStorageMechanism (SDK 3.x; Alibaba: "valid only when DKMSInstanceId is specified
# for a hardware key management instance"): HsmInternal (the default) or HsmEncryptedDatabase.
DEFAULT_KEY_STORAGE_MECHANISM = "HsmInternal"
KEY_STORAGE_MECHANISMS = (DEFAULT_KEY_STORAGE_MECHANISM, "HsmEncryptedDatabase")


def _key_storage_mechanism(value: str | None) -> None:
    """Accept the default, HsmInternal (absent or empty means it too): a hardware key of OpenKMS lives in
    its token, and other keys are not stored in an HSM at all, so it changes nothing. Alibaba's other
    value, HsmEncryptedDatabase (HSM-wrapped material kept in a database), is refused as unsupported;
    anything else is not a value."""
    if not value or value == DEFAULT_KEY_STORAGE_MECHANISM:
        return
    if value in KEY_STORAGE_MECHANISMS:
        raise UnsupportedOperation(
            f"KeyStorageMechanism {value} is not supported: OpenKMS keeps a hardware key in its HSM "
            f"({DEFAULT_KEY_STORAGE_MECHANISM}, the default)."
        )
    raise InvalidArgument(
        f"KeyStorageMechanism {value!r} is not one of {', '.join(KEY_STORAGE_MECHANISMS)}.",
        parameter="KeyStorageMechanism",
    )


def create_key(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    if params.optional_bool("EnableAutomaticRotation", False) or params.optional_str("RotationInterval"):
        ensure_rotation_allowed(params.optional_str("KeySpec"))
    _key_storage_mechanism(params.optional_str("KeyStorageMechanism"))
    key = services.keys.create_key(
        ctx,
        CreateKeyRequest(
            key_spec=params.optional_str("KeySpec"),
            key_usage=params.optional_str("KeyUsage"),
            origin=params.optional_str("Origin"),
            protection_level=params.optional_str("ProtectionLevel"),
            description=params.optional_str("Description") or "",
            instance_id=params.optional_str("DKMSInstanceId") or None,
            policy=params.optional_str("Policy") or None,
            enable_automatic_rotation=params.optional_bool("EnableAutomaticRotation", False),
            rotation_interval=params.optional_str("RotationInterval") or None,
            tags=parse_old_tags(params),
            additional_usages=params.optional_str("OpenKMSAdditionalKeyUsages") or None,
            external_key_id=params.optional_str("OpenKMSExternalKeyId") or None,
        ),
    )
    return key.map(lambda made: {"KeyMetadata": key_metadata(made)})


def describe_key(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    described = services.keys.describe_key(ctx, params.required_str("KeyId"))
    return described.map(lambda key: {"KeyMetadata": key_metadata(key)})


def list_keys(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    page_number, page_size = page_params(params)
    listed = services.keys.list_keys(ctx, _filters(params), page_number, page_size)
    found, total = listed.value
    return listed.map(
        lambda _: {
            "Keys": {"Key": [{"KeyId": key.key_id, "KeyArn": key.arn} for key in found]},
            "TotalCount": total,
            "PageNumber": page_number,
            "PageSize": page_size,
        }
    )


def _filters(params: Params) -> KeyFilter:
    chosen: dict[str, list[str]] = {}
    for key, values in parse_filters(params, _FILTER_FIELDS):
        chosen.setdefault(_FILTER_FIELDS[key], []).extend(values)
    return KeyFilter(
        states=chosen.get("states", ()),
        specs=chosen.get("specs", ()),
        usages=chosen.get("usages", ()),
        protection_levels=chosen.get("protection_levels", ()),
        creator_types=chosen.get("creator_types", ()),
        creators=chosen.get("creators", ()),
        instance_ids=chosen.get("instance_ids", ()),
        key_ids=chosen.get("key_ids", ()),
        alias_names=chosen.get("alias_names", ()),
        tag_keys=chosen.get("tag_keys", ()),
        tag_values=chosen.get("tag_values", ()),
    )


def enable_key(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    return empty(services.keys.enable_key(ctx, params.required_str("KeyId")))


def disable_key(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    return empty(services.keys.disable_key(ctx, params.required_str("KeyId")))


_KEY_ID = frozenset({"KeyId"})
_CREATE_KEY = frozenset(
    {
        "DKMSInstanceId",
        "Description",
        "EnableAutomaticRotation",
        "KeySpec",
        "KeyStorageMechanism",
        "KeyUsage",
        "OpenKMSAdditionalKeyUsages",  # OpenKMS extension: hardware key pairs (F2.2)
        "OpenKMSExternalKeyId",  # OpenKMS extension: keys of external instances (F1.4)
        "Origin",
        "Policy",
        "ProtectionLevel",
        "RotationInterval",
        "Tags",
    }
)

ACTIONS = (
    Action("CreateKey", create_key, _CREATE_KEY),
    Action("DescribeKey", describe_key, _KEY_ID, blocking=False),
    Action("ListKeys", list_keys, frozenset({"Filters", "PageNumber", "PageSize"})),
    Action("EnableKey", enable_key, _KEY_ID),
    Action("DisableKey", disable_key, _KEY_ID),
)
