"""Console page: the Create Key panel (F1.2-F1.4, F2, F3, F4).

The specs and usages offered come from the chosen instance's kind and the seed's spec table
(`domain.specs`), so hardware and external instances offer theirs when they exist. A custom key
policy is the seed's three lists (`policy.key_policy.custom_key_policy`) sent as CreateKey `Policy`;
tags, rotation, origin and the policy are checked by the API exactly as for an SDK caller. The alias
is a second action: when it fails after the key was made, the page says so and names the key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.datastructures import FormData
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from openkms.api.wire_errors import WireError
from openkms.console.auth import page
from openkms.console.pages.keys import (
    Instance,
    alias_name,
    alias_refusal,
    chosen_instance,
    instances_of,
)
from openkms.console.view import ActionFailed, Console
from openkms.domain.specs import SPEC_RULES, SPECS_BY_KIND
from openkms.policy.key_policy import custom_key_policy
from openkms.types import InstanceKind, KeySpec, KeyUsage, Origin

FIRST_TAG_ROWS = 3
MAX_TAGS = 20
_OTHER_ACCOUNT = re.compile(r"^acs:ram::(\d+):(?:user|role)/\S+$")


@dataclass(frozen=True, slots=True)
class Offer:
    """What a key in an instance of one kind may be (F2)."""

    symmetric: tuple[str, ...]
    asymmetric: tuple[str, ...]
    asymmetric_usages: tuple[str, ...]
    kind: str = ""  # the instance's kind: hardware key pairs take more usages, external keys an id
    usages_by_spec: tuple[tuple[str, tuple[str, ...]], ...] = ()  # each key pair spec's usages

    def specs_with_usage(self, usage: str) -> tuple[str, ...]:
        """The key pair specs that offer `usage` (an additional usage is shown only for them)."""
        return tuple(spec for spec, usages in self.usages_by_spec if usage in usages)

    def specs_with_choice(self) -> tuple[str, ...]:
        """The key pair specs with more than one usage: only they can have an additional usage."""
        return tuple(spec for spec, usages in self.usages_by_spec if len(usages) > 1)


def offer_of(instance: Instance | None) -> Offer:
    try:
        kind: InstanceKind | None = InstanceKind(instance.kind) if instance else None
    except ValueError:
        kind = None
    specs: tuple[KeySpec, ...] = SPECS_BY_KIND.get(kind, ()) if instance else ()
    usages: list[str] = []
    for spec in specs:
        if not SPEC_RULES[spec].symmetric:
            usages += [usage.value for usage in SPEC_RULES[spec].usages if usage.value not in usages]
    return Offer(
        tuple(spec.value for spec in specs if SPEC_RULES[spec].symmetric),
        tuple(spec.value for spec in specs if not SPEC_RULES[spec].symmetric),
        tuple(usages),
        "" if kind is None else kind.value,
        tuple(
            (spec.value, tuple(usage.value for usage in SPEC_RULES[spec].usages))
            for spec in specs
            if not SPEC_RULES[spec].symmetric
        ),
    )


@dataclass(slots=True)
class Choice:
    """What the form holds (to show it again when the server refuses it)."""

    key_type: str = "symmetric"
    spec: str = ""
    usage: str = ""
    alias: str = ""
    tags: list[tuple[str, str]] = field(default_factory=list)
    rotation: bool = True
    rotation_days: str = "365"
    description: str = ""
    policy: str = "default"
    admins: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    others: str = ""
    origin: str = Origin.ALIYUN_KMS.value
    ack: bool = False
    # OpenKMS extensions: more usages of a hardware key pair, the external key of an external key.
    additional_usages: list[str] = field(default_factory=list)
    external_key_id: str = ""


def choice_of(form: FormData) -> Choice:
    def text(name: str) -> str:
        value = form.get(name)
        return value[:4096] if isinstance(value, str) else ""

    keys = [value for value in form.getlist("tag_key") if isinstance(value, str)]
    values = [value for value in form.getlist("tag_value") if isinstance(value, str)]
    tags = [(key[:256], value[:256]) for key, value in zip(keys, values, strict=False) if key or value]
    return Choice(
        key_type="asymmetric" if text("key_type") == "asymmetric" else "symmetric",
        spec=text("KeySpec"),
        usage=text("KeyUsage"),
        alias=text("alias").strip(),
        tags=tags[: MAX_TAGS + 1],
        rotation=bool(text("rotation")),
        rotation_days=text("rotation_days").strip(),
        description=text("description"),
        policy="custom" if text("policy") == "custom" else "default",
        admins=[value for value in form.getlist("admins") if isinstance(value, str)][:100],
        users=[value for value in form.getlist("users") if isinstance(value, str)][:100],
        others=text("others"),
        origin=text("origin") or Origin.ALIYUN_KMS.value,
        ack=bool(text("external_ack")),
        additional_usages=[value for value in form.getlist("additional_usage") if isinstance(value, str)][:4],
        external_key_id=text("external_key_id").strip(),
    )


def other_account_lines(typed: str) -> list[str]:
    return [line.strip() for line in typed.splitlines() if line.strip()]


def quota_units(typed: str, account_id: str) -> int:
    """Units of the instance's access quota the Users of Other Accounts use: one per distinct other
    main account (F4.3); lines that are not principals count nothing (the server refuses them)."""
    accounts = set()
    for line in other_account_lines(typed):
        matched = _OTHER_ACCOUNT.match(line)
        if matched and matched.group(1) != account_id:
            accounts.add(matched.group(1))
    return len(accounts)


async def principals_of(console: Console) -> list[tuple[str, str]]:
    """(ARN, shown name) of the account's RAM users and roles, for the custom policy lists."""
    account = console.principal.account_id
    users = await console.call("ram:ListUsers", {"MaxItems": "1000"})
    roles = await console.call("ram:ListRoles", {"MaxItems": "1000"})
    found = [
        (f"acs:ram::{account}:user/{user['UserName']}", f"user/{user['UserName']}")
        for user in users["Users"]["User"]
    ]
    found += [(str(role["Arn"]), f"role/{role['RoleName']}") for role in roles["Roles"]["Role"]]
    return found


