"""OpenKMS's XKS proxy (API v1): AES-256 keys on a PKCS#11 token, served to an XKS client.

Owns the proxy's configuration (`load_config`: a 0600 TOML or JSON file with the SigV4 credentials,
the URI path prefix, TLS or the explicit development flag, the token, and the external key ids mapped
to token key labels with an enabled flag) and its Starlette app (`create_app`): the four operations
under `[/<prefix>]/kms/xks/v1`, each request checked in the spec's order (path, method, size, SigV4,
JSON, requestMetadata, key), errors with the spec's names and HTTP statuses, AES-GCM by the token with
a 12-byte IV the token makes, the AAD given to the token as the spec recommends (lengths included),
and the Ciphertext Data Integrity Value computed before a check decryption (Appendix C). Every call is
logged with its requestMetadata, its outcome and its duration (the external side's own audit); never
a plaintext, a ciphertext or a secret.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import stat
import time
import tomllib
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol, cast

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.mechanisms import GCMParams
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from openkms.errors import KeyStoreUnavailable
from openkms.secret import SecretBytes
from openkms.xks import sigv4
from openkms.xks.client import API_PATH, cdiv

__all__ = [
    "ExternalKey",
    "ProxyConfig",
    "ProxyConfigError",
    "SessionSource",
    "XksError",
    "create_app",
    "load_config",
]

log = logging.getLogger("openkms.xks.proxy")

IV_LEN: Final = 12
TAG_LEN: Final = 16
MAX_BODY: Final = 64 * 1024
MAX_DATA: Final = 8192  # plaintext, ciphertext and AAD (the spec asks for at least 4300 and 8192)
MAX_ARN: Final = 2048
VENDOR: Final = "OpenKMS"
MODEL: Final = "OpenKMS XKS Proxy (XKS proxy API v1)"


class ProxyConfigError(ValueError):
    """The proxy's configuration file is unsafe or invalid; the message says where (never a secret)."""


@dataclass(frozen=True, slots=True)
class ExternalKey:
    """One external key: its id in the XKS API, its AES key's label on the token, and whether the proxy
    serves it (a disabled key answers InvalidStateException, and DISABLED in its metadata)."""

    key_id: str
    label: str
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    path_prefix: str
    credentials: Mapping[str, SecretBytes] = field(repr=False)
    keys: Mapping[str, ExternalKey]
    token: Mapping[str, Any]
    regions: frozenset[str] | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    plain_http: bool = False

    @property
    def api_path(self) -> str:
        return self.path_prefix + API_PATH


def _id_ok(value: str, extra: str, limit: int) -> bool:
    return 1 <= len(value) <= limit and all(c.isascii() and (c.isalnum() or c in extra) for c in value)


