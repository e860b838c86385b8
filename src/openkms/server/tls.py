"""HTTPS for `openkms serve`: the certificate and key files checked before any worker starts, and
the uvicorn options that make every worker terminate TLS itself.

Two sources of files: the operator's (`tls_cert`/`tls_key`), or, with `tls_instance_ca`, the
certificate the deployment's CA issued at this start (`service/instance_ca.py`), written here into
the data dir's `tls/` folder (0600). Owns nothing secret beyond the key file's path and that write:
the key is read by the ssl module, never logged, and a failure names the file and the kind of
problem, not the contents.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from pathlib import Path
from typing import Any

from cryptography import x509

from openkms.config import Settings
from openkms.secret import SecretBytes

INSTANCE_CERT_FILE = "instance-server.pem"  # the server certificate, then the instance CA's
INSTANCE_KEY_FILE = "instance-server.key"


class TlsError(ValueError):
    """The certificate or key cannot be used; the message says which and why, in one line."""


def check_tls_files(settings: Settings) -> None:
    """Load the certificate chain and key once, as uvicorn will: a missing, unreadable, malformed or
    mismatched pair is refused here, with one clear line, rather than by every worker."""
    if settings.tls_cert is None or settings.tls_key is None:
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except ssl.SSLError as exc:
        reason = exc.reason or "not a PEM certificate chain and matching private key"
        raise TlsError(
            f"tls_cert {settings.tls_cert} / tls_key {settings.tls_key}: {reason.lower().replace('_', ' ')}"
        ) from None
    except OSError as exc:
        raise TlsError(f"tls_cert / tls_key: {exc.strerror or exc}") from None


def instance_tls_files(settings: Settings) -> tuple[Path, Path]:
    """Where the certificate chain and key the instance CA issued for this node are kept."""
    folder = settings.data_dir / "tls"
    return folder / INSTANCE_CERT_FILE, folder / INSTANCE_KEY_FILE


def write_instance_tls_files(settings: Settings, chain_pem: bytes, key_pem: SecretBytes) -> None:
    """Replace the node's instance certificate and key (each written whole, then renamed, 0600)."""
    cert_path, key_path = instance_tls_files(settings)
    cert_path.parent.mkdir(mode=0o700, exist_ok=True)
    for path, data in ((key_path, key_pem.reveal()), (cert_path, chain_pem)):
        partial = path.with_suffix(path.suffix + ".partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)


def check_instance_tls_files(settings: Settings) -> None:
    """With `tls_instance_ca`: the issued files exist, load, and name every one of `tls_names`
    (a store sealed at start cannot issue new ones, so the previous start's must still fit)."""
    if not settings.tls_instance_ca:
        return
    cert_path, key_path = instance_tls_files(settings)
    if not (cert_path.is_file() and key_path.is_file()):
        raise TlsError(
            "tls_instance_ca: no certificate was issued yet; the store must be unsealed at start "
            "(a key file root, or OPENKMS_UNSEAL_PASSPHRASE) for the instance CA to issue one"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert_path, key_path)
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise TlsError(f"tls_instance_ca: {cert_path} cannot be used: {exc}") from None
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        names = x509.SubjectAlternativeName([])
    covered = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} | set(
        names.get_values_for_type(x509.DNSName)
    )
    missing = [name for name in settings.tls_names if _canonical(name) not in covered]
    if missing:
        raise TlsError(
            f"tls_instance_ca: the certificate issued before does not name {', '.join(missing)}; "
            "start once with the store unsealed to issue a new one"
        )


def _canonical(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


def uvicorn_tls_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's ssl options for the settings (none for plain HTTP)."""
    if settings.tls_instance_ca:
        cert_path, key_path = instance_tls_files(settings)
        return {"ssl_certfile": str(cert_path.resolve()), "ssl_keyfile": str(key_path.resolve())}
    if settings.tls_cert is None or settings.tls_key is None:
        return {}
    return {"ssl_certfile": str(settings.tls_cert.resolve()), "ssl_keyfile": str(settings.tls_key.resolve())}


def scheme(settings: Settings) -> str:
    return "https" if settings.tls_cert is not None or settings.tls_instance_ca else "http"
