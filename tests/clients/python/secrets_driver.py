"""Drives Alibaba's Python secrets clients, unchanged, for tests/clients/test_python_secrets_clients.py.

Run by the clients' venv (`client_python()`, .venv-clients), never imported by the test venv. One JSON
command a line on stdin, one JSON answer a line on stdout: `{"ok": ...}` or `{"error": {...}}` with the
exception's type, Alibaba code and HTTP status. The secrets-manager clients take their endpoint and
credentials only the way their READMEs document (environment variables or a `.properties` file, which
the test prepares before it starts this process); the one thing set in code is a secret's TTL, which
those libraries take from their builder only. The unified KMS SDK is given an OpenAPI `Config`.

Commands:
  {"op": "open", "library": "old" | "v2", "config_file": <path or null>, "ttl_ms": {<name>: <ms>}}
  {"op": "info" | "value" | "binary" | "refresh", "name": <secret name>}
  {"op": "unified", "route": "client" | "transfer" | "transfer-runtime" | "transfer-api-names"
   | "transfer-instance", "config": <OpenAPI Config fields>, "request": <GetSecretValueRequest fields>,
   "instance_endpoint": <for the routes with a KmsConfig>}
  {"op": "close"}
"""

from __future__ import annotations

import base64
import json
import os
import sys
from typing import Any

# The libraries log to stderr, and nothing they print may reach the answers: stdout (fd 1) becomes
# stderr for everyone but this script, which keeps its own copy of the original stdout.
ANSWERS = os.fdopen(os.dup(1), "w", encoding="utf-8")
os.dup2(2, 1)


def _cache_client(command: dict[str, Any]) -> Any:
    """A secrets-manager cache client of either library, built as its README shows."""
    if command["library"] == "old":
        from alibaba_cloud_secretsmanager_client.secret_manager_cache_client_builder import (
            SecretManagerCacheClientBuilder,
        )
        from alibaba_cloud_secretsmanager_client.service.default_secret_manager_client_builder import (
            DefaultSecretManagerClientBuilder,
        )
    else:
        from alibabacloud_secretsmanager_client_v2.secret_manager_cache_client_builder import (
            SecretManagerCacheClientBuilder,
        )
        from alibabacloud_secretsmanager_client_v2.service.default_secret_manager_client_builder import (
            DefaultSecretManagerClientBuilder,
        )
    secrets_client = DefaultSecretManagerClientBuilder.standard()
    if command.get("config_file"):
        secrets_client = secrets_client.with_custom_config_file(command["config_file"])
    builder = SecretManagerCacheClientBuilder.new_cache_client_builder(secrets_client.build())
    for name, milliseconds in command.get("ttl_ms", {}).items():
        builder = builder.with_secret_ttl(name, milliseconds)
    return builder.build()


def _info(secret_info: Any) -> dict[str, Any]:
    return {
        "name": secret_info.secret_name,
        "value": secret_info.secret_value,
        "data_type": secret_info.secret_data_type,
        "version_id": secret_info.version_id,
    }


def _openapi_config(fields: dict[str, Any]) -> Any:
    from alibabacloud_tea_openapi.models import Config

    return Config(**fields)


def _unified(command: dict[str, Any]) -> dict[str, Any]:
    """GetSecretValue through the unified KMS SDK (alibabacloud-kms-python-sdk) on the OpenAPI path."""
    from alibabacloud_kms20160120 import models
    from alibabacloud_kms_kms20160120.client import Client
    from alibabacloud_kms_kms20160120.models import KmsConfig, KmsRuntimeOptions
    from alibabacloud_kms_kms20160120.transfer_client import TransferClient

    request = models.GetSecretValueRequest(**command["request"])
    config = _openapi_config(command["config"])
    # An instance with no client key, at an endpoint where nothing listens: a call routed to it fails.
    instance = {"endpoint": command.get("instance_endpoint"), "protocol": "https"}
    route = command["route"]
    if route == "client":
        response = Client(open_api_config=config).get_secret_value_by_shared_endpoint(request)
    elif route == "transfer":
        response = TransferClient(config=config).get_secret_value(request)
    elif route == "transfer-runtime":
        client = TransferClient(config=config, kms_config=KmsConfig(**instance))
        runtime = KmsRuntimeOptions(is_use_kms_share_gateway=True)
        response = client.get_secret_value_with_options(request, runtime)
    elif route == "transfer-instance":  # neither: the SDK sends the call to the instance
        response = TransferClient(config=config, kms_config=KmsConfig(**instance)).get_secret_value(request)
    elif route == "transfer-api-names":
        kms_config = KmsConfig(**instance, default_kms_api_names=["GetSecretValue"])
        response = TransferClient(config=config, kms_config=kms_config).get_secret_value(request)
    else:
        raise ValueError(f"unknown route {route}")
    body = response.body
    return {
        "name": body.secret_name,
        "value": body.secret_data,
        "data_type": body.secret_data_type,
        "version_id": body.version_id,
        "stages": list(body.version_stages.version_stage),
        "status": response.status_code,
    }


def _error(exc: Exception) -> dict[str, Any]:
    """The exception's type, Alibaba code and HTTP status, whichever SDK core raised it."""
    code = getattr(exc, "error_code", None) or getattr(exc, "code", None)
    status = getattr(exc, "http_status", None) or getattr(exc, "statusCode", None)
    return {"type": type(exc).__name__, "code": code, "status": status, "message": str(exc)[:500]}


def _run(client: Any, command: dict[str, Any]) -> Any:
    """The answer to one command other than open and close."""
    op, name = command["op"], command.get("name")
    if op == "info":
        return _info(client.get_secret_info(name))
    if op == "value":
        return client.get_secret_value(name)
    if op == "binary":
        return base64.b64encode(client.get_binary_value(name).get_bytes()).decode()
    if op == "refresh":
        return client.refresh_now(name)
    if op == "unified":
        return _unified(command)
    raise ValueError(f"unknown command {op}")


def main() -> None:
    client: Any = None
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        try:
            if op == "open":
                client = _cache_client(command)
                answer: dict[str, Any] = {"ok": True}
            elif op == "close":
                if client is not None:
                    client.close()
                answer = {"ok": True}
            else:
                answer = {"ok": _run(client, command)}
        except Exception as exc:
            answer = {"error": _error(exc)}
        ANSWERS.write(json.dumps(answer) + "\n")
        ANSWERS.flush()
        if op == "close":
            return


if __name__ == "__main__":
    main()
