"""Known wrong for challenge 5: cleans up in `finally`, but broadcasts over the live set with no per-socket guard.

It must fail requirement 5: while a send waits on a client that does not read, another handler removes its
socket, so the loop's next step raises "Set changed size during iteration" in the sender's handler.
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
        for websocket in self.active:
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
