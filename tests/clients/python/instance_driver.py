"""Drives Alibaba's instance SDK (`alibabacloud-dkms-gcs`), unchanged, for tests/clients/test_instance_sdk.py.

Run by the clients' venv (`client_python()`, .venv-clients), never imported by the test venv; spoken
to one JSON line at a time (tests/clients/python/session.py). Bytes travel as {"b64": "..."}.

Commands:
  {"op": "open", "endpoint": "127.0.0.1:PORT", "client_key_file": <path>, "password": <str>,
   "ca": <CA file>}
  {"op": "call", "method": "advance_encrypt", "model": "AdvanceEncryptRequest", "fields": {...},
   "request_headers": {...}}
      -> the response's fields (to_map) and the `x-kms-migrationkeyversionid` response header
  {"op": "transfer", "openapi": <OpenAPI Config fields>, "instance": <KmsConfig fields>, "ca": <CA file>}
      -> the unified SDK's TransferClient (alibabacloud-kms-python-sdk) for the next "openapi" calls:
         handled actions to the instance, the rest to OpenAPI
  {"op": "openapi", "method": "encrypt", "model": "EncryptRequest", "fields": {...}}
      -> the OpenAPI response body (to_map)
  {"op": "unified", "openapi": <OpenAPI Config fields>, "instance": <dkms-gcs Config fields>, "ca": <CA>}
      -> the unified SDK's `Client`: dkms-gcs's methods to the instance, its OpenAPI wrappers to OpenAPI
  {"op": "unified_call", "method": ..., "model": ..., "shape": "instance" | "openapi", "fields": {...}}
  {"op": "close"}
"""

from __future__ import annotations

import base64
import json
import os
import sys
import traceback
from typing import Any

ANSWERS = os.fdopen(os.dup(1), "w", encoding="utf-8")
os.dup2(2, 1)  # whatever the libraries print goes to stderr, never into the answers

VERSION_HEADER = "x-kms-migrationkeyversionid"


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    return value


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {name: _encode(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_encode(item) for item in value]
    return value


def _error(exc: BaseException) -> dict[str, Any]:
    data = getattr(exc, "data", None) or {}
    return {
        "type": type(exc).__name__,
        "code": getattr(exc, "code", None),
        "message": str(getattr(exc, "message", exc))[:500],
        "status": data.get("httpCode") if isinstance(data, dict) else None,
    }


def main() -> None:
    from openapi.models import Config
    from openapi_util.models import RuntimeOptions
    from sdk import models
    from sdk.client import Client

    client = None
    transfer = None
    transfer_ca = None
    unified = None
    for line in sys.stdin:
        command = json.loads(line)
        try:
            if command["op"] == "open":
                client = Client(
                    Config(
                        protocol="https",
                        endpoint=command["endpoint"],
                        client_key_file=command["client_key_file"],
                        password=command["password"],
                        ca_file_path=command["ca"],
                    )
                )
                answer: Any = True
            elif command["op"] == "call":
                assert client is not None, "open first"
                fields = {name: _decode(value) for name, value in command.get("fields", {}).items()}
                request = getattr(models, command["model"])(**fields)
                if command.get("request_headers"):
                    request.request_headers = command["request_headers"]
                runtime = RuntimeOptions(response_headers=[VERSION_HEADER], autoretry=False)
                response = getattr(client, f"{command['method']}_with_options")(request, runtime)
                mapped = response.to_map()
                headers = mapped.pop("responseHeaders", None) or {}
                answer = {"body": _encode(mapped), "version_header": headers.get(VERSION_HEADER)}
            elif command["op"] == "transfer":
                from alibabacloud_kms_kms20160120.models import KmsConfig
                from alibabacloud_kms_kms20160120.transfer_client import TransferClient
                from alibabacloud_tea_openapi.models import Config as OpenApiConfig

                openapi_config = None if command["openapi"] is None else OpenApiConfig(**command["openapi"])
                transfer = TransferClient(config=openapi_config, kms_config=KmsConfig(**command["instance"]))
                transfer_ca = command["ca"]
                answer = True
            elif command["op"] == "openapi":
                from alibabacloud_kms20160120 import models as openapi_models
                from alibabacloud_kms_kms20160120.models import KmsRuntimeOptions

                assert transfer is not None, "transfer first"
                request = getattr(openapi_models, command["model"])(**command.get("fields", {}))
                runtime = KmsRuntimeOptions(ca=transfer_ca, autoretry=False)
                response = getattr(transfer, f"{command['method']}_with_options")(request, runtime)
                answer = _encode(response.body.to_map())
            elif command["op"] == "unified":
                from alibabacloud_kms_kms20160120.client import Client as UnifiedClient
                from alibabacloud_tea_openapi.models import Config as OpenApiConfig

                unified = UnifiedClient(
                    kms_instance_config=Config(**command["instance"], ca_file_path=command["ca"]),
                    open_api_config=OpenApiConfig(**command["openapi"]),
                )
                transfer_ca = command["ca"]
                answer = True
            elif command["op"] == "unified_call":
                from alibabacloud_kms20160120 import models as openapi_models
                from alibabacloud_tea_util.models import RuntimeOptions as OpenApiRuntime

                fields = {name: _decode(value) for name, value in command.get("fields", {}).items()}
                method = getattr(unified, f"{command['method']}_with_options")
                if command["shape"] == "instance":
                    runtime = RuntimeOptions(response_headers=[VERSION_HEADER], autoretry=False)
                    mapped = method(getattr(models, command["model"])(**fields), runtime).to_map()
                    mapped.pop("responseHeaders", None)
                else:
                    runtime = OpenApiRuntime(ca=transfer_ca, autoretry=False)
                    mapped = method(
                        getattr(openapi_models, command["model"])(**fields), runtime
                    ).body.to_map()
                answer = _encode(mapped)
            elif command["op"] == "close":
                ANSWERS.write(json.dumps({"ok": True}) + "\n")
                ANSWERS.flush()
                return
            else:
                raise ValueError(f"unknown op {command['op']!r}")
        except Exception as exc:  # every failure is an answer the test reads (its trace: stderr)
            traceback.print_exc()
            ANSWERS.write(json.dumps({"error": _error(exc)}) + "\n")
        else:
            ANSWERS.write(json.dumps({"ok": answer}) + "\n")
        ANSWERS.flush()


if __name__ == "__main__":
    main()
