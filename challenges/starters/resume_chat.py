import json

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

history: list[dict] = []
clients: set[WebSocket] = set()


async def chat(websocket: WebSocket) -> None:
    await websocket.accept()  # a client that comes back with ?since=N should first get what it missed
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
