"""Wrong: ignores the number and replays the whole history to anyone who reconnects."""

import json

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

history: list[dict] = []
clients: set[WebSocket] = set()


async def chat(websocket: WebSocket) -> None:
    await websocket.accept()
    since = websocket.query_params.get("since")
    if since is not None:
        for frame in history:
            if frame["seq"] > 0:
                await websocket.send_text(json.dumps(frame))
    clients.add(websocket)
    try:
        async for text in websocket.iter_text():
            frame = {"seq": len(history) + 1, "text": text}
            history.append(frame)
            for client in list(clients):
                await client.send_text(json.dumps(frame))
    finally:
        clients.discard(websocket)


resume_app = Starlette(routes=[WebSocketRoute("/chat", chat)])

FAILS = (3,)
