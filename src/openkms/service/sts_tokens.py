"""STS session credentials without server-side session state.

A SecurityToken is the session's claims (access key id, account, role, session name, expiry) sealed
with AES-256-GCM under a server secret; the session's AccessKeySecret is an HMAC of its access key id
under another key derived from the same secret. Any worker or node holding the secret can check a
token and re-derive the secret, so AssumeRole writes nothing and a token cannot be forged or altered.
The server secret is generated once, stored wrapped by the keystore (`service_secrets`), and never
leaves the process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import string
import threading
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from openkms.clock import Clock
from openkms.keystore import Keystore
from openkms.repository.database import Database
from openkms.secret import SecretBytes
from openkms.service.service_secrets import service_secret

STS_PREFIX = "STS."
TOKEN_PREFIX = "OKS1."  # noqa: S105 - a format marker, not a secret
SECRET_NAME = "sts-token-key"  # noqa: S105 - the row name of the wrapped secret
_AAD = b"openkms-sts-token/v1"
_ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class SessionClaims:
    access_key_id: str
    account_id: str
    role_name: str
    role_id: str  # a role deleted and made again under the same name does not revive old sessions
    session_name: str
    expires_at: int  # epoch seconds, on the server's clock


def new_session_access_key_id() -> str:
    return STS_PREFIX + "".join(secrets.choice(_ALNUM) for _ in range(24))


class TokenCodec:
    def __init__(self, db: Database, keystore: Keystore, clock: Clock) -> None:
        self._db = db
        self._keystore = keystore
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: tuple[AESGCM, bytes] | None = None
        keystore.on_seal(self._forget)

    def seal(self, claims: SessionClaims) -> str:
        sealer, _ = self._derived()
        payload = json.dumps(
            {
                "ak": claims.access_key_id,
                "acct": claims.account_id,
                "role": claims.role_name,
                "rid": claims.role_id,
                "sess": claims.session_name,
                "exp": claims.expires_at,
            },
            separators=(",", ":"),
        ).encode()
        nonce = os.urandom(12)
        return TOKEN_PREFIX + base64.urlsafe_b64encode(nonce + sealer.encrypt(nonce, payload, _AAD)).decode()

    def open(self, token: str) -> SessionClaims | None:
        """The claims of a token this server sealed; None for anything else (forged, altered, garbage)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 4096:
            return None
        try:
            raw = base64.urlsafe_b64decode(token[len(TOKEN_PREFIX) :].encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            return None
        if len(raw) < 12 + 16:
            return None
        sealer, _ = self._derived()
        try:
            payload = json.loads(sealer.decrypt(raw[:12], raw[12:], _AAD))
            return SessionClaims(
                str(payload["ak"]), str(payload["acct"]), str(payload["role"]), str(payload["rid"]),
                str(payload["sess"]), int(payload["exp"]),
            )  # fmt: skip
        except (InvalidTag, ValueError, KeyError, TypeError):
            return None

    def secret_for(self, claims: SessionClaims) -> SecretBytes:
        _, mac_key = self._derived()
        digest = hmac.digest(mac_key, b"sts-secret\0" + claims.access_key_id.encode(), hashlib.sha256)
        return SecretBytes(base64.b64encode(digest).decode().rstrip("=").encode())

    def _derived(self) -> tuple[AESGCM, bytes]:
        keys = self._keys
        if keys is not None:
            return keys
        with self._lock:
            if self._keys is None:
                raw = self._master().reveal()
                token_key = HKDF(hashes.SHA256(), 32, None, b"openkms sts token").derive(raw)
                mac_key = HKDF(hashes.SHA256(), 32, None, b"openkms sts secret").derive(raw)
                self._keys = (AESGCM(token_key), mac_key)
            return self._keys

    def _master(self) -> SecretBytes:
        return service_secret(self._db, self._keystore, self._clock, SECRET_NAME, "StsTokenKey")

    def _forget(self) -> None:
        with self._lock:
            self._keys = None
