"""Reference solution for challenge 5 (a FastAPI ConnectionManager that cleans up)."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect


class ConnectionManager:
    def __init__(self):
        self.active: set[WebSocket] = set()

    async def connect(self, websocket: WebSocket):
        await websocket.accept()
        self.active.add(websocket)

    def disconnect(self, websocket: WebSocket):
        self.active.discard(websocket)

    async def broadcast(self, text: str):
        for websocket in list(self.active):  # a copy: other handlers may change the set while we await
            try:
                await websocket.send_text(text)
            except (WebSocketDisconnect, RuntimeError):  # that client is gone; its own handler cleans up
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
    finally:  # however the handler ends: a disconnect, a KeyError on a binary frame, a cancellation
        manager.disconnect(websocket)
