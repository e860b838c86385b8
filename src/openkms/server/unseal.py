"""The per-worker unseal socket: `openkms unseal` hands the passphrase to every worker of a sealed
server over a Unix socket in `<data-dir>/run/` (mode 0600, so only the server's user can reach it).

The passphrase is used to open the keyring and dropped; it is never logged or echoed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from openkms.config import Settings
from openkms.errors import OpenKMSError
from openkms.keystore import Keystore
from openkms.service.seal import root_of_trust

log = logging.getLogger("openkms.unseal")

SOCKET_GLOB = "unseal-*.sock"
MAX_LINE = 4096


def socket_path(run_dir: Path, pid: int) -> Path:
    return run_dir / f"unseal-{pid}.sock"


class UnsealListener:
    def __init__(self, settings: Settings, keystore: Keystore, after_unseal: Callable[[], None]) -> None:
        self._settings = settings
        self._keystore = keystore
        self._after_unseal = after_unseal
        self._server: asyncio.AbstractServer | None = None
        self._path = socket_path(settings.data_dir / "run", os.getpid())

    async def start(self) -> None:
        if self._settings.seal != "passphrase" or not self._keystore.sealed:
            return
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()
        old_umask = os.umask(0o077)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self._path))
        finally:
            os.umask(old_umask)
        os.chmod(self._path, 0o600)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readuntil(b"\n")
            if len(line) > MAX_LINE:
                raise ValueError("too long")
            answer = await asyncio.to_thread(self._unseal, line.rstrip(b"\n").decode("utf-8"))
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, UnicodeDecodeError):
            answer = "error: send the passphrase as one UTF-8 line"
        writer.write(answer.encode() + b"\n")
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    def _unseal(self, passphrase: str) -> str:
        if not self._keystore.sealed:
            return "ok: already unsealed"
        try:
            root = root_of_trust(self._settings, passphrase=passphrase)
            assert root is not None
            self._keystore.unseal(root)
            self._after_unseal()
        except OpenKMSError as exc:
            return f"error: {exc.message}"
        except Exception as exc:
            log.warning("unseal attempt failed: %s", type(exc).__name__)
            return f"error: {exc}"
        log.warning("unsealed by `openkms unseal`")
        return "ok: unsealed"
