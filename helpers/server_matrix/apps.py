"""The ASGI apps lesson 13 serves on every server, by path, importable as strings for `serve_process`.

`app` is the raw behaviour under test: each path does one thing an app can do during or after the handshake
(close before accept, return, never answer, raise, close with a code, ...), written against bare ASGI so no
framework smooths over what the server does. `portable_app` is the lesson's answer: the same refusal and
failure, written so that every ASGI server here gives the client the same close code (daphne 4.2.3 still drops
the reason).

Paths of `app`:

- `/reject`: `websocket.close` (4001, "not allowed") before accept;
- `/return`: returns after `websocket.connect`, sending nothing;
- `/never`: reads `websocket.connect`, then waits for the next event without answering;
- `/raise`: accepts, then raises `RuntimeError`;
- `/close`: accepts, then closes with 4003 "room is full";
- `/size`: accepts, then answers each message with its length in bytes ("1048576 bytes");
- `/subprotocol`: accepts with the second subprotocol the client offered;
- `/client`: accepts, sends the host of `scope["client"]`;
- `/spec`: accepts, sends `scope["asgi"]["spec_version"]` ("none" when the server leaves it out);
- `/vanish?key=K`: accepts, reads until `websocket.disconnect` and records its code under K;
- `/report?key=K`: accepts, sends the code recorded under K (waiting up to REPORT_WAIT s), or "none";
- `/sink`: accepts and never reads, for SINK_SECONDS, then closes 1000 (bounded, so shutdown never waits on it);
- `/hold`: accepts and reads until the client or the server ends the connection;
- `/refuse`, `/fail`: `portable_app`'s refusal and failure, so one server process serves both lessons.

Records live in the serving process (`DISCONNECTS`): the `/report` path is how the notebook, in another
process, learns what the app was told.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

__all__ = [
    "DISCONNECTS",
    "PORTABLE_PATHS",
    "REPORT_WAIT",
    "SINK_SECONDS",
    "app",
    "portable_app",
]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Behaviour = Callable[[Scope, Receive, Send], Awaitable[None]]

PORTABLE_PATHS = ("/refuse", "/fail")
REPORT_WAIT = 3.0
SINK_SECONDS = 2.0  # a little longer than a flood (probes.FLOOD_SECONDS)
DISCONNECTS: dict[str, int | None] = {}  # key -> the code of the `websocket.disconnect` the app got


def _key(scope: Scope) -> str:
    query = parse_qs(scope.get("query_string", b"").decode())
    return query.get("key", [""])[0]


async def _accept(receive: Receive, send: Send, subprotocol: str | None = None) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept", "subprotocol": subprotocol})


async def reject(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "websocket.close", "code": 4001, "reason": "not allowed"})


async def return_early(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()


async def never(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await receive()  # only a disconnect (or a server's own timeout) ends this


async def raise_after_accept(scope: Scope, receive: Receive, send: Send) -> None:
    await _accept(receive, send)
    raise RuntimeError("boom: a bug after accept")


async def close_with_code(scope: Scope, receive: Receive, send: Send) -> None:
    await _accept(receive, send)
    await send({"type": "websocket.close", "code": 4003, "reason": "room is full"})
    await receive()


async def sizes(scope: Scope, receive: Receive, send: Send) -> None:
    await _accept(receive, send)
    while (event := await receive())["type"] == "websocket.receive":
        data = event.get("bytes") or (event.get("text") or "").encode()
        await send({"type": "websocket.send", "text": f"{len(data)} bytes"})


async def subprotocol(scope: Scope, receive: Receive, send: Send) -> None:
    offered = scope.get("subprotocols") or []
    await _accept(receive, send, offered[1] if len(offered) > 1 else None)
    await receive()


async def client(scope: Scope, receive: Receive, send: Send) -> None:
    await _accept(receive, send)
    host = scope["client"][0] if scope.get("client") else "None"
    await send({"type": "websocket.send", "text": str(host)})
    await receive()


async def spec(scope: Scope, receive: Receive, send: Send) -> None:
    await _accept(receive, send)
    await send({"type": "websocket.send", "text": str(scope.get("asgi", {}).get("spec_version", "none"))})
    await receive()


async def vanish(scope: Scope, receive: Receive, send: Send) -> None:
    await _accept(receive, send)
    while (event := await receive())["type"] != "websocket.disconnect":
        pass
    DISCONNECTS[_key(scope)] = event.get("code")


async def report(scope: Scope, receive: Receive, send: Send) -> None:
    await _accept(receive, send)
    key = _key(scope)
    for _ in range(int(REPORT_WAIT / 0.05)):
        if key in DISCONNECTS:
            break
        await asyncio.sleep(0.05)
    await send({"type": "websocket.send", "text": str(DISCONNECTS.get(key, "none"))})
    await receive()


async def sink(scope: Scope, receive: Receive, send: Send) -> None:
    await _accept(receive, send)
    await asyncio.sleep(SINK_SECONDS)  # never reads: whatever the client sends waits somewhere
    await send({"type": "websocket.close", "code": 1000})


async def hold(scope: Scope, receive: Receive, send: Send) -> None:
    await _accept(receive, send)
    while (await receive())["type"] != "websocket.disconnect":
        pass


ROUTES: dict[str, Behaviour] = {
    "/reject": reject,
    "/return": return_early,
    "/never": never,
    "/raise": raise_after_accept,
    "/close": close_with_code,
    "/size": sizes,
    "/subprotocol": subprotocol,
    "/client": client,
    "/spec": spec,
    "/vanish": vanish,
    "/report": report,
    "/sink": sink,
    "/hold": hold,
}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The raw app: one behaviour per path (see the module docstring); lifespan and HTTP are ignored."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] == "websocket":
        behaviour = portable_app if scope["path"] in PORTABLE_PATHS else ROUTES[scope["path"]]
        await behaviour(scope, receive, send)


async def portable_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The same refusal and the same failure as `app`'s /reject and /raise, written to look alike everywhere.

    A refusal accepts first and then closes with an application code: a close frame exists only after the
    handshake, so this is the one way every server delivers the code (daphne 4.2.3 drops the reason). A
    failure is caught by the app, which closes with 1011 itself instead of leaving the choice (1011, or a
    dropped connection) to the server.
    """
    if scope["type"] != "websocket":
        return await app(scope, receive, send)
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    if scope["path"] == "/refuse":
        await send({"type": "websocket.close", "code": 4001, "reason": "not allowed"})
        return
    try:
        raise RuntimeError("boom: a bug after accept")
    except Exception:
        await send({"type": "websocket.close", "code": 1011, "reason": "internal error"})
