"""CPU per Encrypt request of the full app and of the bare app, called in process (no HTTP, no wrk).

What the live benchmark cannot tell on a busy or drifting machine: process CPU time (all threads,
user + system) per request is much steadier than req/s, so a change to the request path can be judged
here in a minute while other work runs on the box. Both apps are driven the same way: `--tasks`
concurrent tasks on one uvloop event loop, each sending pre-signed Encrypt bodies to the ASGI callable
(the full app after its lifespan started, with the bench's raised limits). HTTP parsing and socket
writes (uvicorn) are left out of both, so the ratio here is lower than the live one.

    python -m bench.inprocess [--requests 20000] [--tasks 32] [--profile out.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import uvloop

from bench.harness import BENCH_LIMITS
from bench.presign import (
    FORM_CONTENT_TYPE,
    Credentials,
    Template,
    form_body,
    signed_request_params,
    timestamp_now,
)

Message = MutableMapping[str, Any]
App = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


async def _call(app: App, body: bytes) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", FORM_CONTENT_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }
    sent = False
    answer: dict[str, Any] = {}

    async def receive() -> Message:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] = answer.get("body", b"") + message.get("body", b"")

    await app(scope, receive, send)
    return answer["status"], answer["body"]


async def _drive(app: App, bodies: list[bytes], tasks: int) -> tuple[float, float, dict[int, int]]:
    queue = iter(bodies)
    statuses: dict[int, int] = {}

    async def worker() -> None:
        for body in queue:
            status, _ = await _call(app, body)
            statuses[status] = statuses.get(status, 0) + 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return time.process_time() - cpu, time.perf_counter() - wall, statuses


def _bodies(template: Template, count: int) -> list[bytes]:
    return [template.render(str(uuid.uuid4())).encode() for _ in range(count)]


async def _lifespan(app: App) -> Callable[[], Awaitable[None]]:
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.ensure_future(app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, outbox.put))
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"the app did not start: {started}")

    async def stop() -> None:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task

    return stop


async def _full(creds: Credentials, data_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    from rich.console import Console

    from openkms.cli.prepare import prepare_store
    from openkms.config import load_settings
    from openkms.server.app import create_app
    from openkms.server.metrics_files import prepare_metrics_dir

    settings = load_settings(overrides={"data_dir": data_dir})
    prepare_metrics_dir(settings.data_dir)
    prepare_store(settings, Console(stderr=True, quiet=True))
    app = create_app(settings)
    stop = await _lifespan(app)
    try:

        async def once(action: str, **extra: str) -> dict[str, Any]:
            body = form_body(signed_request_params(action, creds, extra)).encode()
            status, answer = await _call(app, body)
            if status != 200:
                raise RuntimeError(f"{action}: {status} {answer[:300]!r}")
            result: dict[str, Any] = json.loads(answer)
            return result

        instance = (await once("ListKmsInstances"))["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
        key_id = str((await once("CreateKey", DKMSInstanceId=instance))["KeyMetadata"]["KeyId"])
        extra = {"KeyId": key_id, "Plaintext": base64.b64encode(os.urandom(32)).decode()}
        template = Template.build("Encrypt", creds, extra, timestamp_now())
        await _drive(app, _bodies(template, 2000), args.tasks)  # warm caches and code paths
        return await _measure(app, template, args, profile=args.profile)
    finally:
        await stop()


async def _bare(creds: Credentials, args: argparse.Namespace) -> dict[str, Any]:
    os.environ["BENCH_ACCESS_KEY_ID"], os.environ["BENCH_ACCESS_KEY_SECRET"] = (
        creds.access_key_id,
        creds.secret,
    )
    import bench.bare_app as bare

    bare._ACCESS_KEY_ID, bare._SECRET = creds.access_key_id, creds.secret
    extra = {"KeyId": str(uuid.uuid4()), "Plaintext": base64.b64encode(os.urandom(32)).decode()}
    template = Template.build("Encrypt", creds, extra, timestamp_now())
    await _drive(bare.app, _bodies(template, 2000), args.tasks)
    return await _measure(bare.app, template, args, profile=None)


async def _measure(
    app: App, template: Template, args: argparse.Namespace, *, profile: str | None
) -> dict[str, Any]:
    bodies = _bodies(template, args.requests)
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    cpu, wall, statuses = await _drive(app, bodies, args.tasks)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    if statuses.get(200) != len(bodies):
        raise RuntimeError(f"not every request succeeded: {statuses}")
    return {"cpu_us": cpu / len(bodies) * 1e6, "wall_us": wall / len(bodies) * 1e6}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3, help="alternating measurements of each app")
    parser.add_argument("--only", choices=("full", "bare"), default=None)
    parser.add_argument("--profile", default=None, help="cProfile the last full-app measurement to this file")
    args = parser.parse_args()
    creds = Credentials("LTAIbench" + os.urandom(6).hex(), base64.b64encode(os.urandom(24)).decode())
    os.environ.update(BENCH_LIMITS)
    os.environ["OPENKMS_ROOT_ACCESS_KEY_ID"], os.environ["OPENKMS_ROOT_ACCESS_KEY_SECRET"] = (
        creds.access_key_id,
        creds.secret,
    )
    results: dict[str, list[dict[str, Any]]] = {"full": [], "bare": []}
    with tempfile.TemporaryDirectory(prefix="openkms-bench-inprocess-") as work:
        for _ in range(args.repeat):
            if args.only in (None, "full"):
                data_dir = Path(work) / f"data-{uuid.uuid4().hex[:8]}"
                results["full"].append(uvloop.run(_full(creds, data_dir, args)))
            if args.only in (None, "bare"):
                results["bare"].append(uvloop.run(_bare(creds, args)))
    summary: dict[str, Any] = {"runs": results}
    for name, runs in results.items():
        if runs:
            summary[f"{name}_cpu_us_median"] = sorted(r["cpu_us"] for r in runs)[len(runs) // 2]
    if results["full"] and results["bare"]:
        summary["cpu_ratio_full_to_bare"] = summary["full_cpu_us_median"] / summary["bare_cpu_us_median"]
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
