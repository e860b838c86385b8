"""One calling surface over the official SDKs, so every API test runs in each signing mode.

- `tea-acs3`:   alibabacloud-kms20160120, default signing (ACS3-HMAC-SHA256)
- `tea-rpc`:    the same client with signature_algorithm='v2' (RPC HMAC-SHA1)
- `tea-acs4`:   the same client with signature_version='v4' (ACS4-HMAC-SHA256)
- `legacy`:     aliyun-python-sdk-core + aliyun-python-sdk-kms (RPC HMAC-SHA1, its own encoder)

Each SDK is used the way a user would: typed request models and client methods. Errors are
normalised to KmsError(code, status, message).
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass
from typing import Any

SIGNING_MODES = ("tea-acs3", "tea-rpc", "tea-acs4", "legacy")

# The legacy SDK names its repeat-list setters in the plural and takes Python lists for them.
_LEGACY_REPEAT_LISTS = {"ResourceId": "ResourceIds", "Tag": "Tags", "TagKey": "TagKeys"}
_NEW_TAG_ACTIONS = {"TagResources", "UntagResources", "ListTagResources"}


class KmsError(Exception):
    def __init__(self, code: str, status: int, message: str, request_id: str | None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.code = code
        self.status = status
        self.message = message
        self.request_id = request_id


def _snake(action: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()


@dataclass
class KmsCaller:
    mode: str
    endpoint: str
    access_key_id: str
    access_key_secret: str
    region_id: str = "cn-hangzhou"
    ca: str | None = None  # HTTPS, verifying the server's certificate against this CA file

    def __post_init__(self) -> None:
        if self.mode == "legacy":
            from aliyunsdkcore.client import AcsClient

            self._legacy = AcsClient(
                self.access_key_id, self.access_key_secret, self.region_id, verify=self.ca
            )
        else:
            from alibabacloud_kms20160120.client import Client
            from alibabacloud_tea_openapi.models import Config

            config = Config(
                access_key_id=self.access_key_id,
                access_key_secret=self.access_key_secret,
                endpoint=self.endpoint,
                protocol="https" if self.ca else "http",
                region_id=self.region_id,
                read_timeout=30000,
                connect_timeout=5000,
                ca=self.ca,
            )
            if self.mode == "tea-rpc":
                config.signature_algorithm = "v2"
            elif self.mode == "tea-acs4":
                config.signature_version = "v4"
            self._tea = Client(config)

    def call(self, action: str, **params: Any) -> dict[str, Any]:
        params = {name: value for name, value in params.items() if value is not None}
        if self.mode == "legacy":
            return self._call_legacy(action, params)
        return self._call_tea(action, params)

    def _call_tea(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        from alibabacloud_kms20160120 import models
        from Tea.exceptions import TeaException

        request_class = getattr(models, f"{action}Request", None)
        method = getattr(self._tea, _snake(action))
        try:
            response = method() if request_class is None else method(request_class().from_map(params))
        except TeaException as exc:
            data = exc.data or {}
            status = int(
                data.get("statusCode") or data.get("httpCode") or getattr(exc, "status_code", 0) or 0
            )
            raise KmsError(
                str(exc.code), status, str(data.get("Message", exc.message)), data.get("RequestId")
            ) from None
        return response.body.to_map()

    def _call_legacy(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        from aliyunsdkcore.acs_exception.exceptions import ServerException

        module = importlib.import_module(f"aliyunsdkkms.request.v20160120.{action}Request")
        request = getattr(module, f"{action}Request")()
        request.set_endpoint(self.endpoint)
        request.set_protocol_type("https" if self.ca else "http")
        for name, value in params.items():
            if action in _NEW_TAG_ACTIONS and name in _LEGACY_REPEAT_LISTS:
                getattr(request, f"set_{_LEGACY_REPEAT_LISTS[name]}")(value)
                continue
            if isinstance(value, dict | list):
                value = json.dumps(value)
            getattr(request, f"set_{name}")(value)
        try:
            raw = self._legacy.do_action_with_exception(request)
        except ServerException as exc:
            raise KmsError(
                exc.get_error_code(), exc.get_http_status(), exc.get_error_msg(), exc.get_request_id()
            ) from None
        return json.loads(raw)


def list_all(kms: KmsCaller, action: str, outer: str, inner: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a paged list action (ListKeys, ListAliases, ...), page by page."""
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        body = kms.call(action, PageNumber=page, PageSize=100, **params)
        items += body[outer][inner]
        if page * 100 >= body["TotalCount"]:
            return items
        page += 1
