"""`openkms aap create|client-key|list|delete` (application access points for the instance API, the
operator's side) and `openkms instance ca` (the deployment's CA certificate, for clients to trust).

`aap create` makes a network rule, a permission policy and an access point in one go and writes the
client key file in the shape the instance SDKs load (`{"KeyId": "KAAP.<uuid>", "PrivateKeyData":
"<base64 PKCS#12>"}`) and its password, each 0600, as Alibaba's console names them:
`clientKey_<KeyId>.json` and `clientKey_<KeyId>_Password.txt`. Each step is one request of the
operator through the runner (audited like an API call). The password is generated unless given on
stdin, and is never printed.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from openkms.cli.common import ConfigFile, DatabaseUrl, DataDir, _admin_call, _runtime, _settings, console

if TYPE_CHECKING:
    from openkms.server.runtime import Runtime
    from openkms.service.context import RequestContext

aap_app = typer.Typer(
    no_args_is_help=True, help="Application access points and client keys for the instance API."
)

Account = Annotated[
    str | None, typer.Option("--account-id", help="The main account (uid); default: the default account.")
]
Region = Annotated[str | None, typer.Option("--region", help="The region; default: the default region.")]
OutDir = Annotated[
    Path, typer.Option("--out-dir", help="Folder for the client key file and its password file.")
]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the client key's password from stdin (else generated).")
]


def register(app: typer.Typer, instance_app: typer.Typer) -> None:
    app.add_typer(aap_app, name="aap")
    instance_app.command("ca")(instance_ca)


def _operator(
    config: Path | None,
    data_dir: Path | None,
    database_url: str | None,
    account_id: str | None,
    region: str | None,
    steps: Callable[[Runtime, Callable[[str], RequestContext]], Any],
) -> Any:
    """Open the runtime once; `steps(runtime, context_for)` runs its requests, each with a fresh
    operator context of the account and region (one audited request each)."""
    from openkms.cli.admin import operator_context
    from openkms.types import AccountId

    settings = _settings(config, data_dir=data_dir, database_url=database_url)
    with _runtime(settings) as runtime:
        account = AccountId(account_id) if account_id else runtime.services.instances.root_account()

        def context_for(_: str) -> RequestContext:
            return operator_context(runtime, account, region or settings.default_region)

        return steps(runtime, context_for)


def _run(runtime: Runtime, ctx: RequestContext, action: str, call: Callable[[], Any]) -> Any:
    from openkms.cli.admin import run_admin

    return _admin_call(lambda: run_admin(runtime, ctx, action, call))


def _password(from_stdin: bool) -> str:
    from openkms.domain.access_points import check_client_key_password
    from openkms.errors import InvalidArgument

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        try:
            return check_client_key_password(password)
        except InvalidArgument as exc:
            console.print(f"[red]refused:[/red] {exc.message}")
            raise typer.Exit(2) from None
    alphabet = string.ascii_letters + string.digits
    while True:  # 32 characters of letters and digits: ~190 bits; retried until both kinds are in
        password = "".join(secrets.choice(alphabet) for _ in range(32))
        if any(c.isdigit() for c in password) and any(c.isalpha() for c in password):
            return password


def _write_private(path: Path, data: str) -> None:
    """A new file for this user alone (0600); an existing file is never overwritten."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        console.print(f"[red]refused:[/red] {path} exists; choose another --out-dir")
        raise typer.Exit(1) from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(data)


def _issue_client_key(
    runtime: Runtime, ctx: RequestContext, aap_name: str, password: str, out_dir: Path
) -> tuple[Path, Path]:
    services = runtime.services
    issued = _run(
        runtime,
        ctx,
        "CreateClientKey",
        lambda: services.client_keys.create(ctx, aap_name, password, None, None),
    )
    key_id = issued.client_key.client_key_id
    out_dir.mkdir(parents=True, exist_ok=True)
    key_file = out_dir / f"clientKey_{key_id}.json"
    password_file = out_dir / f"clientKey_{key_id}_Password.txt"
    _write_private(
        key_file, json.dumps({"KeyId": key_id, "PrivateKeyData": issued.private_key_data_base64()})
    )
    _write_private(password_file, password)
    return key_file, password_file


