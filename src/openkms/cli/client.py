"""The everyday commands' door to a running server: Alibaba's official SDK (`alibabacloud-kms20160120`,
its typed request models) signed with a profile's access key, and the same SDK's generic `call_api`
for OpenKMS's extension parameters and for the RAM and STS actions the server also speaks.

Every failure becomes `ApiError(code, message, hint)`: the server's Alibaba error Code and Message,
or a transport failure with a hint. Never logs or returns the secret.
"""

from __future__ import annotations

import re
from typing import Any

from openkms.cli.profiles import Connection

KMS_VERSION = "2016-01-20"
RAM_VERSION = "2015-05-01"
STS_VERSION = "2015-04-01"
_TIMEOUT_MS = 30_000

_HINTS = {
    "InvalidAccessKeyId.NotFound": "check the profile's access key id (`openkms profile show`)",
    "IncompleteSignature": "check the access key secret ($OPENKMS_ACCESS_KEY_SECRET or the profile)",
    "SignatureDoesNotMatch": "check the access key secret ($OPENKMS_ACCESS_KEY_SECRET or the profile)",
    "Forbidden.KeyNotFound": "`openkms key list` shows the keys this access key may see",
    "Forbidden.AliasNotFound": "`openkms alias list` shows the aliases",
    "Forbidden.RAM": "the access key's policies do not allow this action on this resource",
    "Forbidden.NoPermission": "the access key's policies do not allow this action on this resource",
    "InvalidTimeStamp.Expired": "this machine's clock is too far from the server's",
    "ServiceUnavailableTemporary": "the server may be sealed: `openkms unseal` on its machine",
    "Rejected.Throttling": "retry a little later",
    "Rejected.InvalidCiphertext": "give the --context used at encryption, and the whole CiphertextBlob",
    "Forbidden.KeyNotEnabled": "the key is disabled or pending deletion: `openkms key describe`",
}


class ApiError(Exception):
    """A request that did not succeed: the Alibaba error Code, its message, and a hint."""

    def __init__(self, code: str, message: str, hint: str | None = None, request_id: str | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.hint = hint if hint is not None else _HINTS.get(code)
        self.request_id = request_id


def _snake(action: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()


class KmsClient:
    """One signed client of one server, from a profile's connection."""

    def __init__(self, connection: Connection) -> None:
        from alibabacloud_kms20160120.client import Client
        from alibabacloud_tea_openapi.models import Config

        self.connection = connection
        config = Config(
            access_key_id=connection.access_key_id,
            access_key_secret=connection.access_key_secret,
            endpoint=connection.host,
            protocol=connection.scheme,
            region_id=connection.region,
            read_timeout=_TIMEOUT_MS,
            connect_timeout=5_000,
        )
        if connection.ca_file:
            config.ca = connection.ca_file
        self._client = Client(config)

    def call(self, action: str, **params: Any) -> dict[str, Any]:
        """A KMS action through the SDK's typed request model; the response body as a dict."""
        from alibabacloud_kms20160120 import models

        params = {name: value for name, value in params.items() if value is not None}
        method = getattr(self._client, f"{_snake(action)}_with_options", None)
        if method is None:  # an action newer than this SDK (e.g. StartKeyAssociationDetection)
            return self.call_any(KMS_VERSION, action, **params)
        request_class = getattr(models, f"{action}Request", None)
        request = None if request_class is None else request_class().from_map(params)
        body = self._send(lambda runtime: method(runtime) if request is None else method(request, runtime))
        result: dict[str, Any] = body.body.to_map()
        return result

    def call_any(self, version: str, action: str, **params: Any) -> dict[str, Any]:
        """Any action of any product the server speaks (RAM, STS, KMS with OpenKMS extension
        parameters) through the SDK's generic `call_api`, as an RPC-style form POST."""
        from alibabacloud_tea_openapi import utils_models

        query = {name: str(value) for name, value in params.items() if value is not None}
        request = utils_models.OpenApiRequest(query=query)
        spec = utils_models.Params(
            action=action,
            version=version,
            protocol=self.connection.scheme.upper(),
            pathname="/",
            method="POST",
            auth_type="AK",
            style="RPC",
            req_body_type="formData",
            body_type="json",
        )
        answer = self._send(lambda runtime: self._client.call_api(spec, request, runtime))
        body: dict[str, Any] = answer.get("body") or {}
        return body

    def _send(self, send: Any) -> Any:
        from darabonba.runtime import RuntimeOptions

        runtime = RuntimeOptions(autoretry=False, max_attempts=1, read_timeout=_TIMEOUT_MS)
        try:
            return send(runtime)
        except Exception as exc:
            raise _api_error(exc, self.connection.endpoint) from None


def _api_error(exc: Exception, endpoint: str) -> ApiError:
    code = getattr(exc, "code", None)
    data = getattr(exc, "data", None) or {}
    if (
        isinstance(code, str)
        and code
        and isinstance(data, dict)
        and (data.get("Code") or data.get("RequestId"))
    ):
        message = str(data.get("Message") or getattr(exc, "message", "") or code)
        return ApiError(code, message, request_id=data.get("RequestId"))
    text = " ".join(str(exc).split())
    lowered = text.lower()
    if "connection refused" in lowered or "failed to establish" in lowered or "connect" in lowered:
        return ApiError(
            "ConnectionFailed",
            f"cannot reach {endpoint}",
            "is the server running? `openkms profile show` prints the endpoint",
        )
    if "ssl" in lowered or "certificate" in lowered:
        return ApiError(
            "TlsFailed",
            f"TLS with {endpoint} failed: {text[:200]}",
            "give the profile --ca-file of a private CA",
        )
    if "timed out" in lowered or "timeout" in lowered:
        return ApiError("Timeout", f"{endpoint} did not answer in time", None)
    if isinstance(code, str) and code:
        return ApiError(code, str(getattr(exc, "message", text)))
    return ApiError("ClientError", text[:300] or type(exc).__name__, None)
