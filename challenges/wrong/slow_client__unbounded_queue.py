"""Known wrong for challenge 6: a queue and a writer task per client, but the queues have no bound.

It must fail requirement 4: the server keeps every message for a client that never reads.
"""

import asyncio
import contextlib

from fastapi import FastAPI, WebSocket

FAILS = (4,)

queues: dict[WebSocket, asyncio.Queue] = {}
fanout_app = FastAPI()


async def write(websocket: WebSocket, queue: asyncio.Queue) -> None:
    with contextlib.suppress(Exception):
        while True:
            await websocket.send_text(await queue.get())


@fanout_app.websocket("/chat")
async def fanout_chat(websocket: WebSocket):
    await websocket.accept()
    queue: asyncio.Queue = asyncio.Queue()
    queues[websocket] = queue
    writer = asyncio.create_task(write(websocket, queue))
    try:
        async for text in websocket.iter_text():
            for other in list(queues.values()):
                other.put_nowait(text)
    finally:
        del queues[websocket]
        writer.cancel()
