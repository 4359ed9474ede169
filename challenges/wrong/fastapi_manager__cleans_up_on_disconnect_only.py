"""Known wrong for challenge 5: a guarded broadcast over a copy, but clean-up only on WebSocketDisconnect.

It must fail requirement 3: a binary frame makes receive_text() raise KeyError, which skips the clean-up.
"""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

FAILS = (3,)


class ConnectionManager:
    def __init__(self):
        self.active: set[WebSocket] = set()

    async def connect(self, websocket: WebSocket):
        await websocket.accept()
        self.active.add(websocket)

    def disconnect(self, websocket: WebSocket):
        self.active.discard(websocket)

    async def broadcast(self, text: str):
        for websocket in list(self.active):
            try:
                await websocket.send_text(text)
            except (WebSocketDisconnect, RuntimeError):
                self.disconnect(websocket)


manager = ConnectionManager()
chat_app = FastAPI()


@chat_app.websocket("/chat/{name}")
async def manager_chat(websocket: WebSocket, name: str):
    await manager.connect(websocket)
    try:
        while True:
            text = await websocket.receive_text()
            await manager.broadcast(f"{name}: {text}")
    except WebSocketDisconnect:
        manager.disconnect(websocket)
