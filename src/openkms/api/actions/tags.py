"""Tag actions, old shape (TagResource, UntagResource, ListResourceTags: one key or secret, JSON lists)
and new shape (TagResources, UntagResources, ListTagResources: many keys or secrets, repeat lists).
Keys (`KeyId`, `ResourceType=key`) and secrets (`SecretName`, `ResourceType=secret`, by name or ARN);
certificates are not served by this server."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from openkms.api.actions.base import Action, empty
from openkms.api.params import Params
from openkms.domain.names import TAG_LIMIT, check_tag_key, check_tags
from openkms.errors import InvalidArgument, MissingParameter, UnsupportedOperation
from openkms.policy.actions import KmsAction
from openkms.service.container import Services
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome

RESOURCE_ID_LIMIT = 50


def _only_keys(params: Params) -> str:
    if params.optional_str("CertificateId"):
        raise UnsupportedOperation("CertificateId: only keys and secrets carry tags on this server.")
    return params.required_str("KeyId")


def _secret_named(params: Params) -> str | None:
    """The secret an old-shape tag action names instead of a key (SecretName), if any."""
    name = params.optional_str("SecretName")
    if name and params.optional_str("KeyId"):
        raise InvalidArgument("Name a KeyId or a SecretName, not both.", parameter="SecretName")
    return name or None


def _old_tags(raw: list[Any] | None) -> dict[str, str]:
    if raw is None:
        raise MissingParameter("Tags")
    pairs: list[tuple[object, object]] = []
    for item in raw:
        if not isinstance(item, dict) or "TagKey" not in item or not set(item) <= {"TagKey", "TagValue"}:
            raise InvalidArgument(
                'Tags is a JSON list of {"TagKey": ..., "TagValue": ...}.', parameter="Tags"
            )
        pairs.append((item["TagKey"], item.get("TagValue", "")))
    if not pairs:
        raise InvalidArgument("Tags names no tag.", parameter="Tags")
    return check_tags(pairs)


def parse_old_tags(params: Params) -> dict[str, str]:
    """The `Tags` JSON of TagResource and CreateKey; empty when absent (CreateKey)."""
    raw = params.json_list("Tags")
    return {} if raw is None else _old_tags(raw)


def tag_resource(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    secret = _secret_named(params)
    key_ref = None if secret else _only_keys(params)
    tags = _old_tags(params.json_list("Tags"))
    if secret:
        return empty(services.secret_tags.tag(ctx, [secret], tags, KmsAction.TAG_RESOURCE))
    return empty(services.tags.tag(ctx, [str(key_ref)], tags, KmsAction.TAG_RESOURCE))


def untag_resource(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    secret = _secret_named(params)
    key_ref = None if secret else _only_keys(params)
    raw = params.json_list("TagKeys")
    if raw is None:
        raise MissingParameter("TagKeys")
    if not raw or len(raw) > TAG_LIMIT:
        raise InvalidArgument(f"TagKeys names 1 to {TAG_LIMIT} tag keys.", parameter="TagKeys")
    tag_keys = [check_tag_key(key) for key in raw]
    if secret:
        return empty(services.secret_tags.untag(ctx, [secret], tag_keys, KmsAction.UNTAG_RESOURCE))
    return empty(services.tags.untag(ctx, [str(key_ref)], tag_keys, KmsAction.UNTAG_RESOURCE))


def list_resource_tags(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    secret = _secret_named(params)
    if secret:
        listed = services.secret_tags.tags_of(ctx, [secret], KmsAction.LIST_RESOURCE_TAGS)
        [(_, secret_tags)] = listed.value
        return listed.map(
            lambda _: {"Tags": {"Tag": [{"TagKey": k, "TagValue": v} for k, v in secret_tags.items()]}}
        )
    key_ref = _only_keys(params)
    found = services.tags.tags_of(ctx, [key_ref], KmsAction.LIST_RESOURCE_TAGS)
    [(key_id, tags)] = found.value
    return found.map(
        lambda _: {"Tags": {"Tag": [{"KeyId": key_id, "TagKey": k, "TagValue": v} for k, v in tags.items()]}}
    )


def _is_secret(params: Params) -> bool:
    """Whether a new-shape tag action is about secrets (ResourceType=secret) rather than keys."""
    resource_type = params.optional_str("ResourceType")
    if not resource_type:
        raise MissingParameter("ResourceType")
    if resource_type.lower() not in ("key", "secret"):
        raise UnsupportedOperation(f"ResourceType {resource_type!r}: only keys and secrets carry tags here.")
    return resource_type.lower() == "secret"


def _resource_ids(params: Params, *, required: bool = True) -> list[str]:
    _is_secret(params)
    ids = params.repeat_list("ResourceId")
    if not ids and required:
        raise MissingParameter("ResourceId")
    if len(ids) > RESOURCE_ID_LIMIT:
        raise InvalidArgument(f"At most {RESOURCE_ID_LIMIT} ResourceId values.", parameter="ResourceId")
    return ids


def _new_tags(params: Params) -> list[tuple[object, object]]:
    records = params.repeat_records("Tag", ("Key", "Value"))
    for record in records:
        if "Key" not in record:
            raise MissingParameter("Tag.N.Key")
    return [(record["Key"], record.get("Value", "")) for record in records]


def tag_resources(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    ids = _resource_ids(params)
    pairs = _new_tags(params)
    if not pairs:
        raise MissingParameter("Tag")
    if _is_secret(params):
        return empty(services.secret_tags.tag(ctx, ids, check_tags(pairs), KmsAction.TAG_RESOURCES))
    return empty(services.tags.tag(ctx, ids, check_tags(pairs), KmsAction.TAG_RESOURCES))


def untag_resources(params: Params, ctx: RequestContext, services: Services) -> Outcome[Mapping[str, object]]:
    ids = _resource_ids(params)
    remove_all = params.optional_bool("All", False)
    tag_keys = [check_tag_key(key) for key in params.repeat_list("TagKey")]
    if len(tag_keys) > TAG_LIMIT:
        raise InvalidArgument(f"At most {TAG_LIMIT} TagKey values.", parameter="TagKey")
    if not tag_keys and not remove_all:
        raise MissingParameter("TagKey")
    # All=true takes effect only when no tag key is given (the SDK's UntagResourcesRequest says so).
    removed = None if remove_all and not tag_keys else tag_keys
    if _is_secret(params):
        return empty(services.secret_tags.untag(ctx, ids, removed, KmsAction.UNTAG_RESOURCES))
    return empty(services.tags.untag(ctx, ids, removed, KmsAction.UNTAG_RESOURCES))


def list_tag_resources(
    params: Params, ctx: RequestContext, services: Services
) -> Outcome[Mapping[str, object]]:
    start = _page_start(params.optional_str("NextToken") or "")
    ids = _resource_ids(params, required=False)
    wanted = [(str(key), str(value)) for key, value in _new_tags(params)]
    if len(wanted) > TAG_LIMIT:
        raise InvalidArgument(f"At most {TAG_LIMIT} Tag values.", parameter="Tag")
    secrets = _is_secret(params)
    found: Outcome[Sequence[tuple[str, Mapping[str, str]]]]
    if secrets and not ids:
        raise MissingParameter("ResourceId")  # secrets are listed by tag with ListSecrets' Filters
    if secrets:
        found = services.secret_tags.tags_of(ctx, ids, KmsAction.LIST_TAG_RESOURCES)
    elif ids:
        found = services.tags.tags_of(ctx, ids, KmsAction.LIST_TAG_RESOURCES)
    elif wanted:
        # By tags alone (the SDK requires only RegionId and ResourceType): the caller's keys in this
        # region that carry every one of them.
        found = services.tags.keys_tagged(ctx, wanted, KmsAction.LIST_TAG_RESOURCES)
    else:
        raise MissingParameter("ResourceId")
    rows = [
        {"ResourceId": key_id, "ResourceType": "secret" if secrets else "key", "TagKey": k, "TagValue": v}
        for key_id, tags in found.value
        for k, v in tags.items()
        if not wanted
        or any(k == want_key and (not want_value or v == want_value) for want_key, want_value in wanted)
    ]
    page = rows[start : start + TAG_PAGE_SIZE]
    following = start + TAG_PAGE_SIZE
    token = _page_token(following) if following < len(rows) else ""
    return found.map(lambda _: {"TagResources": {"TagResource": page}, "NextToken": token})


# ListTagResources answers at most this many rows (resource, tag) at a time; the SDK's request has no
# page size, only NextToken. The rows are in a stable order (resources, then their tags).
TAG_PAGE_SIZE = 50
_TOKEN_PREFIX = "tags:"  # noqa: S105 (a page token's prefix, not a password)


def _page_token(start: int) -> str:
    """An opaque NextToken: where the next answer starts (rows changed in between may shift it)."""
    return base64.urlsafe_b64encode(f"{_TOKEN_PREFIX}{start}".encode()).decode()


def _page_start(token: str) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii")
    except (ValueError, UnicodeError):
        text = ""
    number = text.removeprefix(_TOKEN_PREFIX)
    if not text.startswith(_TOKEN_PREFIX) or not number.isdigit() or len(number) > 9 or number == "0":
        raise InvalidArgument("NextToken is not one this server gave out.", parameter="NextToken")
    return int(number)


_OLD = frozenset({"KeyId", "SecretName", "CertificateId"})
_NEW = frozenset({"ResourceType", "ResourceId.N"})

ACTIONS = (
    Action("TagResource", tag_resource, _OLD | {"Tags"}),
    Action("UntagResource", untag_resource, _OLD | {"TagKeys"}),
    Action("ListResourceTags", list_resource_tags, _OLD),
    Action("TagResources", tag_resources, _NEW | {"Tag.N"}),
    Action("UntagResources", untag_resources, _NEW | {"TagKey.N", "All"}),
    Action("ListTagResources", list_tag_resources, _NEW | {"Tag.N", "NextToken"}),
)