def load_config(path: Path) -> ProxyConfig:
    """Read the proxy's configuration (`.json`, else TOML). Refused unless only its owner may read it."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ProxyConfigError(f"cannot read {path}: {exc.strerror}") from None
    if stat.S_IMODE(mode) & 0o077:
        raise ProxyConfigError(f"{path} holds secrets: make it readable by its owner only (chmod 600)")
    text = path.read_bytes()
    try:
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text.decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProxyConfigError(
            f"{path} is not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}"
        ) from None
    return parse_config(raw, base=path.parent)


def parse_config(raw: Mapping[str, Any], *, base: Path = Path()) -> ProxyConfig:
    """The configuration from its parsed form (see `docs` in the CLI's help for the fields)."""
    prefix = str(raw.get("path_prefix", "")).rstrip("/")
    if prefix and not prefix.startswith("/"):
        prefix = "/" + prefix
    if len(prefix + API_PATH) > 128 or not all(c.isascii() and (c.isalnum() or c in "/-_") for c in prefix):
        raise ProxyConfigError(
            "path_prefix may hold only letters, digits, / - _ (128 characters with /kms/xks/v1)"
        )
    credentials: dict[str, SecretBytes] = {}
    for entry in raw.get("credentials", []):
        access_key_id = entry.get("access_key_id")
        secret = entry.get("secret_access_key")
        if not isinstance(access_key_id, str) or not _id_ok(access_key_id, "", 30) or len(access_key_id) < 20:
            raise ProxyConfigError("each credential needs an access_key_id of 20 to 30 letters and digits")
        if not isinstance(secret, str) or len(secret) < 43:
            raise ProxyConfigError(f"the secret_access_key of {access_key_id} must be at least 43 characters")
        if access_key_id in credentials:
            raise ProxyConfigError(f"access key id {access_key_id} is configured twice")
        credentials[access_key_id] = SecretBytes(secret.encode())
    if not credentials:
        raise ProxyConfigError("configure at least one SigV4 credential ([[credentials]])")
    keys: dict[str, ExternalKey] = {}
    for key_id, entry in dict(raw.get("keys", {})).items():
        if not _id_ok(key_id, "-._", 128):
            raise ProxyConfigError(f"external key id {key_id!r} is not valid (letters, digits, - . _; 128)")
        label = entry.get("label") if isinstance(entry, dict) else None
        if not isinstance(label, str) or not label:
            raise ProxyConfigError(f"external key {key_id} needs the label of its token AES key")
        keys[key_id] = ExternalKey(key_id, label, bool(entry.get("enabled", True)))
    token = raw.get("token")
    if not isinstance(token, dict):
        raise ProxyConfigError("configure the PKCS#11 token ([token])")
    regions = raw.get("regions")
    tls = raw.get("tls", {})
    plain_http = bool(raw.get("plain_http", False))
    cert = tls.get("cert")
    key = tls.get("key")
    if not plain_http and not (cert and key):
        raise ProxyConfigError("configure [tls] cert and key, or set plain_http = true for development")
    return ProxyConfig(
        path_prefix=prefix,
        credentials=credentials,
        keys=keys,
        token=token,
        regions=None if regions is None else frozenset(str(r) for r in regions),
        tls_cert=base / cert if cert else None,
        tls_key=base / key if key else None,
        plain_http=plain_http,
    )


# -- the token ---------------------------------------------------------------------------------------
class SessionSource(Protocol):
    """Where the proxy gets a logged-in PKCS#11 session, one request at a time."""

    def session(self) -> AbstractContextManager[pkcs11.Session]: ...


class XksError(Exception):
    """An error the proxy answers with the spec's errorName and HTTP status."""

    def __init__(self, status: int, name: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.name = name
        self.message = message


def _validation(message: str) -> XksError:
    return XksError(400, "ValidationException", message)


_BAD_CIPHERTEXT = (
    pkcs11.exceptions.EncryptedDataInvalid,
    pkcs11.exceptions.EncryptedDataLenRange,
    pkcs11.exceptions.GeneralError,  # SoftHSM2 answers a GCM tag mismatch with CKR_GENERAL_ERROR
    pkcs11.exceptions.FunctionFailed,
)


def _token_aad(aad: bytes, metadata: bytes) -> bytes:
    """The AAD given to the token: 2-byte length | AAD | 1-byte length | ciphertextMetadata (spec)."""
    return len(aad).to_bytes(2, "big") + aad + bytes([len(metadata)]) + metadata


class _AesKey(Protocol):
    """What the proxy uses of a token AES key (python-pkcs11's SecretKey with its mixins)."""

    def __getitem__(self, attribute: Attribute) -> Any: ...
    def encrypt(self, data: bytes, *, mechanism: Mechanism, mechanism_param: GCMParams) -> bytes: ...
    def decrypt(self, data: bytes, *, mechanism: Mechanism, mechanism_param: GCMParams) -> bytes: ...


def _find_key(session: pkcs11.Session, label: str) -> _AesKey:
    try:
        key = session.get_key(object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=label)
    except pkcs11.exceptions.NoSuchKey:
        raise XksError(404, "KeyNotFoundException", "The external key is not on the token.") from None
    except pkcs11.exceptions.MultipleObjectsReturned:
        raise XksError(500, "InternalException", "Several token keys carry this label.") from None
    return cast(_AesKey, key)


# -- the app -----------------------------------------------------------------------------------------
def _b64field(body: Mapping[str, Any], name: str, *, required: bool, limit: int = MAX_DATA) -> bytes | None:
    value = body.get(name)
    if value is None:
        if required:
            raise _validation(f"{name} is required.")
        return None
    if not isinstance(value, str):
        raise _validation(f"{name} must be a Base64 string.")
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _validation(f"{name} is not valid Base64.") from None
    if len(decoded) > limit:
        raise XksError(501, "UnsupportedOperationException", f"{name} is larger than this proxy supports.")
    return decoded


def _metadata(body: Mapping[str, Any], operation: str) -> dict[str, str]:
    meta = body.get("requestMetadata")
    if not isinstance(meta, dict):
        raise _validation("requestMetadata is required.")
    required = {"kmsOperation", "kmsRequestId"}
    if operation != "health":
        required.add("awsPrincipalArn")
    if operation in ("encrypt", "decrypt"):
        required.add("kmsKeyArn")
    for name in required:
        if not isinstance(meta.get(name), str):
            raise _validation(f"requestMetadata.{name} is required.")
    out: dict[str, str] = {}
    for name, value in list(meta.items())[:32]:  # logged: the spec's fields and a few more at most
        if isinstance(value, str):
            if len(value) > MAX_ARN:
                raise _validation(f"requestMetadata.{name} is longer than {MAX_ARN} characters.")
            out[str(name)[:64]] = value
    return out


def _route(config: ProxyConfig, path: str) -> tuple[str, str | None] | None:
    """(operation, external key id) for a path under the API, or None."""
    base = config.api_path
    if not path.startswith(base + "/"):
        return None
    rest = path[len(base) + 1 :].split("/")
    if rest == ["health"]:
        return "health", None
    if len(rest) == 3 and rest[0] == "keys" and rest[2] in ("metadata", "encrypt", "decrypt"):
        if not _id_ok(rest[1], "-._", 128):
            return None
        return rest[2], rest[1]
    return None


class _Operations:
    """The four operations on the token, in a worker thread with a session of their own."""

    def __init__(self, config: ProxyConfig, sessions: SessionSource) -> None:
        self._config = config
        self._sessions = sessions

    def health(self, session: pkcs11.Session) -> dict[str, Any]:
        # Deep check: a throwaway session key on the token encrypts and decrypts (no external key used).
        key = cast(_AesKey, session.generate_key(KeyType.AES, 256, store=False))
        iv = session.generate_random(IV_LEN * 8)
        sealed = key.encrypt(b"xks health check", mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv))
        key.decrypt(sealed, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv))
        token = session.token
        return {
            "xksProxyFleetSize": 1,
            "xksProxyVendor": VENDOR,
            "xksProxyModel": MODEL,
            "ekmVendor": str(token.manufacturer_id).strip()[:64] or "unknown",
            "ekmFleetDetails": [
                {
                    "id": str(token.label).strip()[:64],
                    "model": str(token.model).strip()[:64],
                    "healthStatus": "ACTIVE",
                }
            ],
        }

    def key_metadata(self, session: pkcs11.Session, external: ExternalKey) -> dict[str, Any]:
        key = _find_key(session, external.label)
        usage = [
            name
            for name, attr in (("ENCRYPT", Attribute.ENCRYPT), ("DECRYPT", Attribute.DECRYPT))
            if key[attr]
        ]
        return {
            "keySpec": "AES_256" if key[Attribute.VALUE_LEN] == 32 else "UNSUPPORTED",
            "keyUsage": usage,
            "keyStatus": "ENABLED" if external.enabled else "DISABLED",
        }

    def usable_key(self, session: pkcs11.Session, external: ExternalKey, attr: Attribute) -> _AesKey:
        if not external.enabled:
            raise XksError(400, "InvalidStateException", "The external key is disabled.")
        key = _find_key(session, external.label)
        if key[Attribute.VALUE_LEN] != 32 or not key[attr]:
            raise XksError(
                400, "InvalidKeyUsageException", "The external key does not support this operation."
            )
        return key

    def encrypt(
        self, session: pkcs11.Session, external: ExternalKey, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        plaintext = _b64field(body, "plaintext", required=True)
        aad = _b64field(body, "additionalAuthenticatedData", required=False) or b""
        algorithm = body.get("ciphertextDataIntegrityValueAlgorithm")
        if body.get("encryptionAlgorithm") != "AES_GCM":
            raise _validation("encryptionAlgorithm must be AES_GCM.")
        if algorithm is not None and algorithm != "SHA_256":
            raise _validation("ciphertextDataIntegrityValueAlgorithm must be SHA_256.")
        assert plaintext is not None
        key = self.usable_key(session, external, Attribute.ENCRYPT)
        iv = session.generate_random(IV_LEN * 8)
        params = GCMParams(iv, _token_aad(aad, b""))
        sealed = key.encrypt(plaintext, mechanism=Mechanism.AES_GCM, mechanism_param=params)
        ciphertext, tag = sealed[:-TAG_LEN], sealed[-TAG_LEN:]
        answer = {
            "ciphertext": base64.b64encode(ciphertext).decode(),
            "initializationVector": base64.b64encode(iv).decode(),
            "authenticationTag": base64.b64encode(tag).decode(),
        }
        if algorithm is not None:
            # Appendix C: the CDIV over the answer first, then a check decryption of that answer.
            integrity = cdiv(aad, None, iv, ciphertext, tag)
            try:
                key.decrypt(ciphertext + tag, mechanism=Mechanism.AES_GCM, mechanism_param=params)
            except pkcs11.exceptions.PKCS11Error:
                raise XksError(500, "InternalException", "The check decryption failed.") from None
            answer["ciphertextDataIntegrityValue"] = base64.b64encode(integrity).decode()
        return answer

    def decrypt(
        self, session: pkcs11.Session, external: ExternalKey, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        ciphertext = _b64field(body, "ciphertext", required=True)
        iv = _b64field(body, "initializationVector", required=True)
        tag = _b64field(body, "authenticationTag", required=True)
        aad = _b64field(body, "additionalAuthenticatedData", required=False) or b""
        metadata = _b64field(body, "ciphertextMetadata", required=False, limit=20) or b""
        if body.get("encryptionAlgorithm") != "AES_GCM":
            raise _validation("encryptionAlgorithm must be AES_GCM.")
        assert ciphertext is not None and iv is not None and tag is not None
        if len(iv) not in (12, 16) or len(tag) != TAG_LEN:
            raise _validation("initializationVector must be 12 or 16 bytes and authenticationTag 16.")
        key = self.usable_key(session, external, Attribute.DECRYPT)
        if len(iv) != IV_LEN:  # this proxy makes 12-byte IVs only: nothing it made has another
            raise XksError(400, "InvalidCiphertextException", "The ciphertext does not authenticate.")
        params = GCMParams(iv, _token_aad(aad, metadata))
        try:
            plaintext = key.decrypt(ciphertext + tag, mechanism=Mechanism.AES_GCM, mechanism_param=params)
        except _BAD_CIPHERTEXT:
            raise XksError(
                400, "InvalidCiphertextException", "The ciphertext does not authenticate."
            ) from None
        return {"plaintext": base64.b64encode(plaintext).decode()}

    def run(self, operation: str, key_id: str | None, body: Mapping[str, Any]) -> dict[str, Any]:
        external = None
        if key_id is not None:
            external = self._config.keys.get(key_id)
            if external is None:
                raise XksError(404, "KeyNotFoundException", "The external key is not known to this proxy.")
        try:
            with self._sessions.session() as session:
                if operation == "health":
                    return self.health(session)
                assert external is not None
                if operation == "metadata":
                    return self.key_metadata(session, external)
                if operation == "encrypt":
                    return self.encrypt(session, external, body)
                return self.decrypt(session, external, body)
        except XksError:
            raise
        except (pkcs11.exceptions.PKCS11Error, KeyStoreUnavailable) as exc:
            # The token failed or cannot be reached (the session pool says which, never the PIN).
            log.warning("xks token failure: %s", type(exc).__name__)
            raise XksError(500, "InternalException", "The key manager failed the operation.") from None


def create_app(
    config: ProxyConfig,
    sessions: SessionSource,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Starlette:
    """The proxy's ASGI app. `sessions` gives logged-in sessions on the configured token."""
    operations = _Operations(config, sessions)

    async def handle(request: Request) -> Response:
        started = time.perf_counter()
        path = request.url.path
        routed = _route(config, path)
        record: dict[str, Any] = {"path": path}
        try:
            if routed is None:
                raise XksError(404, "InvalidUriPathException", "The URI path is not valid.")
            operation, key_id = routed
            record.update(operation=operation, externalKeyId=key_id)
            if request.method != "POST":
                raise XksError(405, "ValidationException", "Use POST.")
            body = await _read_body(request)
            try:
                record["accessKeyId"] = sigv4.verify(
                    config.credentials,
                    config.regions,
                    request.method,
                    path,
                    request.url.query,
                    [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
                    body,
                    now(),
                )
            except sigv4.SignatureRejected as exc:
                record["reason"] = str(exc)
                raise XksError(
                    401, "AuthenticationFailedException", "The SigV4 signature is not valid."
                ) from None
            try:
                parsed = json.loads(body)
            except ValueError:
                raise _validation("The body is not JSON.") from None
            if not isinstance(parsed, dict):
                raise _validation("The body is not a JSON object.")
            record["requestMetadata"] = _metadata(parsed, operation)
            answer = await run_in_threadpool(operations.run, operation, key_id, parsed)
        except XksError as exc:
            record.update(
                outcome=exc.name, status=exc.status, ms=round((time.perf_counter() - started) * 1000, 2)
            )
            log.info("xks %s", json.dumps(record, sort_keys=True))
            headers = {"allow": "POST"} if exc.status == 405 else None
            return JSONResponse({"errorName": exc.name, "errorMessage": exc.message}, exc.status, headers)
        record.update(outcome="OK", status=200, ms=round((time.perf_counter() - started) * 1000, 2))
        log.info("xks %s", json.dumps(record, sort_keys=True))
        return JSONResponse(answer)

    async def ping(request: Request) -> Response:
        """For load balancers: the process answers (no authentication, no token)."""
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/{path:path}", handle, methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]),
        ]
    )


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise XksError(
            501, "UnsupportedOperationException", "The request is larger than this proxy supports."
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise XksError(
                501, "UnsupportedOperationException", "The request is larger than this proxy supports."
            )
        chunks.append(chunk)
    return b"".join(chunks)
