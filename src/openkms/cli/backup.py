"""`openkms backup` and `openkms restore`: the operator's side of backup and restore (the work is in
`service/backup/`). Shows progress with Rich on stderr; prints counts and paths, never a secret."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from openkms.cli.common import ConfigFile, DatabaseUrl, DataDir, _settings, console, refuse
from openkms.cli.output import fail
from openkms.errors import OpenKMSError


class _RichProgress:
    """One line per table or file, each with its own bar."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: object | None = None

    def step(self, name: str, total: int | None) -> None:
        if self._task is not None:
            self._progress.update(self._task, visible=False)  # type: ignore[arg-type]
        self._task = self._progress.add_task(name, total=total)

    def advance(self, count: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, count)  # type: ignore[arg-type]


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _passphrase(needed: bool, from_settings: str | None) -> str | None:
    if not needed:
        return None
    return (
        from_settings
        or os.environ.get("OPENKMS_UNSEAL_PASSPHRASE")
        or typer.prompt("Unseal passphrase", hide_input=True)
    )


def backup(
    archive: Annotated[Path, typer.Argument(help="The archive file to write (must not exist).")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
    with_audit: Annotated[
        bool, typer.Option("--with-audit", help="Also archive the audit files of this data dir.")
    ] = False,
) -> None:
    """Write an encrypted archive of the store (every table, the keyring, the --config file) while
    the server runs. Only the same root of trust (key file or passphrase) can read or restore it."""
    from openkms.cli.admin import operator_context, run_admin
    from openkms.cli.common import _runtime
    from openkms.resource import Resource
    from openkms.service.backup.roots import source_root
    from openkms.service.backup.take import BackupSummary, Source, take_backup
    from openkms.service.outcome import Outcome
    from openkms.service.seal import KEY_FILE

    settings = _settings(config, data_dir=data_dir, database_url=database_url)
    if not settings.data_dir.is_dir() or (
        settings.seal == "keyfile" and not (settings.data_dir / KEY_FILE).exists()
    ):
        fail("NoStore", f"{settings.data_dir} holds no store to back up (no root key file)",
             "give --data-dir of the server", label="refused")  # fmt: skip
    passphrase = _passphrase(settings.seal == "passphrase", settings.unseal_passphrase)
    # The backup is one operator request: refused while the audit log cannot record it, and recorded.
    with _runtime(settings, passphrase) as runtime:
        try:
            account = runtime.services.instances.root_account()
        except IndexError:
            fail("NoAccount", "the store has no account yet: start the server once first", label="refused")
        ctx = operator_context(runtime, account, settings.default_region)

        def use_case() -> Outcome[BackupSummary]:
            root_key, seal_params = source_root(settings, runtime.db, passphrase)
            source = Source(
                seal=settings.seal,
                seal_params=seal_params,
                config_file=config,
                audit_dir=settings.data_dir / "audit" if with_audit else None,
            )
            with _progress() as progress:
                made = take_backup(
                    runtime.db, root_key, source, archive, runtime.clock, _RichProgress(progress)
                )
            return Outcome(made, Resource.account(account))

        try:
            summary = run_admin(runtime, ctx, "BackupStore", use_case)
        except OpenKMSError as exc:
            refuse(exc)
    typer.echo(
        f"backup written to {summary.path}: schema {summary.schema_revision}, {summary.tables} tables, "
        f"{summary.rows} rows, {summary.files} files, {summary.size} bytes"
    )


def restore(
    archive: Annotated[Path, typer.Argument(help="The archive `openkms backup` wrote.")],
    data_dir: Annotated[Path, typer.Option("--data-dir", help="The new node's data dir (new or empty).")],
    database_url: DatabaseUrl = None,
    root_key_file: Annotated[
        Path | None,
        typer.Option("--root-key-file", help="The source's root key file (else DATA_DIR/root.key)."),
    ] = None,
) -> None:
    """Bring an archive up as a fresh node: a new data dir, and SQLite in it or an empty database
    (--database-url). Refuses a store that exists, a wrong root of trust and a damaged archive."""
    from openkms.service.backup.restore import Target, inspect_archive, restore_backup

    try:
        header = inspect_archive(archive)
        passphrase = _passphrase(header.seal == "passphrase", None)
        with _progress() as progress:
            summary = restore_backup(
                archive,
                Target(data_dir, database_url),
                passphrase=passphrase,
                root_key_file=root_key_file,
                progress=_RichProgress(progress),
            )
    except OpenKMSError as exc:
        refuse(exc)
    typer.echo(
        f"restored {summary.rows} rows in {summary.tables} tables (schema {header.schema_revision}, "
        f"made {header.created_at} on {header.source_dialect}) into {data_dir}"
    )
    if summary.skipped_tables:
        typer.echo(f"not restored (this node's own): {', '.join(summary.skipped_tables)}")
    if summary.audit_files:
        typer.echo(f"{summary.audit_files} audit files of the source in {data_dir / 'audit-restored'}")
    if summary.config_file is not None:
        typer.echo(
            f"configuration restored to {summary.config_file}: check data_dir, database_url, host and "
            "port in it before `openkms serve --config` it"
        )
    if header.seal == "passphrase":
        typer.echo(
            'start the node with seal = "passphrase" (OPENKMS_SEAL=passphrase) and the same passphrase'
        )
