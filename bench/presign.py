"""Alibaba RPC (HMAC-SHA1, SignatureVersion 1.0) signing for the benchmark, written independently of the
server's verifier, plus the pre-signed request files that wrk replays (bench/replay.lua).

Signing, as the SDKs do it:

    canonical = "&".join(pct(k) + "=" + pct(v) for k, v in sorted(params) if k != "Signature")
    string_to_sign = "POST&%2F&" + pct(canonical)
    Signature = base64(HMAC-SHA1(secret + "&", string_to_sign))          pct = quote(s, safe="~")

A request file holds one form-encoded POST body per line (percent-encoding leaves no newline in a body),
each with its own SignatureNonce (a uuid4) and the Timestamp of the moment the file was written. Only the
nonce differs between two lines, so a `Template` pre-computes everything around it: one request costs one
HMAC-SHA1 and a few string joins. The first line of every file is checked against the general `sign()`.
A varied file (`write_varied_request_file`, for the cold-cache burst) gives each line its own signer and
parameters.
"""

from __future__ import annotations

import base64
import hmac
import itertools
import json
import multiprocessing
import os
import re
import shutil
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

API_VERSION = "2016-01-20"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

_PLACEHOLDER = "0BENCHNONCEPLACEHOLDER0"  # unreserved, so percent-encoding leaves it as is
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+").fullmatch
_CHUNK = 10_000


def pct(text: str) -> str:
    """RFC 3986 percent-encoding as every Alibaba signer does it (space %20, * %2A, ~ kept)."""
    return quote(text, safe="~")


def timestamp_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key_id: str
    secret: str

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials({self.access_key_id!r}, secret=***)"


def base_params(action: str, access_key_id: str, nonce: str, timestamp: str) -> dict[str, str]:
    return {
        "Action": action,
        "Version": API_VERSION,
        "Format": "JSON",
        "AccessKeyId": access_key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": nonce,
        "Timestamp": timestamp,
    }


def signature(params: Mapping[str, str], secret: str, method: str = "POST") -> str:
    canonical = "&".join(pct(k) + "=" + pct(v) for k, v in sorted(params.items()) if k != "Signature")
    string_to_sign = method + "&%2F&" + pct(canonical)
    return base64.b64encode(hmac.digest((secret + "&").encode(), string_to_sign.encode(), "sha1")).decode()


def sign(params: Mapping[str, str], secret: str) -> dict[str, str]:
    """A copy of `params` with its `Signature` added."""
    signed = dict(params)
    signed["Signature"] = signature(params, secret)
    return signed


def form_body(params: Mapping[str, str]) -> str:
    return "&".join(pct(k) + "=" + pct(v) for k, v in params.items())


def signed_request_params(
    action: str, creds: Credentials, extra: Mapping[str, str], *, timestamp: str | None = None
) -> dict[str, str]:
    params = base_params(action, creds.access_key_id, str(uuid.uuid4()), timestamp or timestamp_now())
    params.update(extra)
    return sign(params, creds.secret)


