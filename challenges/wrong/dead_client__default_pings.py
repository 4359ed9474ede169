"""Wrong: uvicorn's default pings (20 s, then 20 s to answer) notice a frozen client far too late."""

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

SERVER_OPTIONS: dict[str, float] = {}
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
