"""The servers lesson 13 compares, started side by side, and the defaults each library ships with.

Every ASGI server runs in its own child process (`helpers.servers.serve_process`): its memory can then be
read from /proc/PID/status alone, and daphne's Twisted reactor (one per process) is no problem. They are
served with each library's own defaults (`library_defaults=True`: only the socket and the log level are
set), because the lesson is what a learner gets who installs the server and runs it. The reference is the
`websockets` library's own server (`helpers.server_matrix.reference`), also with its defaults.
"""

from __future__ import annotations

import concurrent.futures
import inspect
from typing import Any

from helpers import servers
from helpers.server_matrix.reference import ReferenceServer

__all__ = [
    "ASGI_SERVERS",
    "COLUMNS",
    "RAW_APP",
    "REFERENCE",
    "keepalive_defaults",
    "message_limits",
    "start",
    "start_all",
]

ASGI_SERVERS = ("uvicorn", "uvicorn-websockets", "uvicorn-wsproto", "hypercorn", "daphne")
REFERENCE = "websockets"
COLUMNS = (*ASGI_SERVERS, REFERENCE)
RAW_APP = "helpers.server_matrix.apps:app"


def start(server: str, import_string: str = RAW_APP, *, name: str | None = None) -> Any:
    """One server of COLUMNS serving `import_string` (the reference ignores it) with its library's defaults."""
    if server == REFERENCE:
        return ReferenceServer()
    name = name or f"13-{server}-{import_string.rsplit(':', 1)[1]}"
    return servers.serve_process(import_string, name=name, server=server, library_defaults=True)


def start_all(import_string: str = RAW_APP, columns: tuple[str, ...] = COLUMNS) -> dict[str, Any]:
    """Start every server of `columns` at once (each start waits for its child's READY line); name -> handle."""
    with concurrent.futures.ThreadPoolExecutor(len(columns)) as pool:
        futures = {name: pool.submit(start, name, import_string) for name in columns}
        return {name: future.result() for name, future in futures.items()}


def _default(function: Any, parameter: str) -> Any:
    return inspect.signature(function).parameters[parameter].default


def message_limits() -> dict[str, int]:
    """The largest incoming message each library accepts by default, read from the library itself."""
    import daphne.server
    import hypercorn.config
    import uvicorn
    import websockets.asyncio.server

    uvicorn_limit = _default(uvicorn.Config, "ws_max_size")
    return {
        "uvicorn": uvicorn_limit,
        "uvicorn-websockets": uvicorn_limit,
        "uvicorn-wsproto": uvicorn_limit,
        "hypercorn": hypercorn.config.Config.websocket_max_message_size,
        "daphne": _default(daphne.server.Server, "websocket_max_message_size"),
        REFERENCE: _default(websockets.asyncio.server.serve, "max_size"),
    }


def _pings(interval: float | None, timeout: float | None) -> str:
    if interval is None:
        return "no pings"
    return f"every {interval:g} s, timeout {timeout:g} s"


def keepalive_defaults() -> dict[str, str]:
    """Each server's default keepalive ping, read from its library (and, for uvicorn's protocols, whether the
    protocol uses uvicorn's ws_ping_interval at all)."""
    import daphne.server
    import hypercorn.config
    import uvicorn
    import uvicorn.protocols.websockets.wsproto_impl as wsproto_impl
    import websockets.asyncio.server

    uvicorn_pings = _pings(_default(uvicorn.Config, "ws_ping_interval"), _default(uvicorn.Config, "ws_ping_timeout"))
    uses_pings = "ws_ping_interval" in inspect.getsource(wsproto_impl)
    return {
        "uvicorn": uvicorn_pings,
        "uvicorn-websockets": uvicorn_pings,
        "uvicorn-wsproto": uvicorn_pings if uses_pings else "no pings (ws_ping_interval unused)",
        "hypercorn": _pings(hypercorn.config.Config.websocket_ping_interval, None),
        "daphne": _pings(
            _default(daphne.server.Server, "ping_interval"), _default(daphne.server.Server, "ping_timeout")
        ),
        REFERENCE: _pings(
            _default(websockets.asyncio.server.serve, "ping_interval"),
            _default(websockets.asyncio.server.serve, "ping_timeout"),
        ),
    }
