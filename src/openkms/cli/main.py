"""`openkms` commands. Each one loads the settings the same way the server does."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from openkms.cli import aap, crypto, help_format, key_stores, keys
from openkms.cli.aliases import alias_app
from openkms.cli.backup import backup, restore
from openkms.cli.common import (
    ConfigFile,
    DatabaseUrl,
    DataDir,
    _admin_call,
    _runtime,
    _settings,
    console,
)
from openkms.cli.csr import csr
from openkms.cli.keyring import keyring_app
from openkms.cli.output import fail
from openkms.cli.profile_commands import account_list, profile_app
from openkms.cli.serve import serve
from openkms.cli.xks_proxy import xks_proxy_app
from openkms.config import Settings

if TYPE_CHECKING:
    from openkms.domain.audit_heads import Head

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="OpenKMS: a self-hosted KMS.",
)
audit_app = typer.Typer(no_args_is_help=True, help="Work with the audit log.")
app.add_typer(audit_app, name="audit")
account_app = typer.Typer(
    no_args_is_help=True,
    help="Main accounts (tenants): list who you are and your account's users; create and set passwords "
    "as the operator.",
)
app.add_typer(account_app, name="account")
key_app = typer.Typer(
    no_args_is_help=True,
    help="Keys: list, describe, create, enable, disable, schedule and cancel deletion, associations.",
)
app.add_typer(key_app, name="key")
app.add_typer(alias_app, name="alias")
app.add_typer(profile_app, name="profile")
instance_app = typer.Typer(
    no_args_is_help=True,
    help="Create hardware and external key management instances; share them; set their quota.",
)
app.add_typer(instance_app, name="instance")
key_stores.register(instance_app)
keys.register(key_app)
aap.register(app, instance_app)
app.command("serve")(serve)
crypto.register(app)
account_app.command("list")(account_list)
app.command("csr")(csr)
app.command("backup")(backup)
app.command("restore")(restore)
dev_app = typer.Typer(no_args_is_help=True, help="The development clock (servers started with --dev-clock).")
app.add_typer(dev_app, name="dev")
service_key_app = typer.Typer(no_args_is_help=True, help="Service keys (alias/acs/<service>).")
app.add_typer(service_key_app, name="service-key")
app.add_typer(xks_proxy_app, name="xks-proxy")
app.add_typer(keyring_app, name="keyring")
T = TypeVar("T")
assert help_format  # flags show no `<bool>` label in --help


def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"openkms {version('openkms')}")
        raise typer.Exit(0)


@app.callback()
def _private_files(
    _version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Every command creates its files (database, audit log, keys, sockets) for its user alone."""
    from openkms.server.file_modes import keep_new_files_private

    keep_new_files_private()


