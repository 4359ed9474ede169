from fastapi import FastAPI, WebSocket

clients: list[WebSocket] = []
fanout_app = FastAPI()


@fanout_app.websocket("/chat")
async def fanout_chat(websocket: WebSocket):
    await websocket.accept()
    clients.append(websocket)
    try:
        async for text in websocket.iter_text():
            for client in list(clients):
                await client.send_text(text)  # waits until this client's connection can take the data
    finally:
        clients.remove(websocket)
