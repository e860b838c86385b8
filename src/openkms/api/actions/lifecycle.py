"""Key lifecycle actions: UpdateKeyDescription, SetDeletionProtection, ScheduleKeyDeletion,
CancelKeyDeletion, UpdateRotationPolicy, CreateKeyVersion, DescribeKeyVersion, ListKeyVersions."""

from __future__ import annotations

from collections.abc import Mapping

from openkms.api.actions.base import Action, empty, page_params
from openkms.api.params import Params
from openkms.clock import iso_utc
from openkms.domain.key import KeyVersion
from openkms.errors import MissingParameter
from openkms.service.container import Services
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome


def key_version(version: KeyVersion) -> dict[str, object]:
    return {
        "KeyId": version.key_id,
        "KeyVersionId": version.version_id,
        "CreationDate": iso_utc(version.created_at),
    }


def update_key_description(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    description = params.optional_str("Description")
    if description is None:
        raise MissingParameter("Description")
    return empty(services.lifecycle.update_description(ctx, params.required_str("KeyId"), description))


def set_deletion_protection(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    key_ref = params.optional_str("ProtectedResourceArn") or params.optional_str("KeyId")
    if not key_ref:
        raise MissingParameter("ProtectedResourceArn")
    enabled = params.optional_bool("EnableDeletionProtection")
    if enabled is None:
        raise MissingParameter("EnableDeletionProtection")
    description = params.optional_str("DeletionProtectionDescription") or ""
    return empty(services.lifecycle.set_deletion_protection(ctx, key_ref, enabled, description))


def schedule_key_deletion(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    days = params.optional_int("PendingWindowInDays", None, minimum=-(10**9), maximum=10**9)
    if days is None:
        raise MissingParameter("PendingWindowInDays")
    return empty(services.lifecycle.schedule_deletion(ctx, params.required_str("KeyId"), days))


def cancel_key_deletion(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    return empty(services.lifecycle.cancel_deletion(ctx, params.required_str("KeyId")))


def update_rotation_policy(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    enabled = params.optional_bool("EnableAutomaticRotation")
    if enabled is None:
        raise MissingParameter("EnableAutomaticRotation")
    return empty(
        services.lifecycle.update_rotation_policy(
            ctx, params.required_str("KeyId"), enabled, params.optional_str("RotationInterval")
        )
    )


def create_key_version(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    version = services.lifecycle.create_key_version(ctx, params.required_str("KeyId"))
    return version.map(lambda made: {"KeyVersion": key_version(made)})


def describe_key_version(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    version = services.lifecycle.describe_key_version(
        ctx, params.required_str("KeyId"), params.required_str("KeyVersionId")
    )
    return version.map(lambda found: {"KeyVersion": key_version(found)})


def list_key_versions(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    page_number, page_size = page_params(params)
    listed = services.lifecycle.list_key_versions(ctx, params.required_str("KeyId"), page_number, page_size)
    found, total = listed.value
    return listed.map(
        lambda _: {
            "KeyVersions": {"KeyVersion": [key_version(version) for version in found]},
            "TotalCount": total,
            "PageNumber": page_number,
            "PageSize": page_size,
        }
    )


_KEY_ID = frozenset({"KeyId"})
_PAGE = frozenset({"PageNumber", "PageSize"})

ACTIONS = (
    Action("UpdateKeyDescription", update_key_description, frozenset({"KeyId", "Description"})),
    Action(
        "SetDeletionProtection",
        set_deletion_protection,
        frozenset(
            {
                "ProtectedResourceArn",
                "KeyId",
                "KmsInstanceId",
                "EnableDeletionProtection",
                "DeletionProtectionDescription",
            }
        ),
    ),
    Action("ScheduleKeyDeletion", schedule_key_deletion, frozenset({"KeyId", "PendingWindowInDays"})),
    Action("CancelKeyDeletion", cancel_key_deletion, _KEY_ID),
    Action(
        "UpdateRotationPolicy",
        update_rotation_policy,
        frozenset({"KeyId", "EnableAutomaticRotation", "RotationInterval"}),
    ),
    Action("CreateKeyVersion", create_key_version, _KEY_ID),
    Action("DescribeKeyVersion", describe_key_version, frozenset({"KeyId", "KeyVersionId"})),
    Action("ListKeyVersions", list_key_versions, _KEY_ID | _PAGE),
)
