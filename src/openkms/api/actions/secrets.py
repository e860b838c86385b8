"""Secret actions (2016-01-20): CreateSecret, GetSecretValue, BatchGetSecretValue, PutSecretValue,
DescribeSecret, ListSecrets, ListSecretVersionIds, UpdateSecret, UpdateSecretVersionStage,
DeleteSecret, RestoreSecret, GetSecretPolicy, SetSecretPolicy, GetRandomPassword.

Wire encodings live here: a `text` value is the UTF-8 string as given; a `binary` value travels as
base64 and is stored as its bytes. Values are read into SecretBytes at once and never logged.
"""

from __future__ import annotations

import binascii
from base64 import b64decode, b64encode
from collections.abc import Mapping, Sequence

from openkms.api.actions.base import Action, empty, page_params, refuse_recipient, take_dry_run
from openkms.api.actions.tags import parse_old_tags
from openkms.api.params import Params
from openkms.api.wire_errors import to_wire
from openkms.clock import iso_utc
from openkms.domain.random_password import PasswordRules, random_password
from openkms.domain.secret_rotation import parse_interval, render_interval
from openkms.domain.secrets import (
    RECOVERY_WINDOW_DEFAULT_DAYS,
    Secret,
    SecretDataType,
    SecretFilter,
    SecretType,
    SecretVersion,
    check_recovery_window,
)
from openkms.errors import InvalidArgument, MissingParameter, OpenKMSError, UnsupportedOperation
from openkms.policy.actions import KmsAction
from openkms.secret import SecretBytes
from openkms.service.authorization import authorize
from openkms.service.container import Services
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome
from openkms.service.secret_versions import SecretValue, ValueRequest
from openkms.service.secrets import Described, NewSecret

FILTER_KEYS = {
    "SecretName": "names",
    "Description": "descriptions",
    "TagKey": "tag_keys",
    "TagValue": "tag_values",
    "DKMSInstanceId": "instance_ids",
    "SecretType": "secret_types",
    "Creator": "creators",
}
FILTER_LIMIT = 10


def _data_type(params: Params) -> SecretDataType:
    raw = params.optional_str("SecretDataType") or SecretDataType.TEXT.value
    try:
        return SecretDataType(raw)
    except ValueError:
        raise InvalidArgument("SecretDataType must be text or binary.", parameter="SecretDataType") from None


def _data(params: Params, data_type: SecretDataType) -> SecretBytes:
    raw = params.required_str("SecretData")
    if data_type is SecretDataType.TEXT:
        return SecretBytes(raw.encode("utf-8"))
    try:
        return SecretBytes(b64decode(raw, validate=True))
    except (binascii.Error, ValueError):
        raise InvalidArgument("A binary SecretData is base64.", parameter="SecretData") from None


def _secret_type(params: Params) -> SecretType:
    raw = params.optional_str("SecretType") or SecretType.GENERIC.value
    try:
        return SecretType(raw)
    except ValueError:
        raise UnsupportedOperation(
            f"SecretType {raw!r}: this server makes Generic and OpenKMS.PostgreSQL secrets only "
            "(docs/secrets.md)."
        ) from None


def _rotation_fields(secret: Secret, extended_config: bool) -> dict[str, object]:
    """A managed secret's rotation fields (nothing for a Generic secret, as Alibaba answers)."""
    if not secret.secret_type.managed:
        return {}
    fields: dict[str, object] = {"AutomaticRotation": "Enabled" if secret.automatic_rotation else "Disabled"}
    if secret.automatic_rotation and secret.rotation_interval is not None:
        fields["RotationInterval"] = render_interval(secret.rotation_interval)
    if secret.automatic_rotation and secret.next_rotation_date is not None:
        fields["NextRotationDate"] = iso_utc(secret.next_rotation_date)
    if secret.last_rotation_date is not None:
        fields["LastRotationDate"] = iso_utc(secret.last_rotation_date)
    if extended_config and secret.extended_config is not None:
        fields["ExtendedConfig"] = secret.extended_config
    return fields


def _stages(stages: Sequence[str]) -> Mapping[str, object]:
    return {"VersionStage": list(stages)}


def value_fields(found: SecretValue, extended_config: bool = False) -> dict[str, object]:
    """GetSecretValue's answer (the instance API's too): binary data as base64 text."""
    value = found.value.reveal()
    if found.version.data_type is SecretDataType.BINARY:
        data = b64encode(value).decode("ascii")
    else:
        data = value.decode("utf-8", errors="strict")
    return {
        "SecretName": found.secret.name,
        "SecretType": found.secret.secret_type.value,
        "SecretData": data,
        "SecretDataType": found.version.data_type.value,
        "VersionId": found.version.version_id,
        "VersionStages": _stages(found.version.stages),
        "CreateTime": iso_utc(found.version.created_at),
        **_rotation_fields(found.secret, extended_config),
    }


