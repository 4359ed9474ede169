"""The chat whose missing test challenge 5 of notebook 19 asks for, and the three bugs that test must catch.

`chat_app()` is the chat as specified: at `/chat/{room}`, every text a client sends goes to everyone in the room,
the sender included; a room name that is not letters and digits is refused before accept with close code
ROOM_REFUSED (4003; a client over the network sees HTTP 403, lesson 14). `chat_app(bug)` is the same chat with one
of BUGS. Each call makes a new app with rooms of its own, so no test sees another's members.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

__all__ = ["BUGS", "ROOM_REFUSED", "chat_app"]

ROOM_REFUSED = 4003
BUGS = {
    "echo-only": "each message goes back to its sender only",
    "first-message-only": "the server closes each connection (1000) after its first message",
    "lets-bad-rooms-in": "a room name that is not letters and digits is accepted",
}


def chat_app(bug: str | None = None) -> Starlette:
    """The specified chat, or (with `bug`, one of BUGS) the same chat with that bug."""
    if bug is not None and bug not in BUGS:
        raise ValueError(f"bug must be None or one of {', '.join(BUGS)}; got {bug!r}")
    rooms: dict[str, set[WebSocket]] = {}

    async def chat(websocket: WebSocket) -> None:
        room = websocket.path_params["room"]
        if not room.isalnum() and bug != "lets-bad-rooms-in":
            await websocket.close(code=ROOM_REFUSED, reason="room names are letters and digits")
            return
        await websocket.accept()
        members = rooms.setdefault(room, set())
        members.add(websocket)
        try:
            async for text in websocket.iter_text():
                for member in [websocket] if bug == "echo-only" else list(members):
                    await member.send_text(text)
                if bug == "first-message-only":
                    await websocket.close()
                    return
        finally:
            members.discard(websocket)

    return Starlette(routes=[WebSocketRoute("/chat/{room}", chat)])
