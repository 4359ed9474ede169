"""Known wrong for challenge 6: sends to every client at once with asyncio.gather, and waits for all of them.

It must fail requirements 2 and 4: each message waits for the slowest send, so one client that never reads stalls
all, and the server keeps every message for that client instead of dropping any.
"""

import asyncio

from fastapi import FastAPI, WebSocket

FAILS = (2, 4)

clients: set[WebSocket] = set()
fanout_app = FastAPI()


async def send_quietly(client: WebSocket, text: str) -> None:
    try:
        await client.send_text(text)
    except Exception:
        clients.discard(client)


@fanout_app.websocket("/chat")
async def fanout_chat(websocket: WebSocket):
    await websocket.accept()
    clients.add(websocket)
    try:
        async for text in websocket.iter_text():
            await asyncio.gather(*(send_quietly(client, text) for client in list(clients)))
    finally:
        clients.discard(websocket)
