"""A small, independent RPC (HMAC-SHA1) request signer for wire edge cases the SDKs never send:
stale timestamps, replayed nonces, tampered parameters, XML format, unknown actions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx


def _pct(value: str) -> str:
    return quote(value, safe="~")


def rpc_sign(params: dict[str, str], secret: str, method: str = "POST") -> str:
    canonical = "&".join(f"{_pct(k)}={_pct(v)}" for k, v in sorted(params.items()))
    string_to_sign = f"{method}&%2F&{_pct(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signed_params(
    action: str,
    access_key_id: str,
    secret: str,
    *,
    method: str = "POST",
    nonce: str | None = None,
    skew: timedelta = timedelta(0),
    version: str = "2016-01-20",
    **params: str,
) -> dict[str, str]:
    full = {
        "Action": action,
        "Version": version,
        "Format": "JSON",
        "AccessKeyId": access_key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": nonce or uuid.uuid4().hex,
        "Timestamp": (datetime.now(UTC) + skew).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **params,
    }
    full["Signature"] = rpc_sign(full, secret, method)
    return full


def send(url: str, params: dict[str, str], *, method: str = "POST", as_form: bool = True) -> httpx.Response:
    if method == "GET":
        return httpx.get(url + "/", params=params, timeout=30)
    if as_form:
        return httpx.post(url + "/", data=params, timeout=30)
    return httpx.post(url + "/", params=params, timeout=30)
