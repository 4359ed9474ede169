from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

SERVER_OPTIONS = {}  # uvicorn options for room_app: none here, so its pings keep uvicorn's defaults
members: dict[str, WebSocket] = {}


async def room(websocket: WebSocket) -> None:
    name = websocket.query_params["name"]
    await websocket.accept()
    members[name] = websocket
    try:
        async for _ in websocket.iter_text():
            pass
    finally:
        members.pop(name, None)


room_app = Starlette(routes=[WebSocketRoute("/room", room)])
