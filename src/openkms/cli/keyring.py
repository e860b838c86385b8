"""`openkms keyring`: rotate the key-encryption keys (KEKs) while servers keep serving, watch the rewrap,
retire terms nothing uses, and change the passphrase root of trust.

The rewrap runs in this command's process (a progress bar on stderr), in batches that each commit on
their own, against the same database the servers use; it can be stopped or killed at any time and
`openkms keyring rewrap` continues it. Rotation, retirement and passphrase change are operator requests
through the runner (audited). Never prints a KEK, a passphrase or key material.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from openkms.cli.common import ConfigFile, DatabaseUrl, DataDir, _admin_call, _runtime, _settings, console
from openkms.cli.output import error_line, fail
from openkms.config import Settings
from openkms.domain.keyring import KeyringStatus, RewrapBatch, WrappedKind

if TYPE_CHECKING:
    from openkms.server.runtime import Runtime
    from openkms.types import AccountId

T = TypeVar("T")

NEW_PASSPHRASE_ENV = "OPENKMS_NEW_PASSPHRASE"  # noqa: S105 - the name of a variable, not a secret

keyring_app = typer.Typer(
    no_args_is_help=True,
    help="Rotate the key-encryption keys, watch the rewrap, retire old terms, change the passphrase.",
)

BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Rows rewrapped per transaction.")]


def _passphrase(settings: Settings) -> str | None:
    if settings.seal == "passphrase" and not settings.unseal_passphrase:
        return str(typer.prompt("Unseal passphrase", hide_input=True))
    return None


def _root_account(runtime: Runtime) -> AccountId:
    """The operator's account for the audit record; a clean refusal on a store never set up."""
    try:
        return runtime.services.instances.root_account()
    except IndexError:
        fail("NoAccount", "the store has no account yet (start the server once first)", label="refused")


def _as_operator(settings: Settings, passphrase: str | None, action: str, call: Callable[[Any], T]) -> T:
    """Run `call(runtime)` as one audited operator request named `action` on an unsealed runtime."""
    from openkms.cli.admin import operator_context, run_admin
    from openkms.resource import Resource
    from openkms.service.outcome import Outcome

    with _runtime(settings, passphrase) as runtime:
        account = _root_account(runtime)
        ctx = operator_context(runtime, account, settings.default_region)
        return _admin_call(
            lambda: run_admin(runtime, ctx, action, lambda: Outcome(call(runtime), Resource.account(account)))
        )