@aap_app.command("create")
def aap_create(
    name: Annotated[str, typer.Argument(help="The access point's name (also names its rule and policy).")],
    instance: Annotated[
        str, typer.Option("--instance", help="The instance (kst-...) whose keys it may use.")
    ],
    source: Annotated[
        str,
        typer.Option(
            "--source", help="Source addresses and CIDR blocks, comma-separated (the network rule)."
        ),
    ],
    resources: Annotated[
        str, typer.Option("--resources", help="Resource patterns, comma-separated (default key/*).")
    ] = "key/*",
    out_dir: OutDir = Path("."),
    password_stdin: PasswordStdin = False,
    account_id: Account = None,
    region: Region = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Create a network rule (`<name>-network`), a policy (`<name>-policy`, CryptoServiceKeyUser on the
    instance), the access point, and a client key; write the client key file and its password."""
    from openkms.domain.access_points import InstancePermission

    password = _password(password_stdin)
    rule_name, policy_name = f"{name}-network", f"{name}-policy"

    def steps(runtime: Runtime, context_for: Callable[[str], RequestContext]) -> tuple[Path, Path]:
        points = runtime.services.access_points
        ctx = context_for("CreateNetworkRule")
        _run(
            runtime,
            ctx,
            "CreateNetworkRule",
            lambda: points.create_network_rule(ctx, rule_name, "Private", source, None),
        )
        ctx = context_for("CreatePolicy")
        _run(
            runtime,
            ctx,
            "CreatePolicy",
            lambda: points.create_policy(
                ctx,
                policy_name,
                instance,
                json.dumps([InstancePermission.KEY_USER.value]),
                resources,
                json.dumps({"NetworkRules": [rule_name]}),
                None,
            ),
        )
        ctx = context_for("CreateApplicationAccessPoint")
        _run(
            runtime,
            ctx,
            "CreateApplicationAccessPoint",
            lambda: points.create_access_point(ctx, name, json.dumps([policy_name]), None, None),
        )
        return _issue_client_key(runtime, context_for("CreateClientKey"), name, password, out_dir)

    key_file, password_file = _operator(config, data_dir, database_url, account_id, region, steps)
    typer.echo(
        json.dumps(
            {
                "ApplicationAccessPoint": name,
                "ClientKeyFile": str(key_file),
                "PasswordFile": str(password_file),
            }
        )
    )


@aap_app.command("client-key")
def aap_client_key(
    name: Annotated[str, typer.Argument(help="The access point the new client key authenticates as.")],
    out_dir: OutDir = Path("."),
    password_stdin: PasswordStdin = False,
    account_id: Account = None,
    region: Region = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Create another client key of an access point and write its file and password file."""
    password = _password(password_stdin)
    key_file, password_file = _operator(
        config,
        data_dir,
        database_url,
        account_id,
        region,
        lambda runtime, context_for: _issue_client_key(
            runtime, context_for("CreateClientKey"), name, password, out_dir
        ),
    )
    typer.echo(
        json.dumps(
            {
                "ApplicationAccessPoint": name,
                "ClientKeyFile": str(key_file),
                "PasswordFile": str(password_file),
            }
        )
    )


@aap_app.command("list")
def aap_list(
    account_id: Account = None,
    region: Region = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """List the access points of an account in a region, with their policies and client keys."""

    def steps(runtime: Runtime, context_for: Callable[[str], RequestContext]) -> list[dict[str, object]]:
        services = runtime.services
        ctx = context_for("ListApplicationAccessPoints")
        points, _ = _run(
            runtime,
            ctx,
            "ListApplicationAccessPoints",
            lambda: services.access_points.list_access_points(ctx, 1, 100),
        )
        ctx = context_for("ListClientKeys")
        keys = _run(runtime, ctx, "ListClientKeys", lambda: services.client_keys.list(ctx, None))
        return [
            {
                "Name": point.name,
                "Policies": list(point.policies),
                "ClientKeys": [
                    {"ClientKeyId": key.client_key_id, "NotAfter": key.not_after.isoformat()}
                    for key in keys
                    if key.aap_name == point.name
                ],
            }
            for point in points
        ]

    typer.echo(json.dumps(_operator(config, data_dir, database_url, account_id, region, steps), indent=2))


@aap_app.command("delete")
def aap_delete(
    name: Annotated[str, typer.Argument(help="The access point to delete (its client keys go with it).")],
    account_id: Account = None,
    region: Region = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Delete an access point and its client keys (its policies and network rules stay)."""

    def steps(runtime: Runtime, context_for: Callable[[str], RequestContext]) -> None:
        ctx = context_for("DeleteApplicationAccessPoint")
        _run(
            runtime,
            ctx,
            "DeleteApplicationAccessPoint",
            lambda: runtime.services.access_points.delete_access_point(ctx, name),
        )

    _operator(config, data_dir, database_url, account_id, region, steps)
    console.print(f"application access point {name} deleted")


def instance_ca(
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the CA certificate (PEM) here; default: stdout.")
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """The deployment's CA certificate (PEM): what clients trust to verify `serve --tls-instance-ca`
    (the same as GetKmsInstance's CaCertificateChainPem)."""
    from openkms.service.outcome import Outcome

    def steps(runtime: Runtime, context_for: Callable[[str], RequestContext]) -> str:
        ctx = context_for("GetInstanceCaCertificate")
        return str(
            _run(
                runtime,
                ctx,
                "GetInstanceCaCertificate",
                lambda: Outcome(runtime.services.instance_ca.chain_pem()),
            )
        )

    pem = _operator(config, data_dir, database_url, None, None, steps)
    if out is None:
        typer.echo(pem, nl=False)
        return
    out.write_text(pem, encoding="ascii")
    console.print(f"instance CA certificate written to {out}")
