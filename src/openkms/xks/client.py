"""The XKS proxy API v1 client OpenKMS's external provider calls.

Owns one keep-alive HTTP/1.1 connection pool per proxy (httpx), SigV4-signed POSTs with their
`requestMetadata`, the check of every answer's shape (and of the Ciphertext Data Integrity Value of
every encryption, spec Appendix C) and the translation of the proxy's failures into OpenKMS's errors:
anything that says the proxy cannot serve now (unreachable, timeout, 5xx, InternalException,
throttling, refused credential, unknown path, malformed answer) is KeyStoreUnavailable; a refusal of
the key itself is ExternalKeyError; a ciphertext the proxy will not decrypt is InvalidCiphertext.
Nothing is retried. No message or repr carries the secret, a plaintext or a ciphertext.

How OpenKMS fills the AWS-named `requestMetadata` fields (the proxy's own audit): `awsPrincipalArn`
is the OpenKMS caller's ARN (`acs:ram::<account>:user/<name>`, a role session, an account root, or a
system principal for jobs); `kmsKeyArn` is the OpenKMS key's ARN (`acs:kms:<region>:<account>:key/<id>`);
`kmsOperation` is the OpenKMS API action (Encrypt, GenerateDataKey, Decrypt, ...), or
`CreateKeyVersion` when material is made and `KmsHealthCheck` for a health check; `kmsRequestId` is
the OpenKMS request id (what the OpenKMS audit log records). `kmsViaService` is sent only when given.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import httpx

from openkms.errors import (
    ExternalKeyError,
    InvalidArgument,
    InvalidCiphertext,
    KeyStoreUnavailable,
    UnsupportedOperation,
)
from openkms.secret import SecretBytes
from openkms.xks import sigv4

__all__ = ["DEFAULT_REGION", "EncryptResult", "KeyMetadata", "RequestMetadata", "XksClient"]

API_PATH: Final = "/kms/xks/v1"
DEFAULT_REGION: Final = "us-east-1"
TAG_LEN: Final = 16
IV_LENGTHS: Final = (12, 16)
MAX_CIPHERTEXT_METADATA: Final = 20
_MAX_ANSWER: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class RequestMetadata:
    """The `requestMetadata` of one call (see the module docstring for how OpenKMS fills it)."""

    principal_arn: str
    operation: str
    request_id: str
    key_arn: str | None = None
    via_service: str | None = None

    def to_json(self) -> dict[str, str]:
        out = {
            "awsPrincipalArn": self.principal_arn,
            "kmsOperation": self.operation,
            "kmsRequestId": self.request_id,
        }
        if self.key_arn is not None:
            out["kmsKeyArn"] = self.key_arn
        if self.via_service is not None:
            out["kmsViaService"] = self.via_service
        return out


@dataclass(frozen=True, slots=True)
class KeyMetadata:
    """GetKeyMetadata's answer."""

    key_spec: str
    key_usage: tuple[str, ...]
    key_status: str


@dataclass(frozen=True, slots=True)
class EncryptResult:
    """Encrypt's answer, its CDIV already checked."""

    ciphertext: bytes
    iv: bytes
    tag: bytes
    ciphertext_metadata: bytes | None

    def __repr__(self) -> str:
        return f"EncryptResult(<{len(self.ciphertext)} bytes>, iv_len={len(self.iv)})"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(answer: dict[str, Any], name: str, *, optional: bool = False) -> bytes | None:
    value = answer.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise KeyStoreUnavailable(f"The external key store proxy's answer lacks {name}.")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KeyStoreUnavailable(f"The external key store proxy's {name} is not Base64.") from None


def cdiv(aad: bytes, metadata: bytes | None, iv: bytes, ciphertext: bytes, tag: bytes) -> bytes:
    """The Ciphertext Data Integrity Value (spec Appendix C): SHA-256 of the concatenation."""
    return hashlib.sha256(aad + (metadata or b"") + iv + ciphertext + tag).digest()


