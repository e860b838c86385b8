"""HTTPS for `openkms serve`: the certificate and key files checked before any worker starts, and
the uvicorn options that make every worker terminate TLS itself.

Owns nothing secret beyond the key file's path: the key is read by the ssl module, never logged, and
a failure names the file and the kind of problem, not the contents.
"""

from __future__ import annotations

import ssl
from typing import Any

from openkms.config import Settings


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


def uvicorn_tls_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's ssl options for the settings (none for plain HTTP)."""
    if settings.tls_cert is None or settings.tls_key is None:
        return {}
    return {"ssl_certfile": str(settings.tls_cert.resolve()), "ssl_keyfile": str(settings.tls_key.resolve())}


def scheme(settings: Settings) -> str:
    return "https" if settings.tls_cert is not None else "http"
