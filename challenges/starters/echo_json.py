import json

from channels.generic.websocket import AsyncWebsocketConsumer


class EchoJson(AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        data = json.loads(text_data)
        await self.send(text_data=data)  # send the same object back, as JSON text
