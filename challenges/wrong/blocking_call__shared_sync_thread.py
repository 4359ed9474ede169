"""Known wrong for challenge 7: moves the lookup off the loop with sync_to_async, on its default shared thread.

It must fail requirement 2: sync_to_async is thread_sensitive by default, so every lookup in the process runs on
asgiref's one shared thread, one after another.
"""

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from helpers.challenges import slow_lookup

FAILS = (2,)


class Lookup(AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=await sync_to_async(slow_lookup)(text_data))
