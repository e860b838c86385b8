"""A minimal client for the server's RPC API, for CLI commands that act as an API caller (`openkms csr`).

Signs with Alibaba RPC signature V1 (HMAC-SHA1 over the sorted, percent-encoded parameters), the scheme
every official SDK speaks. Uses only the standard library. Never prints or logs the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

API_VERSION = "2016-01-20"


class RpcError(Exception):
    """The server refused the call (or could not be reached); `code` is the Alibaba error code."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.code = code
        self.status = status
        self.message = message


def _pct(value: str) -> str:
    return quote(value, safe="~")


def signed(action: str, params: dict[str, str], access_key_id: str, secret: str) -> dict[str, str]:
    """The full, signed parameter set of one POST request."""
    full = {
        "Action": action,
        "Version": API_VERSION,
        "Format": "JSON",
        "AccessKeyId": access_key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": uuid.uuid4().hex,
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **params,
    }
    canonical = "&".join(f"{_pct(name)}={_pct(value)}" for name, value in sorted(full.items()))
    string_to_sign = f"POST&%2F&{_pct(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    full["Signature"] = base64.b64encode(digest).decode("ascii")
    return full


def call(
    endpoint: str, action: str, params: dict[str, str], access_key_id: str, secret: str, timeout: float = 60
) -> dict[str, object]:
    """POST one signed request to `endpoint` (e.g. http://127.0.0.1:9600); the decoded JSON answer."""
    if not endpoint.startswith(("http://", "https://")):
        raise RpcError("InvalidEndpoint", 0, f"{endpoint!r} is not an http:// or https:// URL")
    body = urlencode(signed(action, params, access_key_id, secret)).encode("ascii")
    request = urllib.request.Request(  # noqa: S310 -- the scheme is checked above
        endpoint.rstrip("/") + "/",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 -- the scheme is checked above
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read())
        except ValueError:
            error = {}
        raise RpcError(
            str(error.get("Code", "HTTPError")), exc.code, str(error.get("Message", exc.reason))
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise RpcError("ConnectionFailed", 0, f"cannot reach {endpoint}: {exc}") from None
    if not isinstance(answer, dict):
        raise RpcError("InvalidResponse", 0, "the server's answer is not a JSON object")
    return answer
