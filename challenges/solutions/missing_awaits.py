"""Reference solution for challenge 3 (fix the missing awaits)."""

from channels.generic.websocket import AsyncWebsocketConsumer


class Greeter(AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()
        await self.send(text_data="welcome")

    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=text_data.upper())
