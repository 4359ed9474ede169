from channels.generic.websocket import AsyncWebsocketConsumer

from helpers.challenges import slow_lookup


class Lookup(AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=slow_lookup(text_data))  # slow_lookup() takes half a second