def _rewrap(settings: Settings, passphrase: str | None, batch_size: int, rotate: bool) -> None:
    from openkms.service.keyring_rewrap import KeyringRotation

    with _runtime(settings, passphrase) as runtime:
        rotation = KeyringRotation(runtime.db, runtime.keystore, batch_size=batch_size)
        if rotate:
            from openkms.cli.admin import operator_context, run_admin
            from openkms.resource import Resource
            from openkms.service.outcome import Outcome

            account = _root_account(runtime)
            ctx = operator_context(runtime, account, settings.default_region)
            term = _admin_call(
                lambda: run_admin(
                    runtime,
                    ctx,
                    "RotateKeyring",
                    lambda: Outcome(rotation.rotate(), Resource.account(account)),
                )
            )
            console.print(f"term {term} is active; new material is wrapped under it")
        before = rotation.status()
        with Progress(
            TextColumn("rewrapping to term {task.fields[term]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            task = progress.add_task("rewrap", total=before.remaining, term=before.active_term)

            def advance(batch: RewrapBatch) -> None:
                progress.advance(task, batch.rewrapped + batch.failed)

            result = _admin_call(lambda: rotation.run_until_done(advance))
        after = rotation.status()
    console.print(f"rewrapped {result.rewrapped} row(s); {after.remaining} left under older terms")
    if result.failed or after.remaining:
        console.print(
            f"[red]{max(result.failed, after.remaining)} row(s) could not be rewrapped[/red] "
            "(failed their integrity check; see the log); their terms stay"
        )
        raise typer.Exit(1)


@keyring_app.command("rotate")
def rotate(
    batch_size: BatchSize = 500,
    no_rewrap: Annotated[
        bool, typer.Option("--no-rewrap", help="Only add the term; rewrap later with `keyring rewrap`.")
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Add a KEK term, make it active, and rewrap every wrapped row under it (servers keep serving).

    Stopping or killing it is safe: `openkms keyring rewrap` continues where the rows say it stopped.
    """
    settings = _settings(config, data_dir=data_dir, database_url=database_url)
    passphrase = _passphrase(settings)
    if no_rewrap:
        from openkms.service.keyring_rewrap import KeyringRotation

        term = _as_operator(
            settings, passphrase, "RotateKeyring", lambda rt: KeyringRotation(rt.db, rt.keystore).rotate()
        )
        console.print(f"term {term} is active; run `openkms keyring rewrap` to move older rows to it")
        return
    _rewrap(settings, passphrase, batch_size, rotate=True)


@keyring_app.command("rewrap")
def rewrap(
    batch_size: BatchSize = 500,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Continue (or repeat) the rewrap of every row not under the active term, until none is left."""
    settings = _settings(config, data_dir=data_dir, database_url=database_url)
    _rewrap(settings, _passphrase(settings), batch_size, rotate=False)


@keyring_app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Terms, the active one, rows under each term by kind, retired terms, and the rewrap's progress.

    Reads the database only: no passphrase needed."""
    from openkms.server.runtime import build_store
    from openkms.service.keyring_rewrap import KeyringRotation

    settings = _settings(config, data_dir=data_dir, database_url=database_url)
    store = build_store(settings, cache_ttl=0.0)
    try:
        found = _admin_call(lambda: KeyringRotation(store.db, store.keystore).status())
    finally:
        store.db.dispose()
    if as_json:
        typer.echo(json.dumps(_status_document(found), indent=2))
    else:
        _print_status(found)


@keyring_app.command("retire")
def retire(
    term: Annotated[
        int | None, typer.Argument(help="The term to retire; default: every old term with no rows.")
    ] = None,
    grace_seconds: Annotated[
        float,
        typer.Option(
            "--grace-seconds",
            min=0,
            help="How long the store must have been quiet (no rotation, no rewrap) first.",
        ),
    ] = 60.0,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Delete the wrapped KEK of old terms that no stored row is under any more. Never the active term."""
    from openkms.service.keyring_rewrap import KeyringRotation

    settings = _settings(config, data_dir=data_dir, database_url=database_url)
    retired = _as_operator(
        settings,
        _passphrase(settings),
        "RetireKeyringTerm",
        lambda rt: KeyringRotation(rt.db, rt.keystore).retire(term, grace_seconds=grace_seconds),
    )
    if retired:
        console.print(f"retired term(s) {', '.join(str(t) for t in retired)}")
    else:
        console.print(
            "no term to retire (each old term still has rows under it, or only the active term is left)"
        )


@keyring_app.command("change-passphrase")
def change_passphrase_command(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Change the passphrase root of trust: every KEK term is rewrapped under the new root key.

    The current passphrase comes from OPENKMS_UNSEAL_PASSPHRASE or a prompt, the new one from
    OPENKMS_NEW_PASSPHRASE or a prompt (asked twice). Running servers keep serving; restart them with the
    new passphrase, and copy the new seal.json to every other node's data dir first."""
    from openkms.keystore import PassphraseRoot
    from openkms.secret import SecretBytes
    from openkms.service.passphrase_change import change_passphrase
    from openkms.service.seal import KDF_PARAMS_FILE

    settings = _settings(config, data_dir=data_dir, database_url=database_url)
    if settings.seal != "passphrase":
        error_line(
            "KeyFileRoot", "this store's root of trust is a key file, not a passphrase", label="refused"
        )
        raise typer.Exit(1)
    old = settings.unseal_passphrase or str(typer.prompt("Current passphrase", hide_input=True))
    new = os.environ.get(NEW_PASSPHRASE_ENV) or str(
        typer.prompt("New passphrase", hide_input=True, confirmation_prompt=True)
    )
    if not new:
        error_line("InvalidPassphrase", "the new passphrase is empty", label="refused")
        raise typer.Exit(1)
    if new == old:
        error_line("InvalidPassphrase", "the new passphrase is the current one", label="refused")
        raise typer.Exit(1)
    root = PassphraseRoot(settings.data_dir / KDF_PARAMS_FILE, SecretBytes(old.encode("utf-8")))
    terms = _as_operator(
        settings,
        old,
        "ChangePassphrase",
        lambda rt: change_passphrase(rt.db, rt.keystore, root, SecretBytes(new.encode("utf-8"))),
    )
    console.print(
        f"passphrase changed: {terms} KEK term(s) rewrapped; {KDF_PARAMS_FILE} replaced "
        "(copy it to every other node's data dir, then restart each node with the new passphrase)"
    )


def _status_document(found: KeyringStatus) -> dict[str, Any]:
    return {
        "ActiveTerm": found.active_term,
        "Terms": [
            {
                "Term": term.term,
                "Active": term.active,
                "CreatedAt": term.created_at.isoformat(),
                "Rows": {kind.value: term.rows.get(kind, 0) for kind in WrappedKind},
                "Total": term.total,
            }
            for term in found.terms
        ],
        "RetiredTerms": [
            {"Term": r.term, "CreatedAt": r.created_at.isoformat(), "RetiredAt": r.retired_at.isoformat()}
            for r in found.retired
        ],
        "Remaining": found.remaining,
        "Unreadable": found.unreadable,
        "Rewrapped": found.rewrapped,
        "LastBatchAt": None if found.last_batch_at is None else found.last_batch_at.isoformat(),
    }


def _print_status(found: KeyringStatus) -> None:
    table = Table(title=f"keyring: active term {found.active_term}")
    table.add_column("term", justify="right")
    table.add_column("state")
    table.add_column("created")
    for kind in WrappedKind:
        table.add_column(kind.value, justify="right")
    table.add_column("total", justify="right")
    for term in found.terms:
        table.add_row(
            str(term.term),
            "active" if term.active else "old",
            term.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            *(str(term.rows.get(kind, 0)) for kind in WrappedKind),
            str(term.total),
        )
    for retired in found.retired:
        table.add_row(
            str(retired.term),
            f"retired {retired.retired_at:%Y-%m-%d %H:%M:%S}",
            retired.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            *("-" for _ in WrappedKind),
            "-",
        )
    typer.echo(_render(table))
    last = "never" if found.last_batch_at is None else found.last_batch_at.strftime("%Y-%m-%d %H:%M:%S")
    typer.echo(
        f"rows left under older terms: {found.remaining}; rewrapped to term {found.active_term}: "
        f"{found.rewrapped} (last batch: {last})"
    )
    if found.unreadable:
        typer.echo(
            f"unreadable rows (not in the keystore's format, or under no live term): {found.unreadable}"
        )


def _render(table: Table) -> str:
    import io

    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=160, no_color=True).print(table)
    return buffer.getvalue().rstrip("\n")
