"""The ASGI server drivers of `helpers.servers`: the Driver protocol, and uvicorn's driver (hypercorn's is elsewhere).

A driver serves an app on the running event loop from a socket that is already listening, says when it
accepts connections (`on_settled`, also called if startup fails), and stops when asked from any thread.
`helpers.servers.ThreadServer` runs one on its own loop in a daemon thread; `helpers.process_entry` runs one
in a child process. Daphne has no driver here: its Twisted reactor is one per process and cannot be restarted,
so it only ever runs in a child (process_entry). The hypercorn driver is `helpers.hypercorn_driver`, imported only
when a hypercorn server starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import socket
import warnings
from collections.abc import Callable
from typing import Protocol

import uvicorn
from uvicorn.config import UvicornDeprecationWarning

__all__ = [
    "UVICORN_WS",
    "Driver",
    "ReadyUvicorn",
    "UvicornDriver",
    "prepare_uvicorn_ws",
]

# The uvicorn-based server names and the `ws` protocol each gives uvicorn ("auto" is websockets-sansio in 0.54).
UVICORN_WS = {"uvicorn": "auto", "uvicorn-websockets": "websockets", "uvicorn-wsproto": "wsproto"}


class Driver(Protocol):
    """What ThreadServer needs from a server: serve a listening socket, report startup, stop on request."""

    @property
    def started(self) -> bool: ...

    async def serve(self, sock: socket.socket) -> None: ...

    def request_exit(self, loop: asyncio.AbstractEventLoop) -> None: ...

    def force_exit(self) -> None: ...


def prepare_uvicorn_ws(ws: str) -> None:
    """Import uvicorn's protocol module for `ws` now, for ws="websockets" with its two deprecation warnings muted.

    uvicorn imports it lazily (Config.load()); once imported here it is not imported, nor warned about, again.
    Each connection then warns once more, from the server's thread; that one warning is muted process-wide.
    """
    if ws != "websockets":
        return
    # uvicorn's legacy protocol hands websockets.legacy a handler taking (websocket, path), which websockets
    # deprecates on every connection. Muted by message and module only, so any other DeprecationWarning still
    # shows; added again on every serve because pytest restores the warning filters after each test.
    warnings.filterwarnings(
        "ignore",
        message="remove second argument of ws_handler",
        category=DeprecationWarning,
        module=r"websockets\.legacy\.server",
    )
    with warnings.catch_warnings():
        # ws="websockets" is the legacy websockets implementation, chosen on purpose (lesson 13 compares uvicorn's
        # protocols). Importing it warns that websockets.legacy and uvicorn's wrapper of it are deprecated; the
        # tests run with warnings as errors, so exactly those two warnings are muted, and only for this import.
        warnings.filterwarnings("ignore", message="websockets.legacy is deprecated", category=DeprecationWarning)
        warnings.filterwarnings(
            "ignore", message="The `websockets` implementation is deprecated", category=UvicornDeprecationWarning
        )
        importlib.import_module("uvicorn.protocols.websockets.websockets_impl")


# --------------------------------------------------------------------------------------------------
# uvicorn


class ReadyUvicorn(uvicorn.Server):
    """uvicorn.Server that reports startup and never installs signal handlers."""

    def __init__(self, config: uvicorn.Config, on_settled: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_settled = on_settled

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self._on_settled()

    async def main_loop(self) -> None:
        # uvicorn's own loop polls should_exit every 0.1 s; waking on request_exit() halves stop() time.
        self._wake = asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)
            should_exit = await self.on_tick(counter)

    def request_exit(self, loop: asyncio.AbstractEventLoop) -> None:
        """Ask the server to shut down; safe from any thread."""
        self.should_exit = True
        wake = getattr(self, "_wake", None)
        if wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(wake.set)

    def capture_signals(self) -> contextlib.nullcontext[None]:  # type: ignore[override]
        # The kernel owns SIGINT (its interrupt button); a server inside it must not take it over.
        return contextlib.nullcontext()


class UvicornDriver:
    """uvicorn (any of its WebSocket protocols) with the Config the caller made (helpers.servers.make_config)."""

    def __init__(self, config: uvicorn.Config, on_settled: Callable[[], None]) -> None:
        self.server = ReadyUvicorn(config, on_settled)

    @property
    def started(self) -> bool:
        return self.server.started

    async def serve(self, sock: socket.socket) -> None:
        await self.server.serve(sockets=[sock])

    def request_exit(self, loop: asyncio.AbstractEventLoop) -> None:
        self.server.request_exit(loop)

    def force_exit(self) -> None:
        # Connections that never finish: cut them, as a second Ctrl+C would.
        self.server.force_exit = True
