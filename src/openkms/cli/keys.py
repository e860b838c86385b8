"""`openkms key list|describe|create|enable|disable|schedule-deletion|cancel-deletion|associations`.

Over the Alibaba API with a connection profile (`cli/connect.py`). `key create` and `key associations`
also work as the operator directly on a store, when given `--data-dir`, `--config` or
`--database-url` (as before the client side existed). Never prints key material.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from openkms.cli.common import ConfigFile, DatabaseUrl, DataDir, console
from openkms.cli.connect import (
    AccessKeyId,
    Endpoint,
    Json,
    ProfileName,
    Region,
    client,
    operator_mode,
    requests,
)
from openkms.cli.output import fail, print_fields, print_json, print_table

KeyArg = Annotated[str, typer.Argument(help="The key: its id, or an alias (alias/...).")]
_LIST_COLUMNS = ("KeyId", "KeyState", "KeySpec", "KeyUsage", "CreationDate", "Description")
_POLL_SECONDS = 0.5
_DETECTION_SECONDS = 120.0


def register(key_app: typer.Typer) -> None:
    for name, command in (
        ("list", key_list),
        ("describe", key_describe),
        ("create", key_create),
        ("enable", key_enable),
        ("disable", key_disable),
        ("schedule-deletion", key_schedule_deletion),
        ("cancel-deletion", key_cancel_deletion),
        ("associations", key_associations),
    ):
        key_app.command(name)(command)


def key_list(
    profile: ProfileName = None,
    endpoint: Endpoint = None,
    region: Region = None,
    access_key_id: AccessKeyId = None,
    as_json: Json = False,
) -> None:
    """List the keys this access key may see, with their state, spec and usage."""
    kms = client(profile, endpoint, region, access_key_id)
    with requests():
        ids: list[str] = []
        page = 1
        while True:
            body = kms.call("ListKeys", PageNumber=page, PageSize=100)
            ids += [item["KeyId"] for item in body.get("Keys", {}).get("Key", [])]
            if page * 100 >= int(body.get("TotalCount", 0)):
                break
            page += 1
        keys = []
        with _progress() as progress:  # one DescribeKey per key: a bar when there are many
            task = progress.add_task("describing keys", total=len(ids))
            for key_id in ids:
                keys.append(kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"])
                progress.advance(task)
    if as_json:
        print_json({"Keys": keys, "TotalCount": len(keys)})
        return
    print_table(_LIST_COLUMNS, [[key.get(column) for column in _LIST_COLUMNS] for key in keys])


def key_describe(
    key: KeyArg,
    profile: ProfileName = None,
    endpoint: Endpoint = None,
    region: Region = None,
    access_key_id: AccessKeyId = None,
    as_json: Json = False,
) -> None:
    """Show a key's metadata (DescribeKey)."""
    kms = client(profile, endpoint, region, access_key_id)
    with requests():
        metadata = kms.call("DescribeKey", KeyId=key)["KeyMetadata"]
    _show_metadata(metadata, as_json)