class XksClient:
    """Calls one XKS proxy: `endpoint` is `https://host[:port]`, `path_prefix` the optional part before
    `/kms/xks/v1` (`""` for none; a prefix ending in `/kms/xks/v1` is taken as the whole path). TLS is
    verified against `ca_file` (the system's CAs when None); plain `http://` is refused unless
    `allow_http` (tests and development). `region` is the SigV4 scope's region (OpenKMS passes the
    instance's region). One httpx client per instance; close() it."""

    def __init__(
        self,
        endpoint: str,
        path_prefix: str,
        access_key_id: str,
        secret: SecretBytes,
        ca_file: str | None,
        allow_http: bool,
        timeout_seconds: float,
        *,
        region: str = DEFAULT_REGION,
    ) -> None:
        url = httpx.URL(endpoint)
        if url.scheme not in ("https", "http") or not url.host:
            raise ValueError("the XKS proxy endpoint must be an https:// URL")
        if url.scheme == "http" and not allow_http:
            raise ValueError("the XKS proxy endpoint must use https (plain http is for development only)")
        if url.path not in ("", "/") or url.query:
            raise ValueError("the XKS proxy endpoint is scheme://host[:port]; the path goes in path_prefix")
        prefix = path_prefix.rstrip("/")
        if prefix.endswith(API_PATH):  # given as AWS's XksProxyUriPath: the same place
            prefix = prefix[: -len(API_PATH)]
        if prefix and not prefix.startswith("/"):
            prefix = "/" + prefix
        if len(prefix + API_PATH) > 128 or not all(c.isalnum() or c in "/-_" for c in prefix):
            raise ValueError("the XKS path prefix may hold only letters, digits, / - _ (128 in all)")
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        self._base = str(url).rstrip("/")
        self._path = prefix + API_PATH
        self._credential = sigv4.Credential(access_key_id, secret)
        self._region = region
        self._timeout = timeout_seconds
        verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
        )
        self._http = httpx.Client(
            verify=verify, timeout=httpx.Timeout(timeout_seconds), http1=True, http2=False
        )

    def __repr__(self) -> str:
        return f"XksClient({self._base}{self._path}, access_key_id={self._credential.access_key_id!r})"

    def close(self) -> None:
        self._http.close()

    # -- the four operations ---------------------------------------------------------------------
    def get_health_status(self, meta: RequestMetadata) -> dict[str, Any]:
        """GetHealthStatus's answer (checked to have the spec's required fields)."""
        body = {"requestMetadata": {"kmsRequestId": meta.request_id, "kmsOperation": meta.operation}}
        answer = self._call("/health", body)
        fleet = answer.get("ekmFleetDetails")
        size = answer.get("xksProxyFleetSize")
        if (
            not isinstance(size, int)
            or size < 1
            or not isinstance(fleet, list)
            or not 1 <= len(fleet) <= 10
            or not all(isinstance(e, dict) and isinstance(e.get("healthStatus"), str) for e in fleet)
        ):
            raise KeyStoreUnavailable("The external key store proxy's health answer is malformed.")
        return answer

    def get_key_metadata(self, key_id: str, meta: RequestMetadata) -> KeyMetadata:
        answer = self._call(f"/keys/{_key_path(key_id)}/metadata", {"requestMetadata": meta.to_json()})
        spec, usage, status = answer.get("keySpec"), answer.get("keyUsage"), answer.get("keyStatus")
        if (
            not isinstance(spec, str)
            or not isinstance(status, str)
            or not isinstance(usage, list)
            or not all(isinstance(u, str) for u in usage)
        ):
            raise KeyStoreUnavailable("The external key store proxy's key metadata is malformed.")
        return KeyMetadata(spec, tuple(usage), status)

    def encrypt(self, key_id: str, plaintext: bytes, aad: bytes, meta: RequestMetadata) -> EncryptResult:
        """AES_GCM under the external key, with a CDIV requested and checked."""
        body: dict[str, Any] = {
            "requestMetadata": meta.to_json(),
            "plaintext": _b64(plaintext),
            "encryptionAlgorithm": "AES_GCM",
            "ciphertextDataIntegrityValueAlgorithm": "SHA_256",
        }
        if aad:
            body["additionalAuthenticatedData"] = _b64(aad)
        answer = self._call(f"/keys/{_key_path(key_id)}/encrypt", body)
        ciphertext = _unb64(answer, "ciphertext")
        iv = _unb64(answer, "initializationVector")
        tag = _unb64(answer, "authenticationTag")
        metadata = _unb64(answer, "ciphertextMetadata", optional=True)
        integrity = _unb64(answer, "ciphertextDataIntegrityValue")
        assert ciphertext is not None and iv is not None and tag is not None and integrity is not None
        if (
            len(ciphertext) != len(plaintext)
            or len(iv) not in IV_LENGTHS
            or len(tag) != TAG_LEN
            or (metadata is not None and len(metadata) > MAX_CIPHERTEXT_METADATA)
        ):
            raise KeyStoreUnavailable("The external key store proxy's encryption answer is malformed.")
        if not hmac.compare_digest(integrity, cdiv(aad, metadata, iv, ciphertext, tag)):
            raise KeyStoreUnavailable(
                "The external key store proxy's encryption failed its data integrity check (CDIV)."
            )
        return EncryptResult(ciphertext, iv, tag, metadata)

    def decrypt(
        self,
        key_id: str,
        ciphertext: bytes,
        iv: bytes,
        tag: bytes,
        aad: bytes,
        meta: RequestMetadata,
        *,
        ciphertext_metadata: bytes | None = None,
    ) -> SecretBytes:
        """The plaintext; InvalidCiphertext when the proxy cannot authenticate the input."""
        body: dict[str, Any] = {
            "requestMetadata": meta.to_json(),
            "ciphertext": _b64(ciphertext),
            "encryptionAlgorithm": "AES_GCM",
            "initializationVector": _b64(iv),
            "authenticationTag": _b64(tag),
        }
        if aad:
            body["additionalAuthenticatedData"] = _b64(aad)
        if ciphertext_metadata is not None:
            body["ciphertextMetadata"] = _b64(ciphertext_metadata)
        answer = self._call(f"/keys/{_key_path(key_id)}/decrypt", body)
        plaintext = _unb64(answer, "plaintext")
        assert plaintext is not None
        if len(plaintext) != len(ciphertext):
            raise KeyStoreUnavailable("The external key store proxy's decryption answer is malformed.")
        return SecretBytes(plaintext)

    # -- the wire ----------------------------------------------------------------------------------
    def _call(self, operation_path: str, body: dict[str, Any]) -> dict[str, Any]:
        payload = json.dumps(body, separators=(",", ":")).encode()
        path = self._path + operation_path
        request = self._http.build_request(
            "POST", self._base + path, content=payload, headers={"content-type": "application/json"}
        )
        request.headers.update(
            sigv4.sign(
                self._credential,
                self._region,
                "POST",
                path,
                {"host": request.headers["host"]},
                payload,
                datetime.now(UTC),
            )
        )
        try:
            response = self._http.send(request)
        except httpx.TimeoutException:
            raise KeyStoreUnavailable(
                f"The external key store proxy did not answer within {self._timeout:g} seconds."
            ) from None
        except httpx.HTTPError as exc:
            raise KeyStoreUnavailable(
                f"The external key store proxy cannot be reached ({type(exc).__name__})."
            ) from None
        if len(response.content) > _MAX_ANSWER:
            raise KeyStoreUnavailable("The external key store proxy's answer is too large.")
        try:
            answer = json.loads(response.content)
        except ValueError:
            answer = None
        if response.status_code == 200 and isinstance(answer, dict):
            return answer
        if response.status_code == 200:
            raise KeyStoreUnavailable("The external key store proxy's answer is not a JSON object.")
        name = answer.get("errorName") if isinstance(answer, dict) else None
        raise _error(response.status_code, name if isinstance(name, str) else None)


