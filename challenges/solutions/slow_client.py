"""Reference solution for challenge 6 (a fan-out that survives a slow client).

Every client gets a bounded queue and its own writer task; publishing never waits. When a client's queue
is full, its oldest message is dropped, so a client that stops reading costs at most MAX_QUEUE messages of
memory. (helpers.fanout.FanOut is a tested version of the same idea, with a "disconnect" policy as well.)
"""

import asyncio
import contextlib

from fastapi import FastAPI, WebSocket

MAX_QUEUE = 16
queues: dict[WebSocket, asyncio.Queue] = {}
fanout_app = FastAPI()


async def write(websocket: WebSocket, queue: asyncio.Queue) -> None:
    with contextlib.suppress(Exception):  # the client is gone: its handler's `finally` cleans up
        while True:
            await websocket.send_text(await queue.get())


def publish(text: str) -> None:
    for queue in list(queues.values()):
        if queue.full():
            queue.get_nowait()  # a slow client loses its oldest message instead of holding everyone up
        queue.put_nowait(text)


@fanout_app.websocket("/chat")
async def fanout_chat(websocket: WebSocket):
    await websocket.accept()
    queue: asyncio.Queue = asyncio.Queue(maxsize=MAX_QUEUE)
    queues[websocket] = queue
    writer = asyncio.create_task(write(websocket, queue))
    try:
        async for text in websocket.iter_text():
            publish(text)
    finally:
        del queues[websocket]
        writer.cancel()