def key_create(
    spec: Annotated[str | None, typer.Option("--spec", help="KeySpec (default Aliyun_AES_256).")] = None,
    usage: Annotated[
        str | None, typer.Option("--usage", help="KeyUsage: ENCRYPT/DECRYPT (default) or SIGN/VERIFY.")
    ] = None,
    description: Annotated[str, typer.Option("--description", help="The key's description.")] = "",
    instance: Annotated[
        str | None,
        typer.Option(
            "--instance",
            help="The instance (kst-...); default: the account's first one "
            "(as the operator: the region's default key).",
        ),
    ] = None,
    protection_level: Annotated[
        str | None, typer.Option("--protection-level", help="SOFTWARE (default) or HSM.")
    ] = None,
    origin: Annotated[
        str | None, typer.Option("--origin", help="Aliyun_KMS (default) or EXTERNAL (import material later).")
    ] = None,
    rotation_interval: Annotated[
        str | None,
        typer.Option("--rotation-interval", help="Turn on automatic rotation with this period, e.g. 365d."),
    ] = None,
    additional_usages: Annotated[
        str | None,
        typer.Option("--additional-usages", help="Hardware key pairs: more usages, comma-separated."),
    ] = None,
    external_key_id: Annotated[
        str | None, typer.Option("--external-key-id", help="External instances: the key's id at the proxy.")
    ] = None,
    account_id: Annotated[
        str | None,
        typer.Option("--account-id", help="Operator only: the main account (uid); default: the default one."),
    ] = None,
    profile: ProfileName = None,
    endpoint: Endpoint = None,
    region: Region = None,
    access_key_id: AccessKeyId = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
    as_json: Json = False,
) -> None:
    """Create a key and show its metadata.

    Over the API with a profile; as the operator on the store with --data-dir, --config or
    --database-url (audited as the operator, in the account of --account-id).
    """
    if operator_mode(data_dir, config, database_url):
        from openkms.cli.key_stores import operator_key_create

        metadata = operator_key_create(
            config,
            data_dir,
            database_url,
            account_id,
            region,
            spec=spec,
            usage=usage,
            description=description,
            instance=instance,
            additional_usages=additional_usages,
            external_key_id=external_key_id,
            protection_level=protection_level,
            origin=origin,
            rotation_interval=rotation_interval,
        )
        _show_metadata(metadata, as_json)
        return
    if account_id is not None:
        fail(
            "InvalidOption",
            "--account-id works only as the operator on a store",
            "add --data-dir (the server's); over the API a key is made in the profile's account",
        )
    kms = client(profile, endpoint, region, access_key_id)
    if instance is None:  # the account's first instance, as the console offers it
        with requests():
            found = kms.call("ListKmsInstances", PageNumber=1, PageSize=1)
        listed = found.get("KmsInstances", {}).get("KmsInstance", [])
        instance = listed[0]["KmsInstanceId"] if listed else None
    params: dict[str, Any] = {
        "KeySpec": spec,
        "KeyUsage": usage,
        "Description": description or None,
        "DKMSInstanceId": instance,
        "ProtectionLevel": protection_level,
        "Origin": origin,
    }
    if rotation_interval:
        params.update(EnableAutomaticRotation="true", RotationInterval=rotation_interval)
    with requests():
        if additional_usages or external_key_id:
            # OpenKMS's extension parameters are not in the SDK's model: the SDK's generic call.
            from openkms.cli.client import KMS_VERSION

            params.update(OpenKMSAdditionalKeyUsages=additional_usages, OpenKMSExternalKeyId=external_key_id)
            metadata = kms.call_any(KMS_VERSION, "CreateKey", **params)["KeyMetadata"]
        else:
            metadata = kms.call("CreateKey", **params)["KeyMetadata"]
    _show_metadata(metadata, as_json)


def _state_change(action: str, key: str, connection: tuple[Any, ...], as_json: bool, **params: Any) -> None:
    kms = client(*connection)
    with requests():
        body = kms.call(action, KeyId=key, **params)
        metadata = kms.call("DescribeKey", KeyId=key)["KeyMetadata"]
    if as_json:
        print_json({"RequestId": body.get("RequestId"), "KeyMetadata": metadata})
        return
    print_fields(
        [(name, metadata.get(name)) for name in ("KeyId", "KeyState", "DeleteDate") if name in metadata]
    )


def key_enable(
    key: KeyArg,
    profile: ProfileName = None,
    endpoint: Endpoint = None,
    region: Region = None,
    access_key_id: AccessKeyId = None,
    as_json: Json = False,
) -> None:
    """Enable a disabled key (EnableKey)."""
    _state_change("EnableKey", key, (profile, endpoint, region, access_key_id), as_json)


def key_disable(
    key: KeyArg,
    profile: ProfileName = None,
    endpoint: Endpoint = None,
    region: Region = None,
    access_key_id: AccessKeyId = None,
    as_json: Json = False,
) -> None:
    """Disable a key: it stays, but encrypts and decrypts nothing until enabled (DisableKey)."""
    _state_change("DisableKey", key, (profile, endpoint, region, access_key_id), as_json)


