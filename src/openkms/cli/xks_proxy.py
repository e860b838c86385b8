"""`openkms xks-proxy`: OpenKMS's XKS proxy (API v1) in front of a PKCS#11 token, as its own process;
and `openkms xks-proxy keys create --label L`, which makes the token AES-256 key of a new external key.

The configuration file (TOML, or JSON by its suffix; readable by its owner only) holds everything:

    path_prefix = "/keystores/ks-1"          # requests go to <path_prefix>/kms/xks/v1/...
    regions = ["cn-hangzhou"]                # optional: the SigV4 scope regions accepted
    plain_http = false                       # true only for development: no TLS
    [tls]
    cert = "proxy.crt"                       # relative to the file's folder
    key = "proxy.key"
    [[credentials]]                          # one or more (two during a rotation)
    access_key_id = "AKIAI2SFODNN7EXAMPLE"   # 20-30 of A-Z and 2-7 (AWS's rule; letters/digits here)
    secret_access_key = "..."                # at least 43 characters, e.g. `openssl rand -base64 32`
    [token]                                  # as a hardware instance's settings
    module = "/usr/lib/softhsm/libsofthsm2.so"
    token_label = "xks"
    pin_source = "file:/etc/openkms/xks.pin" # or env:NAME; never the PIN itself
    sessions = 4                             # logged-in sessions kept open
    [keys.key-1]                             # an external key id, and its token AES-256 key
    label = "xks-key-1"
    enabled = true                           # false: the proxy refuses it (InvalidStateException)

Every call is logged on stderr (logger `openkms.xks.proxy`) with its requestMetadata and outcome.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # imported when a command runs: `openkms` itself starts without pkcs11 and Starlette
    from openkms.hsm.sessions import TokenSessions
    from openkms.xks.proxy import ProxyConfig

xks_proxy_app = typer.Typer(
    no_args_is_help=False,
    help="Run OpenKMS's XKS proxy (XKS proxy API v1) in front of a PKCS#11 token. The configuration "
    "file's fields: docs/external-keys.md and the docstring of openkms.cli.xks_proxy.",
)
keys_app = typer.Typer(no_args_is_help=True, help="Token keys for external key ids.")
xks_proxy_app.add_typer(keys_app, name="keys")

ConfigPath = Annotated[Path, typer.Option("--config", help="The proxy's configuration file (0600).")]


def _load(config: Path) -> ProxyConfig:
    from openkms.xks.proxy import ProxyConfigError, load_config

    try:
        return load_config(config)
    except ProxyConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _sessions(proxy: ProxyConfig) -> TokenSessions:
    """The token's session pool (`openkms.hsm`, shared with hardware instances), checked once now."""
    from openkms.errors import OpenKMSError
    from openkms.hsm.config import TokenConfig
    from openkms.hsm.sessions import TokenSessions

    try:
        sessions = TokenSessions(TokenConfig.from_settings({k: str(v) for k, v in proxy.token.items()}))
        sessions.check_health()
        return sessions
    except OpenKMSError as exc:
        typer.echo(f"error: the token cannot be used: {exc.message}", err=True)
        raise typer.Exit(1) from None
    except ValueError as exc:
        typer.echo(f"error: the token cannot be used: {exc}", err=True)
        raise typer.Exit(1) from None


@xks_proxy_app.callback(invoke_without_command=True)
def xks_proxy(
    ctx: typer.Context,
    config: ConfigPath = Path("xks-proxy.toml"),
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8443,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="Certificate chain (PEM); overrides the file's.")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="Private key (PEM); overrides the file's.")
    ] = None,
) -> None:
    """Serve the XKS proxy API on host:port (HTTPS; plain HTTP only if the file says plain_http)."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from openkms.xks.proxy import create_app

    proxy = _load(config)
    cert = tls_cert or proxy.tls_cert
    key = tls_key or proxy.tls_key
    if not proxy.plain_http and not (cert and key):
        typer.echo("error: TLS needs a certificate and a key (or plain_http = true)", err=True)
        raise typer.Exit(2)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    sessions = _sessions(proxy)
    try:
        uvicorn.run(
            create_app(proxy, sessions),
            host=host,
            port=port,
            ssl_certfile=None if proxy.plain_http and not tls_cert else str(cert),
            ssl_keyfile=None if proxy.plain_http and not tls_key else str(key),
            log_level="warning",
            lifespan="off",
            # Idle TLS keep-alive connections (every XKS client keeps some) would otherwise hold the
            # shutdown for asyncio's 30-second TLS close.
            timeout_graceful_shutdown=2,
        )
    finally:
        sessions.close()


@keys_app.command("create")
def keys_create(
    label: Annotated[str, typer.Option("--label", help="The label of the new token AES-256 key.")],
    config: ConfigPath = Path("xks-proxy.toml"),
) -> None:
    """Make a non-extractable AES-256 key on the proxy's token for a new external key."""
    from pkcs11 import Attribute, KeyType, ObjectClass

    proxy = _load(config)
    sessions = _sessions(proxy)
    try:
        with sessions.session() as session:
            if list(session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: label})):
                typer.echo(f"error: the token already has a key labelled {label!r}", err=True)
                raise typer.Exit(1)
            session.generate_key(
                KeyType.AES,
                256,
                label=label,
                store=True,
                template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.ENCRYPT: True,
                    Attribute.DECRYPT: True,
                },
            )
    finally:
        sessions.close()
    typer.echo(f'Made {label}. Add it to the configuration:\n\n[keys.<external-key-id>]\nlabel = "{label}"')