def _tags(tags: Mapping[str, str]) -> Mapping[str, object]:
    return {"Tag": [{"TagKey": k, "TagValue": v} for k, v in tags.items()]}


def _described(found: Described) -> dict[str, object]:
    secret = found.secret
    fields: dict[str, object] = {
        "SecretName": secret.name,
        "SecretType": secret.secret_type.value,
        "CreateTime": iso_utc(secret.created_at),
        "UpdateTime": iso_utc(secret.updated_at),
    }
    if secret.planned_delete_time is not None:
        fields["PlannedDeleteTime"] = iso_utc(secret.planned_delete_time)
    if found.tags is not None:
        fields["Tags"] = _tags(found.tags)
    return fields


# -- actions ------------------------------------------------------------------------------------------
def create_secret(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    secret_type = _secret_type(params)
    automatic = params.optional_bool("EnableAutomaticRotation", False)
    raw_interval = params.optional_str("RotationInterval") or None
    interval = parse_interval(raw_interval) if secret_type.managed and automatic and raw_interval else None
    data_type = _data_type(params)
    request = NewSecret(
        name=params.required_str("SecretName"),
        version_id=params.required_str("VersionId"),
        data=_data(params, data_type),
        data_type=data_type,
        encryption_key_id=params.optional_str("EncryptionKeyId") or None,
        instance_id=params.optional_str("DKMSInstanceId") or None,
        description=params.optional_str("Description", ""),
        secret_type=secret_type,
        policy=params.optional_str("Policy") or None,
        tags=parse_old_tags(params),
        extended_config=params.optional_str("ExtendedConfig") or None,
        automatic_rotation=automatic,
        rotation_interval=interval,
    )
    created = services.secrets.create(ctx, request)
    return created.map(
        lambda done: {
            "Arn": done.secret.arn,
            "SecretName": done.secret.name,
            "SecretType": done.secret.secret_type.value,
            "VersionId": done.version_id,
            **({} if done.secret.instance_id is None else {"DKMSInstanceId": done.secret.instance_id}),
            **_rotation_fields(done.secret, extended_config=True),
        }
    )


def get_secret_value(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    # A dry run finds and authorizes the secret and its version, then stops where the key's Decrypt
    # of the value's data key would act (its own checks included: `end_dry_run` in the pipeline).
    take_dry_run(params, ctx)
    refuse_recipient(params)
    fetch_config = params.optional_bool("FetchExtendedConfig", False)  # Generic secrets have none
    request = ValueRequest(
        params.required_str("SecretName"),
        params.optional_str("VersionId") or None,
        params.optional_str("VersionStage") or None,
    )
    return services.secret_versions.get_value(ctx, request).map(
        lambda found: value_fields(found, fetch_config)
    )


def _batch_requests(params: Params) -> list[ValueRequest]:
    raw = params.json_list("SecretsList")
    if raw is None:
        raise MissingParameter("SecretsList")
    requests: list[ValueRequest] = []
    for item in raw:
        if not isinstance(item, dict) or not set(item) <= {
            "SecretName",
            "VersionId",
            "VersionStage",
            "FetchExtendedConfig",
        }:
            raise InvalidArgument(
                "SecretsList is a JSON list of {SecretName, VersionId, VersionStage, FetchExtendedConfig}.",
                parameter="SecretsList",
            )
        name = item.get("SecretName")
        if not isinstance(name, str) or not name:
            raise InvalidArgument("Each SecretsList item names its SecretName.", parameter="SecretsList")
        version_id, stage = item.get("VersionId"), item.get("VersionStage")
        if not isinstance(version_id, str | None) or not isinstance(stage, str | None):
            raise InvalidArgument("VersionId and VersionStage are strings.", parameter="SecretsList")
        requests.append(ValueRequest(name, version_id or None, stage or None))
    return requests


def batch_get_secret_value(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    found = services.secret_versions.batch_get(ctx, _batch_requests(params))
    values: list[object] = []
    failures: list[object] = []
    for name, result in found.value:
        if isinstance(result, OpenKMSError):
            wire = to_wire(result)
            failures.append(
                {
                    "SecretName": name,
                    "Code": wire.code,
                    "Message": wire.message,
                    "HttpStatus": str(wire.status),
                }
            )
        else:
            values.append(value_fields(result))
    return found.map(lambda _: {"SecretValues": values, "Errors": failures})


def put_secret_value(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    data_type = _data_type(params)
    stages = params.json_list("VersionStages")
    if stages is not None and not all(isinstance(stage, str) for stage in stages):
        raise InvalidArgument("VersionStages is a JSON list of stage names.", parameter="VersionStages")
    put = services.secret_versions.put_value(
        ctx,
        params.required_str("SecretName"),
        params.required_str("VersionId"),
        _data(params, data_type),
        data_type,
        stages,
    )
    return put.map(
        lambda done: {
            "SecretName": done[0].name,
            "VersionId": done[1].version_id,
            "VersionStages": _stages(done[1].stages),
        }
    )


def describe_secret(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    fetch_tags = params.optional_bool("FetchTags", False)
    found = services.secrets.describe(ctx, params.required_str("SecretName"), fetch_tags)

    def render(described: Described) -> Mapping[str, object]:
        secret = described.secret
        fields = _described(described)
        fields.update(
            {
                "Arn": secret.arn,
                "Description": secret.description,
                "EncryptionKeyId": secret.encryption_key_id,
            }
        )
        if secret.instance_id is not None:
            fields["DKMSInstanceId"] = secret.instance_id
        fields.update(_rotation_fields(secret, extended_config=True))
        return fields

    return found.map(render)


def _filters(params: Params) -> SecretFilter:
    raw = params.json_list("Filters")
    if raw is None:
        return SecretFilter()
    if len(raw) > FILTER_LIMIT:
        raise InvalidArgument(f"Filters holds at most {FILTER_LIMIT} filters.", parameter="Filters")
    chosen: dict[str, tuple[str, ...]] = {}
    for item in raw:
        key = item.get("Key") if isinstance(item, dict) else None
        values = item.get("Values") if isinstance(item, dict) else None
        if key not in FILTER_KEYS or not isinstance(values, list) or not values or len(values) > FILTER_LIMIT:
            raise InvalidArgument(
                f"Each filter is {{Key, Values}} with Key one of {', '.join(FILTER_KEYS)} "
                f"and 1 to {FILTER_LIMIT} Values.",
                parameter="Filters",
            )
        if not all(isinstance(value, str) for value in values):
            raise InvalidArgument("Filter Values are strings.", parameter="Filters")
        field = FILTER_KEYS[str(key)]
        chosen[field] = (*chosen.get(field, ()), *values)
    return SecretFilter(**chosen)


def list_secrets(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    page_number, page_size = page_params(params)
    fetch_tags = params.optional_bool("FetchTags", False)
    found = services.secrets.list_secrets(ctx, _filters(params), fetch_tags, page_number, page_size)
    return found.map(
        lambda page: {
            "SecretList": {"Secret": [_described(described) for described in page[0]]},
            "PageNumber": page_number,
            "PageSize": page_size,
            "TotalCount": page[1],
        }
    )


def list_secret_version_ids(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    page_number = params.optional_int("PageNumber", 1, minimum=1, maximum=1_000_000)
    page_size = params.optional_int("PageSize", 20, minimum=1, maximum=100)
    include = params.optional_bool("IncludeDeprecated", False)
    found = services.secret_versions.list_versions(ctx, params.required_str("SecretName"), include)

    def render(listed: tuple[Secret, list[SecretVersion]]) -> Mapping[str, object]:
        secret, versions = listed
        page = versions[(page_number - 1) * page_size : page_number * page_size]
        return {
            "SecretName": secret.name,
            "VersionIds": {
                "VersionId": [
                    {
                        "VersionId": version.version_id,
                        "CreateTime": iso_utc(version.created_at),
                        "VersionStages": _stages(version.stages),
                    }
                    for version in page
                ]
            },
            "PageNumber": page_number,
            "PageSize": page_size,
            "TotalCount": len(versions),
        }

    return found.map(render)


def update_secret(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    # ExtendedConfig.CustomData.* applies to managed secret types; a Generic secret ignores it, as
    # Alibaba's does.
    done = services.secrets.update(ctx, params.required_str("SecretName"), params.optional_str("Description"))
    return done.map(lambda secret: {"SecretName": secret.name})


def update_secret_version_stage(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    done = services.secret_versions.move_stage(
        ctx,
        params.required_str("SecretName"),
        params.required_str("VersionStage"),
        params.optional_str("MoveToVersion") or None,
        params.optional_str("RemoveFromVersion") or None,
    )
    return done.map(lambda secret: {"SecretName": secret.name})


def delete_secret(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    force = params.optional_bool("ForceDeleteWithoutRecovery", False)
    window = params.optional_int("RecoveryWindowInDays", None, minimum=-(10**9), maximum=10**9)
    if force and window is not None:
        raise InvalidArgument(
            "Give RecoveryWindowInDays or ForceDeleteWithoutRecovery=true, not both.",
            parameter="RecoveryWindowInDays",
        )
    days = (
        None if force else check_recovery_window(RECOVERY_WINDOW_DEFAULT_DAYS if window is None else window)
    )
    done = services.secrets.delete(ctx, params.required_str("SecretName"), days, force)
    return done.map(
        lambda secret: {
            "SecretName": secret.name,
            "PlannedDeleteTime": ""
            if secret.planned_delete_time is None
            else iso_utc(secret.planned_delete_time),
        }
    )


def restore_secret(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    done = services.secrets.restore(ctx, params.required_str("SecretName"))
    return done.map(lambda secret: {"SecretName": secret.name})


def get_secret_policy(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    found = services.secrets.get_policy(
        ctx, params.required_str("SecretName"), params.optional_str("PolicyName")
    )
    return found.map(lambda policy: {"Policy": policy})


def set_secret_policy(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    return empty(
        services.secrets.set_policy(
            ctx,
            params.required_str("SecretName"),
            params.optional_str("PolicyName"),
            params.required_str("Policy"),
        )
    )


def get_random_password(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    authorize(ctx, KmsAction.GET_RANDOM_PASSWORD)
    rules = PasswordRules(
        length=params.optional_int("PasswordLength", 32, minimum=8, maximum=128),
        exclude_lowercase=params.optional_bool("ExcludeLowercase", False),
        exclude_uppercase=params.optional_bool("ExcludeUppercase", False),
        exclude_numbers=params.optional_bool("ExcludeNumbers", False),
        exclude_punctuation=params.optional_bool("ExcludePunctuation", False),
        exclude_characters=params.optional_str("ExcludeCharacters", ""),
        require_each_included_type=params.optional_bool("RequireEachIncludedType", True),
    )
    return {"RandomPassword": random_password(rules)}


def _names(*names: str) -> frozenset[str]:
    return frozenset(names)


_CREATE = _names(
    "SecretName", "VersionId", "SecretData", "SecretDataType", "EncryptionKeyId", "DKMSInstanceId",
    "Description", "SecretType", "Policy", "Tags", "ExtendedConfig", "EnableAutomaticRotation",
    "RotationInterval",
)  # fmt: skip

ACTIONS = (
    Action("CreateSecret", create_secret, _CREATE),
    Action(
        "GetSecretValue",
        get_secret_value,
        _names("SecretName", "VersionId", "VersionStage", "FetchExtendedConfig", "DryRun", "Recipient"),
    ),
    Action("BatchGetSecretValue", batch_get_secret_value, _names("SecretsList")),
    Action(
        "PutSecretValue",
        put_secret_value,
        _names("SecretName", "VersionId", "SecretData", "SecretDataType", "VersionStages"),
    ),
    Action("DescribeSecret", describe_secret, _names("SecretName", "FetchTags")),
    Action("ListSecrets", list_secrets, _names("FetchTags", "Filters", "PageNumber", "PageSize")),
    Action(
        "ListSecretVersionIds",
        list_secret_version_ids,
        _names("SecretName", "IncludeDeprecated", "PageNumber", "PageSize"),
    ),
    # The SDK sends ExtendedConfig flattened (`ExtendedConfig.CustomData.<name>`): admitted, and
    # ignored for a Generic secret.
    Action("UpdateSecret", update_secret, _names("SecretName", "Description", "ExtendedConfig.N")),
    Action(
        "UpdateSecretVersionStage",
        update_secret_version_stage,
        _names("SecretName", "VersionStage", "MoveToVersion", "RemoveFromVersion"),
    ),
    Action(
        "DeleteSecret",
        delete_secret,
        _names("SecretName", "RecoveryWindowInDays", "ForceDeleteWithoutRecovery"),
    ),
    Action("RestoreSecret", restore_secret, _names("SecretName")),
    Action("GetSecretPolicy", get_secret_policy, _names("SecretName", "PolicyName")),
    Action("SetSecretPolicy", set_secret_policy, _names("SecretName", "PolicyName", "Policy")),
    Action(
        "GetRandomPassword",
        get_random_password,
        _names(
            "PasswordLength",
            "ExcludeCharacters",
            "ExcludeLowercase",
            "ExcludeUppercase",
            "ExcludeNumbers",
            "ExcludePunctuation",
            "RequireEachIncludedType",
        ),
    ),
)
