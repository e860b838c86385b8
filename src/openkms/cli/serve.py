"""`openkms serve`: prepare the store, hold the node's shared memory, bind, say where it listens, then
run the workers; on a clean stop, give the shared memory back (`node/memory.py`).

"listening" is printed only once the address is bound: a port in use is one error line, not a
greeting followed by a failure.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from openkms.cli.common import ConfigFile, DatabaseUrl, DataDir, _settings, console
from openkms.config import Settings
from openkms.errors import AuditUnavailable

_SHM = Path("/dev/shm")  # noqa: S108 - node_memory_dir checks ownership and mode before use


def serve(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default 9600).")] = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default 1).")] = None,
    dev_clock: Annotated[
        bool,
        typer.Option(
            "--dev-clock", help="Development only: a clock that `openkms dev advance` moves forward."
        ),
    ] = False,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="PEM certificate chain: serve HTTPS (with --tls-key).")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="PEM private key of --tls-cert.")] = None,
    tls_instance_ca: Annotated[
        bool,
        typer.Option(
            "--tls-instance-ca",
            help="Serve HTTPS with a certificate the deployment's CA issues at start (see --tls-names).",
        ),
    ] = False,
    tls_names: Annotated[
        str | None,
        typer.Option(
            "--tls-names",
            help="With --tls-instance-ca: names and IPs, comma-separated (default localhost,127.0.0.1).",
        ),
    ] = None,
    log_format: Annotated[
        str | None, typer.Option("--log-format", help="text (default) or json: one JSON object per line.")
    ] = None,
) -> None:
    """Start the server: migrate, bootstrap an empty store, then serve the Alibaba KMS API."""
    from openkms.server.log_format import configure, messages_console
    from openkms.server.tls import TlsError, check_tls_files

    settings = _settings(
        config,
        data_dir=data_dir,
        host=host,
        port=port,
        database_url=database_url,
        workers=workers,
        dev_clock=True if dev_clock else None,
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_instance_ca=True if tls_instance_ca else None,
        tls_names=tls_names,
        log_format=log_format,
    )
    configure(settings.log_format, settings.log_level)
    out = messages_console(settings.log_format, console)
    try:
        check_tls_files(settings)
    except TlsError as exc:
        out.print(f"[red]configuration error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    lease = _hold_node_memory(settings, out)
    try:
        status = _prepare_and_serve(settings, out)
    finally:
        if lease.release(remove=True):
            out.print(f"node memory {escape(str(lease.directory))} removed")
    if status:
        raise typer.Exit(status)


def _hold_node_memory(settings: Settings, out: Any) -> Any:
    """Hold this node's shared-memory folder for the whole run, and sweep the ones nobody holds."""
    from openkms.node.memory import NodeMemoryLease, sweep
    from openkms.node.rate_limits import RATE_FILE
    from openkms.service.replay import NONCE_FILE, node_memory_dir

    directory = node_memory_dir(settings.data_dir)
    in_shm = directory.parent == _SHM
    owned = None if in_shm else (NONCE_FILE, RATE_FILE, "metrics")
    lease = NodeMemoryLease(directory, settings.data_dir, owned_names=owned)
    lease.acquire()
    if in_shm:
        for folder, owner in sweep(_SHM, keep=directory):
            out.print(f"removed stale node memory {folder} (of {escape(owner or 'an unknown data dir')})")
    return lease


def _prepare_and_serve(settings: Settings, out: Any) -> int:
    import uvicorn

    from openkms.cli.prepare import prepare_dev_clock, prepare_store
    from openkms.cli.workers import WorkerSupervisor, listening_sockets, serve_one
    from openkms.server.http_protocol import ConnectionLimits, LimitedHttpToolsProtocol
    from openkms.server.log_format import logging_config
    from openkms.server.metrics_files import prepare_metrics_dir
    from openkms.server.tls import TlsError, check_instance_tls_files, scheme, uvicorn_tls_options
    from openkms.service.seal import WARNED_ENV

    # Before anything imports prometheus_client: every worker keeps its metrics in this node's folder.
    prepare_metrics_dir(settings.data_dir)
    try:
        prepare_store(settings, out)
    except AuditUnavailable as exc:
        out.print(f"[red]{escape(exc.message)}[/red]")
        return 1
    try:
        check_instance_tls_files(settings)  # issued by the store's CA, so after prepare_store
    except TlsError as exc:
        out.print(f"[red]configuration error:[/red] {escape(str(exc))}")
        return 2
    prepare_dev_clock(settings, out)
    # Worker processes rebuild the same settings from the environment (secrets are already there).
    for name, value in settings.redacted().items():
        if name == "database_url":
            continue
        os.environ[f"OPENKMS_{name.upper()}"] = ",".join(value) if isinstance(value, list) else str(value)
    os.environ[WARNED_ENV] = "1"  # prepare_store warned about a key-file root: the workers need not
    os.environ["OPENKMS_DATA_DIR"] = str(settings.data_dir.resolve())
    os.environ["OPENKMS_DATABASE_URL"] = settings.effective_database_url
    options: dict[str, Any] = {
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        "workers": settings.workers,
        "loop": "uvloop",
        # httptools, held to the header and body timeouts, header and connection caps of the
        # settings (server/http_protocol.py); picklable, so spawned workers get the same limits.
        "http": functools.partial(LimitedHttpToolsProtocol, limits=ConnectionLimits.from_settings(settings)),
        "ws": "none",  # no WebSocket endpoint: an Upgrade header is ignored
        "access_log": False,
        "log_level": settings.log_level,
        "server_header": False,
        # No proxy is supported yet: never let X-Forwarded-For rewrite the source address that the
        # audit log records.
        "proxy_headers": False,
        **uvicorn_tls_options(settings),
    }
    document = logging_config(settings.log_format, settings.log_level)
    if document is not None:
        options["log_config"] = document
    server_config = uvicorn.Config("openkms.server.app:app_from_environment", **options)
    # One listening socket per worker (cli/workers.py): uvicorn's shared socket can hand every
    # keep-alive connection of a burst to one worker. Bound here, before anything says "listening".
    try:
        sockets = listening_sockets(settings.host, settings.port, settings.workers, server_config.backlog)
    except OSError as exc:
        reason = escape(str(exc.strerror or exc))
        out.print(f"[red]cannot listen on {settings.host}:{settings.port}:[/red] {reason}")
        return 1
    try:
        base = f"{scheme(settings)}://{settings.host}:{settings.port}"
        out.print(
            f"OpenKMS listening on {base} "
            f"(regions {', '.join(settings.regions)}; {settings.workers} worker(s))\n"
            f"Console: {base}/console/ (the root's sign-in name and first "
            f"password are in {settings.data_dir / 'root-credentials.json'}; `openkms account password` "
            "sets it)"
        )
        if settings.workers == 1:
            return serve_one(server_config, sockets[0])
        return WorkerSupervisor(server_config, sockets).run()
    finally:
        for sock in sockets:
            sock.close()