def key_schedule_deletion(
    key: KeyArg,
    days: Annotated[
        int, typer.Option("--days", min=7, max=366, help="Days until the key is deleted (7 to 366).")
    ] = 30,
    profile: ProfileName = None,
    endpoint: Endpoint = None,
    region: Region = None,
    access_key_id: AccessKeyId = None,
    as_json: Json = False,
) -> None:
    """Schedule the key's deletion after a waiting period (ScheduleKeyDeletion); `cancel-deletion`
    stops it."""
    _state_change(
        "ScheduleKeyDeletion",
        key,
        (profile, endpoint, region, access_key_id),
        as_json,
        PendingWindowInDays=days,
    )


def key_cancel_deletion(
    key: KeyArg,
    profile: ProfileName = None,
    endpoint: Endpoint = None,
    region: Region = None,
    access_key_id: AccessKeyId = None,
    as_json: Json = False,
) -> None:
    """Stop a scheduled deletion: the key is enabled again (CancelKeyDeletion)."""
    _state_change("CancelKeyDeletion", key, (profile, endpoint, region, access_key_id), as_json)


def key_associations(
    key_id: Annotated[str, typer.Argument(help="The key id.")],
    profile: ProfileName = None,
    endpoint: Endpoint = None,
    region: Region = None,
    access_key_id: AccessKeyId = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
    as_json: Json = False,
) -> None:
    """Detect who used a key in the last 365 days: services and principals, last call time.

    Over the API (StartKeyAssociationDetection, then DescribeKeyAssociations until it ends); as the
    operator with --data-dir, --config or --database-url, from what the server's workers wrote (they
    write every few seconds).
    """
    if operator_mode(data_dir, config, database_url):
        status, found = _detect_on_store(key_id, config, data_dir, database_url)
    else:
        status, found = _detect_over_api(key_id, client(profile, endpoint, region, access_key_id))
    if as_json:
        print_json({"KeyId": key_id, "Status": status, "Associations": found})
    else:
        rows = [
            (item.get("Service"), item.get("Principal"), item.get("LastCallTime"), item.get("CallCount"))
            for item in found
        ]
        print_table(
            ("Service", "Principal", "Last call (UTC)", "Calls"), rows, title=f"{key_id}: detection {status}"
        )
    if status != "Succeeded":
        raise typer.Exit(1)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,  # a pipe or a log gets no spinner and no blank line
    )


def _detect_over_api(key_id: str, kms: Any) -> tuple[str, list[dict[str, Any]]]:
    with requests(), _progress() as progress:
        progress.add_task(f"detecting who used {key_id}")
        kms.call("StartKeyAssociationDetection", KeyId=key_id)
        deadline = time.monotonic() + _DETECTION_SECONDS
        while True:
            body = kms.call("DescribeKeyAssociations", KeyId=key_id)
            if body.get("Status") != "Running" or time.monotonic() > deadline:
                break
            time.sleep(_POLL_SECONDS)
    found = body.get("Associations", {}).get("Association", [])
    return str(body.get("Status")), list(found)


def _detect_on_store(
    key_id: str, config: Any, data_dir: Any, database_url: Any
) -> tuple[str, list[dict[str, Any]]]:
    from openkms.cli.common import _settings
    from openkms.server.runtime import build_store
    from openkms.service.usage import detect_now

    settings = _settings(config, data_dir=data_dir, database_url=database_url)
    store = build_store(settings, cache_ttl=0.0)
    try:
        with _progress() as progress:
            progress.add_task(f"detecting who used {key_id}")
            row, found = detect_now(store.db, store.clock, key_id)
    finally:
        store.db.dispose()
    if row is None:
        fail("Forbidden.KeyNotFound", f"no key {key_id} in this store")
    associations = [
        {
            "Service": item.service,
            "Principal": item.principal,
            "LastCallTime": item.last_call.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "CallCount": item.calls,
        }
        for item in found
    ]
    return row.status, associations


def _show_metadata(metadata: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json({"KeyMetadata": metadata})
    else:
        print_fields(sorted(metadata.items(), key=lambda item: item[0] != "KeyId"))
