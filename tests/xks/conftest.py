"""Fixtures for the XKS tests: a SoftHSM2 token with AES keys, live proxies on 127.0.0.1 (uvicorn in a
thread, a random port), clients and external providers pointed at them."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.types import ASGIApp

from openkms.secret import SecretBytes
from openkms.testing.softhsm import SoftHsmToken
from openkms.xks.client import XksClient
from openkms.xks.proxy import ProxyConfig, create_app, parse_config
from tests.xks.token import SoftToken, make_token

ACCESS_KEY_ID = "AKIAI2SFODNN7EXAMPLE"
SECRET = "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE"
PREFIX = "/keystores/test-1"
KEY_LABELS = {
    "key-1": "xks-aes-1",
    "key-2": "xks-aes-2",
    "off-1": "xks-aes-off",
    "small-1": "xks-aes-128",  # AES-128: not an AES_256 key
    "decrypt-only": "xks-aes-no-encrypt",  # may not encrypt
}


@dataclass
class LiveProxy:
    """A proxy app served by uvicorn on 127.0.0.1 in a thread of the test process."""

    endpoint: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def serve(app: ASGIApp, **ssl: Any) -> LiveProxy:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", **ssl)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:  # pragma: no cover - a broken environment
            raise RuntimeError("the test proxy did not start")
        time.sleep(0.01)
    sock.close()  # uvicorn holds its own duplicate
    scheme = "https" if ssl else "http"
    return LiveProxy(f"{scheme}://127.0.0.1:{port}", server, thread)


def proxy_config(token: SoftToken, *, disabled: frozenset[str] = frozenset(), **extra: Any) -> ProxyConfig:
    raw: dict[str, Any] = {
        "path_prefix": PREFIX,
        "plain_http": True,
        "credentials": [{"access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET}],
        "token": token.settings,
        "keys": {kid: {"label": label, "enabled": kid not in disabled} for kid, label in KEY_LABELS.items()},
    }
    raw.update(extra)
    return parse_config(raw)


@pytest.fixture(scope="session")
def token(softhsm: SoftHsmToken) -> Iterator[SoftToken]:
    made = make_token(softhsm, ["xks-aes-1", "xks-aes-2", "xks-aes-off"])
    made.add_key("xks-aes-128", length=128)
    made.add_key("xks-aes-no-encrypt", encrypt=False)
    yield made
    made.close()


@pytest.fixture(scope="session")
def proxy(token: SoftToken) -> Iterator[LiveProxy]:
    live = serve(create_app(proxy_config(token, disabled=frozenset({"off-1"})), token.sessions()))
    yield live
    live.stop()


@pytest.fixture
def make_client() -> Iterator[Callable[..., XksClient]]:
    made: list[XksClient] = []

    def make(endpoint: str, *, secret: str = SECRET, timeout: float = 5.0, **kw: Any) -> XksClient:
        client = XksClient(
            endpoint,
            kw.pop("path_prefix", PREFIX),
            kw.pop("access_key_id", ACCESS_KEY_ID),
            SecretBytes(secret.encode()),
            kw.pop("ca_file", None),
            kw.pop("allow_http", True),
            timeout,
            **kw,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def config_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path
