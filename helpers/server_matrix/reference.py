"""The outside reference for lesson 13: the `websockets` library's own asyncio server, with its defaults.

It is not an ASGI server, so there is no `websocket.accept` to withhold: the nearest equivalent of each
path of `helpers.server_matrix.apps.app` is used instead. A refusal before the handshake is
`process_request` answering with HTTP 403; an app that never answers is a `process_request` that never
returns; everything after the handshake is the handler doing what the ASGI app does.

    python -m helpers.server_matrix reference

binds a free loopback port, prints `READY <port>` like `helpers.process_entry`, and exits when its stdin
closes (which also happens when the parent dies). `ReferenceServer` starts and stops that child.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Response, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request
from websockets.typing import Subprotocol

from helpers.process_entry import on_stdin_eof
from helpers.server_matrix.apps import DISCONNECTS, REPORT_WAIT, SINK_SECONDS
from helpers.spawn import reap

__all__ = [
    "READY_TIMEOUT",
    "SHUTDOWN_WAIT",
    "ReferenceServer",
    "handler",
    "main",
    "process_request",
    "select_subprotocol",
]

READY_TIMEOUT = 10.0
SHUTDOWN_WAIT = 0.5  # the harness gives handlers this long at shutdown: its exit time is ours, not the library's


def _path(connection: ServerConnection) -> tuple[str, str]:
    assert connection.request is not None
    parts = urlsplit(connection.request.path)
    return parts.path, parse_qs(parts.query).get("key", [""])[0]


async def process_request(connection: ServerConnection, request: Request) -> Response | None:
    """Before the handshake: /reject answers 403 (websockets' way to refuse), /never never answers."""
    path = urlsplit(request.path).path
    if path == "/reject":
        return connection.respond(HTTPStatus.FORBIDDEN, "not allowed\n")
    if path == "/never":
        await asyncio.Event().wait()  # the server's own open_timeout (10 s) is the only thing that ends this
    return None


def select_subprotocol(connection: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    """Pick the second subprotocol offered, like the ASGI app's /subprotocol."""
    return offered[1] if len(offered) > 1 else None


async def _report(ws: ServerConnection, key: str) -> None:
    for _ in range(int(REPORT_WAIT / 0.05)):
        if key in DISCONNECTS:
            break
        await asyncio.sleep(0.05)
    await ws.send(str(DISCONNECTS.get(key, "none")))
    await ws.wait_closed()


async def _vanish(ws: ServerConnection, key: str) -> None:
    try:
        async for _ in ws:
            pass
    finally:
        DISCONNECTS[key] = ws.protocol.close_rcvd.code if ws.protocol.close_rcvd else 1006


async def handler(ws: ServerConnection) -> None:
    """After the handshake: the same behaviour per path as the ASGI app."""
    path, key = _path(ws)
    if path == "/raise":
        raise RuntimeError("boom: a bug after accept")
    if path == "/close":
        await ws.close(4003, "room is full")
    elif path == "/size":
        async for message in ws:
            await ws.send(f"{len(message if isinstance(message, bytes) else message.encode())} bytes")
    elif path == "/client":
        await ws.send(str(ws.remote_address[0]))
        await ws.wait_closed()
    elif path == "/spec":
        await ws.send("not ASGI")
        await ws.wait_closed()
    elif path == "/vanish":
        await _vanish(ws, key)
    elif path == "/report":
        await _report(ws, key)
    elif path == "/sink":
        await asyncio.sleep(SINK_SECONDS)
    elif path in ("/hold", "/subprotocol"):
        await ws.wait_closed()
    # /return: the handler returns at once, and websockets closes with 1000


async def _serve(stop: asyncio.Event) -> None:
    server = await serve(
        handler, "127.0.0.1", 0, process_request=process_request, select_subprotocol=select_subprotocol
    )
    print(f"READY {next(iter(server.sockets)).getsockname()[1]}", flush=True)
    await stop.wait()
    server.close()  # closes every open connection with 1001 (going away)
    # Handlers still running (a /sink sleeping, a handshake kept waiting) are not waited for: the process exits.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.wait_closed(), SHUTDOWN_WAIT)


def main() -> int:
    """Serve until stdin closes; the server then closes every connection (1001) as its own shutdown does."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    on_stdin_eof(lambda: loop.call_soon_threadsafe(stop.set))
    with contextlib.suppress(ConnectionClosed):
        loop.run_until_complete(_serve(stop))
    loop.close()
    return 0


class ReferenceServer:
    """`python -m helpers.server_matrix reference` in a child process: `.pid`, `.port`, `.ws_url()`, `.stop()`."""

    def __init__(self, ready_timeout: float = READY_TIMEOUT) -> None:
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
        self.process = reap(
            subprocess.Popen(
                [sys.executable, "-m", "helpers.server_matrix", "reference"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        )
        self.port = self._ready_port(ready_timeout)

    def _ready_port(self, timeout: float) -> int:
        lines: list[bytes] = []
        assert self.process.stdout is not None
        reader = threading.Thread(target=lambda: lines.append(self.process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout)
        if not lines or not lines[0].startswith(b"READY "):
            self.stop()
            raise RuntimeError(f"the websockets reference server did not print READY within {timeout} s")
        return int(lines[0].split()[1])

    @property
    def pid(self) -> int:
        return self.process.pid

    def ws_url(self, path: str = "/") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def signal_stop(self) -> None:
        """Close the child's stdin: it closes its connections and exits (stop() then waits)."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(OSError):
                self.process.stdin.close()

    def stop(self, timeout: float = 5.0) -> None:
        self.signal_stop()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> ReferenceServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
