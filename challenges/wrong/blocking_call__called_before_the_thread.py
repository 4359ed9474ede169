"""Known wrong for challenge 7: calls slow_lookup() itself and hands its result to asyncio.to_thread().

It must fail requirements 1 and 2: the lookup runs on the event loop (blocking it), then to_thread() gets a
str instead of a function, raises TypeError, and the client is dropped without an answer.
"""

import asyncio

from channels.generic.websocket import AsyncWebsocketConsumer

from helpers.challenges import slow_lookup

FAILS = (1, 2)


class Lookup(AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        answer = await asyncio.to_thread(slow_lookup(text_data))  # slow_lookup ran here; to_thread needs the function
        await self.send(text_data=answer)
