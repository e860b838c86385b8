"""The instance-api scenario of `make bench`: the KMS instance API's AdvanceEncrypt (protobuf, a client
key's RSA signature, `api/instance`) beside OpenAPI Encrypt (form parameters, HMAC signature, a nonce
per request) on the same server, runs alternated, the same key and 64 bytes of plaintext.

The instance request is signed here, independently of the server, as the instance SDKs sign it
(RSA-PKCS1-SHA256 over `POST`, content-sha256, content type, date, the x-kms-* headers, `/`); the
protocol has no nonce, so one request signed at the start of a run is sent again and again (its date
stays within the window). The server answers both on its one port (plain HTTP here, as the OpenAPI
rows are measured).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from email.utils import formatdate
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from bench.harness import log, openkms_server
from bench.presign import Credentials, rpc_call

if TYPE_CHECKING:
    from bench.run import Bench, Row

PASSWORD = "Bench-client-key-1"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def advance_encrypt_body(key_id: str, plaintext: bytes) -> bytes:
    """AdvanceEncryptRequest{1 KeyId, 2 Plaintext} in protobuf's wire format, written out by hand so
    the bench shares no code with the server (field 1 and 2, length-delimited)."""
    key = key_id.encode()
    return b"\x0a" + _varint(len(key)) + key + b"\x12" + _varint(len(plaintext)) + plaintext


def signed_request(host: str, client_key_id: str, private: rsa.RSAPrivateKey, body: bytes) -> bytes:
    """One whole HTTP request of the instance API, signed now."""
    headers = {
        "content-type": "application/x-protobuf",
        "content-sha256": hashlib.sha256(body).hexdigest().upper(),
        "date": formatdate(usegmt=True),
        "x-kms-acccesskeyid": client_key_id,
        "x-kms-apiname": "AdvanceEncrypt",
        "x-kms-apiversion": "dkms-gcs-0.2",
        "x-kms-signaturemethod": "RSA_PKCS1_SHA_256",
    }
    signed_headers = "".join(
        f"{k}:{headers[k]}\n" for k in sorted(h for h in headers if h.startswith("x-kms-"))
    )
    to_sign = (
        f"POST\n{headers['content-sha256']}\n{headers['content-type']}\n{headers['date']}\n{signed_headers}/"
    )
    signature = private.sign(to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
    headers["authorization"] = "Bearer " + base64.b64encode(signature).decode()
    lines = ["POST / HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def client_key(url: str, creds: Credentials, instance_id: str) -> tuple[str, rsa.RSAPrivateKey]:
    """An access point that may use the instance's keys from 127.0.0.1, and a client key of it."""
    rpc_call(
        url, creds, "CreateNetworkRule", Name="bench-net", Type="Private", SourcePrivateIp='["127.0.0.1"]'
    )
    rpc_call(url, creds, "CreatePolicy", Name="bench-policy", KmsInstance=instance_id,
             Permissions='["RbacPermission/Template/CryptoServiceKeyUser"]', Resources='["key/*"]',
             AccessControlRules=json.dumps({"NetworkRules": ["bench-net"]}))  # fmt: skip
    rpc_call(url, creds, "CreateApplicationAccessPoint", Name="bench-app", Policies='["bench-policy"]')
    made = rpc_call(url, creds, "CreateClientKey", AapName="bench-app", Password=PASSWORD)
    private, _, _ = pkcs12.load_key_and_certificates(
        base64.b64decode(made["PrivateKeyData"]), PASSWORD.encode()
    )
    assert isinstance(private, rsa.RSAPrivateKey)
    return str(made["ClientKeyId"]), private


def run_scenario(
    bench: Bench, stack: contextlib.ExitStack, workers: int, connections: Sequence[int]
) -> list[Row]:
    from bench.run import ENCRYPTION_CONTEXT, Target

    work = bench.work / "instance-api"
    work.mkdir(parents=True, exist_ok=True)
    server = openkms_server(work, bench.creds, workers, {})
    stack.callback(server.stop)
    server.start()
    url = server.url
    instance_id = str(
        rpc_call(url, bench.creds, "ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    )
    key_id = str(rpc_call(url, bench.creds, "CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"])
    client_key_id, private = client_key(url, bench.creds, instance_id)
    plaintext = os.urandom(64)
    body = advance_encrypt_body(key_id, plaintext)
    host = url.removeprefix("http://")

    def make() -> bytes:
        return signed_request(host, client_key_id, private, body)

    check = _send(url, make())  # a broken setup fails here, not in wrk
    log(f"instance API AdvanceEncrypt answered {len(check)} bytes; key {key_id}, client key {client_key_id}")
    openapi_params = {"KeyId": key_id, "Plaintext": base64.b64encode(plaintext).decode(),
                      "EncryptionContext": ENCRYPTION_CONTEXT}  # fmt: skip
    rpc_call(url, bench.creds, "Encrypt", **openapi_params)
    rows: list[Row] = []
    for conns in connections:
        rows += bench.interleaved(
            [
                Target(server, "openkms OpenAPI", openapi_params),
                Target(server, "openkms instance API", {}, make),
            ],
            "Encrypt",
            conns,
        )
    server.stop()
    return rows


def _send(url: str, request: bytes) -> bytes:
    """Send one raw request with the standard library and return its 200 body (or raise)."""
    import http.client

    host, _, port = url.removeprefix("http://").partition(":")
    head, _, body = request.partition(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("POST", "/", body=body, headers=headers)
        answer = connection.getresponse()
        content = answer.read()
    finally:
        connection.close()
    if answer.status != 200:
        raise RuntimeError(f"the instance API refused the bench's request: {answer.status} {content!r}")
    return content


def summary_lines(rows: Sequence[Row]) -> list[str]:
    lines = [
        "The instance API (`--only instance-api`): AdvanceEncrypt (protobuf, client-key RSA signature) "
        "against OpenAPI Encrypt (HMAC, nonce) on the same server, same key and plaintext, runs alternated:",
        "",
    ]
    by_conns: dict[int, dict[str, Row]] = {}
    for row in rows:
        by_conns.setdefault(row.connections, {})[row.target] = row
    for conns, pair in sorted(by_conns.items()):
        openapi, instance = pair.get("openkms OpenAPI"), pair.get("openkms instance API")
        if openapi is None or instance is None:
            continue
        ratio = instance.rps / openapi.rps if openapi.rps else 0.0
        lines.append(
            f"- c={conns}: instance API **{ratio:.2f} x** OpenAPI ({instance.rps:,.0f} vs "
            f"{openapi.rps:,.0f} req/s); p50 {instance.p50_ms:.2f} vs {openapi.p50_ms:.2f} ms, p99 "
            f"{instance.p99_ms:.2f} vs {openapi.p99_ms:.2f} ms (worst run {instance.worst_p99_ms:.2f} vs "
            f"{openapi.worst_p99_ms:.2f} ms)" + ("" if instance.valid and openapi.valid else " (**INVALID**)")
        )
    return lines