@app.command()
def migrate(data_dir: DataDir = None, database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:
    """Bring the database schema to the newest version."""
    from openkms.server.file_modes import tighten_data_dir
    from openkms.server.runtime import build_store, upgrade_schema

    settings = _settings(config, data_dir=data_dir, database_url=database_url)
    tighten_data_dir(settings.data_dir)
    store = build_store(settings, cache_ttl=0.0)
    try:
        upgrade_schema(store)
    finally:
        store.db.dispose()
    console.print("schema is up to date")


@app.command()
def unseal(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Give the passphrase to every worker of a sealed server on this machine.

    The passphrase comes from OPENKMS_UNSEAL_PASSPHRASE or a hidden prompt.
    """
    settings = _settings(config, data_dir=data_dir)
    passphrase = settings.unseal_passphrase or typer.prompt("Unseal passphrase", hide_input=True)
    sockets = sorted((settings.data_dir / "run").glob("unseal-*.sock"))
    if not sockets:
        console.print("no sealed server found (nothing is waiting in the data dir's run/ folder)")
        raise typer.Exit(1)
    failures = 0
    for path in sockets:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.settimeout(30)
                connection.connect(str(path))
                connection.sendall(passphrase.encode("utf-8") + b"\n")
                answer = connection.makefile("rb").readline().decode("utf-8").strip()
        except (ConnectionRefusedError, FileNotFoundError):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # a socket left by a process that is gone
            continue
        typer.echo(f"{path.name}: {answer}")
        failures += not answer.startswith("ok")
    raise typer.Exit(1 if failures else 0)


@account_app.command("create")
def account_create(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print uid, access key id and secret as JSON.")
    ] = False,
) -> None:
    """Create a main account with a software instance per region and its root access key.

    Works against the store of a running server. The secret is printed once, here, and stored wrapped;
    the root of trust is needed for that (the key file, or OPENKMS_UNSEAL_PASSPHRASE or a prompt).
    """
    import json

    from openkms.cli.admin import operator_context, run_admin
    from openkms.resource import Resource
    from openkms.server.runtime import build_store, upgrade_schema
    from openkms.service.bootstrap import bootstrap_store, create_account
    from openkms.service.outcome import Outcome

    settings = _settings(config, data_dir=data_dir, database_url=database_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    passphrase = None
    if settings.seal == "passphrase" and not settings.unseal_passphrase:
        passphrase = typer.prompt("Unseal passphrase", hide_input=True)
    store = build_store(settings, cache_ttl=0.0)
    try:  # both idempotent: a store a server already runs on is left as it is
        upgrade_schema(store)
        bootstrap_store(store.db, settings.regions, store.clock)
    finally:
        store.db.dispose()
    with _runtime(settings, passphrase) as runtime:
        services = runtime.services
        ctx = operator_context(runtime, services.instances.root_account(), settings.default_region)

        def use_case() -> Outcome[Any]:
            made = create_account(services.db, services.keystore, services.clock, settings.regions)
            return Outcome(made, Resource.account(made.account_id))

        created = _admin_call(lambda: run_admin(runtime, ctx, "CreateAccount", use_case))
    secret = created.secret.reveal().decode("ascii")
    if as_json:
        document = {
            "AccountId": created.account_id,
            "AccessKeyId": created.access_key_id,
            "AccessKeySecret": secret,
        }
        typer.echo(json.dumps(document))
    else:
        typer.echo(f"AccountId:       {created.account_id}")
        typer.echo(f"AccessKeyId:     {created.access_key_id}")
        typer.echo(f"AccessKeySecret: {secret}   (shown once; store it now)")


@account_app.command("password")
def account_password(
    account_id: Annotated[
        str | None, typer.Option("--account-id", help="The main account (uid); default: the default account.")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Set the console password of a main account's root (its sign-in name is the account uid).

    The password is read from a hidden prompt (typed twice) or with --password-stdin, never from the
    command line; it must meet the password policy. The root's console sessions end.
    """
    import sys

    from openkms.cli.admin import operator_context, run_admin
    from openkms.resource import Resource
    from openkms.service.outcome import Outcome
    from openkms.types import AccountId

    settings = _settings(config, data_dir=data_dir, database_url=database_url)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("New console password", hide_input=True, confirmation_prompt=True)
    with _runtime(settings) as runtime:
        services = runtime.services
        account = AccountId(account_id) if account_id else services.instances.root_account()
        ctx = operator_context(runtime, account, settings.default_region)

        def use_case() -> Outcome[None]:
            services.sign_in.set_account_password(account, password)
            return Outcome(None, Resource.account(account))

        _admin_call(lambda: run_admin(runtime, ctx, "SetAccountPassword", use_case))
    typer.echo(f"console password set for {account} (sign in as {account})")


def _instance_admin(settings: Settings, instance_id: str, action: str, change: Callable[[Any], T]) -> T:
    """One operator change of an instance's sharing, through the runner (audited, in the instance's
    account). `change` gets the instance-sharing service."""
    from openkms.cli.admin import operator_context, run_admin
    from openkms.resource import Resource
    from openkms.service.outcome import Outcome

    with _runtime(settings) as runtime:
        access = runtime.services.access
        instance = _admin_call(lambda: access.instance(instance_id))
        resource = Resource.instance(instance.region_id, instance.account_id, instance.instance_id)
        ctx = operator_context(runtime, instance.account_id, instance.region_id)
        return _admin_call(lambda: run_admin(runtime, ctx, action, lambda: Outcome(change(access), resource)))


@instance_app.command("share")
def instance_share(
    instance_id: Annotated[str, typer.Argument(help="The instance (kst-...) to share.")],
    account: Annotated[str, typer.Option("--account", help="The main account (uid) to share it with.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Share an instance with another main account: it may create keys there, usable by both."""
    settings = _settings(config, data_dir=data_dir, database_url=database_url)
    added = _instance_admin(
        settings, instance_id, "ShareInstance", lambda access: access.share(instance_id, account)
    )
    typer.echo(f"{instance_id} {'is now' if added else 'was already'} shared with {account}")


@instance_app.command("unshare")
def instance_unshare(
    instance_id: Annotated[str, typer.Argument(help="The shared instance (kst-...).")],
    account: Annotated[str, typer.Option("--account", help="The main account (uid) to stop sharing with.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Stop sharing: the account creates no more keys there; keys it made keep their policies."""
    settings = _settings(config, data_dir=data_dir, database_url=database_url)
    removed = _instance_admin(
        settings, instance_id, "UnshareInstance", lambda access: access.unshare(instance_id, account)
    )
    typer.echo(f"{instance_id} {'is no longer' if removed else 'was not'} shared with {account}")


@instance_app.command("quota")
def instance_quota(
    instance_id: Annotated[str, typer.Argument(help="The instance (kst-...).")],
    quota: Annotated[
        int | None, typer.Argument(help="New access quota; omit to show the current use.")
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Show or set how many other main accounts the instance's key policies may grant."""
    settings = _settings(config, data_dir=data_dir, database_url=database_url)
    if quota is not None:
        new_quota = quota
        _instance_admin(
            settings, instance_id, "SetInstanceQuota", lambda access: access.set_quota(instance_id, new_quota)
        )
    limit, held, cooling = _instance_admin(
        settings, instance_id, "DescribeInstanceQuota", lambda access: access.usage(instance_id)
    )
    typer.echo(f"quota {limit}; held by {len(held)}: {', '.join(held) or '-'}; "
               f"returning soon: {', '.join(cooling) or '-'}")  # fmt: skip


@audit_app.command("verify")
def audit_verify(
    paths: Annotated[list[Path] | None, typer.Argument(help="Audit files or folders.")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Check the audit log: each file's keyed hash chain, the links between a worker's files, and the
    sealed heads in the database (records cut off the end, files deleted). Exit 1 if anything is broken."""
    from rich.markup import escape

    from openkms.audit.verify import verify_directory, verify_file
    from openkms.audit.wal import wal_path
    from openkms.cli.output import fail

    settings = _settings(config, data_dir=data_dir)
    own_folder = (settings.data_dir / "audit").resolve()
    missing = [str(target) for target in paths or [settings.data_dir / "audit"] if not target.exists()]
    if missing:  # checked first: nothing is opened or created in a folder that is not a data dir
        fail(
            "NoAuditLog",
            f"no audit log at {', '.join(missing)}",
            "run it in the server's folder, or give --data-dir DIR or audit files and folders",
        )
    if paths and data_dir is None and config is None:
        key, heads = None, None
        notes = ["no --data-dir: keyed hashes and sealed heads are not checked"]
    else:
        key, heads, notes = _audit_trust(settings)
    for note in notes:
        console.print(f"[yellow]note[/yellow]    {escape(note)}")
    if not paths:
        paths = [settings.data_dir / "audit"]
    broken = 0
    for target in paths:
        if target.is_dir():
            known = heads if target.resolve() == own_folder else None
            reports = verify_directory(target, key=key, heads=known)
        else:
            head = next((h for h in heads or () if h.file == target.name), None)
            reports = [(target, verify_file(target, key=key, head=head))]
        for path, report in reports:
            if report.ok:
                console.print(f"[green]ok[/green]      {escape(str(path))} ({report.records} records)")
            else:
                broken += 1
                where = f"line {report.first_bad_line}: " if report.first_bad_line else ""
                console.print(f"[red]broken[/red]  {escape(str(path))}: {escape(where + str(report.reason))}")
            for note in report.notes:
                console.print(f"[yellow]note[/yellow]    {escape(path.name)}: {escape(note)}")
            if wal_path(path).exists():
                console.print(
                    f"[yellow]note[/yellow]    {escape(str(path))} has a ring "
                    f"({escape(wal_path(path).name)}): its server is "
                    "running, or stopped without closing the log; `openkms serve` copies the ring's "
                    "records into the log before serving"
                )
    raise typer.Exit(1 if broken else 0)


def _audit_trust(settings: Settings) -> tuple[bytes | None, list[Head] | None, list[str]]:
    """The chain key (when the store can be unsealed here) and this node's sealed heads."""
    from openkms.server.runtime import AUDIT_CHAIN_SECRET, build_store, head_store
    from openkms.service.seal import root_of_trust
    from openkms.service.service_secrets import service_secret

    notes: list[str] = []
    try:
        store = build_store(settings, cache_ttl=0.0)
    except Exception as exc:
        return (
            None,
            None,
            [f"the store could not be opened ({type(exc).__name__}): only the chains are checked"],
        )
    try:
        try:
            heads: list[Head] | None = head_store(store, settings.data_dir).heads()
        except Exception as exc:
            heads = None
            notes.append(f"sealed heads not read ({type(exc).__name__}): run `openkms migrate`")
        key = None
        root = root_of_trust(settings, passphrase=settings.unseal_passphrase)
        if root is None:
            notes.append("the store is sealed: keyed hashes are not checked (set OPENKMS_UNSEAL_PASSPHRASE)")
        else:
            try:
                store.keystore.unseal(root)
                key = service_secret(
                    store.db, store.keystore, store.clock, AUDIT_CHAIN_SECRET, "audit chain HMAC"
                ).reveal()
            except Exception as exc:
                notes.append(
                    f"the store could not be unsealed ({type(exc).__name__}): keyed hashes not checked"
                )
            finally:
                store.keystore.seal()
        return key, heads, notes
    finally:
        store.db.dispose()


@dev_app.command("advance")
def dev_advance(
    duration: Annotated[str, typer.Argument(help="How far to move the clock: 30d, 12h, 15m or 90s.")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Move the development clock of the server in this data dir forward (it never goes back)."""
    from openkms.clock import DEV_CLOCK_FILE, DevClock, iso_utc, parse_duration

    settings = _settings(config, data_dir=data_dir)
    path = settings.data_dir / "run" / DEV_CLOCK_FILE
    if not path.exists():
        console.print("the server in this data dir was not started with --dev-clock; refusing")
        raise typer.Exit(1)
    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        fail("InvalidDuration", str(exc), "30d, 12h, 15m or 90s", status=2)
    clock = DevClock(path)
    offset = clock.advance(seconds)
    typer.echo(f"development clock now {iso_utc(clock.now())} (offset {int(offset)}s)")


@service_key_app.command("create")
def service_key_create(
    service: Annotated[str, typer.Argument(help="The service, e.g. oss: the key is alias/acs/<service>.")],
    region: Annotated[str | None, typer.Option(help="Region (default: the first configured).")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Create the service key of a service in the root account (idempotent: prints the existing one)."""
    from openkms.api.wire_errors import to_wire
    from openkms.cli.service_keys import create_service_key
    from openkms.errors import OpenKMSError

    settings = _settings(config, data_dir=data_dir, database_url=database_url)
    try:
        key_id, created = create_service_key(settings, service, region or settings.default_region)
    except Exception as exc:
        code = to_wire(exc).code if isinstance(exc, OpenKMSError) else type(exc).__name__
        fail(code, f"service key not created: {getattr(exc, 'message', None) or exc}")
    typer.echo(f"{'created' if created else 'exists'} alias/acs/{service} -> {key_id}")


# Click's UsageError and NoArgsIsHelpError, from whichever Click this Typer uses (newer Typers carry
# their own copy, so `import click` would give other classes).
_UsageError: type[Exception] = typer.BadParameter.__mro__[1]
_NoArgsIsHelp = getattr(sys.modules[_UsageError.__module__], "NoArgsIsHelpError", ())


def run() -> None:
    """The `openkms` program. A wrong command line, and a failure nobody foresaw, are one line with a
    code and a hint, never a traceback (`OPENKMS_DEBUG=1` shows the traceback)."""
    from openkms.cli.output import error_line

    try:
        status = app(standalone_mode=False)
    except typer.TyperException as exc:  # Click's exceptions: a wrong command line, a missing file
        if isinstance(exc, _NoArgsIsHelp):
            exc.show()
        elif isinstance(exc, _UsageError):
            context = getattr(exc, "ctx", None)
            path = context.command_path if context is not None else "openkms"
            error_line("InvalidUsage", exc.format_message(), f"`{path} --help`")
        else:
            error_line(type(exc).__name__, exc.format_message())
        sys.exit(exc.exit_code)
    except typer.Abort:
        error_line("Aborted", "stopped before finishing")
        sys.exit(1)
    except Exception as exc:
        if os.environ.get("OPENKMS_DEBUG"):
            raise
        _unforeseen(exc)
        sys.exit(1)
    sys.exit(status if isinstance(status, int) else 0)


def _unforeseen(exc: Exception) -> None:
    from openkms.cli.output import error_line
    from openkms.errors import OpenKMSError

    if isinstance(exc, OpenKMSError):
        from openkms.api.wire_errors import to_wire

        error_line(to_wire(exc).code, exc.message)
        return
    hint = "OPENKMS_DEBUG=1 shows the traceback"
    if isinstance(exc, OSError) and exc.filename:
        error_line(type(exc).__name__, f"{exc.strerror}: {exc.filename}", hint)
    else:
        error_line(type(exc).__name__, str(exc) or "unexpected failure", hint)
