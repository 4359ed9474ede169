"""The hypercorn driver for `helpers.servers` (see `helpers.asgi_servers` for the protocol it follows).

Its own module, imported only when a hypercorn server starts: importing hypercorn costs about 0.1 s of CPU, and
every process server, kernel and test process imports `helpers.servers` whichever server it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any

import hypercorn.asyncio
from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets

from helpers.usage import UsageError

__all__ = ["HypercornDriver", "captured_error_log", "hypercorn_config"]


class _PreboundConfig(HypercornConfig):
    """A hypercorn Config that serves a socket we already bound instead of binding `config.bind` itself.

    hypercorn calls create_sockets() after the lifespan startup, right before it starts serving; its own
    `fd://N` bind would wrap our descriptor in a second socket object and close it behind our back.
    """

    prebound: socket.socket | None = None
    on_sockets: Callable[[], None] | None = None

    def create_sockets(self) -> Sockets:
        if self.prebound is None:
            raise RuntimeError("HypercornDriver.serve() sets the socket before hypercorn asks for it")
        if self.on_sockets is not None:
            self.on_sockets()
        return Sockets(secure_sockets=[], insecure_sockets=[self.prebound], quic_sockets=[])


def hypercorn_config(log_level: str, options: dict[str, Any] | None = None) -> HypercornConfig:
    """hypercorn's default Config with only the log level set, plus `options` (Config attributes, checked).

    Everything else stays hypercorn's default (websocket_max_message_size 16 MiB, graceful_timeout 3 s,
    keep_alive_timeout 5 s, no WebSocket pings, backlog 100, error log to stderr, no access log).
    """
    config = _PreboundConfig()
    config.loglevel = log_level.upper()
    for key, value in (options or {}).items():
        if key.startswith("_") or key in {"bind", "insecure_bind", "quic_bind"} or not hasattr(HypercornConfig, key):
            raise UsageError(
                f"{key!r} is not a hypercorn Config setting the helpers can pass on (the socket is bound for you); "
                "see https://hypercorn.readthedocs.io/en/latest/how_to_guides/configuring.html"
            )
        setattr(config, key, value)
    return config


def captured_error_log(name: str, log_level: str, handler: logging.Handler) -> logging.Logger:
    """A logger of its own for one hypercorn server's error log, handing records to `handler` (the ServerLog router).

    Made directly, not with logging.getLogger(): it is not shared with a learner's own hypercorn (which resets
    the handlers of "hypercorn.error"), and it goes away with its server.
    """
    logger = logging.Logger(f"hypercorn.error[{name}]", level=log_level.upper())
    logger.addHandler(handler)
    return logger


class HypercornDriver:
    """hypercorn.asyncio.serve() with a shutdown trigger we set, serving the prebound socket."""

    def __init__(self, app: Any, config: HypercornConfig, on_settled: Callable[[], None]) -> None:
        if not isinstance(config, _PreboundConfig):
            raise TypeError("HypercornDriver needs a Config from hypercorn_config()")
        self.app = app
        self.config = config
        self._on_settled = on_settled
        self._shutdown = asyncio.Event()
        self._started = False

    @property
    def started(self) -> bool:
        return self._started

    def _sockets_taken(self) -> None:
        # create_sockets() runs just before asyncio's start_server(), which starts accepting before it first
        # yields: a callback scheduled now runs once the socket is served.
        asyncio.get_running_loop().call_soon(self._serving)

    def _serving(self) -> None:
        self._started = True
        self._on_settled()

    async def serve(self, sock: socket.socket) -> None:
        self.config.prebound = sock
        self.config.on_sockets = self._sockets_taken
        try:
            await hypercorn.asyncio.serve(self.app, self.config, shutdown_trigger=self._shutdown.wait)
        finally:
            self._on_settled()

    def request_exit(self, loop: asyncio.AbstractEventLoop) -> None:
        """Set the shutdown trigger; safe from any thread."""
        if not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(self._shutdown.set)

    def force_exit(self) -> None:
        # hypercorn has no "cut the connections now": its graceful_timeout (3 s) bounds the wait, and
        # ThreadServer.stop() cancels the serving task if even that is not enough.
        pass
