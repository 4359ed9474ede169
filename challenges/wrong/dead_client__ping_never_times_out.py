"""Wrong: uvicorn pings, but with no ping timeout it waits for the pong forever."""

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

SERVER_OPTIONS = {"ws_ping_interval": 0.5, "ws_ping_timeout": None}
members: dict[str, WebSocket] = {}


async def room(websocket: WebSocket) -> None:
    name = websocket.query_params["name"]
    await websocket.accept()
    members[name] = websocket
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        members.pop(name, None)


room_app = Starlette(routes=[WebSocketRoute("/room", room)])

FAILS = (2,)
