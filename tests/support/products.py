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

    def __post_init__(self) -> None:
        import importlib

        from alibabacloud_tea_openapi.models import Config

        config = Config(
            access_key_id=self.access_key_id,
            access_key_secret=self.access_key_secret,
            security_token=self.security_token,
            endpoint=self.endpoint,
            protocol="http",
            region_id=self.region_id,
            read_timeout=30000,
            connect_timeout=5000,
        )
        if self.signing == "rpc":
            config.signature_algorithm = "v2"
        elif self.signing == "acs4":
            config.signature_version = "v4"
        client_module, models_module = _CLIENTS[self.product]
        self._client = importlib.import_module(client_module).Client(config)
        self._models = importlib.import_module(models_module)

    def call(self, action: str, **params: Any) -> dict[str, Any]:
        from Tea.exceptions import TeaException

        params = {name: value for name, value in params.items() if value is not None}
        request_class = getattr(self._models, f"{action}Request", None)
        method = getattr(self._client, _snake(action))
        try:
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
