"""The official Tea SDKs of KMS, RAM and STS as a user would build them, with any credentials
(a root or RAM user's access key, or STS credentials with their SecurityToken)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tests.support.sdk import KmsError

_CLIENTS = {
    "kms": ("alibabacloud_kms20160120.client", "alibabacloud_kms20160120.models"),
    "ram": ("alibabacloud_ram20150501.client", "alibabacloud_ram20150501.models"),
    "sts": ("alibabacloud_sts20150401.client", "alibabacloud_sts20150401.models"),
}


class DeniedError(KmsError):
    def __init__(self, error: KmsError, detail: dict[str, Any] | None) -> None:
        super().__init__(error.code, error.status, error.message, error.request_id)
        self.detail = detail or {}


def _snake(action: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()


@dataclass
class Caller:
    product: str
    endpoint: str
    access_key_id: str
    access_key_secret: str
    security_token: str | None = None
    signing: str = "acs3"  # "acs3" (default), "rpc" (signature_algorithm v2) or "acs4"
    region_id: str = "cn-hangzhou"
    ca: str | None = None  # HTTPS, verifying the server's certificate against this CA file

    def __post_init__(self) -> None:
        import importlib

        from alibabacloud_tea_openapi.models import Config

        config = Config(
            access_key_id=self.access_key_id,
            access_key_secret=self.access_key_secret,
            security_token=self.security_token,
            endpoint=self.endpoint,
            protocol="https" if self.ca else "http",
            region_id=self.region_id,
            read_timeout=30000,
            connect_timeout=5000,
            ca=self.ca,
        )
        if self.signing == "rpc":
            config.signature_algorithm = "v2"
        elif self.signing == "acs4":
            config.signature_version = "v4"
        client_module, models_module = _CLIENTS[self.product]
        self._client = importlib.import_module(client_module).Client(config)
        self._models = importlib.import_module(models_module)

    def call(self, action: str, **params: Any) -> dict[str, Any]:
        """An action through the SDK's typed method, or (an OpenKMS extension the SDK has no model for)
        through the same client's generic `call_api`, signed and sent like any other."""
        from Tea.exceptions import TeaException

        params = {name: value for name, value in params.items() if value is not None}
        request_class = getattr(self._models, f"{action}Request", None)
        method = getattr(self._client, _snake(action), None)
        try:
            if method is None:
                return self._generic(action, params)
            response = method() if request_class is None else method(request_class().from_map(params))
        except TeaException as exc:
            data = exc.data or {}
            status = int(data.get("statusCode") or data.get("httpCode") or 0)
            error = KmsError(
                str(exc.code), status, str(data.get("Message", exc.message)), data.get("RequestId")
            )
            raise DeniedError(error, getattr(exc, "accessDeniedDetail", None)) from None
        body: dict[str, Any] = response.body.to_map()
        return body

    def _generic(self, action: str, query: dict[str, Any]) -> dict[str, Any]:
        from alibabacloud_tea_openapi import utils_models
        from alibabacloud_tea_openapi.utils import Utils
        from darabonba.runtime import RuntimeOptions

        spec = utils_models.Params(
            action=action, version=self._version, protocol="HTTP", pathname="/", method="POST",
            auth_type="AK", style="RPC", req_body_type="formData", body_type="json",
        )  # fmt: skip
        request = utils_models.OpenApiRequest(query=Utils.query({k: str(v) for k, v in query.items()}))
        answer: dict[str, Any] = self._client.call_api(spec, request, RuntimeOptions())["body"]
        return answer

    @property
    def _version(self) -> str:
        return {"kms": "2016-01-20", "ram": "2015-05-01", "sts": "2015-04-01"}[self.product]
