"""Reference solution for challenge 7 (no blocking calls in a consumer)."""

import asyncio

from channels.generic.websocket import AsyncWebsocketConsumer

from helpers.challenges import slow_lookup


class Lookup(AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        answer = await asyncio.to_thread(slow_lookup, text_data)  # the loop serves others meanwhile
        await self.send(text_data=answer)
