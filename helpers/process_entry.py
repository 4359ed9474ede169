"""Child-process side of `helpers.servers.serve_process`.

    python -m helpers.process_entry package.module:app --host 127.0.0.1 --port 0

Binds the socket, starts uvicorn, then prints `READY <port>` on stdout. It shuts down gracefully on
SIGTERM/SIGINT (uvicorn's own handlers, we are the main thread here) or when stdin reaches EOF,
which is what happens when the parent closes it or dies, so a crashed test never leaves it behind.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import socket
import sys
import threading
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from helpers.servers import ServerStartError, listen_socket, make_config
from helpers.usage import LOG_LEVELS

__all__ = [
    "main",
]


def _log_config() -> dict[str, Any]:
    """uvicorn's own logging config, with its access log on stderr too.

    stdout carries the READY line, and nobody reads it after that: access lines there (at --log-level info)
    would fill the pipe and block the server.
    """
    config = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    return config


class _AnnouncingServer(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and sockets:
            print(f"READY {sockets[0].getsockname()[1]}", flush=True)


def _exit_on_stdin_eof(server: uvicorn.Server) -> None:
    def watch() -> None:
        # os.read on the raw descriptor: a daemon thread blocked in sys.stdin's buffered reader
        # aborts the interpreter at exit ("could not acquire lock for <stdin>").
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        server.should_exit = True

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.process_entry")
    parser.add_argument("app", help="import string, e.g. package.module:app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (the default) for a free port")
    parser.add_argument("--log-level", default="warning", choices=LOG_LEVELS)
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be 0 (any free port) or a port number up to 65535, not {args.port}")

    try:
        sock = listen_socket("process", args.host, args.port)
    except ServerStartError as exc:
        print(f"ERROR: cannot bind {args.host}:{args.port}: {exc}", file=sys.stderr, flush=True)
        return 1
    # The thread servers' settings, with uvicorn's own logging to stderr: the parent reads it (ProcessServer.output).
    config = make_config(args.app, args.log_level, log_config=_log_config())
    server = _AnnouncingServer(config)
    _exit_on_stdin_eof(server)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        sock.close()
    return 0 if server.started else 3


if __name__ == "__main__":
    sys.exit(main())
