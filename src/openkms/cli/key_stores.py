"""`openkms instance create|update|list` for hardware and external key management instances, and
the operator side of `openkms key create` (cli/keys.py; with the OpenKMS extensions: additional usages,
external key id).

Each command runs through the runner as the operator in the instance's account (audited like any
request). A PIN is never taken on the command line: `--pin-source env:NAME` or `file:PATH` (0600);
an external instance's SigV4 secret key is read from stdin or a hidden prompt.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from openkms.cli.common import ConfigFile, DatabaseUrl, DataDir, _admin_call, _runtime, _settings
from openkms.cli.output import print_json, print_table

KIND_NAMES = {"hsm": "hardware", "hardware": "hardware", "external": "external", "xks": "external"}

Name = Annotated[str, typer.Option("--name", help="A name for the instance (default: its id).")]
Account = Annotated[
    str | None, typer.Option("--account-id", help="The main account (uid); default: the default account.")
]
Region = Annotated[str | None, typer.Option("--region", help="The region; default: the default region.")]


def register(instance_app: typer.Typer) -> None:
    instance_app.command("create")(instance_create)
    instance_app.command("update")(instance_update)
    instance_app.command("list")(instance_list)


def _hardware_settings(
    module: str | None,
    token_label: str | None,
    token_serial: str | None,
    pin_source: str | None,
    sessions: int | None,
) -> dict[str, str]:
    found = {
        "module": module,
        "token_label": token_label,
        "token_serial": token_serial,
        "pin_source": pin_source,
        "sessions": None if sessions is None else str(sessions),
    }
    return {name: value for name, value in found.items() if value}


def _external_settings(
    endpoint: str | None,
    path_prefix: str | None,
    access_key_id: str | None,
    ca_file: str | None,
    allow_http: bool,
    timeout: float | None,
) -> dict[str, str]:
    found = {
        "endpoint": endpoint,
        "path_prefix": path_prefix,
        "access_key_id": access_key_id,
        "ca_file": ca_file,
        "allow_http": "true" if allow_http else None,
        "timeout_seconds": None if timeout is None else str(timeout),
    }
    return {name: value for name, value in found.items() if value}


def _read_secret(secret_stdin: bool) -> Any:
    from openkms.secret import SecretBytes

    if secret_stdin:
        raw = sys.stdin.readline().rstrip("\r\n")
    else:
        raw = typer.prompt("XKS proxy secret access key", hide_input=True)
    return SecretBytes(raw.encode("utf-8"))


def _print_instance(instance: Any) -> None:
    health = instance.health
    state = "unchecked" if health is None else ("healthy" if health.ok else "UNAVAILABLE")
    typer.echo(f"{instance.instance_id}  {instance.kind.value:9} {instance.name}  [{state}]")
    if health is not None and health.detail:
        typer.echo(f"    {health.detail}")


def instance_create(
    kind: Annotated[str, typer.Option("--kind", help="hsm (hardware, PKCS#11) or external (an XKS proxy).")],
    name: Name = "",
    module: Annotated[str | None, typer.Option("--module", help="hsm: the PKCS#11 module (.so).")] = None,
    token_label: Annotated[str | None, typer.Option("--token-label", help="hsm: the token's label.")] = None,
    token_serial: Annotated[
        str | None, typer.Option("--token-serial", help="hsm: the token's serial.")
    ] = None,
    pin_source: Annotated[
        str | None,
        typer.Option("--pin-source", help="hsm: where the user PIN is: env:NAME or file:PATH (0600)."),
    ] = None,
    sessions: Annotated[
        int | None, typer.Option("--sessions", help="hsm: sessions kept open (default 4).")
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="external: the proxy's base URI (https://host:port).")
    ] = None,
    path_prefix: Annotated[
        str | None,
        typer.Option("--path-prefix", help="external: the proxy's URI path prefix (/example/prefix)."),
    ] = None,
    access_key_id: Annotated[
        str | None,
        typer.Option("--access-key-id", help="external: the SigV4 access key id OpenKMS signs with."),
    ] = None,
    secret_stdin: Annotated[
        bool, typer.Option("--secret-stdin", help="external: read the SigV4 secret access key from stdin.")
    ] = False,
    ca_file: Annotated[
        str | None,
        typer.Option("--ca-file", help="external: CA bundle the proxy's certificate must chain to."),
    ] = None,
    allow_http: Annotated[
        bool, typer.Option("--allow-http", help="external: allow plain HTTP to the proxy (development only).")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="external: seconds to wait for the proxy (default 3).")
    ] = None,
    account_id: Account = None,
    region: Region = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Create a hardware (HSM, PKCS#11) or external (XKS proxy) key management instance.

    The instance is written only once its backend answered a health check: the token logged in, or
    the proxy answered GetHealthStatus with OpenKMS's credential.
    """
    from openkms.types import InstanceKind

    kind_name = KIND_NAMES.get(kind.lower())
    if kind_name is None:
        raise typer.BadParameter("choose hsm or external", param_hint="--kind")
    instance_kind = InstanceKind(kind_name)
    secret = None
    if instance_kind is InstanceKind.HARDWARE:
        settings_given = _hardware_settings(module, token_label, token_serial, pin_source, sessions)
    else:
        settings_given = _external_settings(
            endpoint, path_prefix, access_key_id, ca_file, allow_http, timeout
        )
        secret = _read_secret(secret_stdin)
    created = _operator_run(
        config,
        data_dir,
        database_url,
        account_id,
        region,
        "CreateKmsInstance",
        lambda services, ctx: services.key_stores.create(ctx, instance_kind, name, settings_given, secret),
    )
    _print_instance(created)


