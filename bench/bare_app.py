"""The stack's ceiling for Encrypt: a raw ASGI app that does only what Encrypt cannot avoid.

Per request: read the body, parse it with OpenKMS's own `parse_request`, check the RPC signature with
`identify` + `verify` (the secret is known in advance), AES-256-GCM encrypt the Plaintext with a cached
AESGCM object, base64 the blob and answer JSON (orjson) with RequestId, CiphertextBlob, KeyId and
KeyVersionId. No timestamp window, nonce store, audit, database, key lookup or authorization.

Run it the way bench/run.py does, on the same stack as `openkms serve` (uvicorn with uvloop and
httptools; with several workers, the same supervisor, each worker on its own SO_REUSEPORT socket):

    BENCH_ACCESS_KEY_ID=... BENCH_ACCESS_KEY_SECRET=... python -m bench.bare_app --port P --workers 2

GET /healthz answers 200 so the runner can wait for it. Each worker makes its own random key.
"""

from __future__ import annotations

import argparse
import logging
import os
import uuid
from base64 import b64encode
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import orjson
import uvicorn
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openkms.api.params import parse_request
from openkms.api.signature import identify, verify
from openkms.cli.workers import serve_workers
from openkms.errors import OpenKMSError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_ACCESS_KEY_ID = os.environ.get("BENCH_ACCESS_KEY_ID", "")
_SECRET = os.environ.get("BENCH_ACCESS_KEY_SECRET", "")
_AEAD = AESGCM(AESGCM.generate_key(bit_length=256))
_VERSION_ID = str(uuid.uuid4())
_BLOB_HEADER = b"\x01" + uuid.UUID(_VERSION_ID).bytes  # same layout as domain.ciphertext v1
_JSON = b"application/json"
_HEALTHY = b'{"status":"ready"}'


async def _answer(send: Send, status: int, body: bytes, request_id: str = "") -> None:
    headers = [(b"content-type", _JSON), (b"content-length", str(len(body)).encode())]
    if request_id:
        headers.append((b"x-acs-request-id", request_id.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _encrypt(params: Mapping[str, str], request_id: str) -> bytes:
    plaintext = params["Plaintext"].encode()
    context = params.get("EncryptionContext")
    iv = os.urandom(12)
    sealed = _AEAD.encrypt(iv, plaintext, context.encode() if context else None)
    return orjson.dumps(
        {
            "RequestId": request_id,
            "CiphertextBlob": b64encode(_BLOB_HEADER + iv + sealed).decode(),
            "KeyId": params["KeyId"],
            "KeyVersionId": _VERSION_ID,
        }
    )


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    if scope["path"] == "/healthz":
        await _answer(send, 200, _HEALTHY)
        return
    request_id = str(uuid.uuid4()).upper()
    try:
        request = parse_request(
            scope["method"], scope["path"], scope["query_string"], scope["headers"], b"".join(chunks)
        )
        signed = identify(request)
        if signed.access_key_id != _ACCESS_KEY_ID or signed.action != "Encrypt":
            raise OpenKMSError("only Encrypt with the benchmark's access key")
        verify(request, signed, _SECRET)
        body = _encrypt(request.params, request_id)
    except (OpenKMSError, KeyError) as exc:
        error = {"RequestId": request_id, "Code": type(exc).__name__, "Message": str(exc)}
        await _answer(send, 400, orjson.dumps(error), request_id)
        return
    await _answer(send, 200, body, request_id)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_app", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "workers": args.workers,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": False,
        "log_level": "warning",
        "lifespan": "off",
        "server_header": False,
    }
    if args.workers == 1:
        uvicorn.run("bench.bare_app:app", **options)
        return 0
    return serve_workers(uvicorn.Config("bench.bare_app:app", **options), args.workers)


if __name__ == "__main__":
    raise SystemExit(main())
