"""Known wrong for challenge 5: loops over a copy and cleans up in `finally`, but one failed send ends the loop.

It must fail requirement 5: the send to a client that vanished mid-broadcast raises WebSocketDisconnect inside
the sender's handler, which ends the sender's connection.
"""

from fastapi import FastAPI, WebSocket

FAILS = (5,)


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
            await websocket.send_text(text)


manager = ConnectionManager()
chat_app = FastAPI()


@chat_app.websocket("/chat/{name}")
async def manager_chat(websocket: WebSocket, name: str):
    await manager.connect(websocket)
    try:
        while True:
            text = await websocket.receive_text()
            await manager.broadcast(f"{name}: {text}")
    finally:
        manager.disconnect(websocket)