async def create_form(console: Console) -> Response:
    return await _render(console, console.request.query_params.get("instance"), Choice())


async def _render(
    console: Console,
    wanted: str | None,
    choice: Choice,
    *,
    wire: WireError | None = None,
    error: str | None = None,
    made: str | None = None,
    status: int = 200,
) -> Response:
    instances = await instances_of(console)
    instance = chosen_instance(instances, wanted)
    try:
        principals = await principals_of(console)
        principals_wire = None
    except ActionFailed as failed:  # a key manager without RAM permissions still creates keys
        principals, principals_wire = [], failed.wire
    tags = choice.tags + [("", "")] * max(FIRST_TAG_ROWS - len(choice.tags), 1)
    return console.render(
        "keys/create.html",
        status=status,
        section="keys",
        instances=instances,
        instance=instance,
        offer=offer_of(instance),
        choice=choice,
        tags=tags[:MAX_TAGS],
        max_tags=MAX_TAGS,
        principals=principals,
        principals_wire=principals_wire,
        quota=quota_units(choice.others, console.principal.account_id),
        wire=wire,
        error=error,
        made=made,
    )


async def spec_fields(console: Console) -> Response:
    """Key Specifications, Key Usage and rotation for the Key Type just chosen (htmx)."""
    query = console.request.query_params
    instance = chosen_instance(await instances_of(console), query.get("instance"))
    choice = Choice(
        key_type="asymmetric" if query.get("key_type") == "asymmetric" else "symmetric",
        usage=query.get("KeyUsage", ""),
    )
    return console.render("keys/_spec_fields.html", offer=offer_of(instance), choice=choice)


async def quota(console: Console) -> Response:
    """How many units of the access quota the typed Users of Other Accounts use (htmx, as typed)."""
    form = await console.request.form()
    typed = form.get("others")
    units = quota_units(typed if isinstance(typed, str) else "", console.principal.account_id)
    return console.render("keys/_quota.html", quota=units)


async def create(console: Console) -> Response:
    form = await console.request.form()
    choice = choice_of(form)
    wanted = form.get("DKMSInstanceId")
    instance_id = wanted if isinstance(wanted, str) else ""

    if choice.origin == Origin.EXTERNAL.value and not choice.ack:
        return await _render(console, instance_id, choice, error="keys.error_external_ack", status=400)
    if len(choice.tags) > MAX_TAGS:
        return await _render(console, instance_id, choice, error="tag.msg_too_many", status=400)
    refused = alias_refusal(choice.alias)
    if refused is not None:
        return await _render(console, instance_id, choice, wire=refused, status=refused.status)
    params = _create_params(console, instance_id, choice)
    try:
        created = await console.call("CreateKey", params)
    except ActionFailed as failed:
        return await _render(console, instance_id, choice, wire=failed.wire, status=failed.wire.status)
    key_id = str(created["KeyMetadata"]["KeyId"])
    if choice.alias:
        try:
            await console.call("CreateAlias", {"KeyId": key_id, "AliasName": alias_name(choice.alias)})
        except ActionFailed as failed:
            return await _render(
                console,
                instance_id,
                choice,
                wire=failed.wire,
                error="keys.error_alias_after_create",
                made=key_id,
                status=failed.wire.status,
            )
    # The list opens on the new key (it may be on any page of an instance with many keys).
    return console.redirect("/keys", notice="notice.keys.created", instance=instance_id, q=key_id)


def _create_params(console: Console, instance_id: str, choice: Choice) -> Mapping[str, str | None]:
    symmetric = choice.key_type == "symmetric"
    usage = KeyUsage.ENCRYPT_DECRYPT.value if symmetric else (choice.usage or None)
    policy = None
    if choice.policy == "custom":
        policy = custom_key_policy(
            console.principal.account_id,
            administrators=choice.admins,
            users=choice.users,
            other_account_users=other_account_lines(choice.others),
        )
    rotate = symmetric and choice.rotation
    tags = [{"TagKey": key, "TagValue": value} for key, value in choice.tags]
    return {
        "DKMSInstanceId": instance_id or None,
        "KeySpec": choice.spec or None,
        "KeyUsage": usage,
        "Origin": choice.origin,
        "Description": choice.description or None,
        "EnableAutomaticRotation": "true" if rotate else None,
        "RotationInterval": f"{choice.rotation_days}d" if rotate else None,
        "Tags": json.dumps(tags) if tags else None,
        "Policy": policy,
        "OpenKMSAdditionalKeyUsages": (
            None if symmetric else ",".join(u for u in choice.additional_usages if u != usage) or None
        ),
        "OpenKMSExternalKeyId": choice.external_key_id or None,
    }


ROUTES: list[BaseRoute] = [
    Route("/keys/create", page(create_form), methods=["GET"]),
    Route("/keys/create", page(create), methods=["POST"]),
    Route("/keys/create/spec-fields", page(spec_fields), methods=["GET"]),
    Route("/keys/create/quota", page(quota), methods=["POST"]),
]