class RpcCallError(RuntimeError):
    def __init__(self, action: str, status: int, body: str) -> None:
        super().__init__(f"{action} answered HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


def rpc_call(url: str, creds: Credentials, action: str, **extra: str) -> dict[str, Any]:
    """One signed RPC call (form POST to `url` + "/"); returns the JSON answer, raises on non-200."""
    body = form_body(signed_request_params(action, creds, extra)).encode()
    request = urllib.request.Request(
        url.rstrip("/") + "/", data=body, method="POST", headers={"Content-Type": FORM_CONTENT_TYPE}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except urllib.error.HTTPError as exc:
        raise RpcCallError(action, exc.code, exc.read().decode(errors="replace")) from None


@dataclass(frozen=True, slots=True)
class Template:
    """Everything of one action's signed body except the nonce, for fast bulk signing."""

    key: bytes
    string_to_sign: tuple[str, str]
    body: tuple[str, str]

    @classmethod
    def build(cls, action: str, creds: Credentials, extra: Mapping[str, str], timestamp: str) -> Template:
        params = base_params(action, creds.access_key_id, _PLACEHOLDER, timestamp)
        params.update(extra)
        canonical = "&".join(pct(k) + "=" + pct(v) for k, v in sorted(params.items()))
        string_to_sign = "POST&%2F&" + pct(canonical)
        body = form_body(params) + "&Signature="
        if string_to_sign.count(_PLACEHOLDER) != 1 or body.count(_PLACEHOLDER) != 1:
            raise ValueError("the nonce placeholder must occur exactly once")
        sts_head, _, sts_tail = string_to_sign.partition(_PLACEHOLDER)
        body_head, _, body_tail = body.partition(_PLACEHOLDER)
        return cls((creds.secret + "&").encode(), (sts_head, sts_tail), (body_head, body_tail))

    def render(self, nonce: str) -> str:
        """The signed form body for `nonce`, which must be all unreserved characters (a uuid is)."""
        sts_head, sts_tail = self.string_to_sign
        digest = hmac.digest(self.key, (sts_head + nonce + sts_tail).encode(), "sha1")
        body_head, body_tail = self.body
        return body_head + nonce + body_tail + pct(base64.b64encode(digest).decode())


def _render_to_file(template: Template, count: int, path: str) -> None:
    render = template.render
    with open(path, "w", encoding="ascii") as out:
        for start in range(0, count, _CHUNK):
            lines = [render(str(uuid.uuid4())) for _ in range(min(_CHUNK, count - start))]
            lines.append("")
            out.write("\n".join(lines))


def check_body(body: str, creds: Credentials) -> None:
    """Re-derive a rendered body's signature with the general signer; raise if they differ."""
    params = dict(parse_qsl(body, keep_blank_values=True, strict_parsing=True))
    claimed = params.pop("Signature")
    if not _UNRESERVED(params["SignatureNonce"]):
        raise ValueError("nonce must be unreserved characters only")
    if signature(params, creds.secret) != claimed:
        raise ValueError("template signer and reference signer disagree")


@dataclass(frozen=True, slots=True)
class SignedCall:
    """One line of a varied request file: its action, who signs it, and its own parameters."""

    action: str
    creds: Credentials
    extra: Mapping[str, str]


def _render_calls_to_file(calls: Sequence[SignedCall], timestamp: str, path: str) -> None:
    # A file that comes round its targets again repeats the same call objects: one template each.
    templates: dict[int, Template] = {}
    with open(path, "w", encoding="ascii") as out:
        for start in range(0, len(calls), _CHUNK):
            lines = []
            for call in calls[start : start + _CHUNK]:
                template = templates.get(id(call))
                if template is None:
                    template = Template.build(call.action, call.creds, call.extra, timestamp)
                    templates[id(call)] = template
                lines.append(template.render(str(uuid.uuid4())))
            lines.append("")
            out.write("\n".join(lines))


def write_request_file(
    path: Path,
    action: str,
    creds: Credentials,
    extra: Mapping[str, str],
    count: int,
    *,
    processes: int | None = None,
    timeout: float = 600.0,
) -> int:
    """Write `count` freshly signed bodies for `action` to `path`, one per line; returns bytes written."""
    template = Template.build(action, creds, extra, timestamp_now())
    workers = max(1, min(processes or os.cpu_count() or 1, count))
    shares = [count // workers + (1 if index < count % workers else 0) for index in range(workers)]
    written = _write_in_parts(path, [(_render_to_file, (template, share)) for share in shares], timeout)
    with path.open("rb") as first:
        check_body(first.readline().decode().rstrip("\n"), creds)
    return written


def write_varied_request_file(
    path: Path, calls: Sequence[SignedCall], *, processes: int | None = None, timeout: float = 600.0
) -> int:
    """Write one freshly signed body per call, in the order given (each with its own signer and
    parameters, all with the current Timestamp); returns bytes written. Each distinct call object
    costs a template; a call repeated in the list costs one HMAC per line, as in `write_request_file`."""
    timestamp = timestamp_now()
    count = len(calls)
    workers = max(1, min(processes or os.cpu_count() or 1, count))
    bounds = [count * index // workers for index in range(workers + 1)]
    jobs = [(_render_calls_to_file, (calls[low:high], timestamp)) for low, high in itertools.pairwise(bounds)]
    written = _write_in_parts(path, jobs, timeout)
    with path.open("rb") as first:
        check_body(first.readline().decode().rstrip("\n"), calls[0].creds)
    return written


def _write_in_parts(
    path: Path, jobs: Sequence[tuple[Callable[..., None], tuple[Any, ...]]], timeout: float
) -> int:
    """Run each job (a function writing a part file, given its arguments and the part's path) in a
    forked process, then join the parts in order into `path`; returns bytes written.

    Plain worker processes, no process pool, so nothing is left to tear down: each one is joined here.
    """
    parts = [path.with_name(f"{path.name}.part{index}") for index in range(len(jobs))]
    context = multiprocessing.get_context("fork")
    children = [
        context.Process(target=function, args=(*args, str(part)), daemon=True)
        for (function, args), part in zip(jobs, parts, strict=True)
    ]
    try:
        for child in children:
            child.start()
        deadline = time.monotonic() + timeout
        for child in children:
            child.join(max(0.0, deadline - time.monotonic()))
            if child.exitcode != 0:
                raise RuntimeError(f"a signing process failed (exit code {child.exitcode})")
        written = 0
        with path.open("wb") as out:
            for part in parts:
                with part.open("rb") as source:
                    shutil.copyfileobj(source, out, 1 << 20)
                written += part.stat().st_size
        return written
    finally:
        for child in children:
            if child.is_alive():
                child.kill()
                child.join()
        for part in parts:
            part.unlink(missing_ok=True)