def instance_update(
    instance_id: Annotated[str, typer.Argument(help="The instance (kst-...) to change.")],
    pin_source: Annotated[
        str | None, typer.Option("--pin-source", help="hsm: env:NAME or file:PATH.")
    ] = None,
    sessions: Annotated[int | None, typer.Option("--sessions", help="hsm: sessions kept open.")] = None,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="external: the proxy's base URI.")
    ] = None,
    path_prefix: Annotated[
        str | None, typer.Option("--path-prefix", help="external: URI path prefix.")
    ] = None,
    access_key_id: Annotated[
        str | None, typer.Option("--access-key-id", help="external: access key id.")
    ] = None,
    new_secret: Annotated[
        bool,
        typer.Option(
            "--new-secret", help="external: read a new secret access key (stdin with --secret-stdin)."
        ),
    ] = False,
    secret_stdin: Annotated[bool, typer.Option("--secret-stdin", help="Read the secret from stdin.")] = False,
    ca_file: Annotated[str | None, typer.Option("--ca-file", help="external: CA bundle.")] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="external: seconds to wait.")] = None,
    account_id: Account = None,
    region: Region = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Change an instance's settings (a PIN source, a proxy endpoint, a rotated SigV4 credential); the
    new settings must pass a health check before they are kept."""
    changes = {
        **_hardware_settings(None, None, None, pin_source, sessions),
        **_external_settings(endpoint, path_prefix, access_key_id, ca_file, False, timeout),
    }
    secret = _read_secret(secret_stdin) if new_secret else None
    updated = _operator_run(
        config,
        data_dir,
        database_url,
        account_id,
        region,
        "UpdateKmsInstance",
        lambda services, ctx: services.key_stores.update(ctx, instance_id, changes, secret),
    )
    _print_instance(updated)


def instance_list(
    account_id: Account = None,
    region: Region = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the instances as JSON.")] = False,
) -> None:
    """List the key management instances of an account in a region, with their backends' health."""
    found = _operator_run(
        config,
        data_dir,
        database_url,
        account_id,
        region,
        "ListKmsInstances",
        lambda services, ctx: _outcome(services.instances.list_instances(ctx, 1, 1000)[0]),
    )
    rows = [_instance_row(instance) for instance in found]
    if as_json:
        print_json({"KmsInstances": rows})
        return
    columns = ("KmsInstanceId", "Kind", "Name", "Health", "Detail")
    print_table(columns, [[row.get(column) for column in columns] for row in rows])


def _instance_row(instance: Any) -> dict[str, object]:
    health = instance.health
    return {
        "KmsInstanceId": instance.instance_id,
        "Kind": instance.kind.value,
        "Name": instance.name,
        "Health": "unchecked" if health is None else ("healthy" if health.ok else "UNAVAILABLE"),
        "Detail": None if health is None else health.detail or None,
    }


def operator_key_create(
    config: Any,
    data_dir: Any,
    database_url: Any,
    account_id: str | None,
    region: str | None,
    *,
    spec: str | None,
    usage: str | None,
    description: str,
    instance: str | None,
    additional_usages: str | None,
    external_key_id: str | None,
    protection_level: str | None,
    origin: str | None,
    rotation_interval: str | None,
) -> dict[str, object]:
    """`openkms key create` as the operator on the store (cli/keys.py): the new key's KeyMetadata."""
    from openkms.api.actions.keys import key_metadata
    from openkms.service.keys import CreateKeyRequest

    request = CreateKeyRequest(
        key_spec=spec,
        key_usage=usage,
        origin=origin,
        protection_level=protection_level,
        description=description,
        instance_id=instance,
        enable_automatic_rotation=rotation_interval is not None,
        rotation_interval=rotation_interval,
        additional_usages=additional_usages,
        external_key_id=external_key_id,
    )
    created = _operator_run(
        config,
        data_dir,
        database_url,
        account_id,
        region,
        "CreateKey",
        lambda services, ctx: services.keys.create_key(ctx, request),
    )
    return key_metadata(created)


def _outcome(value: Any) -> Any:
    from openkms.service.outcome import Outcome

    return Outcome(value)


def _operator_run(
    config: Any,
    data_dir: Any,
    database_url: Any,
    account_id: str | None,
    region: str | None,
    action: str,
    call: Any,
) -> Any:
    """Run `call(services, ctx)` through the runner as the operator of the account, audited."""
    from openkms.cli.admin import operator_context, run_admin
    from openkms.types import AccountId

    settings = _settings(config, data_dir=data_dir, database_url=database_url)
    with _runtime(settings) as runtime:
        services = runtime.services
        account = AccountId(account_id) if account_id else services.instances.root_account()
        ctx = operator_context(runtime, account, region or settings.default_region)
        return _admin_call(lambda: run_admin(runtime, ctx, action, lambda: call(services, ctx)))
