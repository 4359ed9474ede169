"""Small ASGI apps shared by tests, benchmarks and the process-server lessons.

They are importable by string ("helpers.demo_apps:echo"), which `serve_process()` needs.
Lessons define their own apps in cells, where the code is the lesson.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.frames import CloseCode

from helpers.fanout import FanOut

__all__ = [
    "CHAT_MAX_CHARS",
    "Scope",
    "echo",
    "fanout_chat",
]

Scope = dict[str, Any]
CHAT_MAX_CHARS = 4096


async def echo(scope: Scope, receive: Any, send: Any) -> None:
    """Accept every WebSocket and send each text or bytes message straight back."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "websocket":
        await _not_found(send)
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _not_found(send: Any) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"websocket only"})


def fanout_chat(hub: FanOut | None = None, max_chars: int = CHAT_MAX_CHARS) -> Starlette:
    """A chat room at /chat that broadcasts every text message to everyone through a FanOut.

    Defined answers to bad input: a binary frame closes with 1003 (text only), a text longer than
    `max_chars` closes with 1009; the sender leaves, everybody else keeps chatting.
    """
    room = hub if hub is not None else FanOut(max_queue=100)  # not `hub or`: an empty FanOut is falsy

    async def chat(websocket: WebSocket) -> None:
        await websocket.accept()
        async with room.connected(websocket):
            try:
                while True:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        return
                    text = message.get("text")
                    if text is None:
                        await websocket.close(CloseCode.UNSUPPORTED_DATA, "this chat accepts text messages only")
                        return
                    if len(text) > max_chars:
                        await websocket.close(
                            CloseCode.MESSAGE_TOO_BIG, f"message too long: the limit is {max_chars} characters"
                        )
                        return
                    room.publish(text)
            except WebSocketDisconnect:
                return

    app = Starlette(routes=[WebSocketRoute("/chat", chat)])
    app.state.hub = room
    return app