def _key_path(key_id: str) -> str:
    if not 1 <= len(key_id) <= 128 or not all(c.isascii() and (c.isalnum() or c in "-._") for c in key_id):
        raise ExternalKeyError("The external key id is not valid for the XKS proxy API.")
    return key_id


_REFUSALS: Final[dict[str, str]] = {
    "KeyNotFoundException": "The external key was not found in the external key manager.",
    "InvalidStateException": "The external key is disabled in the external key manager.",
    "InvalidKeyUsageException": "The external key does not allow this operation.",
    "AccessDeniedException": "The external key store proxy denied access to the operation.",
}
_UNAVAILABLE: Final[dict[str, str]] = {
    "AuthenticationFailedException": "the proxy refused OpenKMS's credential",
    "InvalidUriPathException": "the proxy does not serve this URI path (check the path prefix)",
    "ThrottlingException": "the proxy is throttling requests",
    "DependencyTimeoutException": "the external key manager did not answer the proxy in time",
    "InternalException": "the proxy cannot use its external key manager",
}


def _error(status: int, name: str | None) -> Exception:
    if name in _REFUSALS:
        return ExternalKeyError(_REFUSALS[name])
    if name == "InvalidCiphertextException":
        return InvalidCiphertext()
    if name in _UNAVAILABLE:
        return KeyStoreUnavailable(f"The external key store is unavailable: {_UNAVAILABLE[name]}.")
    if name == "ValidationException":
        return InvalidArgument("The external key store proxy rejected the request as invalid.")
    if name == "UnsupportedOperationException":
        return UnsupportedOperation(
            "The external key store proxy does not support this operation or an input this large."
        )
    return KeyStoreUnavailable(
        f"The external key store proxy answered HTTP {status}"
        + (f" ({name})." if name and name.isascii() and name.isalnum() and len(name) < 64 else ".")
    )
