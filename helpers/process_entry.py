"""Child-process side of `helpers.servers.serve_process`.

    python -m helpers.process_entry package.module:app --host 127.0.0.1 --port 0 --server uvicorn

Binds the socket, starts the server (`--server`, one of helpers.servers.SERVERS; uvicorn by default), then
prints `READY <port>` on stdout. It shuts down gracefully on SIGTERM/SIGINT (we are the main thread here) or
when stdin reaches EOF, which is what happens when the parent closes it or dies, so a crashed test never leaves
it behind. Exit codes: 0 after a clean shutdown, 1 if the address cannot be bound, 2 for bad arguments, 3 if
the app cannot be imported or the server does not start.

What each server is given besides the socket and the log level (the rest is the library's default):
uvicorn, uvicorn-websockets, uvicorn-wsproto get `servers.make_config` (as thread servers do; with
`--library-defaults`, uvicorn's own settings: 16 MiB messages, no graceful-shutdown deadline) and uvicorn's own
logging on stderr; hypercorn gets its default Config (error log on stderr in hypercorn's format); daphne gets
`daphne.server.Server`'s defaults (1 MiB messages, pings every 20 s, 10 s application close timeout, no lifespan),
an access log on stderr at --log-level info or debug, and logging on stderr as "LEVEL: message". On shutdown
daphne stops its reactor without closing open WebSockets: their clients see the TCP connection drop (1006).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG
from uvicorn.importer import ImportFromStringError, import_from_string

from helpers.asgi_servers import UVICORN_WS
from helpers.servers import SERVERS, ServerStartError, listen_socket, make_config
from helpers.usage import LOG_LEVELS

if TYPE_CHECKING:
    from helpers.hypercorn_driver import HypercornDriver

__all__ = [
    "main",
    "on_stdin_eof",
]


def _log_config() -> dict[str, Any]:
    """uvicorn's own logging config, with its access log on stderr too.

    stdout carries the READY line, and nobody reads it after that: access lines there (at --log-level info)
    would fill the pipe and block the server.
    """
    config = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    return config


def _announce(port: int) -> None:
    print(f"READY {port}", flush=True)


class _AnnouncingServer(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and sockets:
            _announce(sockets[0].getsockname()[1])


def on_stdin_eof(stop: Callable[[], object]) -> None:
    """Call `stop` (from a daemon thread) once stdin reaches EOF: how every child server here learns to stop."""

    def watch() -> None:
        # os.read on the raw descriptor: a daemon thread blocked in sys.stdin's buffered reader
        # aborts the interpreter at exit ("could not acquire lock for <stdin>").
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        stop()

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


def _import_app(import_string: str) -> Any | None:
    """The app, or None after saying on stderr (in uvicorn's words) why it cannot be imported."""
    try:
        return import_from_string(import_string)
    except ImportFromStringError as exc:
        print(f"ERROR:    Error loading ASGI app. {exc}", file=sys.stderr, flush=True)
        return None


def _run_uvicorn(import_string: str, sock: socket.socket, log_level: str, ws: str, library_defaults: bool) -> int:
    # The thread servers' settings, with uvicorn's own logging to stderr: the parent reads it (ProcessServer.output).
    config = make_config(
        import_string, log_level, {"ws": ws}, log_config=_log_config(), library_defaults=library_defaults
    )
    server = _AnnouncingServer(config)
    on_stdin_eof(lambda: setattr(server, "should_exit", True))
    asyncio.run(server.serve(sockets=[sock]))
    return 0 if server.started else 3


async def _serve_hypercorn(driver: HypercornDriver, sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    # With a shutdown trigger hypercorn installs no signal handlers of its own; these do what its own would.
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, driver.request_exit, loop)
    on_stdin_eof(lambda: driver.request_exit(loop))
    await driver.serve(sock)


def _run_hypercorn(import_string: str, sock: socket.socket, log_level: str) -> int:
    app = _import_app(import_string)
    if app is None:
        return 3
    port = sock.getsockname()[1]
    announced: list[bool] = []

    def settled() -> None:  # called once serving, and again when serve() ends
        if driver.started and not announced:
            announced.append(True)
            _announce(port)

    from helpers.hypercorn_driver import HypercornDriver, hypercorn_config  # only a hypercorn child imports hypercorn

    driver = HypercornDriver(app, hypercorn_config(log_level), settled)
    try:
        asyncio.run(_serve_hypercorn(driver, sock))
    except Exception as exc:  # a failed lifespan startup, say: one line the parent can show
        print(f"ERROR: hypercorn stopped: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 0 if driver.started else 3
    return 0 if driver.started else 3


def _run_daphne(import_string: str, sock: socket.socket, log_level: str) -> int:
    app = _import_app(import_string)
    if app is None:
        return 3
    level = logging.getLevelName(log_level.upper())  # "TRACE" too: uvicorn registers it
    logging.basicConfig(stream=sys.stderr, level=level, format="%(levelname)s: %(message)s")
    # Imported only here, in a child: importing daphne.server installs Twisted's asyncio reactor, and a process
    # has one reactor, which cannot be restarted once stopped.
    from asgiref.compatibility import guarantee_single_callable
    from daphne.access import AccessLogGenerator
    from daphne.server import Server, reactor

    host, port = sock.getsockname()[:2]
    if sock.family == socket.AF_INET:
        # Twisted's fd: endpoint closes the descriptor it adopts, so it gets a duplicate; ours is closed by main().
        endpoint = f"fd:fileno={os.dup(sock.fileno())}"
    else:
        # The fd: endpoint takes IPv4 sockets only (its domain= option arrives as a string, where Twisted needs
        # an address family), so daphne binds the IPv6 port itself, just after we let it go.
        sock.close()
        escaped = host.replace(":", "\\:")
        endpoint = f"tcp6:port={port}:interface={escaped}"
    server = Server(
        guarantee_single_callable(app),
        endpoints=[endpoint],
        # ready_callable runs just before reactor.run(); READY once the reactor runs (and accepts).
        ready_callable=lambda: reactor.callWhenRunning(_announce, port),
        action_logger=AccessLogGenerator(sys.stderr) if level <= logging.INFO else None,
    )
    on_stdin_eof(lambda: reactor.callFromThread(server.stop))
    server.run()
    return 3 if server.abort_start else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.process_entry")
    parser.add_argument("app", help="import string, e.g. package.module:app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (the default) for a free port")
    parser.add_argument("--log-level", default="warning", choices=LOG_LEVELS)
    parser.add_argument("--server", default=SERVERS[0], choices=SERVERS, help="the ASGI server (default: uvicorn)")
    parser.add_argument(
        "--library-defaults",
        action="store_true",
        help="uvicorn with its own settings, not the lesson limits (hypercorn and daphne always get their own)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be 0 (any free port) or a port number up to 65535, not {args.port}")

    try:
        sock = listen_socket("process", args.host, args.port)
    except ServerStartError as exc:
        print(f"ERROR: cannot bind {args.host}:{args.port}: {exc}", file=sys.stderr, flush=True)
        return 1
    try:
        if args.server == "daphne":
            return _run_daphne(args.app, sock, args.log_level)
        if args.server == "hypercorn":
            return _run_hypercorn(args.app, sock, args.log_level)
        return _run_uvicorn(args.app, sock, args.log_level, UVICORN_WS[args.server], args.library_defaults)
    finally:
        sock.close()


if __name__ == "__main__":
    sys.exit(main())
